"""Link-layer pseudo-headers in front of captured netlink data.

LINKTYPE_NETLINK (253) and LINKTYPE_LINUX_SLL (113) frames from an nlmon
interface start with the same 16-byte header, all big-endian: packet type
u16, ARPHRD type u16 (824 = ARPHRD_NETLINK), address length u16, 8 address
bytes, protocol u16 — which for netlink is the netlink protocol number.
LINKTYPE_LINUX_SLL2 (276) is 20 bytes: protocol u16, reserved u16,
interface index u32, ARPHRD type u16, packet type u8, address length u8,
8 address bytes.

nlmon's packet type is always 4 (PACKET_OUTGOING) whatever the direction,
so the core infers direction from the messages instead.
"""

from __future__ import annotations

import struct

from ..capture.linktypes import linktype_name  # a pure table, no I/O
from .constants import PROTOCOLS
from .display import enum_fmt, hexbytes
from .tree import ERROR, MALFORMED, NOTE, PROTOCOL, UNDECODED, WARN, LazyNode, Node

ARPHRD_NETLINK = 824
LINKTYPES = {253: "NETLINK", 113: "LINUX_SLL", 276: "LINUX_SLL2"}
PKTTYPES = {
    0: "HOST",
    1: "BROADCAST",
    2: "MULTICAST",
    3: "OTHERHOST",
    4: "OUTGOING",
    5: "LOOPBACK",
    6: "USER",
    7: "KERNEL",
}

_SLL = struct.Struct(">HHH8sH")
_SLL2 = struct.Struct(">HHIHBB8s")
_pkt_fmt = enum_fmt(PKTTYPES)
_proto_fmt = enum_fmt({k: f"NETLINK_{v}" for k, v in PROTOCOLS.items()})
_PROTO_DISPLAY = {k: f"NETLINK_{v}" for k, v in PROTOCOLS.items()}
_hatype_fmt = enum_fmt({ARPHRD_NETLINK: "NETLINK"})


def decode_link_header(linktype: int, data: bytes) -> tuple[Node | None, int | None, int]:
    """Returns (header node, netlink protocol or None, payload offset)."""
    if linktype in (253, 113):
        return _decode_sll(linktype, data)
    if linktype == 276:
        return _decode_sll2(data)
    name = linktype_name(linktype)
    n = Node("frame.linktype", "link type", 0, 0, data, linktype, None)
    n.display = f"{name} ({linktype})"
    n.note(
        ERROR, UNDECODED, f"link type {linktype} ({name}) does not carry netlink; frame not decoded"
    )
    return n, None, 0


def _short(abbrev: str, name: str, data: bytes, need: int) -> tuple[Node, None, int]:
    n = Node(abbrev, name, 0, len(data), data, data, hexbytes)
    n.note(ERROR, MALFORMED, f"frame of {len(data)} bytes is too short for the {need}-byte {name}")
    return n, None, len(data)


def _decode_sll(linktype: int, data: bytes) -> tuple[Node, int | None, int]:
    name = "netlink pseudo-header" if linktype == 253 else "Linux cooked header"
    ab = "nlmon" if linktype == 253 else "sll"
    if len(data) < 16:
        return _short(ab, name, data, 16)
    pkttype, hatype, halen, addr, proto = _SLL.unpack_from(data, 0)

    def fields(h: Node) -> None:
        h.children = [
            Node(f"{ab}.pkttype", "packet type", 0, 2, data, pkttype, _pkt_fmt),
            Node(f"{ab}.hatype", "ARPHRD type", 2, 2, data, hatype, _hatype_fmt),
            Node(f"{ab}.halen", "address length", 4, 2, data, halen, None),
            Node(f"{ab}.addr", "address", 6, 8, data, addr, hexbytes),
            Node(f"{ab}.protocol", "netlink protocol", 14, 2, data, proto, _proto_fmt),
        ]

    if hatype == ARPHRD_NETLINK and proto in PROTOCOLS:
        # the usual case: field nodes are made when somebody looks
        lazy = LazyNode(ab, name, 0, 16, data, fields)
        lazy._display = _PROTO_DISPLAY[proto]
        return lazy, proto, 16
    h = Node(ab, name, 0, 16, data)
    h._display = f"NETLINK_{PROTOCOLS.get(proto, proto)}"
    fields(h)
    assert h.children is not None
    if hatype != ARPHRD_NETLINK:
        h.children[1].note(
            ERROR if linktype == 113 else WARN,
            UNDECODED if linktype == 113 else PROTOCOL,
            f"ARPHRD type {hatype} is not ARPHRD_NETLINK (824)",
        )
        if linktype == 113:
            return h, None, 16
    if proto not in PROTOCOLS:
        h.children[4].note(NOTE, PROTOCOL, f"unknown netlink protocol {proto}")
    return h, proto, 16


def _decode_sll2(data: bytes) -> tuple[Node, int | None, int]:
    if len(data) < 20:
        return _short("sll2", "Linux cooked v2 header", data, 20)
    proto, reserved, ifindex, hatype, pkttype, halen, addr = _SLL2.unpack_from(data, 0)
    h = Node("sll2", "Linux cooked v2 header", 0, 20, data)
    h._display = f"NETLINK_{PROTOCOLS.get(proto, proto)}"
    h.children = [
        Node("sll2.protocol", "netlink protocol", 0, 2, data, proto, _proto_fmt),
        Node("sll2.reserved", "reserved", 2, 2, data, reserved, None),
        Node("sll2.ifindex", "interface index", 4, 4, data, ifindex, None),
        Node("sll2.hatype", "ARPHRD type", 8, 2, data, hatype, _hatype_fmt),
        Node("sll2.pkttype", "packet type", 10, 1, data, pkttype, _pkt_fmt),
        Node("sll2.halen", "address length", 11, 1, data, halen, None),
        Node("sll2.addr", "address", 12, 8, data, addr, hexbytes),
    ]
    if hatype != ARPHRD_NETLINK:
        h.children[3].note(ERROR, UNDECODED, f"ARPHRD type {hatype} is not ARPHRD_NETLINK (824)")
        return h, None, 20
    return h, proto, 20
