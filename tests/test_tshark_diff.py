"""Differential test against Wireshark: our decode versus ``tshark -T pdml``.

Theory of operation.  For every capture in ``captures/`` and in the shared
captures folder (``../shared/captures``, skipped when absent), tshark runs
once per test session (in a background pool, two at a time, with an empty
configuration directory so personal preferences cannot change its output);
its PDML is parsed with ``iterparse`` one packet at a time and reduced to

* the netlink headers it shows, each with its position; a header that
  follows a ``netlink.error`` field inside the same message is the request
  echoed by NLMSG_ERROR, every other one starts a message of the frame;
* the start and length of every attribute (``netlink.attr_len``);
* every field with its name, position, size and ``show`` value.

Our side is `dissect.read_capture` over the same file.  Positions are
comparable directly: tshark's ``pos`` is relative to the frame start and so
are our `Node` offsets (both include the 16-byte nlmon pseudo-header).
Checks, per capture:

1. same frames; the messages of each frame start at the same offsets (so the
   counts are equal and echoed headers are not taken for messages);
2. every message's nlmsghdr (len, type, flags, seq, pid) from the `Message`
   API equals tshark's header at that position, and so do the error code of
   NLMSG_ERROR (``msg.error``), the message type name (``msg.type_name``:
   tshark's label through `MSG_LABELS`, or the nlctrl command name) and the
   generic netlink family name tshark resolved for the id (``msg.family``);
3. every attribute tshark delimits is a node of ours with the same start and
   length, and where tshark names its type (`ATTR_LABELS`), our node has
   that kernel name (IFLA_IFNAME, RTA_GATEWAY, CTRL_ATTR_OPS, ...) or, for an
   element of a nested array (``netlink.attr_index``), the name ``[index]``:
   this checks our specs' type numbers also for attributes tshark shows raw;
4. every tshark field listed in `FIELDS` equals the value of our node at its
   position (``member``: same start and size; ``attr``: tshark gives the
   attribute's payload, our attribute node starts 4 bytes earlier at its
   nlattr header), compared by value (integers, strings, addresses as
   addresses, bits under a mask), and the node is one of the expected
   abbreviations;
   a tshark field that dissects a payload we keep as bytes (the packet
   sampled by psample as eth/ip/udp/icmp, 802.11 information elements as
   wlan: `PAYLOAD_DISSECTIONS`) must lie inside such a payload node of ours
   (counted as "payload fields");
5. a frame tshark reports as Malformed Packet carries a malformed note of
   ours somewhere (we may be stricter than tshark, not laxer);
6. (tshark 4.0 only) every field tshark shows is either compared (`FIELDS`)
   or listed in `NOT_COMPARED` with the reason, so coverage stays visible.

A difference is accepted only when `tests/tshark_known_differences.py`
names it and its condition holds on the bytes; anything else fails with the
capture, frame, message index, field, position, our value and tshark's.
Confirmed bugs of our decoder would go to `OUR_BUGS` below: they are taken
out of the main checks and asserted in `test_our_known_bugs`, which is
``xfail(strict=True)`` so a fix is noticed.

The counts of compared fields per capture are put on ``config`` for the
terminal summary hook in ``conftest.py``.
"""

from __future__ import annotations

import calendar
import fnmatch
import ipaddress
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest

try:  # tests/ on sys.path (pytest's default import mode) or the project root
    from tshark_known_differences import CONDITIONS, KNOWN_DIFFERENCES, KnownDifference
except ImportError:  # pragma: no cover
    from tests.tshark_known_differences import CONDITIONS, KNOWN_DIFFERENCES, KnownDifference

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not on PATH")

HERE = Path(__file__).resolve()
LOCAL_CAPTURES = HERE.parents[1] / "captures"
SHARED_CAPTURES = HERE.parents[2] / "shared" / "captures"


def _captures() -> list[tuple[str, Path]]:
    out = []
    for label, folder in (("", LOCAL_CAPTURES), ("shared:", SHARED_CAPTURES)):
        if folder.is_dir():
            for p in sorted(folder.glob("*.pcap*")):
                if p.suffix in (".pcap", ".pcapng"):
                    out.append((label + p.name, p))
    return out


CAPTURES = _captures()
CAPTURE_IDS = [c[0] for c in CAPTURES]

# ---------------------------------------------------------------------------
# What is compared.

INT, STR, IP, MAC, SHIFT8 = "int", "str", "ip", "mac", "shift8"
# BYTES: tshark shows raw bytes ("07", "01:78:c8"); ours are those bytes or the
# integer they hold (little-endian, signed when ours is negative).
# LE: tshark shows an unsigned integer of the field's size; ours is that
# integer (negative: two's complement) or its little-endian bytes.
# NSTIME: tshark shows a UTC date; ours is nanoseconds since the epoch.
BYTES, LE, NSTIME = "bytes", "le", "nstime"


class F(NamedTuple):
    """How one tshark field maps onto our tree.

    rule: "member" (our node has tshark's pos and size) or "attr" (tshark
    shows an attribute's payload; our attribute node is 4 bytes earlier and
    4 bytes longer).  kind: INT, STR, IP, MAC, SHIFT8 (tshark shows the high
    byte), BYTES, LE, NSTIME or an int mask (tshark shows one bit, 0/1).
    ours: the abbreviations our node may have, or None for a family we do not
    decode yet or a tshark field shared by many attributes (any node with the
    exact extent and no children is compared then).
    """

    rule: str
    kind: str | int
    ours: tuple[str, ...] | None


def _m(kind: str | int, *ours: str) -> F:
    return F("member", kind, ours)


def _a(kind: str | int, *ours: str) -> F:
    return F("attr", kind, ours)


_HDR = {  # tshark header field -> our header member (top-level or echoed)
    "netlink.hdr_len": "len",
    "netlink.hdr_type": "type",
    "netlink-route.nltype": "type",
    "netlink-sock_diag.nltype": "type",
    "genl.family_id": "type",
    "netlink.hdr_flags": "flags",
    "netlink.hdr_seq": "seq",
    "netlink.hdr_pid": "pid",
}
# nlmsghdr flag bits (linux/netlink.h); Wireshark names the GET and NEW
# variants of bits 8..11 separately.
_HDR_FLAG_BITS = {
    "request": 0x1,
    "multi": 0x2,
    "ack": 0x4,
    "echo": 0x8,
    "dump_intr": 0x10,
    "dump_filtered": 0x20,
    "root": 0x100,
    "match": 0x200,
    "atomic": 0x400,
    "replace": 0x100,
    "excl": 0x200,
    "create": 0x400,
    "append": 0x800,
}
# IFLA_STATS / IFLA_STATS64 members (struct rtnl_link_stats{,64}); Wireshark
# reuses "rx_errors.*" names for the tx error counters.
_LINKSTATS = {
    "rxpackets": ("rx_packets",),
    "txpackets": ("tx_packets",),
    "rxbytes": ("rx_bytes",),
    "txbytes": ("tx_bytes",),
    "rxerrors": ("rx_errors",),
    "txerrors": ("tx_errors",),
    "rxdropped": ("rx_dropped",),
    "txdropped": ("tx_dropped",),
    "multicast": ("multicast",),
    "collisions": ("collisions",),
    "rx_errors.length_errs": ("rx_length_errors",),
    "rx_errors.over_errs": ("rx_over_errors",),
    "rx_errors.crc_errs": ("rx_crc_errors",),
    "rx_errors.frame_errs": ("rx_frame_errors",),
    "rx_errors.fifo_errs": ("rx_fifo_errors", "tx_fifo_errors"),
    "rx_errors.miss_errs": ("rx_missed_errors",),
    "rx_errors.abort_errs": ("tx_aborted_errors",),
    "rx_errors.carrier_errs": ("tx_carrier_errors",),
    "rx_errors.heartbeat_errs": ("tx_heartbeat_errors",),
    "rx_errors.window_errs": ("tx_window_errors",),
}

# The table of compared fields: tshark field -> F(rule, kind, our abbrevs).
FIELDS: dict[str, F] = {
    # nlmon pseudo-header
    "netlink.hatype": _m(INT, "nlmon.hatype"),
    "netlink.family": _m(INT, "nlmon.protocol"),
    # struct nlmsghdr, of messages and of requests echoed by NLMSG_ERROR
    **{k: _m(INT, f"netlink.{v}", f"netlink.echo.{v}") for k, v in _HDR.items()},
    **{
        f"netlink.hdr_flags.{k}": _m(bit, "netlink.flags", "netlink.echo.flags")
        for k, bit in _HDR_FLAG_BITS.items()
    },
    "netlink-netfilter.subsys": _m(SHIFT8, "netlink.type", "netlink.echo.type"),
    # NLMSG_ERROR
    "netlink.error": _m(INT, "netlink.error.code"),
    # struct genlmsghdr
    "genl.cmd": _m(INT, "genl.cmd"),
    "genl.ctrl.cmd": _m(INT, "genl.cmd"),
    "genl.version": _m(INT, "genl.version"),
    # nlctrl attributes (linux/genetlink.h)
    "genl.ctrl.family_id": _a(INT, "genl.ctrl.ctrl.family_id"),
    "genl.ctrl.family_name": _a(STR, "genl.ctrl.ctrl.family_name"),
    "genl.ctrl.version": _a(INT, "genl.ctrl.ctrl.version"),
    "genl.ctrl.hdrsize": _a(INT, "genl.ctrl.ctrl.hdrsize"),
    "genl.ctrl.maxattr": _a(INT, "genl.ctrl.ctrl.maxattr"),
    "genl.ctrl.op_id": _a(INT, "genl.ctrl.ctrl.ops.id"),
    "genl.ctrl.op_flags": _a(INT, "genl.ctrl.ctrl.ops.flags"),
    "genl.ctrl.op_flags.admin_perm": _a(0x01, "genl.ctrl.ctrl.ops.flags"),
    "genl.ctrl.op_flags.cmd_cap_do": _a(0x02, "genl.ctrl.ctrl.ops.flags"),
    "genl.ctrl.op_flags.cmd_cap_dump": _a(0x04, "genl.ctrl.ctrl.ops.flags"),
    "genl.ctrl.op_flags.cmd_cap_haspol": _a(0x08, "genl.ctrl.ctrl.ops.flags"),
    "genl.ctrl.op_flags.uns_admin_perm": _a(0x10, "genl.ctrl.ctrl.ops.flags"),
    "genl.ctrl.group_id": _a(INT, "genl.ctrl.ctrl.mcast_groups.id"),
    "genl.ctrl.group_name": _a(STR, "genl.ctrl.ctrl.mcast_groups.name"),
    # struct ifinfomsg
    "netlink-route.ifi_family": _m(INT, "rtnl.ifinfomsg.ifi_family"),
    "netlink-route.ifi_type": _m(INT, "rtnl.ifinfomsg.ifi_type"),
    "netlink-route.ifi_index": _m(INT, "rtnl.ifinfomsg.ifi_index"),
    "netlink-route.ifi_flags": _m(INT, "rtnl.ifinfomsg.ifi_flags"),
    "netlink-route.ifi_flags.iff_up": _m(0x1, "rtnl.ifinfomsg.ifi_flags"),
    "netlink-route.ifi_flags.iff_broadcast": _m(0x2, "rtnl.ifinfomsg.ifi_flags"),
    "netlink-route.ifi_change": _m(INT, "rtnl.ifinfomsg.ifi_change"),
    # IFLA_* (linux/if_link.h)
    "netlink-route.ifla_ifname": _a(STR, "rtnl.link.ifname"),
    "netlink-route.ifla_mtu": _a(INT, "rtnl.link.mtu"),
    "netlink-route.ifla_min_mtu": _a(INT, "rtnl.link.min_mtu"),
    "netlink-route.ifla_max_mtu": _a(INT, "rtnl.link.max_mtu"),
    "netlink-route.ifla_txqlen": _a(INT, "rtnl.link.txqlen"),
    "netlink-route.ifla_operstate": _a(INT, "rtnl.link.operstate"),
    "netlink-route.ifla_group": _a(INT, "rtnl.link.group"),
    "netlink-route.ifla_promiscuity": _a(INT, "rtnl.link.promiscuity"),
    "netlink-route.ifla_txqnum": _a(INT, "rtnl.link.num_tx_queues"),
    "netlink-route.ifla_rxqnum": _a(INT, "rtnl.link.num_rx_queues"),
    "netlink-route.ifla_gso_maxsegs": _a(INT, "rtnl.link.gso_max_segs"),
    "netlink-route.ifla_gso_maxsize": _a(INT, "rtnl.link.gso_max_size"),
    "netlink-route.ifla_carrier": _a(INT, "rtnl.link.carrier"),
    "netlink-route.ifla_carrier_changes": _a(INT, "rtnl.link.carrier_changes"),
    "netlink-route.ifla_carrier_up_count": _a(INT, "rtnl.link.carrier_up_count"),
    "netlink-route.ifla_carrier_down_count": _a(INT, "rtnl.link.carrier_down_count"),
    "netlink-route.ifla_qdisc": _a(STR, "rtnl.link.qdisc"),
    "netlink-route.ifla_hwaddr": _a(MAC, "rtnl.link.address"),
    "netlink-route.ifla_broadcast": _a(MAC, "rtnl.link.broadcast"),
    **{
        f"netlink-route.ifla_map.{k}": _m(INT, f"rtnl.rtnl_link_ifmap.{k}")
        for k in ("mem_start", "mem_end", "base_addr", "irq", "dma", "port")
    },
    **{
        f"netlink-route.ifla_linkstats.{k}": _m(
            INT, *(f"rtnl.{s}.{m}" for s in ("rtnl_link_stats", "rtnl_link_stats64") for m in v)
        )
        for k, v in _LINKSTATS.items()
    },
    # struct ifaddrmsg and IFA_* (linux/if_addr.h)
    "netlink-route.ifa_family": _m(INT, "rtnl.ifaddrmsg.ifa_family"),
    "netlink-route.ifa_prefixlen": _m(INT, "rtnl.ifaddrmsg.ifa_prefixlen"),
    "netlink-route.ifa_flags": _m(INT, "rtnl.ifaddrmsg.ifa_flags"),
    "netlink-route.ifa_scope": _m(INT, "rtnl.ifaddrmsg.ifa_scope"),
    "netlink-route.ifa_index": _m(INT, "rtnl.ifaddrmsg.ifa_index"),
    "netlink-route.ifa_address.ipv4": _a(
        IP, "rtnl.addr.address", "rtnl.addr.local", "rtnl.addr.broadcast"
    ),
    "netlink-route.ifa_address.ipv6": _a(
        IP, "rtnl.addr.address", "rtnl.addr.local", "rtnl.addr.broadcast"
    ),
    "netlink-route.ifa_label": _a(STR, "rtnl.addr.label"),
    "netlink-route.ifa_flags32": _a(INT, "rtnl.addr.flags"),
    # struct ndmsg (linux/neighbour.h)
    "netlink-route.nd_family": _m(INT, "rtnl.ndmsg.ndm_family"),
    "netlink-route.nd_index": _m(INT, "rtnl.ndmsg.ndm_ifindex"),
    "netlink-route.nd_state": _m(INT, "rtnl.ndmsg.ndm_state"),
    "netlink-route.nd_flags": _m(INT, "rtnl.ndmsg.ndm_flags"),
    "netlink-route.nd_type": _m(INT, "rtnl.ndmsg.ndm_type"),
    # struct rtmsg and RTA_* (linux/rtnetlink.h)
    **{
        f"netlink-route.rt_{k}": _m(INT, f"rtnl.rtmsg.rtm_{k}")
        for k in (
            "family",
            "dst_len",
            "src_len",
            "tos",
            "table",
            "protocol",
            "scope",
            "type",
            "flags",
        )
    },
    "netlink-route.rta_oif": _a(INT, "rtnl.route.oif"),
    # sock_diag (linux/inet_diag.h, linux/unix_diag.h, linux/sock_diag.h):
    # one tshark field stands for the members of several structs (by address
    # family), so any node with the exact extent will do.
    **{
        f"netlink-sock_diag.{k}": F("member", kind, None)
        for k, kind in {
            "family": INT,
            "inet_protocol": INT,
            "inet_extended": INT,
            "inet_padding": INT,
            "inet_states": INT,
            "inet_sport": INT,
            "inet_dport": INT,
            "inet_src_ip4": IP,
            "inet_dest_ip4": IP,
            "inet_src_ip6": IP,
            "inet_dest_ip6": IP,
            "inet_interface": INT,
            "cookie": INT,
            "state": INT,
            "type": INT,
            "recv_queue": INT,
            "send_queue": INT,
            "inode": INT,
            "unix_show": INT,
            "unix_show.name": 0x01,
            "unix_show.vfs": 0x02,
            "unix_show.peer": 0x04,
            "unix_show.icons": 0x08,
            "unix_show.rqlen": 0x10,
            "unix_show.meminfo": 0x20,
        }.items()
    },
    "netlink-sock_diag.shutdown": _a(INT, "sockdiag.inet.shutdown", "sockdiag.unix.shutdown"),
    "netlink-sock_diag.unix_name": F("attr", STR, None),
    "netlink-sock_diag.unix_peer_inode": F("attr", INT, None),
    # struct nfgenmsg (linux/netfilter/nfnetlink.h)
    "netlink-netfilter.family": _m(INT, "nfnl.nfgenmsg.nfgen_family"),
    "netlink-netfilter.version": _m(INT, "nfnl.nfgenmsg.version"),
    "netlink-netfilter.res_id": _m(INT, "nfnl.nfgenmsg.res_id"),
    # psample (linux/psample.h); PSAMPLE_ATTR_DATA is in PAYLOAD_DISSECTIONS
    "psample.cmd": _m(INT, "genl.cmd"),
    **{
        f"psample.{k}": _a(INT, f"genl.psample.psample.{v}")
        for k, v in {
            "iifindex": "iifindex",
            "origsize": "origsize",
            "sample_group": "sample_group",
            "group_seq_num": "group_seq",
            "sample_rate": "sample_rate",
            "group_refcount": "group_refcount",
            "proto": "proto",
        }.items()
    },
    "psample.timestamp": _a(NSTIME, "genl.psample.psample.timestamp"),
    # net_dm (linux/net_dropmon.h)
    "net_dm.cmd": _m(INT, "genl.cmd"),
    **{
        f"net_dm.{k}": _a(INT, f"genl.net_dm.net_dm.{k}")
        for k in ("alert_mode", "trunc_len", "queue_len")
    },
    # nl80211 (linux/nl80211.h).  Wireshark 4.0 gives most attributes one of
    # four generic value fields by size: any leaf of ours with the extent.
    "nl80211.cmd": _m(INT, "genl.cmd"),
    "nl80211.attr_value": F("attr", BYTES, None),
    "nl80211.attr_value16": F("attr", LE, None),
    "nl80211.attr_value32": F("attr", LE, None),
    "nl80211.attr_value64": F("attr", LE, None),
    "nl80211.wiphy_name": _a(STR, "genl.nl80211.attrs.wiphy_name"),
    "nl80211.ifname": _a(STR, "genl.nl80211.attrs.ifname"),
    "nl80211.mac": _a(MAC, "genl.nl80211.attrs.mac"),
    "nl80211.alpha2": _a(STR, "genl.nl80211.attrs.reg_alpha2"),
    "nl80211.iftype": _a(INT, "genl.nl80211.attrs.iftype"),  # size 2: an attribute type
    "nl80211.chan_width": _a(INT, "genl.nl80211.attrs.channel_width"),
    "nl80211.channel_type": _a(INT, "genl.nl80211.attrs.wiphy_channel_type"),
    "nl80211.ps_state": _a(INT, "genl.nl80211.attrs.ps_state"),
    "nl80211.bss_scan_width": _a(INT, "genl.nl80211.attrs.bss.chan_width"),
    "nl80211.dbm": _a(
        INT, "genl.nl80211.attrs.sta_info.signal", "genl.nl80211.attrs.sta_info.signal_avg"
    ),
}

# Attribute names: tshark's label of an attribute type (in the
# ``*_attr_type`` / ``genl.ctrl*_attr`` fields) -> the kernel name our node
# must carry.  Labels already in kernel style (IFLA_EVENT, RTA_TABLE,
# CTRL_ATTR_OPS, ...) are taken as they are.  This checks the type numbers of
# our specs independently, also for attributes tshark does not decode.
ATTR_LABELS: dict[str, dict[str, str]] = {
    "netlink-route.ifla_attr_type": {
        "HW Address": "IFLA_ADDRESS",
        "Broadcast": "IFLA_BROADCAST",
        "Device name": "IFLA_IFNAME",
        "MTU": "IFLA_MTU",
        "Link type": "IFLA_LINK",
        "Queueing discipline": "IFLA_QDISC",
        "Interface Statistics": "IFLA_STATS",
        "Master": "IFLA_MASTER",
        "Prot info": "IFLA_PROTINFO",
        "TxQueue length": "IFLA_TXQLEN",
        "Map": "IFLA_MAP",
        "Operstate": "IFLA_OPERSTATE",
        "Link mode": "IFLA_LINKMODE",
        "Link info": "IFLA_LINKINFO",
        "Ifalias": "IFLA_IFALIAS",
        "Stats": "IFLA_STATS64",
        "AF spec": "IFLA_AF_SPEC",
        "Group": "IFLA_GROUP",
        "Ext mask": "IFLA_EXT_MASK",
        "Promiscuity": "IFLA_PROMISCUITY",
        "Number of Tx queues": "IFLA_NUM_TX_QUEUES",
        "Number of Rx queues": "IFLA_NUM_RX_QUEUES",
        "Carrier": "IFLA_CARRIER",
        "Carrier changes": "IFLA_CARRIER_CHANGES",
        "Maximum GSO segment count": "IFLA_GSO_MAX_SEGS",
        "Maximum GSO size": "IFLA_GSO_MAX_SIZE",
        "Carrier up count": "IFLA_CARRIER_UP_COUNT",
        "Carrier down count": "IFLA_CARRIER_DOWN_COUNT",
        "Minimum MTU": "IFLA_MIN_MTU",
        "Maximum MTU": "IFLA_MAX_MTU",
        "Permanent address": "IFLA_PERM_ADDRESS",
        "GRO maximum size": "IFLA_GRO_MAX_SIZE",
        "TSO maximum size": "IFLA_TSO_MAX_SIZE",
        "TSO maximum number of segments": "IFLA_TSO_MAX_SEGS",
        "Allmulti count": "IFLA_ALLMULTI",
    },
    "netlink-route.ifa_attr_type": {
        "Interface address": "IFA_ADDRESS",
        "Local address": "IFA_LOCAL",
        "Name of interface": "IFA_LABEL",
        "Broadcast address": "IFA_BROADCAST",
        "Address information": "IFA_CACHEINFO",
        "Address flags": "IFA_FLAGS",
    },
    "netlink-route.rta_attr_type": {
        "Route destination address": "RTA_DST",
        "Route source address": "RTA_SRC",
        "Output interface index": "RTA_OIF",
        "Gateway of the route": "RTA_GATEWAY",
    },
    "genl.ctrl_attr": {},
    "genl.ctrl.ops_attr": {},
    "genl.ctrl.groups_attr": {},
    "psample.attr_type": {
        "Input interface index": "PSAMPLE_ATTR_IIFINDEX",
        "Original size": "PSAMPLE_ATTR_ORIGSIZE",
        "Sample group": "PSAMPLE_ATTR_SAMPLE_GROUP",
        "Group sequence number": "PSAMPLE_ATTR_GROUP_SEQ",
        "Sample rate": "PSAMPLE_ATTR_SAMPLE_RATE",
        "Data": "PSAMPLE_ATTR_DATA",
        "Group reference count": "PSAMPLE_ATTR_GROUP_REFCOUNT",
        "Timestamp": "PSAMPLE_ATTR_TIMESTAMP",
        "Protocol": "PSAMPLE_ATTR_PROTO",
    },
    "net_dm.attr_type": {
        # the summary alert: nla_reserve(skb, NLA_UNSPEC, struct net_dm_alert_msg)
        "Unspecified": "NLA_UNSPEC",
        "Alert mode": "NET_DM_ATTR_ALERT_MODE",
        "Truncation length": "NET_DM_ATTR_TRUNC_LEN",
        "Queue length": "NET_DM_ATTR_QUEUE_LEN",
    },
    # nl80211: Wireshark labels attribute types with the kernel names
    **{
        f"nl80211.{k}": {}
        for k in (
            "attr_type",
            "band_attr",
            "band_iftype_attr",
            "bitrate_attr",
            "bss",
            "frequency_attr",
            "if_combination_attrs",
            "iftype",
            "rate_info",
            "reg_rule_attr",
            "sta_bss_param",
            "sta_info",
            "survey_info",
            "tid_stats",
        )
    },
}
# Message type names: tshark's label (``Message type: LABEL (N)``) -> ours.
MSG_LABELS: dict[str, str] = {
    "Error": "NLMSG_ERROR",
    "End of a dump": "NLMSG_DONE",
    "Create network interface": "RTM_NEWLINK",
    "Remove network interface": "RTM_DELLINK",
    "Get network interface info": "RTM_GETLINK",
    "Add IP address": "RTM_NEWADDR",
    "Delete IP address": "RTM_DELADDR",
    "Get IP address": "RTM_GETADDR",
    "Add network route": "RTM_NEWROUTE",
    "Delete network route": "RTM_DELROUTE",
    "Get network route": "RTM_GETROUTE",
    "Add neighbor table entry": "RTM_NEWNEIGH",
    "Delete neighbor table entry": "RTM_DELNEIGH",
    "Get neighbor table entry": "RTM_GETNEIGH",
    "Add routing rule": "RTM_NEWRULE",
    "Delete routing rule": "RTM_DELRULE",
    "Get routing rule": "RTM_GETRULE",
    "New next hop": "RTM_NEWNEXTHOP",
    "Delete next hop": "RTM_DELNEXTHOP",
    "Get next hop": "RTM_GETNEXTHOP",
    "New next hop bucket": "RTM_NEWNEXTHOPBUCKET",
    "Get next hop bucket": "RTM_GETNEXTHOPBUCKET",
    "SOCK_DIAG_BY_FAMILY": "SOCK_DIAG_BY_FAMILY",
}
_MSG_LABEL_RE = re.compile(r"^Message type: (.+) \((?:0x)?[0-9a-fA-F]+\)$")
_LABEL_RE = re.compile(r"(?:Attribute [Tt]ype|Type): (.+) \((\d+)\)$")
_KERNEL_STYLE = re.compile(r"(IFLA|IFA|RTA|CTRL_ATTR|NL80211)_[A-Z0-9_]+$")

# tshark fields deliberately not compared value by value (fnmatch pattern).
NOT_COMPARED: dict[str, str] = {
    "netlink.attr_len": "attribute extent: checked by test_attribute_boundaries",
    "netlink.attr_type": "attribute type: it names our node; extent checked by test_attribute_boundaries",
    "netlink.attr_type.*": "bits of the attribute type (nested, byte order)",
    "netlink-route.*_attr_type": "attribute type: its name is checked by test_attribute_names",
    "genl.ctrl_attr": "attribute type: its name is checked by test_attribute_names",
    "genl.ctrl.*_attr": "attribute type: its name is checked by test_attribute_names",
    "netlink-sock_diag.*_attr": "attribute type: tshark's labels are not kernel constant names",
    **dict.fromkeys(
        ("netlink-sock_diag.netlink_*", "netlink-sock_diag.packet_*", "netlink-sock_diag.*_alloc")
        + ("netlink-sock_diag.rcvbuf", "netlink-sock_diag.sndbuf", "netlink-sock_diag.wmem_queued"),
        "netlink_diag and packet_diag requests and sk_meminfo (`ss -a` in trace_rtnl_618): "
        "decoded by us, not yet mapped to tshark's field names",
    ),
    "netlink.attr_index": "index of a nested array element: test_attribute_names checks ours is [index]",
    "netlink.attr_data": "an attribute tshark does not decode: raw bytes only",
    "data": "payload tshark does not decode",
    "data.*": "payload tshark does not decode",
    "genl.reserved": "tshark shows genlmsghdr.reserved without a value",
    "_ws.*": "tshark's expert info; a Malformed Packet is checked by test_malformed_frames_agree",
    "frame.*": "capture metadata, not netlink",
    "num": "geninfo",
    "len": "geninfo",
    "caplen": "geninfo",
    "timestamp": "geninfo",
    **{
        k: "attribute type: its name is checked by test_attribute_names"
        for k in ATTR_LABELS
        if k.startswith(("psample.", "net_dm.", "nl80211.")) and k not in FIELDS
    },
    # payloads tshark hands to other dissectors; PAYLOAD_DISSECTIONS checks
    # that they lie inside a payload node of ours kept as bytes
    **{
        p: "tshark dissects the packet sampled by psample (PSAMPLE_ATTR_DATA, "
        "PSAMPLE_ATTR_PROTO 0x0800 on an Ethernet device) as Ethernet/IPv4/UDP/ICMP; "
        "we keep the sampled packet as bytes (genl.psample.psample.data)"
        for p in ("eth", "eth.*", "ip", "ip.*", "udp", "udp.*", "icmp", "icmp.*")
    },
    **{
        p: "tshark dissects 802.11 information elements (NL80211_BSS_INFORMATION_ELEMENTS, "
        "NL80211_ATTR_IE, ...) as wlan tags; we keep them as bytes"
        for p in ("wlan", "wlan.*")
    },
}

# tshark fields (fnmatch) that dissect a payload we keep as bytes -> the
# abbreviations of our payload nodes they must lie in (a leaf, same bytes).
PAYLOAD_DISSECTIONS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("eth", "eth.*", "ip", "ip.*", "udp", "udp.*", "icmp", "icmp.*"),
        ("genl.psample.psample.data",),
    ),
    **dict.fromkeys(
        ("wlan", "wlan.*"),
        (
            "genl.nl80211.attrs.bss.information_elements",
            "genl.nl80211.attrs.bss.beacon_ies",
            "genl.nl80211.attrs.ie",
        ),
    ),
}

# Confirmed bugs of our decoder: (capture id, frame, tshark field, pos, reason).
# Each is asserted separately with xfail(strict=True) and left out of the
# main checks; a fix makes it XPASS, which fails: then remove the entry.
# "_ws.malformed" @0 stands for tshark's "Malformed Packet" on the frame.
OUR_BUGS: list[tuple[str, int, str, int, str]] = []

# ---------------------------------------------------------------------------
# tshark side


@dataclass
class THeader:
    pos: int
    vals: dict[str, tuple[str, str]]  # len/type/flags/seq/pid -> (tshark field, show)
    echo: bool


@dataclass
class TField:
    name: str
    pos: int
    size: int
    show: str
    value: str
    showname: str = ""


@dataclass
class TFrame:
    number: int
    headers: list[THeader] = field(default_factory=list)
    attrs: list[tuple[int, int]] = field(default_factory=list)
    attr_types: list[tuple[str, int, str]] = field(default_factory=list)  # field, pos, label
    fields: list[TField] = field(default_factory=list)
    malformed: bool = False  # tshark: "Malformed Packet" (a dissector exception)


_HDR_KEYS = {
    "netlink.hdr_len": "len",
    "netlink.hdr_flags": "flags",
    "netlink.hdr_seq": "seq",
    "netlink.hdr_pid": "pid",
}


def _header(el: ET.Element, echo: bool) -> THeader:
    pos = int(el.get("pos", "-1"))
    vals: dict[str, tuple[str, str]] = {}
    for c in el:
        name = c.get("name", "")
        key = _HDR_KEYS.get(name)
        if key is None and int(c.get("pos", "-1")) == pos + 4:
            key = "type"  # netlink.hdr_type, netlink-route.nltype, genl.family_id, ...
        if key is not None and key not in vals:
            vals[key] = (name, c.get("show", ""))
    return THeader(pos, vals, echo)


def _walk(el: ET.Element, tf: TFrame) -> None:
    seen_error = False
    for c in el:
        name = c.get("name", "")
        kids = list(c)
        if any(k.get("name") == "netlink.hdr_len" for k in kids):
            tf.headers.append(_header(c, seen_error))
        elif name == "netlink.error":
            seen_error = True
        elif name == "netlink.attr_len":
            tf.attrs.append((int(c.get("pos", "-1")), int(c.get("show", "0"))))
        elif name == "netlink.attr_index":  # element of a nested array
            tf.attr_types.append((name, int(c.get("pos", "-1")), f"[{c.get('show', '')}]"))
        elif name in ATTR_LABELS and c.get("size") == "2":  # nl80211.iftype: also a value
            m = _LABEL_RE.search(c.get("showname", ""))
            if m:
                tf.attr_types.append((name, int(c.get("pos", "-1")), m.group(1)))
        if name:
            tf.fields.append(
                TField(
                    name,
                    int(c.get("pos", "-1")),
                    int(c.get("size", "0")),
                    c.get("show", ""),
                    c.get("value", ""),
                    c.get("showname", ""),
                )
            )
        if kids:
            _walk(c, tf)


def parse_pdml(path: Path) -> tuple[str, list[TFrame]]:
    """(tshark version, frames) of a PDML file."""
    creator = ""
    frames: list[TFrame] = []
    for ev, el in ET.iterparse(path, events=("start", "end")):
        if ev == "start":
            if el.tag == "pdml":
                creator = el.get("creator", "")
            continue
        if el.tag != "packet":
            continue
        tf = TFrame(0)
        for proto in el:
            pname = proto.get("name")
            if pname == "geninfo":
                for c in proto:
                    if c.get("name") == "num":
                        tf.number = int(c.get("show", "0"))
            elif pname == "_ws.malformed":
                tf.malformed = True
            elif pname == "frame":
                continue
            else:
                _walk(proto, tf)
        el.clear()
        frames.append(tf)
    return creator.rpartition("/")[2], frames


def _run_tshark(capture: Path, out: Path, confdir: str) -> Path:
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=confdir)
    with open(out, "wb") as fh:
        subprocess.run(
            [TSHARK or "tshark", "-n", "-r", str(capture), "-T", "pdml"],
            stdout=fh,
            stderr=subprocess.DEVNULL,
            env=env,
            check=True,
            timeout=300,
        )
    return out


@pytest.fixture(scope="module")
def tshark_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Path]]]:
    """tshark runs for all captures, started at once, two at a time."""
    tmp = tmp_path_factory.mktemp("tshark")
    confdir = tempfile.mkdtemp(dir=tmp)
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            cid: pool.submit(_run_tshark, path, tmp / f"{i}.pdml", confdir)
            for i, (cid, path) in enumerate(CAPTURES)
        }


# ---------------------------------------------------------------------------
# comparison


def _norm_mac(v: Any) -> bytes | None:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        try:
            return bytes.fromhex(re.sub("[^0-9a-fA-F]", "", v))
        except ValueError:
            return None
    return None


def values_equal(kind: str | int, show: str, ours: Any) -> bool:
    """Value semantics: does tshark's ``show`` mean our value?"""
    if isinstance(ours, bool):
        ours = int(ours)
    try:
        if kind == STR:
            return isinstance(ours, str) and ours == show
        if kind == IP:
            if isinstance(ours, (bytes, bytearray)):
                ours = bytes(ours)
            elif not isinstance(ours, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                ours = str(ours)
            return ipaddress.ip_address(ours) == ipaddress.ip_address(show)
        if kind == MAC:
            return _norm_mac(ours) == _norm_mac(show)
        if kind == BYTES:
            tb = _norm_mac(show)
            if tb is None or not tb:
                return False
            if isinstance(ours, (bytes, bytearray, memoryview)):
                return bytes(ours) == tb
            return isinstance(ours, int) and int.from_bytes(tb, "little", signed=ours < 0) == ours
        if kind == NSTIME:
            return isinstance(ours, int) and _nstime(show) == ours
        if kind == LE:
            t = int(show, 0)
            if isinstance(ours, (bytes, bytearray, memoryview)):
                return len(ours) > 0 and int.from_bytes(ours, "little") == t
            if not isinstance(ours, int):
                return False
            # a negative value of ours: tshark shows its two's complement
            return t == ours or (ours < 0 and t - (1 << t.bit_length()) == ours)
        if not isinstance(ours, int):
            return False
        t = int(show, 0)
        if kind == INT:
            return t == ours
        if kind == SHIFT8:
            return t == ours >> 8
        if isinstance(kind, int):
            return t == (1 if ours & kind else 0)
    except ValueError:
        return False
    raise AssertionError(f"unknown kind {kind!r}")


def _nstime(show: str) -> int | None:
    """Nanoseconds since the epoch of tshark's absolute time, e.g.
    ``Nov 28, 2026 06:45:52.391545990 UTC``."""
    m = re.fullmatch(r"(\w{3} +\d+, \d{4} \d\d:\d\d:\d\d)(?:\.(\d{1,9}))? UTC", show.strip())
    if m is None:
        return None
    dt = datetime.strptime(re.sub(" +", " ", m.group(1)), "%b %d, %Y %H:%M:%S")
    secs = calendar.timegm(dt.timetuple())
    return secs * 1_000_000_000 + int((m.group(2) or "0").ljust(9, "0"))


def _byte_swapped(show: str, size: int, ours: Any) -> bool:
    try:
        t = int(show, 0)
    except ValueError:
        return False
    if not isinstance(ours, int) or isinstance(ours, bool) or size <= 1:
        return False
    try:
        return int.from_bytes(ours.to_bytes(size, "little", signed=ours < 0), "big") == t
    except OverflowError:
        return False


def _known(fname: str, condition: str, protocol: str | None) -> KnownDifference | None:
    for kd in KNOWN_DIFFERENCES:
        if (
            kd.condition == condition
            and fnmatch.fnmatchcase(fname, kd.field)
            and (kd.protocol is None or kd.protocol == protocol)
        ):
            return kd
    return None


def _path(root: Any, pos: int) -> list[Any]:
    """Our nodes from the frame root down to the deepest one holding byte pos."""
    out = [root]
    node = root
    while True:
        nxt = None
        for c in node.children or ():
            if c.offset <= pos < c.offset + c.length:
                nxt = c
                break
        if nxt is None:
            return out
        out.append(nxt)
        node = nxt


def _undecoded(root: Any, pos: int) -> bool:
    leaf = _path(root, pos)[-1]
    return any(n.group == "undecoded" for n in leaf.notes or ())


@dataclass
class Diff:
    """Everything one capture's comparison found."""

    capture: str
    tshark_version: str = ""
    frames: int = 0
    messages: int = 0
    structure: list[str] = field(default_factory=list)  # frame / message layout
    headers: list[str] = field(default_factory=list)
    attrs: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    bugs: dict[tuple[int, str, int], str] = field(default_factory=dict)
    compared: Counter[str] = field(default_factory=Counter)  # tshark field -> values compared
    header_checks: int = 0
    attr_checks: int = 0
    name_checks: int = 0
    malformed_checks: int = 0
    known: Counter[str] = field(default_factory=Counter)  # reason head -> times applied
    payload_checks: int = 0  # PAYLOAD_DISSECTIONS fields found inside a payload of ours
    tshark_names: set[str] = field(default_factory=set)


def _payload_patterns(name: str) -> tuple[str, ...] | None:
    for pat, ours in PAYLOAD_DISSECTIONS.items():
        if fnmatch.fnmatchcase(name, pat):
            return ours
    return None


def _payload_check(root: Any, t: TField, ours: tuple[str, ...]) -> str:
    """'' when tshark's field lies inside a payload node of ours kept as bytes
    (a hook may add children that split it, as nl80211's elements are)."""
    for n in _path(root, t.pos):
        if n.abbrev in ours:
            if not isinstance(n.value, (bytes, bytearray, memoryview)):
                return f"our {n.abbrev} @{n.offset} is not kept as bytes"
            if t.pos + t.size > n.offset + n.length:
                return f"ends after our {n.abbrev} @{n.offset} len {n.length}"
            return ""
    leaf = _path(root, t.pos)[-1]
    return (
        f"tshark dissects a payload here, but it is not inside {' / '.join(ours)} "
        f"(ours: {leaf.abbrev} @{leaf.offset} len {leaf.length})"
    )


def _array_element(root: Any, start: int, length: int | None) -> bool:
    """Condition ``array-element``: our node at ``start`` with tshark's
    length is element ``[N]`` of an array, N is the nla_type in the bytes,
    and every sibling of it is an element ``[i]`` too."""
    path = _path(root, start)
    for i, n in enumerate(path[1:], 1):
        if n.offset != start or n.length != length:
            continue
        nla_type = int.from_bytes(n.buf[start + 2 : start + 4], "little") & 0x3FFF
        siblings = path[i - 1].children or ()
        return n.name == f"[{nla_type}]" and all(re.fullmatch(r"\[\d+\]", c.name) for c in siblings)
    return False


# nlmsghdr flags of a dump request (linux/netlink.h)
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300


def _legacy_rtgenmsg(fr: Any, index: dict[int, list[Any]], t: TField) -> Any:
    """Our rtgen_family node when tshark's field is the family byte of a
    legacy dump request (condition ``legacy-rtgenmsg``), else None.

    Checked on the bytes: the frame is NETLINK_ROUTE, a message of ours
    starts 16 bytes before the field, its nlmsg_type is an RTM_GET* (type & 3
    == 2), its nlmsg_flags have NLM_F_REQUEST and both
    NLM_F_DUMP bits, its body (nlmsg_len - 16) is 1 to 4 bytes, tshark's
    field is the body's first byte, and our tree has ``rtnl.rtgenmsg`` over
    the body with ``rtnl.rtgenmsg.rtgen_family`` at that byte.
    """
    if _proto_name(fr.protocol) != "NETLINK_ROUTE" or t.size != 1:
        return None
    start = t.pos - 16
    buf = fr.data
    if start < 0 or start + 16 > len(buf):
        return None
    nlmsg_len = int.from_bytes(buf[start : start + 4], "little")
    nlmsg_type = int.from_bytes(buf[start + 4 : start + 6], "little")
    if nlmsg_type < 16 or nlmsg_type & 3 != 2:  # RTM_GET* (linux/rtnetlink.h)
        return None
    flags = int.from_bytes(buf[start + 6 : start + 8], "little")
    body = nlmsg_len - 16
    if not (flags & NLM_F_REQUEST and flags & NLM_F_DUMP == NLM_F_DUMP and 1 <= body <= 4):
        return None
    if not any(m.node.offset == start for m in fr.messages):
        return None
    if not any(n.abbrev == "rtnl.rtgenmsg" and n.length == body for n in index.get(t.pos, ())):
        return None
    fam = [n for n in index.get(t.pos, ()) if n.abbrev == "rtnl.rtgenmsg.rtgen_family"]
    return fam[0] if fam and fam[0].length == 1 else None


NETLINK_CONNECTOR, NETLINK_KOBJECT_UEVENT = 11, 15  # linux/netlink.h
NLMSG_DONE = 3
_UEVENT_KERNEL = re.compile(rb"[a-z]+@/[^\0]*\0")  # ACTION@DEVPATH\0 (lib/kobject_uevent.c)


def _uevent_datagram(fr: Any, tstarts: list[int]) -> bool:
    """Condition ``uevent-datagram``: the frame is NETLINK_KOBJECT_UEVENT,
    its datagram starts as a kernel uevent (``ACTION@DEVPATH\0``) or a udev
    one (``libudev\0``), tshark found no nlmsghdr in it and our one message
    is the frame hook's uevent node over the whole datagram."""
    data = bytes(fr.data[16:])
    if fr.protocol != NETLINK_KOBJECT_UEVENT or tstarts:
        return False
    if not (data.startswith(b"libudev\0") or _UEVENT_KERNEL.match(data)):
        return False
    return len(fr.messages) == 1 and any(
        c.abbrev in ("uevent", "uevent.udev") and c.offset == 16 and c.end == len(fr.data)
        for c in fr.messages[0].node.walk()
    )


def _connector_message(fr: Any, m: Any) -> bool:
    """Condition ``connector-message``: the frame is NETLINK_CONNECTOR, the
    message's nlmsg_type in the bytes is NLMSG_DONE (3), its body holds at
    least a struct cn_msg (20 bytes; a real NLMSG_DONE carries a 4-byte
    int) and our tree decodes ``cn.msg`` right after the header."""
    start = m.node.offset
    buf = fr.data
    if fr.protocol != NETLINK_CONNECTOR or start + 16 > len(buf):
        return False
    nlmsg_len = int.from_bytes(buf[start : start + 4], "little")
    nlmsg_type = int.from_bytes(buf[start + 4 : start + 6], "little")
    if nlmsg_type != NLMSG_DONE or nlmsg_len < 16 + 20:
        return False
    return any(n.abbrev == "cn.msg" and n.offset == start + 16 for n in m.node.walk())


def _proto_name(p: int | None) -> str | None:
    from dissect.core.constants import protocol_name

    return None if p is None else f"NETLINK_{protocol_name(p)}"


def _paren(showname: str) -> str | None:
    m = re.search(r"\(([^()]+)\)$", showname)
    return m.group(1) if m else None


def _inside(pos: int, ranges: list[tuple[int, int]]) -> bool:
    return any(a <= pos < b for a, b in ranges)


def _msg_at(frame: Any, pos: int) -> str:
    for m in frame.messages:
        if m.node.offset <= pos < m.node.offset + max(m.node.length, 1):
            return f"msg {m.index} ({m.type_name})"
    return "outside any message"


def compare(cid: str, capture: Path, version: str, tframes: list[TFrame]) -> Diff:
    import dissect

    d = Diff(cid, version)
    bugs = {(b[1], b[2], b[3]): b[4] for b in OUR_BUGS if b[0] == cid}
    ours = list(dissect.read_capture(capture))
    d.frames = len(ours)
    if len(ours) != len(tframes):
        d.structure.append(f"{cid}: {len(ours)} frames here, {len(tframes)} in tshark")
    for fr, tf in zip(ours, tframes):
        d.messages += len(fr.messages)
        where = f"{cid} frame {fr.number}"
        if fr.number != tf.number:
            d.structure.append(f"{where}: tshark frame number {tf.number}")
            continue
        proto = _proto_name(fr.protocol)
        index: dict[int, list[Any]] = defaultdict(list)
        for n in fr.root.walk():
            index[n.offset].append(n)
        excused: list[tuple[int, int]] = []  # byte ranges under a known difference
        at: dict[int, list[TField]] = defaultdict(list)
        for t in tf.fields:
            at[t.pos].append(t)

        # 1. messages: same starts; tshark's extra zero-length "messages"
        top = []
        starts = {m.node.offset for m in fr.messages}
        for h in tf.headers:
            if h.echo:
                continue
            if h.pos not in starts and h.vals.get("len", ("", ""))[1] == "0":
                trailer = [n for n in index.get(h.pos, ()) if n.abbrev == "netlink.trailer"]
                kd = _known("netlink.hdr_len", "trailing-zero-bytes", proto)
                if kd and trailer and not trailer[0].raw.strip(b"\0"):
                    d.known[kd.reason] += 1
                    excused.append((h.pos, len(fr.data)))
                    continue
            top.append(h)
        tstarts = [h.pos for h in top]
        ostarts = [m.node.offset for m in fr.messages]
        uevent = _uevent_datagram(fr, tstarts)
        kd_uevent = _known("netlink.hdr_len", "uevent-datagram", proto) if uevent else None
        if tstarts != ostarts and kd_uevent:
            d.known[kd_uevent.reason] += 1
        elif tstarts != ostarts:
            d.structure.append(
                f"{where}: messages start at {ostarts} here, at {tstarts} in tshark "
                f"({len(ostarts)} vs {len(tstarts)} messages)"
            )
        # 2. nlmsghdr of every message, through the Message API
        by_pos = {h.pos: h for h in top}
        for m in fr.messages:
            h = by_pos.get(m.node.offset)
            if h is None:
                continue
            for key in ("len", "type", "flags", "seq", "pid"):
                tname, show = h.vals.get(key, ("", ""))
                mine = getattr(m, key)
                d.header_checks += 1
                if not tname:
                    d.headers.append(f"{where} msg {m.index}: tshark shows no nlmsg_{key}")
                elif not values_equal(INT, show, mine):
                    d.headers.append(
                        f"{where} msg {m.index} ({m.type_name}) nlmsg_{key} ({tname} @{h.pos}): "
                        f"ours {mine!r} vs tshark {show!r}"
                    )
            # what tshark says about the message as a whole
            for t in at.get(h.pos + 4, ()):
                label = _MSG_LABEL_RE.match(t.showname)
                want = MSG_LABELS.get(label.group(1)) if label else None
                if want is not None and m.type == int(t.show, 0):
                    d.header_checks += 1
                    if m.type_name != want:
                        kd = _known(t.name, "ours-undecoded", proto)
                        kd_cn = _known(t.name, "connector-message", proto)
                        if kd and m.type_name == f"type {m.type}":
                            d.known[kd.reason] += 1
                        elif kd_cn and _connector_message(fr, m):
                            d.known[kd_cn.reason] += 1
                        else:
                            d.headers.append(
                                f"{where} msg {m.index} name of type {m.type}: "
                                f"ours {m.type_name!r} vs tshark {want!r} ({t.showname!r})"
                            )
                if t.name == "genl.family_id" and m.type >= 16:
                    tfam = _paren(t.showname)
                    if tfam is not None:
                        d.header_checks += 1
                        if tfam != m.family:
                            d.headers.append(
                                f"{where} msg {m.index} generic netlink family of id {m.type}: "
                                f"ours {m.family!r} vs tshark {tfam!r}"
                            )
            for t in at.get(h.pos + 16, ()):
                if t.name == "netlink.error":
                    d.header_checks += 1
                    if not values_equal(INT, t.show, m.error):
                        d.headers.append(
                            f"{where} msg {m.index} ({m.type_name}) error code (netlink.error): "
                            f"ours {m.error!r} vs tshark {t.show!r}"
                        )
                elif t.name == "genl.ctrl.cmd":
                    label = _LABEL_RE.search(t.showname.replace("Command: ", "Type: "))
                    if label is not None:
                        d.header_checks += 1
                        if label.group(1) != m.type_name:
                            d.headers.append(
                                f"{where} msg {m.index} nlctrl command {t.show}: "
                                f"ours {m.type_name!r} vs tshark {label.group(1)!r}"
                            )

        # 2b. a frame tshark finds malformed has a malformed note of ours
        if tf.malformed:
            d.malformed_checks += 1
            notes = [
                f"{n.abbrev}: {note.text}"
                for n, note in fr.root.all_notes()
                if note.group == "malformed"
            ]
            key = (fr.number, "_ws.malformed", 0)
            kd_mal = _known("_ws.malformed", "uevent-datagram", proto) if uevent else None
            if key in bugs:
                d.bugs[key] = "" if notes else "no malformed note of ours"
            elif not notes and kd_mal:
                d.known[kd_mal.reason] += 1
            elif not notes:
                d.malformed.append(
                    f"{where}: tshark reports Malformed Packet, our tree has no malformed note "
                    f"(messages: {[m.info for m in fr.messages]})"
                )

        # 3. attribute extents
        for a, length in tf.attrs:
            if _inside(a, excused):
                continue
            d.attr_checks += 1
            if any(n.length == length for n in index.get(a, ())):
                continue
            if _undecoded(fr.root, a):
                kd = _known("netlink.attr_len", "ours-undecoded", proto)
                if kd:
                    d.known[kd.reason] += 1
                    continue
            leaf = _path(fr.root, a)[-1]
            d.attrs.append(
                f"{where} {_msg_at(fr, a)}: tshark attribute @{a} len {length}: no node of ours "
                f"there with that length (deepest node: {leaf.abbrev} @{leaf.offset} len {leaf.length})"
            )

        # 3b. attribute names
        tlens = dict(tf.attrs)
        for tname, tpos, label in tf.attr_types:
            start = tpos - 2
            if _inside(start, excused):
                continue
            want = ATTR_LABELS.get(tname, {}).get(label)
            if want is None and (_KERNEL_STYLE.match(label) or tname == "netlink.attr_index"):
                want = label
            if want is None:
                continue
            d.name_checks += 1
            here = [n.name for n in index.get(start, ())]
            if want in here:
                continue
            if not here and _undecoded(fr.root, start):
                kd = _known(tname, "ours-undecoded", proto)
                if kd:
                    d.known[kd.reason] += 1
                    continue
            kd = _known(tname, "array-element", proto)
            if kd and _array_element(fr.root, start, tlens.get(start)):
                d.known[kd.reason] += 1
                continue
            d.names.append(
                f"{where} {_msg_at(fr, start)}: attribute @{start} is {want} for tshark "
                f"({tname} {label!r}); ours there: {here or 'nothing'}"
            )

        # 4. field values
        for t in tf.fields:
            d.tshark_names.add(t.name)
            if t.size > 0 and not _inside(t.pos, excused):
                pay = _payload_patterns(t.name)
                if pay is not None:
                    problem = _payload_check(fr.root, t, pay)
                    if problem:
                        d.values.append(
                            f"{where} {_msg_at(fr, t.pos)} {t.name} @{t.pos}: {problem}"
                        )
                    else:
                        d.payload_checks += 1
                    continue
            spec = FIELDS.get(t.name)
            if spec is None or _inside(t.pos, excused):
                continue
            if t.name in ATTR_LABELS and t.size == 2:
                continue  # an attribute type (nl80211.iftype), checked in 3b
            start, length = (t.pos, t.size) if spec.rule == "member" else (t.pos - 4, t.size + 4)
            cands = [n for n in index.get(start, ()) if n.length == length]
            if spec.ours is not None:
                named = [n for n in cands if n.abbrev in spec.ours]
            else:
                named = [n for n in cands if not n.children]
            if (fr.number, t.name, t.pos) in bugs:
                mine = named[0].value if named else None
                d.bugs[(fr.number, t.name, t.pos)] = (
                    f"ours {mine!r} vs tshark {t.show!r}"
                    if not named or not values_equal(spec.kind, t.show, mine)
                    else ""
                )
                continue
            loc = f"{where} {_msg_at(fr, t.pos)} {t.name} @{t.pos}"
            if not named:
                if _undecoded(fr.root, t.pos):
                    kd = _known(t.name, "ours-undecoded", proto)
                    if kd:
                        d.known[kd.reason] += 1
                        continue
                kd = _known(t.name, "legacy-rtgenmsg", proto)
                family = _legacy_rtgenmsg(fr, index, t) if kd else None
                if kd and family is not None:
                    d.known[kd.reason] += 1
                    d.compared[t.name] += 1
                    if not values_equal(INT, t.show, family.value):
                        d.values.append(
                            f"{loc} [{family.abbrev}]: ours {family.value!r} vs tshark {t.show!r}"
                        )
                    continue
                kd = _known(t.name, "ours-structured", proto)
                if kd and spec.ours is None and any(n.children for n in cands):
                    d.known[kd.reason] += 1
                    continue
                others = ", ".join(f"{n.abbrev} len {n.length}" for n in index.get(start, ()))
                d.values.append(
                    f"{loc}: no node {spec.ours or '(any)'} at {start} len {length} "
                    f"(ours there: {others or 'nothing'}); tshark {t.show!r}"
                )
                continue
            n = named[0]
            d.compared[t.name] += 1
            if values_equal(spec.kind, t.show, n.value):
                continue
            kd = _known(t.name, "byte-swapped", proto)
            if kd and _byte_swapped(t.show, t.size, n.value):
                d.known[kd.reason] += 1
                continue
            d.values.append(f"{loc} [{n.abbrev}]: ours {n.value!r} vs tshark {t.show!r}")
    return d


@pytest.fixture(scope="module")
def diffs(
    tshark_runs: dict[str, Future[Path]], request: pytest.FixtureRequest
) -> Callable[[str], Diff]:
    cache: dict[str, Diff] = {}
    report = request.config.__dict__.setdefault("_nlshark_tshark_diff", {})
    paths = dict(CAPTURES)

    def get(cid: str) -> Diff:
        if cid not in cache:
            version, tframes = parse_pdml(tshark_runs[cid].result())
            d = cache[cid] = compare(cid, paths[cid], version, tframes)
            report[cid] = {
                "tshark": d.tshark_version,
                "frames": d.frames,
                "messages": d.messages,
                "header fields": d.header_checks,
                "attribute extents": d.attr_checks,
                "attribute names": d.name_checks,
                "malformed frames": d.malformed_checks,
                "field values": sum(d.compared.values()),
                "known differences": sum(d.known.values()),
                "payload fields": d.payload_checks,
                "per field": dict(d.compared),
            }
        return cache[cid]

    return get


def _fail(problems: list[str], what: str) -> None:
    if problems:
        shown = "\n  ".join(problems[:40])
        more = f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else ""
        pytest.fail(f"{len(problems)} {what}:\n  {shown}{more}", pytrace=False)


# ---------------------------------------------------------------------------
# tests


@pytest.mark.parametrize("cid", CAPTURE_IDS)
def test_frames_and_messages(diffs: Callable[[str], Diff], cid: str) -> None:
    d = diffs(cid)
    assert d.frames > 0
    _fail(d.structure, "frame/message layout differences from tshark")


@pytest.mark.parametrize("cid", CAPTURE_IDS)
def test_netlink_headers(diffs: Callable[[str], Diff], cid: str) -> None:
    d = diffs(cid)
    assert d.header_checks > 0
    _fail(d.headers, "nlmsghdr differences from tshark")


@pytest.mark.parametrize("cid", CAPTURE_IDS)
def test_malformed_frames_agree(diffs: Callable[[str], Diff], cid: str) -> None:
    _fail(diffs(cid).malformed, "frames tshark finds malformed and we do not")


@pytest.mark.parametrize("cid", CAPTURE_IDS)
def test_attribute_boundaries(diffs: Callable[[str], Diff], cid: str) -> None:
    _fail(diffs(cid).attrs, "attribute extent differences from tshark")


@pytest.mark.parametrize("cid", CAPTURE_IDS)
def test_attribute_names(diffs: Callable[[str], Diff], cid: str) -> None:
    _fail(diffs(cid).names, "attribute name differences from tshark")


@pytest.mark.parametrize("cid", CAPTURE_IDS)
def test_field_values(diffs: Callable[[str], Diff], cid: str) -> None:
    d = diffs(cid)
    assert d.compared, "no tshark field was compared: is the PDML what this test expects?"
    _fail(d.values, "field value differences from tshark")


@pytest.mark.parametrize("cid", CAPTURE_IDS)
def test_every_tshark_field_is_accounted_for(diffs: Callable[[str], Diff], cid: str) -> None:
    d = diffs(cid)
    if not d.tshark_version.startswith("4.0."):
        pytest.skip(f"FIELDS / NOT_COMPARED were written for tshark 4.0, not {d.tshark_version}")
    loose = sorted(
        n
        for n in d.tshark_names
        if n not in FIELDS and not any(fnmatch.fnmatchcase(n, p) for p in NOT_COMPARED)
    )
    assert not loose, (
        f"{cid}: tshark fields neither compared (FIELDS) nor listed in NOT_COMPARED: {loose}"
    )


def test_tables_are_consistent() -> None:
    for kd in KNOWN_DIFFERENCES:
        assert kd.condition in CONDITIONS, kd
        assert len(kd.reason) > 20, kd
    for name, spec in FIELDS.items():
        assert spec.rule in ("member", "attr"), name
        assert spec.kind in (INT, STR, IP, MAC, SHIFT8, BYTES, LE, NSTIME) or isinstance(
            spec.kind, int
        ), name
    for pat in PAYLOAD_DISSECTIONS:
        assert pat in NOT_COMPARED, pat
        assert not any(fnmatch.fnmatchcase(name, p) for p in NOT_COMPARED), name


def test_values_equal_semantics() -> None:
    assert values_equal(INT, "0x0301", 0x301)
    assert values_equal(INT, "-19", -19)
    assert not values_equal(INT, "18", "18")
    assert values_equal(STR, "lo", "lo")
    assert values_equal(IP, "2001:db8::1", ipaddress.ip_address("2001:db8:0::1"))
    assert values_equal(IP, "192.0.2.1", bytes([192, 0, 2, 1]))
    assert values_equal(MAC, "02:00:00:00:00:01", bytes.fromhex("020000000001"))
    assert values_equal(0x2, "1", 0x1002)
    assert values_equal(0x1, "0", 0x1002)
    assert values_equal(SHIFT8, "10", 0x0A10)
    assert _byte_swapped("4279173120", 4, 0xFFF)
    assert values_equal(BYTES, "07", 7)
    assert values_equal(BYTES, "a4", -92)
    assert not values_equal(BYTES, "a4", 164 + 1)
    assert values_equal(BYTES, "01:78:c8", b"\x01\x78\xc8")
    assert values_equal(LE, "0x0000aaaa0000aaaa", bytes.fromhex("aaaa0000aaaa0000"))
    assert values_equal(LE, "0xfffff448", -3000)
    assert values_equal(LE, "0x000a", 10)
    assert not values_equal(LE, "0x000a", "10")
    assert values_equal(NSTIME, "Nov 28, 2026 06:45:52.391545990 UTC", 1795848352391545990)
    assert not values_equal(NSTIME, "Nov 28, 2026 06:45:52.391545990 UTC", 1795848352391545991)


@pytest.mark.parametrize(
    "bug",
    [
        pytest.param(
            b, id=f"{b[0]}-{b[1]}-{b[2]}", marks=pytest.mark.xfail(strict=True, reason=b[4])
        )
        for b in OUR_BUGS
        if b[0] in CAPTURE_IDS
    ],
)
def test_our_known_bugs(diffs: Callable[[str], Diff], bug: tuple[str, int, str, int, str]) -> None:
    cid, frame, name, pos, _reason = bug
    problem = diffs(cid).bugs.get((frame, name, pos))
    assert problem is not None, f"{cid} frame {frame}: tshark shows no {name} @{pos}"
    assert not problem, f"{cid} frame {frame} {name} @{pos}: {problem}"
