"""Known differences between nlshark and Wireshark 4.0 (tshark -T pdml).

`tests/test_tshark_diff.py` compares our decode with tshark's field by
field.  A difference is accepted only when an entry here names it: which
tshark field (an `fnmatch` pattern), optionally which netlink protocol, and a
*condition* the test verifies on the bytes before it excuses anything (an
entry never silences a field wholesale).  Every other difference fails.

Conditions the test knows:

``trailing-zero-bytes``
    tshark shows a netlink header where our tree has a ``netlink.trailer``
    node made only of zero bytes, and no message of ours starts there.
``byte-swapped``
    tshark's integer equals ours with its bytes reversed (tshark read a
    host-order field as big-endian).
``ours-undecoded``
    our tree covers the position with a node carrying an ``undecoded``
    note (a body shown raw), so there is no value of ours to compare; for a
    message type name: ours is the generic ``type N``.
``legacy-rtgenmsg``
    the field is the first body byte of a NETLINK_ROUTE RTM_GET* message
    with NLM_F_REQUEST and NLM_F_DUMP whose body (nlmsg_len - 16) is 1 to 4
    bytes, and our tree decodes that body as ``rtnl.rtgenmsg``; the value is
    still compared, with our ``rtnl.rtgenmsg.rtgen_family``.
``ours-structured``
    tshark shows an attribute's payload as one generic value (e.g.
    ``nl80211.attr_value``) where our node of the same extent has children
    (a nest or array we decode), so there is no single value to compare.
``array-element``
    tshark names an attribute with a type of the level below; our node of
    the same start and length is element ``[N]`` of an array, N is the
    attribute's nla_type in the bytes, and all its siblings are elements.

``uevent-datagram``
    the frame is NETLINK_KOBJECT_UEVENT, its datagram starts as a kernel
    uevent (``ACTION@DEVPATH`` and a NUL) or with udev's ``libudev`` NUL,
    tshark found no netlink header in it, and our one message is the uevent
    node of the frame hook over the whole datagram.
``connector-message``
    the frame is NETLINK_CONNECTOR, the message's nlmsg_type in the bytes
    is NLMSG_DONE (3) with a body of at least 20 bytes (struct cn_msg; a
    true NLMSG_DONE has a 4-byte int), and our tree decodes ``cn.msg`` right
    after the header.

`TSHARK_UNDECODED` lists, for the record, what tshark 4.0 does not decode at
all, so those parts of our decode have no oracle in this test.  It is
documentation: the test drives every comparison from tshark's fields, so
what tshark leaves undecoded never reaches a comparison.
"""

from __future__ import annotations

from typing import NamedTuple


class KnownDifference(NamedTuple):
    field: str  # tshark field name, fnmatch pattern
    condition: str  # one of CONDITIONS, checked by the test
    reason: str
    protocol: str | None = None  # e.g. "NETLINK_SOCK_DIAG"; None = any


CONDITIONS = (
    "trailing-zero-bytes",
    "byte-swapped",
    "ours-undecoded",
    "legacy-rtgenmsg",
    "ours-structured",
    "array-element",
    "uevent-datagram",
    "connector-message",
)

KNOWN_DIFFERENCES: list[KnownDifference] = [
    KnownDifference(
        "netlink.hdr_len",
        "trailing-zero-bytes",
        "Wireshark bug: iproute2 sends its whole request struct, so some dump "
        "requests carry zero bytes after nlmsg_len (the kernel ignores them). "
        "Wireshark 4.0 dissects them as one more netlink message with "
        "nlmsg_len 0 and stops; we show them as a netlink.trailer node. So "
        "tshark counts one message more in these frames.",
    ),
    KnownDifference(
        "netlink-sock_diag.inet_states",
        "byte-swapped",
        "Wireshark bug: idiag_states of struct inet_diag_req_v2 is a "
        "host-order u32 bitmask (linux/inet_diag.h); Wireshark 4.0 reads it "
        "big-endian (bytes ff 0f 00 00 shown as 4279173120 instead of 4095).",
        "NETLINK_SOCK_DIAG",
    ),
    KnownDifference(
        "netlink-route.*_family",
        "legacy-rtgenmsg",
        "Naming only: libnl (teamnl) and wg send RTM_GETLINK / RTM_GETADDR dump "
        "requests whose body is a bare 4-byte struct rtgenmsg (the legacy dump "
        "request the kernel still accepts). Wireshark 4.0 shows its one byte as "
        "the family member of the full header (netlink-route.ifi_family / "
        "ifa_family, nothing after it); we decode struct rtgenmsg. The value is "
        "compared with our rtnl.rtgenmsg.rtgen_family.",
        "NETLINK_ROUTE",
    ),
    KnownDifference(
        "nl80211.attr_value*",
        "ours-structured",
        "Wireshark 4.0 shows nl80211 attributes it has no dissector for as one "
        "raw or integer value (nl80211.attr_value, _value16/32/64), also the "
        "nests, arrays and structs we break down: NL80211_ATTR_CIPHER_SUITES, "
        "_SUPPORTED_COMMANDS, _SOFTWARE_IFTYPES, _TX/RX_FRAME_TYPES, _MAC_ADDRS, "
        "_VENDOR_EVENTS, _SCAN_FREQUENCIES, _SCAN_SSIDS, an interface combination, "
        "NL80211_BAND_IFTYPE_ATTR_IFTYPES, NL80211_STA_INFO_STA_FLAGS (struct "
        "nl80211_sta_flag_update). Our node there has children, so there is no "
        "single value of ours; their members are not in tshark's tree.",
        "NETLINK_GENERIC",
    ),
    KnownDifference(
        "nl80211.if_combination_attrs",
        "array-element",
        "Wireshark 4.0 bug: NL80211_ATTR_INTERFACE_COMBINATIONS holds one nest "
        "per combination, its type the index i + 1 (nl80211_put_iface_combinations "
        "in net/wireless/nl80211.c), each holding NL80211_IFACE_COMB_*. Wireshark "
        "skips that array level and names combination [1] NL80211_IFACE_COMB_LIMITS "
        "(also 1), showing its contents as one raw nl80211.attr_value; we show "
        "element [1] with NL80211_IFACE_COMB_LIMITS inside.",
        "NETLINK_GENERIC",
    ),
]

_UEVENT = (
    "kobject uevents are not netlink messages (lib/kobject_uevent.c sends "
    "ACTION@DEVPATH, NUL, then KEY=VALUE strings; udev sends libudev, NUL, "
    "a header and properties): there is no struct nlmsghdr. Wireshark 4.0 "
    "reads the first 16 bytes as one anyway and reports Malformed Packet; "
    "our frame hook decodes one uevent per datagram."
)
KNOWN_DIFFERENCES += [
    KnownDifference("netlink.hdr_len", "uevent-datagram", _UEVENT, "NETLINK_KOBJECT_UEVENT"),
    KnownDifference("_ws.malformed", "uevent-datagram", _UEVENT, "NETLINK_KOBJECT_UEVENT"),
    KnownDifference(
        "netlink.hdr_type",
        "connector-message",
        "Naming only: connector users (the process events connector, "
        "linux/cn_proc.h) send and receive their struct cn_msg in a message "
        "of type NLMSG_DONE (3). Wireshark 4.0 names the type 'End of a dump'; "
        "we name the message CN_MSG and decode the cn_msg. The type number "
        "itself is compared and equal.",
        "NETLINK_CONNECTOR",
    ),
]

# What tshark 4.0 leaves undecoded (shown as `data` or `netlink.attr_data`),
# checked against the pdml of the captures in captures/ and ../shared/captures.
TSHARK_UNDECODED: list[tuple[str, str]] = [
    ("NLMSG_DONE payload", "the 4-byte error code (and extended ACK) of NLMSG_DONE is `data`"),
    (
        "NLMSG_ERROR beyond the echoed header",
        "neither the echoed request body nor the extended-ACK TLVs "
        "(NLMSGERR_ATTR_MSG, _OFFS, _POLICY, ...) are decoded",
    ),
    (
        "generic netlink families other than nlctrl, nl80211, psample and net_dm",
        "ethtool, devlink, wireguard and the rest: only genlmsghdr is decoded",
    ),
    (
        "nl80211 attributes without a Wireshark field",
        "shown as one generic nl80211.attr_value / _value16/32/64 (nests, arrays "
        "and structs too, their members not in the tree)",
    ),
    ("net_dm summary alert", "struct net_dm_alert_msg in NLA_UNSPEC is netlink.attr_data"),
    ("NETLINK_XFRM", "header only, body is `data`"),
    ("NETLINK_NETFILTER", "nfgenmsg only for some subsystems, attributes are `data`"),
    (
        "rtnetlink attributes without a Wireshark field",
        "shown as netlink.attr_data: IFLA_LINKINFO, IFLA_AF_SPEC, IFLA_LINKMODE, "
        "IFLA_LINK, IFLA_MASTER, IFLA_EXT_MASK, IFLA_XDP, IFLA_PROTO_DOWN, "
        "IFLA_ALLMULTI, IFLA_GRO/TSO_MAX_*, IFLA_PERM_ADDRESS, IFLA_IFALIAS, "
        "IFLA_PROTINFO, IFLA_EVENT; RTA_DST, RTA_SRC, RTA_GATEWAY, RTA_TABLE, "
        "RTA_PRIORITY, RTA_PREFSRC, RTA_METRICS, RTA_MULTIPATH, RTA_CACHEINFO, "
        "RTA_PREF, RTA_ENCAP(_TYPE), RTA_NH_ID, RTA_UID; IFA_CACHEINFO, IFA_PROTO",
    ),
    (
        "rtnetlink messages without a Wireshark body dissector",
        "neighbour attributes (NDA_*), rules (struct fib_rule_hdr, FRA_*), "
        "nexthops (struct nhmsg, NHA_*), netconf and link stats messages: "
        "header fields only, or ndmsg/ifinfomsg members only",
    ),
]
