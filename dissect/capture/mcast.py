"""Multicast groups of netlink families: names, numbers and how to join them.

Classic netlink families number their multicast groups in their uapi
headers (``RTNLGRP_*``, ``NFNLGRP_*``, ...); the tables below hold those
facts with the prefix dropped and ``_`` written ``-`` (``RTNLGRP_IPV4_IFADDR``
is ``ipv4-ifaddr`` of family ``route``).  Generic netlink families and their
groups get ids at run time: the controller says them (CTRL_CMD_GETFAMILY,
answered for one family by name or for all as a dump), and the answers are
decoded with our own nlctrl spec, like any captured controller reply.

`resolve` turns the user's ``FAMILY[:GROUP,...]`` words into `Subscription`s
(one per family: protocol, genl id, (name, number) of each group), asking
the local kernel only for generic netlink families.  Group numbers are what
``NETLINK_ADD_MEMBERSHIP`` takes; bit ``n - 1`` of a socket's group bitmap
(NETLINK_DIAG_GROUPS, bind's ``nl_groups``) is group ``n``.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass, field

from ..core.netlink import Session
from .nlsocket import NLM_F_DUMP, NetlinkSocketError, RawNetlinkSocket, error_of

NETLINK_GENERIC = 16
GENL_ID_CTRL = 16
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_NAME = 2
GENL_NAMSIZ = 16  # linux/genetlink.h: family names are at most 15 bytes


class GroupError(Exception):
    """A family or group the user named cannot be used; the text says why."""


def _groups(*names: str) -> dict[str, int]:
    """Names of consecutive enum values from 1."""
    return {name: n for n, name in enumerate(names, 1)}


def _route_groups() -> dict[str, int]:
    """RTNLGRP_* by name, as the rt-link spec declares them (its
    ``mcast-groups``, written from include/uapi/linux/rtnetlink.h)."""
    from ..api import default_registry

    spec = next((s for s in default_registry().specs if s.name == "rt-link"), None)
    groups = spec.mcast_groups if spec is not None else {}
    return {n.removeprefix("rtnlgrp-"): v for n, v in groups.items() if v is not None}


ROUTE_GROUPS = _route_groups()

# What `ip monitor` shows without arguments: links, addresses, routes
# (unicast and multicast), prefixes, neighbours, netconf, rules, namespace
# ids and nexthops.
ROUTE_DEFAULT = (
    "link", "ipv4-ifaddr", "ipv6-ifaddr", "ipv4-route", "ipv6-route", "mpls-route",
    "ipv4-mroute", "ipv6-mroute", "ipv6-prefix", "neigh", "ipv4-netconf", "ipv6-netconf",
    "mpls-netconf", "ipv4-rule", "ipv6-rule", "nsid", "nexthop",
)  # fmt: skip


@dataclass(frozen=True)
class ClassicFamily:
    """A netlink protocol whose group numbers are fixed by its uapi header."""

    name: str
    protocol: int
    groups: dict[str, int]
    default: tuple[str, ...]  # joined when the family is named without groups
    prefix: str  # of the header's group names, accepted in user input
    aliases: tuple[str, ...] = ()
    note: str = ""  # what joining needs, for --list


CLASSIC_FAMILIES: tuple[ClassicFamily, ...] = (
    ClassicFamily(
        "route",
        0,
        ROUTE_GROUPS,
        ROUTE_DEFAULT,
        "rtnlgrp",
        ("rtnl", "rtnetlink"),
        "ipv4-mroute-r, ipv6-mroute-r need CAP_NET_ADMIN",
    ),
    # include/uapi/linux/sock_diag.h: SKNLGRP_*
    ClassicFamily(
        "sock_diag",
        4,
        _groups("inet-tcp-destroy", "inet-udp-destroy", "inet6-tcp-destroy", "inet6-udp-destroy"),
        (),
        "sknlgrp",
        ("sock-diag", "inet_diag"),
    ),
    # include/uapi/linux/xfrm.h: enum xfrm_nlgroups
    ClassicFamily(
        "xfrm",
        6,
        _groups("acquire", "expire", "sa", "policy", "aevents", "report", "migrate", "mapping"),
        (),
        "xfrmnlgrp",
        note="needs CAP_NET_ADMIN",
    ),
    # include/uapi/linux/selinux_netlink.h: enum selinux_nlgroups
    ClassicFamily("selinux", 7, {"avc": 1}, (), "selnlgrp"),
    # include/uapi/linux/audit.h: enum audit_nlgrps
    ClassicFamily(
        "audit", 9, {"readlog": 1}, (), "audit_nlgrp", note="needs CAP_AUDIT_READ; initial netns"
    ),
    # include/uapi/linux/connector.h: CN_IDX_* (a connector user's group is its idx)
    ClassicFamily(
        "connector",
        11,
        {
            "proc": 1,
            "cifs": 2,
            "w1": 3,
            "v86d": 4,
            "bb": 5,
            "dst": 6,
            "dm": 7,
            "drbd": 8,
            "kvp": 9,
            "vss": 10,
        },
        ("proc",),
        "cn_idx",
        ("cn",),
        "proc events: initial netns only",
    ),  # fmt: skip
    # include/uapi/linux/netfilter/nfnetlink.h: enum nfnetlink_groups
    ClassicFamily(
        "netfilter",
        12,
        _groups(
            "conntrack-new",
            "conntrack-update",
            "conntrack-destroy",
            "conntrack-exp-new",
            "conntrack-exp-update",
            "conntrack-exp-destroy",
            "nftables",
            "acct-quota",
            "nftrace",
        ),
        (),
        "nfnlgrp",
        ("nfnetlink", "nf"),
        "needs CAP_NET_ADMIN",
    ),  # fmt: skip
    # lib/kobject_uevent.c sends to group 1; udev re-broadcasts processed
    # events to group 2 (libudev's "udev" monitor).
    ClassicFamily(
        "kobject_uevent", 15, {"kernel": 1, "udev": 2}, (), "", ("uevent", "kobject-uevent")
    ),
)

_CLASSIC_BY_NAME: dict[str, ClassicFamily] = {}
for _fam in CLASSIC_FAMILIES:
    for _name in (_fam.name, *_fam.aliases):
        _CLASSIC_BY_NAME[_name.replace("-", "_")] = _fam

# PROC_CN_MCAST_LISTEN goes to this connector user (linux/connector.h:
# CN_IDX_PROC, CN_VAL_PROC).
CN_IDX_PROC = 1
CN_VAL_PROC = 1


def classic_family(name: str) -> ClassicFamily | None:
    return _CLASSIC_BY_NAME.get(name.lower().replace("-", "_"))


def classic_by_protocol(protocol: int) -> ClassicFamily | None:
    return next((f for f in CLASSIC_FAMILIES if f.protocol == protocol), None)


def _norm_group(word: str, prefix: str) -> str:
    w = word.strip().lower().replace("_", "-")
    p = prefix.replace("_", "-") + "-"
    return w[len(p) :] if prefix and w.startswith(p) else w


@dataclass
class GenlFamily:
    """A generic netlink family as the running kernel describes it."""

    id: int
    name: str
    groups: dict[str, int] = field(default_factory=dict)


def _families_in(session: Session, frame: bytes) -> list[GenlFamily]:
    """Families described by the CTRL_CMD_NEWFAMILY messages of one buffer,
    read from the decoded tree (field names of our nlctrl spec)."""
    out = []
    for msg in session.decode(frame).messages:
        name = msg.node.find("genl.ctrl.ctrl.family_name")
        fid = msg.node.find("genl.ctrl.ctrl.family_id")
        if name is None or fid is None:
            continue
        if not isinstance(name.value, str) or not isinstance(fid.value, int):
            continue
        fam = GenlFamily(fid.value, name.value)
        grps = msg.node.find("genl.ctrl.ctrl.mcast_groups")
        for entry in (grps.children or []) if grps is not None else []:
            gname = entry.find("genl.ctrl.ctrl.mcast_groups.name")
            gid = entry.find("genl.ctrl.ctrl.mcast_groups.id")
            if gname is not None and gid is not None and isinstance(gid.value, int):
                fam.groups[str(gname.value)] = gid.value
        out.append(fam)
    return out


def _strattr(nla_type: int, text: str) -> bytes:
    data = text.encode() + b"\0"
    return struct.pack("=HH", 4 + len(data), nla_type) + data + bytes(-len(data) & 3)


def genl_families(netns: str | None = None, timeout: float = 2.0) -> dict[str, GenlFamily]:
    """Every generic netlink family registered on the running kernel, by name."""
    session = Session()
    found: dict[str, GenlFamily] = {}
    try:
        with RawNetlinkSocket(NETLINK_GENERIC, netns=netns, ext_ack=False) as sock:
            sock.settimeout(timeout)
            req = struct.pack("=BBH", CTRL_CMD_GETFAMILY, 1, 0)
            for data in sock.transact(GENL_ID_CTRL, NLM_F_DUMP, req):
                err = error_of(data)
                if err:
                    raise GroupError(f"the kernel refused the family dump: {os.strerror(err)}")
                for fam in _families_in(session, sock.as_frame(data)):
                    found[fam.name] = fam
    except NetlinkSocketError as exc:
        raise GroupError(str(exc)) from None
    except OSError as exc:
        raise GroupError(f"generic netlink family dump failed: {exc.strerror or exc}") from None
    return found


def genl_family(name: str, netns: str | None = None, timeout: float = 2.0) -> GenlFamily | None:
    """One family by name (CTRL_CMD_GETFAMILY with CTRL_ATTR_FAMILY_NAME);
    None when the kernel has no family of that name."""
    if not name or len(name.encode()) >= GENL_NAMSIZ:
        return None
    session = Session()
    req = struct.pack("=BBH", CTRL_CMD_GETFAMILY, 1, 0) + _strattr(CTRL_ATTR_FAMILY_NAME, name)
    try:
        with RawNetlinkSocket(NETLINK_GENERIC, netns=netns, ext_ack=False) as sock:
            sock.settimeout(timeout)
            for data in sock.transact(GENL_ID_CTRL, 0, req):
                err = error_of(data)
                if err == errno.ENOENT:
                    return None
                if err:
                    raise GroupError(f"the kernel refused to describe {name!r}: {os.strerror(err)}")
                for fam in _families_in(session, sock.as_frame(data)):
                    return fam
    except NetlinkSocketError as exc:
        raise GroupError(str(exc)) from None
    except OSError as exc:
        raise GroupError(
            f"generic netlink lookup of {name!r} failed: {exc.strerror or exc}"
        ) from None
    return None


@dataclass
class Subscription:
    """The groups to join on one socket of one family."""

    family: str  # the name shown to the user (``route``, ``ethtool``)
    protocol: int
    groups: dict[str, int]  # name -> number, in the order asked
    genl_id: int | None = None
    # Groups joined only because the user asked for ``all``: the kernel may
    # not know the newest ones, which is then a warning, not an error.
    optional: set[str] = field(default_factory=set)


def pick_groups(
    family: str, available: dict[str, int], words: list[str], prefix: str, numeric: bool
) -> tuple[dict[str, int], set[str]]:
    picked: dict[str, int] = {}
    optional: set[str] = set()
    by_number = {v: k for k, v in available.items()}
    # Generic netlink group names are the kernel's own spelling
    # (mptcp_pm_events, page-pool): match them in any case, '-' or '_'.
    by_norm = {_norm_group(k, ""): k for k in available}
    for word in words:
        w = _norm_group(word, prefix)
        if w == "all":
            for k, v in available.items():
                if k not in picked:
                    picked[k] = v
                    optional.add(k)
            continue
        if w in by_norm:
            key = by_norm[w]
            picked[key] = available[key]
            optional.discard(key)
            continue
        if numeric and w.isdigit() and int(w) > 0:
            n = int(w)
            picked[by_number.get(n, str(n))] = n
            continue
        valid = ", ".join(available) or "none"
        raise GroupError(f"{family} has no multicast group {word!r} (groups: {valid})")
    return picked, optional


def resolve(specs: list[str], netns: str | None = None) -> list[Subscription]:
    """Turn ``FAMILY[:GROUP,...]`` words into subscriptions, one per family
    (a family named twice gets the union of its groups)."""
    subs: dict[str, Subscription] = {}
    genl_cache: dict[str, GenlFamily | None] = {}
    for spec in specs:
        fname, sep, gtext = spec.partition(":")
        fname = fname.strip()
        words = [w for w in gtext.split(",") if w.strip()] if sep else []
        if not fname:
            raise GroupError(f"no family in {spec!r} (expected FAMILY[:GROUP,...])")
        if sep and not words:
            raise GroupError(f"no group after ':' in {spec!r}")
        classic = classic_family(fname)
        if classic is not None:
            if not words:
                words = list(classic.default) or ["all"]
            groups, optional = pick_groups(
                classic.name, classic.groups, words, classic.prefix, True
            )
            sub = subs.setdefault(classic.name, Subscription(classic.name, classic.protocol, {}))
        else:
            key = fname.lower()
            if key not in genl_cache:
                genl_cache[key] = find_genl(fname, netns)
            fam = genl_cache[key]
            if fam is None:
                known = ", ".join(f.name for f in CLASSIC_FAMILIES)
                raise GroupError(
                    f"unknown netlink family {fname!r}: neither one of {known} nor a generic "
                    "netlink family registered on this kernel (is its module loaded? "
                    "see 'nlshark monitor --list')"
                )
            if not fam.groups:
                raise GroupError(f"generic netlink family {fam.name!r} has no multicast groups")
            groups, optional = pick_groups(fam.name, fam.groups, words or ["all"], "", False)
            sub = subs.setdefault(fam.name, Subscription(fam.name, NETLINK_GENERIC, {}, fam.id))
        for k, v in groups.items():
            if k not in sub.groups:
                sub.groups[k] = v
                if k in optional:
                    sub.optional.add(k)
            elif k not in optional:
                sub.optional.discard(k)
    return list(subs.values())


def find_genl(name: str, netns: str | None) -> GenlFamily | None:
    fam = genl_family(name, netns)
    if fam is None and name != name.lower():
        fam = genl_family(name.lower(), netns)
    if fam is None:
        # Names are case-sensitive in the kernel (HSR, NET_DM, TASKSTATS).
        matches = [f for n, f in genl_families(netns).items() if n.lower() == name.lower()]
        fam = matches[0] if len(matches) == 1 else None
    return fam


def group_name(protocol: int, group: int, genl_groups: dict[int, str] | None = None) -> str:
    """A group number as the user would name it (``link``, ``ethtool:monitor``),
    else the number."""
    if protocol == NETLINK_GENERIC:
        return (genl_groups or {}).get(group, str(group))
    fam = classic_by_protocol(protocol)
    if fam is not None:
        for name, num in fam.groups.items():
            if num == group:
                return name
    return str(group)


def genl_group_names(families: dict[str, GenlFamily]) -> dict[int, str]:
    """Generic netlink group id -> ``family:group``."""
    return {gid: f"{f.name}:{g}" for f in families.values() for g, gid in f.groups.items()}
