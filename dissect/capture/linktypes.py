"""Link-layer types: names, the ones nlshark decodes, the netlink pseudo-header.

A pcap file (or pcapng interface) names the framing of its packets with a
LINKTYPE_* number from the tcpdump.org registry.  Netlink traffic captured
on an nlmon device is LINKTYPE_NETLINK (253); Linux cooked captures
(LINUX_SLL 113, LINUX_SLL2 276) can carry it too.  Everything else is not
netlink, and the reader names the link type in its refusal, so the table
below holds the types users are likely to feed in by mistake.
"""

from __future__ import annotations

import struct

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_NETLINK = 253
LINKTYPE_LINUX_SLL2 = 276

SUPPORTED_LINKTYPES: dict[int, str] = {
    LINKTYPE_NETLINK: "NETLINK",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}

_LINKTYPE_NAMES: dict[int, str] = {
    0: "NULL",
    1: "ETHERNET",
    3: "AX25",
    6: "IEEE802_5",
    8: "SLIP",
    9: "PPP",
    10: "FDDI",
    50: "PPP_HDLC",
    51: "PPP_ETHER",
    101: "RAW",
    104: "C_HDLC",
    105: "IEEE802_11",
    108: "LOOP",
    113: "LINUX_SLL",
    117: "PFLOG",
    119: "IEEE802_11_PRISM",
    127: "IEEE802_11_RADIOTAP",
    187: "BLUETOOTH_HCI_H4",
    189: "USB_LINUX",
    192: "PPI",
    201: "BLUETOOTH_HCI_H4_WITH_PHDR",
    220: "USB_LINUX_MMAPPED",
    227: "CAN_SOCKETCAN",
    228: "IPV4",
    229: "IPV6",
    231: "DBUS",
    239: "NFLOG",
    249: "USBPCAP",
    251: "BLUETOOTH_LE_LL",
    252: "WIRESHARK_UPPER_PDU",
    253: "NETLINK",
    276: "LINUX_SLL2",
}


def linktype_name(n: int) -> str:
    """The LINKTYPE_* name without its prefix (``1`` -> ``"ETHERNET"``), else ``"unknown"``."""
    return _LINKTYPE_NAMES.get(n, "unknown")


def supported_linktypes_text() -> str:
    """``"253 NETLINK, 113 LINUX_SLL, 276 LINUX_SLL2"``, for error messages."""
    return ", ".join(f"{n} {name}" for n, name in SUPPORTED_LINKTYPES.items())


# include/uapi/linux/if_arp.h: ARPHRD_NETLINK; include/uapi/linux/if_packet.h:
# PACKET_OUTGOING, which nlmon stamps on every frame whatever its direction.
ARPHRD_NETLINK = 824
PACKET_OUTGOING = 4

# The 16-byte cooked header of LINKTYPE_NETLINK, all big-endian: pkttype,
# ARPHRD type, link-layer address length, 8 address bytes, protocol.
_NETLINK_PSEUDO_HEADER = struct.Struct(">HHH8sH")


def netlink_pseudo_header(protocol: int, pkttype: int = PACKET_OUTGOING) -> bytes:
    """The LINKTYPE_NETLINK header for a frame of netlink `protocol` (NETLINK_ROUTE=0, ...)."""
    return _NETLINK_PSEUDO_HEADER.pack(pkttype, ARPHRD_NETLINK, 0, bytes(8), protocol)
