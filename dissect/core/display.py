"""Display formatters: how a typed value becomes the text a user reads.

The schema compiler picks one formatter per field once (display hint, enum,
flags, units) and stores it on the decoder; nodes call it only when a
renderer asks for their display string.  Formatters never raise on odd
values: they fall back to the plain representation.

Each formatter is a plain function of the value.  Enum and flag formatters
also carry a ``short`` attribute: the bare name(s) used in summary lines
(``main`` instead of ``main (254)``).
"""

from __future__ import annotations

import base64
import errno as _errno
import ipaddress
import os
import uuid
from collections.abc import Callable
from typing import Any

Formatter = Callable[[Any], str]


def as_hex(v: Any) -> str:
    if isinstance(v, int):
        return f"0x{v:x}"
    if isinstance(v, (bytes, bytearray)):
        return v.hex() if v else "(empty)"
    return str(v)


def hexbytes(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex(" ") if v else "(empty)"
    return str(v)


def mac(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)) and v:
        return ":".join(f"{b:02x}" for b in v)
    return hexbytes(v)


def ipv4(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)) and len(v) == 4:
        return str(ipaddress.IPv4Address(bytes(v)))
    if isinstance(v, int) and 0 <= v < 1 << 32:
        return str(ipaddress.IPv4Address(v))
    return hexbytes(v)


def ipv6(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)) and len(v) == 16:
        return str(ipaddress.IPv6Address(bytes(v)))
    return hexbytes(v)


def addr(v: Any) -> str:
    """An address whose kind follows from its length (rtnetlink's habit)."""
    if isinstance(v, (bytes, bytearray)):
        n = len(v)
        if n == 4:
            return ipv4(v)
        if n == 16:
            return ipv6(v)
        if n == 6 or n == 8 or n == 20:
            return mac(v)
    return hexbytes(v)


def uuid_fmt(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)) and len(v) == 16:
        return str(uuid.UUID(bytes=bytes(v)))
    return hexbytes(v)


def b64(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode()
    return str(v)


def boolean(v: Any) -> str:
    if isinstance(v, int):
        return "true" if v == 1 else ("false" if v == 0 else f"{v} (not 0/1)")
    return str(v)


# Where libc has two names for one number, the kernel's choice.
_KERNEL_ERRNO_NAMES = {95: "EOPNOTSUPP", 11: "EAGAIN", 35: "EDEADLK"}


def errno_name(code: int) -> str:
    """``-19`` -> ``ENODEV``; ``0`` -> ``OK``."""
    if code == 0:
        return "OK"
    n = _KERNEL_ERRNO_NAMES.get(abs(code)) or _errno.errorcode.get(abs(code))
    return n if n else f"errno {abs(code)}"


def errno_text(code: int) -> str:
    if code == 0:
        return "Success"
    try:
        return os.strerror(abs(code))
    except ValueError:
        return "Unknown error"


def errno_fmt(v: Any) -> str:
    if isinstance(v, int):
        if v == 0:
            return "0 (OK)"
        return f"{v} ({errno_name(v)}: {errno_text(v)})"
    return str(v)


# Address families by number (include/linux/socket.h), for the
# ``address-family`` hint.
ADDRESS_FAMILIES = {
    0: "unspec", 1: "unix", 2: "inet", 3: "ax25", 4: "ipx", 5: "appletalk", 7: "bridge",
    10: "inet6", 16: "netlink", 17: "packet", 28: "mpls", 29: "can", 30: "tipc", 31: "bluetooth",
    40: "vsock", 44: "xdp", 45: "mctp",
}  # fmt: skip


def _ifindex(v: Any) -> str:
    return str(v)


def _netlink_family(v: Any) -> str:
    from .constants import PROTOCOLS

    return f"NETLINK_{PROTOCOLS[v]} ({v})" if isinstance(v, int) and v in PROTOCOLS else str(v)


# Traffic control handles (linux/pkt_sched.h): 32 bits, major:minor in hex,
# written the way tc writes them.
TC_H_ROOT = 0xFFFFFFFF
TC_H_INGRESS = 0xFFFFFFF1  # also TC_H_CLSACT
TC_H_MIN_INGRESS = 0xFFF2
TC_H_MIN_EGRESS = 0xFFF3
_TC_SPECIAL = {
    TC_H_ROOT: "root",
    TC_H_INGRESS: "ffff:fff1 (ingress/clsact)",
    0xFFFF0000 | TC_H_MIN_INGRESS: "ffff:fff2 (clsact ingress)",
    0xFFFF0000 | TC_H_MIN_EGRESS: "ffff:fff3 (clsact egress)",
}


def tc_classid(v: int) -> str:
    """``0x80010000`` -> ``8001:``, ``0x10010`` -> ``1:10``, ``0x5`` -> ``:5``."""
    if v == TC_H_ROOT:
        return "root"
    if v == 0:
        return "none"
    major, minor = v >> 16, v & 0xFFFF
    if major == 0:
        return f":{minor:x}"
    if minor == 0:
        return f"{major:x}:"
    return f"{major:x}:{minor:x}"


def _tc_handle(v: Any) -> str:
    if not isinstance(v, int) or not 0 <= v < 1 << 32:
        return str(v)
    return _TC_SPECIAL.get(v) or tc_classid(v)


def _tc_handle_short(v: Any) -> str:
    """Summary form: nothing for 0 (unset)."""
    if v == 0:
        return ""
    return tc_classid(v) if isinstance(v, int) and 0 <= v < 1 << 32 else str(v)


def _tc_parent_short(v: Any) -> str:
    """Summary form of tcm_parent, as tc prints it: ``root``, ``ingress``,
    ``egress`` (clsact hooks) or ``parent 1:10``; nothing for 0."""
    if not isinstance(v, int) or not 0 <= v < 1 << 32:
        return str(v)
    if v == 0:
        return ""
    if v == TC_H_ROOT:
        return "root"
    if v == 0xFFFF0000 | TC_H_MIN_INGRESS:
        return "ingress"
    if v == 0xFFFF0000 | TC_H_MIN_EGRESS:
        return "egress"
    return f"parent {tc_classid(v)}"


_tc_handle.short = _tc_handle_short  # type: ignore[attr-defined]


def _tc_parent(v: Any) -> str:
    return _tc_handle(v)


_tc_parent.short = _tc_parent_short  # type: ignore[attr-defined]


def _tc_filter_handle(v: Any) -> str:
    return f"0x{v:x}" if isinstance(v, int) else str(v)


_tc_filter_handle.short = lambda v: "" if v == 0 else _tc_filter_handle(v)  # type: ignore[attr-defined]

# Action verdicts (TC_ACT_*, linux/pkt_cls.h); the top 4 bits of a verdict
# are an opcode (TC_ACT_JUMP, TC_ACT_GOTO_CHAIN) with its argument below.
TC_ACT_NAMES = {
    -1: "unspec", 0: "ok", 1: "reclassify", 2: "drop", 3: "pipe", 4: "stolen", 5: "queued",
    6: "repeat", 7: "redirect", 8: "trap",
}  # fmt: skip
_TC_ACT_EXT_SHIFT = 28


def _tc_verdict_short(v: Any) -> str:
    if not isinstance(v, int):
        return str(v)
    name = TC_ACT_NAMES.get(v)
    if name is not None:
        return name
    u = v & 0xFFFFFFFF
    op, arg = u >> _TC_ACT_EXT_SHIFT, u & ((1 << _TC_ACT_EXT_SHIFT) - 1)
    if op == 1:
        return f"jump {arg}"
    if op == 2:
        return f"goto chain {arg}"
    return str(v)


def _tc_verdict(v: Any) -> str:
    short = _tc_verdict_short(v)
    if not isinstance(v, int) or short == str(v):
        return f"{v} (unknown)" if isinstance(v, int) else str(v)
    return f"{short} ({v if -1 <= v <= 8 else hex(v & 0xFFFFFFFF)})"


_tc_verdict.short = _tc_verdict_short  # type: ignore[attr-defined]


def hex32(v: Any) -> str:
    """A 32-bit number as eight hex digits (``0x00002001``), the way
    ``ip xfrm`` prints an SPI."""
    if isinstance(v, int) and 0 <= v < 1 << 32:
        return f"0x{v:08x}"
    return as_hex(v)


HINTS: dict[str, Formatter] = {
    "hex": as_hex,
    "hex32": hex32,
    "mac": mac,
    "fddi": mac,
    "ipv4": ipv4,
    "ipv6": ipv6,
    "addr": addr,
    "ipv4-or-ipv6": addr,
    "uuid": uuid_fmt,
    "base64": b64,
    "bool": boolean,
    "errno": errno_fmt,
    "ifindex": _ifindex,
    "netlink-family": _netlink_family,
    "tc-handle": _tc_handle,
    "tc-parent": _tc_parent,
    "tc-filter-handle": _tc_filter_handle,
    "tc-verdict": _tc_verdict,
}


def enum_fmt(names: dict[int, str], hex_values: bool = False) -> Formatter:
    """``254`` -> ``main (254)`` (``ccmp (0xfac04)`` with `hex_values`);
    unknown values say so."""

    def fmt(v: Any) -> str:
        if isinstance(v, int):
            n = names.get(v)
            num = f"0x{v:x}" if hex_values else str(v)
            return f"{n} ({num})" if n is not None else f"{num} (unknown)"
        return str(v)

    def short(v: Any) -> str:
        return names.get(v, str(v)) if isinstance(v, int) else str(v)

    fmt.short = short  # type: ignore[attr-defined]
    return fmt


def flags_fmt(bits: dict[int, str], width: int = 8) -> Formatter:
    """``0x1003`` -> ``0x1003 (UP|BROADCAST|0x1000)``."""
    items = sorted(bits.items())

    def names(v: int) -> list[str]:
        out = []
        rest = v
        for mask, n in items:
            if v & mask == mask and mask:
                out.append(n)
                rest &= ~mask
        if rest:
            out.append(f"0x{rest:x}")
        return out

    def fmt(v: Any) -> str:
        if not isinstance(v, int):
            return str(v)
        if v == 0:
            return "0x0"
        return f"0x{v:0{width}x} ({'|'.join(names(v))})"

    def short(v: Any) -> str:
        if not isinstance(v, int):
            return str(v)
        return ",".join(names(v)) if v else ""

    fmt.short = short  # type: ignore[attr-defined]
    return fmt


def with_units(inner: Formatter | None, units: str) -> Formatter:
    def fmt(v: Any) -> str:
        base = inner(v) if inner is not None else str(v)
        return f"{base} {units}"

    fmt.short = getattr(inner, "short", None) or (inner if inner is not None else str)  # type: ignore[attr-defined]
    return fmt


def short_display(fmt: Formatter | None, value: Any) -> str:
    """The bare form of a value for summary lines."""
    if fmt is not None:
        short = getattr(fmt, "short", None)
        if short is not None:
            return str(short(value))
        return fmt(value)
    if isinstance(value, (bytes, bytearray)):
        return hexbytes(value)
    return str(value)


HINTS["address-family"] = enum_fmt(ADDRESS_FAMILIES)
