"""The namespace scenario of test_kernel_links, run as a child process:
``python3 linkscenario.py OUT.json``.

Standard library only (plus `nlsock`), so it also runs where neither pytest
nor nlshark is installed, such as inside the nlmon VM.  It enters a new
network namespace first (``unshare(CLONE_NEWNET)``) and refuses to change
anything otherwise (exit code 77); then it adds one link of each kind in
`KINDS` with ``ip link add`` (kinds the kernel or iproute2 refuses are
recorded as skipped), a bridge port, a bond slave, an mdb entry, VXLAN VNI
filter entries, an IPv6 address label and nexthops, sends the dumps over
a plain ``AF_NETLINK`` socket and writes the recorded frames, the sequence
number of each dump and the created/skipped kinds as JSON.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nlsock as N  # noqa: E402

# (kind, name, `ip` arguments after `ip link add NAME`); the base devices
# kb0..kb6 (veth pairs: veth is the kind every kernel with namespaces has)
# exist before these are added.  A kind listed twice is tried again with
# the second arguments when the first are refused (a bridge without
# CONFIG_BRIDGE_VLAN_FILTERING).
KINDS: list[tuple[str, str, list[str]]] = [
    ("veth", "kveth0", ["type", "veth", "peer", "name", "kveth1"]),
    ("vlan", "kvlan0", ["link", "kb0", "type", "vlan", "id", "5"]),
    ("bridge", "kbr0", ["type", "bridge", "vlan_filtering", "1", "mcast_snooping", "1"]),
    ("bridge", "kbr0", ["type", "bridge"]),
    ("bond", "kbond0", ["type", "bond", "mode", "802.3ad"]),
    ("macvlan", "kmv0", ["link", "kb1", "type", "macvlan", "mode", "bridge"]),
    ("macvtap", "kmvt0", ["link", "kb1", "type", "macvtap"]),
    ("ipvlan", "kipv0", ["link", "kb2", "type", "ipvlan", "mode", "l2"]),
    ("vxlan", "kvx0", ["type", "vxlan", "id", "42", "dstport", "4789", "local", "10.0.0.1"]),
    ("vxlan", "kvx1", ["type", "vxlan", "dstport", "4790", "external", "vnifilter"]),
    ("geneve", "kgnv0", ["type", "geneve", "id", "43", "remote", "10.0.0.2"]),
    ("gre", "kgre0", ["type", "gre", "local", "10.0.0.1", "remote", "10.0.0.2"]),
    ("gretap", "kgtap0", ["type", "gretap", "local", "10.0.0.1", "remote", "10.0.0.3"]),
    ("ip6gre", "k6gre0", ["type", "ip6gre", "local", "fd00::1", "remote", "fd00::2"]),
    ("ip6gretap", "k6gtap0", ["type", "ip6gretap", "local", "fd00::1", "remote", "fd00::3"]),
    ("ipip", "kipip0", ["type", "ipip", "local", "10.0.0.1", "remote", "10.0.0.4"]),
    ("sit", "ksit0", ["type", "sit", "local", "10.0.0.1", "remote", "10.0.0.5"]),
    ("ip6tnl", "k6tnl0", ["type", "ip6tnl", "local", "fd00::1", "remote", "fd00::4"]),
    ("vti", "kvti0", ["type", "vti", "local", "10.0.0.1", "remote", "10.0.0.6", "key", "7"]),
    ("vti6", "kvti60", ["type", "vti6", "local", "fd00::1", "remote", "fd00::5", "key", "8"]),
    ("wireguard", "kwg0", ["type", "wireguard"]),
    ("macsec", "kmsec0", ["link", "kb3", "type", "macsec"]),
    ("vrf", "kvrf0", ["type", "vrf", "table", "10"]),
    ("dummy", "kdum0", ["type", "dummy"]),
    ("ifb", "kifb0", ["type", "ifb"]),
    ("team", "kteam0", ["type", "team"]),
    ("vcan", "kvcan0", ["type", "vcan"]),
    ("netkit", "knk0", ["type", "netkit"]),
    ("hsr", "khsr0", ["type", "hsr", "slave1", "kb4", "slave2", "kb5"]),
    ("xfrm", "kxfrm0", ["type", "xfrm", "dev", "kb6", "if_id", "9"]),
    ("bareudp", "kbudp0", ["type", "bareudp", "dstport", "6635", "ethertype", "mpls_uc"]),
    ("gtp", "kgtp0", ["type", "gtp", "role", "sgsn"]),
]
# tun and tap come from `ip tuntap add`: (kind as the kernel reports it, name, mode)
TUNTAP = [("tun", "ktun0", "tun"), ("tun", "ktap0", "tap")]

RTM_GETSTATS, RTM_GETNEIGHTBL, RTM_GETNETCONF, RTM_GETMDB = 94, 66, 82, 86
RTM_GETNSID, RTM_GETVLAN, RTM_GETTUNNEL, RTM_GETADDRLABEL = 90, 114, 122, 74
RTM_GETNEXTHOP = 106
IFLA_EXT_MASK = 29
# linux/rtnetlink.h RTEXT_FILTER_*: VF, BRVLAN, BRVLAN_COMPRESSED, SKIP_STATS,
# MRP, CFM_CONFIG, CFM_STATUS, MST
RTEXT_FILTER_VF, RTEXT_FILTER_SKIP_STATS = 0x1, 0x8
RTEXT_ALL = 0xFF
AF_BRIDGE, AF_MPLS = 7, 28
BRIDGE_VLANDB_DUMP_FLAGS = 1
BRIDGE_VLANDB_DUMPF_STATS, BRIDGE_VLANDB_DUMPF_GLOBAL = 0x1, 0x2
TUNNEL_MSG_FLAG_STATS = 0x1
IFLA_STATS_FILTER_ALL = 0x1F  # IFLA_STATS_LINK_64 .. IFLA_STATS_AF_SPEC


def _ip(*args: str) -> tuple[int, str]:
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    return p.returncode, (p.stderr or p.stdout).strip()


def _run(*cmd: str) -> tuple[int, str]:
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    return p.returncode, (p.stderr or p.stdout).strip()


def _enter_new_netns() -> bool:
    """unshare(CLONE_NEWNET); True once this process is in a namespace of its
    own.  Unlike `nlsock`, more links than lo may exist from the start: the
    modules of ipip, sit, gre, ip6_tunnel and vti add their fallback
    devices (tunl0, sit0, gre0, ...) to every new namespace."""
    before = os.readlink("/proc/self/ns/net")
    try:
        if hasattr(os, "unshare"):
            os.unshare(os.CLONE_NEWNET)  # type: ignore[attr-defined]
        elif ctypes.CDLL(None, use_errno=True).unshare(0x40000000) != 0:  # CLONE_NEWNET
            return False
    except OSError:
        return False
    return os.readlink("/proc/self/ns/net") != before


def scenario(out: str) -> int:
    """Create the links in a fresh namespace, dump, write frames and results."""
    if not _enter_new_netns():
        print("cannot enter a new network namespace", file=sys.stderr)
        return 77
    created: dict[str, str] = {}
    skipped: dict[str, str] = {}
    _ip("link", "set", "lo", "up")
    for i in range(7):
        _ip("link", "add", f"kb{i}", "type", "veth", "peer", "name", f"kbp{i}")
    for kind, name, args in KINDS:
        if name in created:
            continue
        rc, err = _ip("link", "add", name, *args)
        if rc == 0:
            created[name] = kind
            skipped.pop(f"{kind} ({name})", None)
        else:
            skipped[f"{kind} ({name})"] = err.splitlines()[-1] if err else f"rc {rc}"
    for kind, name, mode in TUNTAP:
        rc, err = _ip("tuntap", "add", name, "mode", mode)
        if rc == 0:
            created[name] = kind
        else:
            skipped[f"{mode} ({name})"] = err
    # a bridge port and a bond slave, links up, an mdb entry, VNIs, a label
    setup = [
        ("link", "set", "kveth1", "master", "kbr0"),
        ("link", "set", "kvx1", "master", "kbr0"),
        ("link", "set", "kdum0", "master", "kbond0"),
        ("link", "set", "kbr0", "up"),
        ("link", "set", "kveth0", "up"),
        ("link", "set", "kveth1", "up"),
        ("link", "set", "kvx1", "up"),
        ("-6", "addrlabel", "add", "prefix", "2001:db8:77::/48", "label", "77"),
        ("link", "set", "kb0", "up"),
        ("link", "set", "kbp0", "up"),
        ("addr", "add", "10.9.0.1/24", "dev", "kb0"),
        ("nexthop", "add", "id", "1", "via", "10.9.0.2", "dev", "kb0"),
        ("nexthop", "add", "id", "2", "via", "10.9.0.3", "dev", "kb0"),
        ("nexthop", "add", "id", "3", "group", "1/2", "type", "resilient", "buckets", "4"),
    ]
    problems: dict[str, str] = {}
    for args in setup:
        rc, err = _ip(*args)
        if rc:
            problems[" ".join(args)] = err
    if shutil.which("bridge"):
        for args in (
            ("vlan", "add", "dev", "kveth1", "vid", "10", "pvid", "untagged"),
            ("vlan", "add", "dev", "kveth1", "vid", "20-22"),
            (
                "mdb",
                "add",
                "dev",
                "kbr0",
                "port",
                "kveth1",
                "grp",
                "239.1.1.1",
                "permanent",
                "vid",
                "10",
            ),
            ("vni", "add", "dev", "kvx1", "vni", "100"),
            ("vni", "add", "dev", "kvx1", "vni", "200-202"),
        ):
            rc, err = _run("bridge", *args)
            if rc:
                problems["bridge " + " ".join(args)] = err
    rec = N.Recorder()
    steps: dict[str, int] = {}
    dump = N.NLM_F_REQUEST | N.NLM_F_DUMP
    with N.NlSock(N.NETLINK_ROUTE, rec) as rt:

        def ask(step: str, nl_type: int, body: bytes) -> None:
            steps[step] = rt.request(nl_type, dump, body)[0]

        ext = N.attr(IFLA_EXT_MASK, N.u32(RTEXT_FILTER_VF))
        ask("links_vf", N.RTM_GETLINK, N.ifinfomsg() + ext)
        ext_all = N.attr(IFLA_EXT_MASK, N.u32(RTEXT_ALL & ~RTEXT_FILTER_SKIP_STATS))
        ask("links_all", N.RTM_GETLINK, N.ifinfomsg() + ext_all)
        ask("bridge_links", N.RTM_GETLINK, N.ifinfomsg(family=AF_BRIDGE) + ext_all)
        # struct if_stats_msg: family, pad1, pad2, ifindex, filter_mask
        stats = struct.pack("=BBHiI", 0, 0, 0, 0, IFLA_STATS_FILTER_ALL)
        ask("stats", RTM_GETSTATS, stats)
        vlan_hdr = struct.pack("=BBHI", AF_BRIDGE, 0, 0, 0)
        flags = BRIDGE_VLANDB_DUMPF_STATS
        ask("vlans", RTM_GETVLAN, vlan_hdr + N.attr(BRIDGE_VLANDB_DUMP_FLAGS, N.u32(flags)))
        gflags = BRIDGE_VLANDB_DUMPF_GLOBAL
        ask(
            "vlans_global",
            RTM_GETVLAN,
            vlan_hdr + N.attr(BRIDGE_VLANDB_DUMP_FLAGS, N.u32(gflags)),
        )
        ask("neightbl", RTM_GETNEIGHTBL, struct.pack("=BxH", 0, 0))
        ask("netconf", RTM_GETNETCONF, struct.pack("=Bxxx", 0))
        ask("mdb", RTM_GETMDB, struct.pack("=BxxxI", AF_BRIDGE, 0))
        tun = struct.pack("=BBHI", AF_BRIDGE, TUNNEL_MSG_FLAG_STATS, 0, 0)
        ask("vni", RTM_GETTUNNEL, tun)
        ask("nsid", RTM_GETNSID, struct.pack("=Bxxx", 0))
        ask("addrlabel", RTM_GETADDRLABEL, struct.pack("=BBBBII", socket.AF_INET6, 0, 0, 0, 0, 0))
        ask("nexthops", RTM_GETNEXTHOP, struct.pack("=BBBBI", 0, 0, 0, 0, 0))
        ask("buckets", 118, struct.pack("=BBBBI", 0, 0, 0, 0, 0))
    with open(out, "w") as f:
        json.dump(
            {
                "created": created,
                "skipped": skipped,
                "problems": problems,
                "steps": steps,
                "frames": rec.dump(),
            },
            f,
        )
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2:
        return scenario(argv[1])
    print(f"usage: {argv[0]} OUT.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
