"""Netlink constants (include/uapi/linux/netlink.h, rtnetlink.h).

Only facts the core needs on every message live here: protocol numbers,
control message types, header flags and rtnetlink message type names.
Family-specific constants live in the family specs under `plugins/`.
"""

from __future__ import annotations

# include/uapi/linux/netlink.h: NETLINK_* protocol numbers
PROTOCOLS: dict[int, str] = {
    0: "ROUTE",
    1: "UNUSED",
    2: "USERSOCK",
    3: "FIREWALL",
    4: "SOCK_DIAG",
    5: "NFLOG",
    6: "XFRM",
    7: "SELINUX",
    8: "ISCSI",
    9: "AUDIT",
    10: "FIB_LOOKUP",
    11: "CONNECTOR",
    12: "NETFILTER",
    13: "IP6_FW",
    14: "DNRTMSG",
    15: "KOBJECT_UEVENT",
    16: "GENERIC",
    18: "SCSITRANSPORT",
    19: "ECRYPTFS",
    20: "RDMA",
    21: "CRYPTO",
    22: "SMC",
}
NETLINK_ROUTE = 0
NETLINK_GENERIC = 16


def protocol_name(proto: int) -> str:
    return PROTOCOLS.get(proto, f"PROTO_{proto}")


# Names users give protocols: the uapi name with or without NETLINK_, in any
# case, and the usual short forms.
PROTOCOL_NUMBERS: dict[str, int] = {
    **{v.lower(): k for k, v in PROTOCOLS.items()},
    **{f"netlink_{v.lower()}": k for k, v in PROTOCOLS.items()},
    "rtnl": 0,
    "rtnetlink": 0,
    "inet_diag": 4,
    "tcpdiag": 4,
    "fiblookup": 10,
    "cn": 11,
    "nfnetlink": 12,
    "nf": 12,
    "uevent": 15,
    "genl": 16,
}


def protocol_number(text: str) -> int:
    """A netlink protocol by name (``route``, ``NETLINK_ROUTE``, ``genl``)
    or number (0-31); ValueError, saying what is accepted, otherwise."""
    key = text.strip().lower().replace("-", "_")
    if key in PROTOCOL_NUMBERS:
        return PROTOCOL_NUMBERS[key]
    try:
        n = int(key, 0)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a number nor a netlink protocol name "
            f"({', '.join(v.lower() for v in PROTOCOLS.values())}, ...)"
        ) from None
    if not 0 <= n <= 31:
        raise ValueError(f"{n} is not a netlink protocol number (0-31)")
    return n


# Control messages
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLMSG_MIN_TYPE = 0x10
CONTROL_TYPES = {1: "NLMSG_NOOP", 2: "NLMSG_ERROR", 3: "NLMSG_DONE", 4: "NLMSG_OVERRUN"}
GENL_ID_CTRL = 0x10

# nlmsg_flags: the bits common to every message
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP_FILTERED = 0x20
COMMON_FLAGS = {
    0x01: "REQUEST",
    0x02: "MULTI",
    0x04: "ACK",
    0x08: "ECHO",
    0x10: "DUMP_INTR",
    0x20: "DUMP_FILTERED",
}
# The upper bits mean different things for each kind of request.
GET_FLAGS = {0x100: "ROOT", 0x200: "MATCH", 0x400: "ATOMIC"}
NEW_FLAGS = {0x100: "REPLACE", 0x200: "EXCL", 0x400: "CREATE", 0x800: "APPEND"}
DEL_FLAGS = {0x100: "NONREC", 0x200: "BULK"}
ACK_FLAGS = {0x100: "CAPPED", 0x200: "ACK_TLVS"}
NLM_F_DUMP = 0x300
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200

# include/uapi/linux/rtnetlink.h: RTM_* message types, complete as of Linux 6.18
# (RTM_NEW/DELMULTICAST 6.13, RTM_NEW/DELANYCAST 6.14).
RTM_TYPES: dict[int, str] = {
    16: "RTM_NEWLINK", 17: "RTM_DELLINK", 18: "RTM_GETLINK", 19: "RTM_SETLINK",
    20: "RTM_NEWADDR", 21: "RTM_DELADDR", 22: "RTM_GETADDR",
    24: "RTM_NEWROUTE", 25: "RTM_DELROUTE", 26: "RTM_GETROUTE",
    28: "RTM_NEWNEIGH", 29: "RTM_DELNEIGH", 30: "RTM_GETNEIGH",
    32: "RTM_NEWRULE", 33: "RTM_DELRULE", 34: "RTM_GETRULE",
    36: "RTM_NEWQDISC", 37: "RTM_DELQDISC", 38: "RTM_GETQDISC",
    40: "RTM_NEWTCLASS", 41: "RTM_DELTCLASS", 42: "RTM_GETTCLASS",
    44: "RTM_NEWTFILTER", 45: "RTM_DELTFILTER", 46: "RTM_GETTFILTER",
    48: "RTM_NEWACTION", 49: "RTM_DELACTION", 50: "RTM_GETACTION",
    52: "RTM_NEWPREFIX",
    56: "RTM_NEWMULTICAST", 57: "RTM_DELMULTICAST", 58: "RTM_GETMULTICAST",
    60: "RTM_NEWANYCAST", 61: "RTM_DELANYCAST", 62: "RTM_GETANYCAST",
    64: "RTM_NEWNEIGHTBL", 66: "RTM_GETNEIGHTBL", 67: "RTM_SETNEIGHTBL",
    68: "RTM_NEWNDUSEROPT",
    72: "RTM_NEWADDRLABEL", 73: "RTM_DELADDRLABEL", 74: "RTM_GETADDRLABEL",
    78: "RTM_GETDCB", 79: "RTM_SETDCB",
    80: "RTM_NEWNETCONF", 81: "RTM_DELNETCONF", 82: "RTM_GETNETCONF",
    84: "RTM_NEWMDB", 85: "RTM_DELMDB", 86: "RTM_GETMDB",
    88: "RTM_NEWNSID", 89: "RTM_DELNSID", 90: "RTM_GETNSID",
    92: "RTM_NEWSTATS", 94: "RTM_GETSTATS", 95: "RTM_SETSTATS",
    96: "RTM_NEWCACHEREPORT",
    100: "RTM_NEWCHAIN", 101: "RTM_DELCHAIN", 102: "RTM_GETCHAIN",
    104: "RTM_NEWNEXTHOP", 105: "RTM_DELNEXTHOP", 106: "RTM_GETNEXTHOP",
    108: "RTM_NEWLINKPROP", 109: "RTM_DELLINKPROP", 110: "RTM_GETLINKPROP",
    112: "RTM_NEWVLAN", 113: "RTM_DELVLAN", 114: "RTM_GETVLAN",
    116: "RTM_NEWNEXTHOPBUCKET", 117: "RTM_DELNEXTHOPBUCKET", 118: "RTM_GETNEXTHOPBUCKET",
    120: "RTM_NEWTUNNEL", 121: "RTM_DELTUNNEL", 122: "RTM_GETTUNNEL",
}  # fmt: skip

TYPE_NAMES_BY_PROTOCOL: dict[int, dict[int, str]] = {NETLINK_ROUTE: RTM_TYPES}


def type_kind(type_name: str) -> str | None:
    """The kind of request a message type is, for reading its flags."""
    base = type_name.rsplit("_", 1)[-1].lower() if "_" in type_name else type_name.lower()
    for verb in ("get", "new", "del", "set"):
        if base.startswith(verb):
            return verb
    return None
