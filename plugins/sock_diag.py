"""sock_diag hooks: socket names, group bitmaps and ss-style summaries.

`plugins/sock-diag.yaml` describes the structs and attributes; three things
it cannot say live here:

- UNIX_DIAG_NAME is a ``sun_path`` of the attribute's length, without a
  terminating NUL, and an abstract name starts with a NUL byte (shown
  ``@name`` as ss does);
- NETLINK_DIAG_GROUPS is a bitmap of unsigned longs in which bit n stands
  for multicast group n + 1 (read least significant byte first, as on the
  little-endian hosts captures come from);
- the summary line, written like ss prints a socket:
  ``tcp ESTAB 127.0.0.1:22 -> 127.0.0.1:5000 ino 1234``.  inet replies do
  not carry their protocol unless the kernel adds INET_DIAG_PROTOCOL, so it
  is taken from the request the reply answers when the capture has it.
"""

from __future__ import annotations

from typing import Any

from dissect.core.tree import NOTE, PROTOCOL, Node

# ss's state names (misc/ss.c prints these for the kernel's TCP_* numbers).
SS_STATES = {
    1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
    6: "TIME-WAIT", 7: "UNCONN", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN",
    11: "CLOSING", 12: "NEW-SYN-RECV", 13: "BOUND-INACTIVE",
}  # fmt: skip
IP_PROTOCOLS = {
    0: "ip", 1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 58: "icmp6", 132: "sctp",
    136: "udplite", 255: "raw", 262: "mptcp",
}  # fmt: skip
SOCK_TYPES = {1: "stream", 2: "dgram", 3: "raw", 4: "rdm", 5: "seqpacket", 6: "dccp", 10: "packet"}
NETLINK_PROTOCOLS = {
    0: "ROUTE", 2: "USERSOCK", 3: "FIREWALL", 4: "SOCK_DIAG", 5: "NFLOG", 6: "XFRM",
    7: "SELINUX", 8: "ISCSI", 9: "AUDIT", 10: "FIB_LOOKUP", 11: "CONNECTOR", 12: "NETFILTER",
    13: "IP6_FW", 14: "DNRTMSG", 15: "KOBJECT_UEVENT", 16: "GENERIC", 18: "SCSITRANSPORT",
    19: "ECRYPTFS", 20: "RDMA", 21: "CRYPTO", 22: "SMC", 255: "ALL",
}  # fmt: skip
AF_NAMES = {
    1: "unix", 2: "inet", 10: "inet6", 16: "netlink", 17: "packet", 30: "tipc", 40: "vsock", 43: "smc",
    44: "xdp",
}  # fmt: skip
TYPE_SOCK_DIAG_BY_FAMILY = 20
LEGACY_PROTOCOLS = {18: "tcp", 19: "dccp"}


def unix_name(node: Node, buf: bytes, start: int, end: int) -> None:
    raw = bytes(buf[start:end])
    if raw[:1] == b"\0":
        # abstract namespace: every byte counts, NULs included
        node.value = "@" + raw[1:].decode("utf-8", "backslashreplace").replace("\0", "@")
    else:
        path, nul, rest = raw.partition(b"\0")
        node.value = path.decode("utf-8", "backslashreplace")
        if nul and rest.strip(b"\0"):
            node.note(NOTE, PROTOCOL, f"{len(rest)} bytes after the NUL ending the path")
    node.fmt = None


def group_bitmap(node: Node, buf: bytes, start: int, end: int) -> None:
    groups = [
        8 * i + bit + 1
        for i, byte in enumerate(bytes(buf[start:end]))
        for bit in range(8)
        if byte >> bit & 1
    ]
    node.value = groups
    node.fmt = None
    node._display = " ".join(map(str, groups)) if groups else "none"


# -- summaries -------------------------------------------------------------------


def _fields(msg: Any) -> tuple[dict[str, Node], dict[str, Node]]:
    """(struct members by name, id members included; attributes by name)."""
    members: dict[str, Node] = {}
    attrs: dict[str, Node] = {}
    for c in msg.node.children or ():
        if c.abbrev.endswith(".hdr"):
            continue
        if c.name.startswith("struct "):
            for m in c.children or ():
                members[m.name] = m
                for sub in m.children or ():
                    members[sub.name] = sub
        else:
            attrs[c.name] = c
    return members, attrs


def _int(members: dict[str, Node], name: str) -> int | None:
    n = members.get(name)
    return n.value if n is not None and isinstance(n.value, int) else None


def _endpoint(addr: Node | None, port: int | None, v6: bool) -> str:
    a = addr.display if addr is not None and addr.value is not None else "?"
    host = f"[{a}]" if v6 else a
    return f"{host}:{port if port else '*'}"


def _request_protocol(msg: Any) -> str | None:
    rec = msg.request
    if rec is None:
        return None
    if rec.type in LEGACY_PROTOCOLS:
        return LEGACY_PROTOCOLS[rec.type]
    if rec.type == TYPE_SOCK_DIAG_BY_FAMILY and len(rec.data) >= 18:
        return IP_PROTOCOLS.get(rec.data[17], str(rec.data[17]))
    return None


def summary(msg: Any) -> str | None:
    members, attrs = _fields(msg)
    if msg.direction == "user->kernel":
        return _request_summary(members, attrs)
    family = _int(members, "idiag_family")
    if family in (2, 10):
        state = _int(members, "idiag_state")
        proto_node = attrs.get("INET_DIAG_PROTOCOL")
        proto = (
            IP_PROTOCOLS.get(proto_node.value, str(proto_node.value))
            if proto_node is not None and isinstance(proto_node.value, int)
            else _request_protocol(msg)
        )
        v6 = family == 10
        parts = [
            proto or AF_NAMES[family],
            SS_STATES.get(state or 0, str(state)),
            _endpoint(members.get("idiag_src"), _int(members, "idiag_sport"), v6),
            "->",
            _endpoint(members.get("idiag_dst"), _int(members, "idiag_dport"), v6),
            f"ino {_int(members, 'idiag_inode')}",
        ]
        return " ".join(parts)
    if _int(members, "udiag_family") == 1:
        name = attrs.get("UNIX_DIAG_NAME")
        peer = attrs.get("UNIX_DIAG_PEER")
        parts = [
            "unix",
            SOCK_TYPES.get(_int(members, "udiag_type") or 0, "?"),
            SS_STATES.get(_int(members, "udiag_state") or 0, "?"),
            str(name.value) if name is not None else "*",
            f"ino {_int(members, 'udiag_ino')}",
        ]
        if peer is not None and peer.value:
            parts.append(f"peer {peer.value}")
        return " ".join(parts)
    if _int(members, "ndiag_family") == 16:
        proto = _int(members, "ndiag_protocol") or 0
        parts = [
            "netlink",
            NETLINK_PROTOCOLS.get(proto, str(proto)),
            f"portid {_int(members, 'ndiag_portid')}",
        ]
        groups = attrs.get("NETLINK_DIAG_GROUPS")
        if groups is not None and isinstance(groups.value, list) and groups.value:
            parts.append("groups " + ",".join(map(str, groups.value)))
        parts.append(f"ino {_int(members, 'ndiag_ino')}")
        return " ".join(parts)
    if _int(members, "pdiag_family") == 17:
        num = _int(members, "pdiag_num") or 0
        return (
            f"packet {SOCK_TYPES.get(_int(members, 'pdiag_type') or 0, '?')} "
            f"proto 0x{num:04x} ino {_int(members, 'pdiag_ino')}"
        )
    if _int(members, "vdiag_family") == 40:
        return (
            f"vsock {SOCK_TYPES.get(_int(members, 'vdiag_type') or 0, '?')} "
            f"{SS_STATES.get(_int(members, 'vdiag_state') or 0, '?')} "
            f"{_int(members, 'vdiag_src_cid')}:{_int(members, 'vdiag_src_port')} -> "
            f"{_int(members, 'vdiag_dst_cid')}:{_int(members, 'vdiag_dst_port')} "
            f"ino {_int(members, 'vdiag_ino')}"
        )
    if _int(members, "xdiag_family") == 44:
        return f"xdp ino {_int(members, 'xdiag_ino')}"
    return None


def _states(node: Node | None) -> str | None:
    if node is None or not isinstance(node.value, int):
        return None
    v = node.value
    if v & 0xFFE == 0xFFE:  # ESTABLISHED..CLOSING, what `ss -a` asks for
        return "all"
    return ",".join(SS_STATES.get(i, str(i)) for i in range(32) if v >> i & 1) or "none"


def _request_summary(members: dict[str, Node], attrs: dict[str, Node]) -> str | None:
    family = _int(members, "sdiag_family")
    if family is None:
        family = _int(members, "idiag_family")
    if family in (2, 10):
        proto_attr = attrs.get("INET_DIAG_REQ_PROTOCOL")
        proto = _int(members, "sdiag_protocol")
        if proto_attr is not None and isinstance(proto_attr.value, int):
            proto = proto_attr.value
        parts = [AF_NAMES[family]]
        if proto is not None:
            parts.append(IP_PROTOCOLS.get(proto, str(proto)))
        states = _states(members.get("idiag_states"))
        if states:
            parts.append(f"states {states}")
        if "INET_DIAG_REQ_BYTECODE" in attrs:
            parts.append("with filter")
        return " ".join(parts)
    if family == 16:
        proto = _int(members, "sdiag_protocol") or 0
        return f"netlink {NETLINK_PROTOCOLS.get(proto, str(proto))}"
    if family == 1:
        states = _states(members.get("udiag_states"))
        return "unix" + (f" states {states}" if states else "")
    if family is not None:
        return AF_NAMES.get(family, f"family {family}")
    return None
