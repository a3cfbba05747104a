"""ND user options: the ICMPv6 neighbour-discovery options RTM_NEWNDUSEROPT carries.

The kernel hands userspace the options of a router advertisement that a
daemon may want (net/ipv6/ndisc.c, ndisc_is_useropt: RDNSS, DNSSL, captive
portal, PREF64, and on some kernels prefix and route information) behind
struct nduseroptmsg, `nduseropt_opts_len` bytes of them.  Each
option is ``type`` (u8), ``length`` (u8, in units of 8 bytes, the two
header bytes included) and its data, all in network byte order:

- 1/2 source/target link-layer address (RFC 4861)
- 3 prefix information: prefix length, flags L/A/R, valid and preferred
  lifetime, reserved, prefix (RFC 4861, 4.6.2)
- 5 MTU: reserved, MTU (RFC 4861, 4.6.4)
- 24 route information: prefix length, preference in flag bits 3-4,
  route lifetime, 0-16 bytes of prefix (RFC 4191)
- 25 RDNSS: reserved, lifetime, IPv6 addresses (RFC 8106)
- 31 DNSSL: reserved, lifetime, domain names in DNS label form, zero
  padded (RFC 8106)
- 37 captive portal: a URI, zero padded (RFC 8910)
- 38 PREF64: scaled lifetime (13 bits) and prefix length code (3 bits),
  the first 96 bits of the prefix (RFC 8781)

Other types are shown as bytes.  A length of 0, or one running past the
options, is malformed and ends the walk.
"""

from __future__ import annotations

import ipaddress

from dissect.core.display import hexbytes
from dissect.core.tree import ERROR, MALFORMED, NOTE, PROTOCOL, Node

OPTION_NAMES = {
    1: "source link-layer address",
    2: "target link-layer address",
    3: "prefix information",
    4: "redirected header",
    5: "MTU",
    24: "route information",
    25: "RDNSS",
    31: "DNSSL",
    37: "captive portal",
    38: "PREF64",
}
ROUTE_PREFERENCE = {0: "medium", 1: "high", 2: "reserved", 3: "low"}
PREF64_LENGTHS = {0: 96, 1: 64, 2: 56, 3: 48, 4: 40, 5: 32}
_AB = "rtnl.nduseropt.option"


def _leaf(
    parent: Node, name: str, off: int, size: int, buf: bytes, value: object, shown: str
) -> None:
    n = Node(f"{_AB}.{name.replace(' ', '_')}", name, off, size, buf, value, None)
    n._display = shown
    parent.add(n)


def _u(buf: bytes, off: int, size: int) -> int:
    return int.from_bytes(buf[off : off + size], "big")


def _lifetime(v: int) -> str:
    return "infinite" if v == 0xFFFFFFFF else f"{v} s"


def _addr6(raw: bytes) -> str:
    return str(ipaddress.IPv6Address(raw.ljust(16, b"\0")))


def _dns_names(buf: bytes, start: int, end: int, node: Node) -> list[str]:
    names: list[str] = []
    labels: list[str] = []
    p = start
    while p < end:
        n = buf[p]
        if n == 0:
            if labels:
                names.append(".".join(labels))
                labels = []
            p += 1
            continue
        if n > 63 or p + 1 + n > end:
            node.note(NOTE, MALFORMED, f"a DNS label of {n} bytes runs past the option")
            break
        labels.append(bytes(buf[p + 1 : p + 1 + n]).decode("ascii", "backslashreplace"))
        p += 1 + n
    if labels:
        node.note(NOTE, MALFORMED, "the last domain name is not ended by a zero label")
        names.append(".".join(labels))
    return names


def _body(opt: Node, kind: int, buf: bytes, off: int, end: int) -> str:
    """Children for the option's data (after type and length); its summary."""
    size = end - off
    if kind in (1, 2) and size > 0:
        mac = ":".join(f"{b:02x}" for b in buf[off:end])
        _leaf(opt, "address", off, size, buf, bytes(buf[off:end]), mac)
        return mac
    if kind == 3 and size >= 30:
        plen, flags = buf[off], buf[off + 1]
        valid, pref = _u(buf, off + 2, 4), _u(buf, off + 6, 4)
        prefix = _addr6(bytes(buf[off + 14 : off + 30]))
        names = [
            n
            for bit, n in ((0x80, "on-link"), (0x40, "autonomous"), (0x20, "router"))
            if flags & bit
        ]
        _leaf(opt, "prefix length", off, 1, buf, plen, str(plen))
        _leaf(opt, "flags", off + 1, 1, buf, flags, f"0x{flags:02x} ({'|'.join(names) or 'none'})")
        _leaf(opt, "valid lifetime", off + 2, 4, buf, valid, _lifetime(valid))
        _leaf(opt, "preferred lifetime", off + 6, 4, buf, pref, _lifetime(pref))
        _leaf(opt, "reserved", off + 10, 4, buf, _u(buf, off + 10, 4), str(_u(buf, off + 10, 4)))
        _leaf(opt, "prefix", off + 14, 16, buf, prefix, prefix)
        return f"{prefix}/{plen}"
    if kind == 5 and size >= 6:
        mtu = _u(buf, off + 2, 4)
        _leaf(opt, "reserved", off, 2, buf, _u(buf, off, 2), str(_u(buf, off, 2)))
        _leaf(opt, "mtu", off + 2, 4, buf, mtu, str(mtu))
        return f"mtu {mtu}"
    if kind == 24 and size >= 6:
        plen, flags = buf[off], buf[off + 1]
        life = _u(buf, off + 2, 4)
        pref = ROUTE_PREFERENCE[(flags >> 3) & 3]
        prefix = _addr6(bytes(buf[off + 6 : end]))
        _leaf(opt, "prefix length", off, 1, buf, plen, str(plen))
        _leaf(opt, "flags", off + 1, 1, buf, flags, f"0x{flags:02x} (preference {pref})")
        _leaf(opt, "route lifetime", off + 2, 4, buf, life, _lifetime(life))
        if size > 6:
            _leaf(opt, "prefix", off + 6, size - 6, buf, prefix, prefix)
        return f"{prefix}/{plen} preference {pref}"
    if kind in (25, 31) and size >= 6:
        life = _u(buf, off + 2, 4)
        _leaf(opt, "reserved", off, 2, buf, _u(buf, off, 2), str(_u(buf, off, 2)))
        _leaf(opt, "lifetime", off + 2, 4, buf, life, _lifetime(life))
        p = off + 6
        if kind == 25:
            addrs = []
            while p + 16 <= end:
                a = _addr6(bytes(buf[p : p + 16]))
                _leaf(opt, "address", p, 16, buf, a, a)
                addrs.append(a)
                p += 16
            if p < end:
                opt.note(NOTE, MALFORMED, f"{end - p} bytes after the last RDNSS address")
            return " ".join(addrs)
        names = _dns_names(buf, p, end, opt)
        n = Node(f"{_AB}.domains", "domain names", p, end - p, buf, names, None)
        n._display = " ".join(names) or "none"
        opt.add(n)
        return " ".join(names)
    if kind == 37 and size > 0:
        uri = bytes(buf[off:end]).rstrip(b"\0").decode("utf-8", "backslashreplace")
        _leaf(opt, "uri", off, size, buf, uri, uri)
        return uri
    if kind == 38 and size >= 14:
        word = _u(buf, off, 2)
        lifetime, plc = (word >> 3) * 8, word & 7
        plen = PREF64_LENGTHS.get(plc)
        prefix = _addr6(bytes(buf[off + 2 : off + 14]))
        _leaf(opt, "scaled lifetime", off, 2, buf, lifetime, f"{lifetime} s")
        _leaf(
            opt,
            "prefix length code",
            off,
            2,
            buf,
            plc,
            f"{plc} (/{plen})" if plen else f"{plc} (reserved)",
        )
        _leaf(opt, "prefix", off + 2, 12, buf, prefix, prefix)
        return f"{prefix}/{plen}" if plen else prefix
    if size > 0:
        opt.add(Node(f"{_AB}.data", "data", off, size, buf, bytes(buf[off:end]), hexbytes))
    return ""


def options(node: Node, buf: bytes, start: int, end: int) -> None:
    """Split struct nduseroptmsg's trailer into its ND options."""
    node.children = []
    p = start
    shown = []
    while p + 2 <= end:
        kind, units = buf[p], buf[p + 1]
        name = OPTION_NAMES.get(kind, f"option {kind}")
        size = units * 8
        if units == 0 or p + size > end:
            bad = Node(f"{_AB}.bad", name, p, end - p, buf, bytes(buf[p:end]), hexbytes)
            why = (
                "length 0"
                if units == 0
                else f"length {size} runs {p + size - end} bytes past the options"
            )
            bad.note(ERROR, MALFORMED, f"ND option {kind}: {why}")
            node.add(bad)
            p = end
            break
        opt = Node(_AB, f"ND option: {name}", p, size, buf)
        _leaf(opt, "type", p, 1, buf, kind, f"{name} ({kind})")
        _leaf(opt, "length", p + 1, 1, buf, units, f"{units} ({size} bytes)")
        summary = _body(opt, kind, buf, p + 2, p + size)
        opt._display = summary
        node.add(opt)
        shown.append(f"{name} {summary}".strip())
        p += size
    if p < end:
        node.add(Node(f"{_AB}.rest", "rest", p, end - p, buf, bytes(buf[p:end]), hexbytes))
        node.note(NOTE, PROTOCOL, f"{end - p} bytes too short for an ND option")
    node.fmt = None  # the value stays the options' bytes; the display lists them
    node._display = "; ".join(shown) or "none"
