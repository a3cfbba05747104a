"""Real-kernel test: every link kind this kernel can create, dumped the way
``ip -d -s link``, ``bridge -d vlan``, ``ip stats``, ``ip ntable``,
``ip netconf``, ``bridge mdb``, ``bridge vni`` and ``ip netns list-id`` ask,
must decode with no ``undecoded`` and no ``malformed`` note.

The changes happen only in a child process that first enters a network
namespace of its own (``unshare(CLONE_NEWNET)``, see `nlsock`): it adds one
link of each kind in `KINDS` with ``ip link add`` (a kind the kernel or
iproute2 refuses is recorded as skipped and printed), a bridge port, a bond
slave, an mdb entry, a VXLAN VNI filter entry and an IPv6 address label,
then sends its dumps over a plain ``AF_NETLINK`` socket (`nlsock.NlSock`)
and records every request and every buffer received.  The test turns the
recording into a pcap, reads it with `dissect.read_capture` and checks
what the kernel said: no notes, and each created link's name and kind
decoded as created (compared with the independent parse in `nlsock`).
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import dissect
from dissect.core.netlink import TO_USER
from dissect.core.tree import MALFORMED, UNDECODED

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


def scenario(out: str) -> int:
    """Create the links in a fresh namespace, dump, write frames and results."""
    if not N._unshare_net():
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


# ---------------------------------------------------------------------------
# The test


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    if not hasattr(socket, "AF_NETLINK"):
        pytest.skip("AF_NETLINK sockets need Linux")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) is not installed")
    out = tmp_path_factory.mktemp("links") / "links.json"
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "child", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot run the namespace helper: {exc}")
    if proc.returncode == 77:
        pytest.skip(f"network namespaces not available: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    rec = N.Recorder.load(doc["frames"])
    pcap = out.with_suffix(".pcap")
    rec.write_pcap(pcap)
    frames = list(dissect.read_capture(pcap))
    pairs = [(f, m) for f in frames for m in f.messages]
    print(
        f"\nlink kinds created: {len(doc['created'])}; skipped: "
        + (
            "; ".join(f"{k}: {v}" for k, v in sorted(doc["skipped"].items()))
            if doc["skipped"]
            else "none"
        )
    )
    if doc["problems"]:
        print(
            "setup commands that failed: "
            + "; ".join(f"{k}: {v}" for k, v in doc["problems"].items())
        )
    return SimpleNamespace(
        created=doc["created"],
        skipped=doc["skipped"],
        problems=doc["problems"],
        steps=doc["steps"],
        rec=rec,
        frames=frames,
        pairs=pairs,
    )


def _notes(pairs, group: str) -> list[str]:
    out = []
    for f, m in pairs:
        for node, note in m.notes():
            if note.group == group:
                out.append(f"frame {f.number} {m.type_name}: {node.abbrev}: {note.text}")
    return out


def test_kinds_were_created(links: SimpleNamespace) -> None:
    # veth exists in every kernel that has network namespaces; the other
    # kinds depend on its configuration (the skipped ones are printed)
    assert "veth" in links.created.values()
    assert len(links.created) >= 3, links.skipped


def test_no_undecoded_or_malformed_notes(links: SimpleNamespace) -> None:
    kernel = [(f, m) for f, m in links.pairs if m.direction == TO_USER]
    assert kernel
    bad = _notes(kernel, MALFORMED) + _notes(kernel, UNDECODED)
    assert not bad, f"{len(bad)} notes, first: " + "; ".join(bad[:10])


def test_every_dump_answered_and_named(links: SimpleNamespace) -> None:
    by_seq: dict[int, list] = {}
    for _, m in links.pairs:
        if m.direction == TO_USER:
            by_seq.setdefault(m.seq, []).append(m)
    expect = {
        "links_vf": "RTM_NEWLINK",
        "links_all": "RTM_NEWLINK",
        "stats": "RTM_NEWSTATS",
        "neightbl": "RTM_NEWNEIGHTBL",
        "netconf": "RTM_NEWNETCONF",
        "addrlabel": "RTM_NEWADDRLABEL",
        "nexthops": "RTM_NEWNEXTHOP",
        "buckets": "RTM_NEWNEXTHOPBUCKET",
    }
    if "bridge" in links.created.values():
        expect |= {"bridge_links": "RTM_NEWLINK", "mdb": "RTM_NEWMDB"}
        if not any(k.startswith("bridge vlan") for k in links.problems):
            expect |= {"vlans": "RTM_NEWVLAN", "vlans_global": "RTM_NEWVLAN"}
    if "kvx1" in links.created and not any(k.startswith("bridge vni") for k in links.problems):
        expect["vni"] = "RTM_NEWTUNNEL"
    for step, type_name in expect.items():
        got = by_seq.get(links.steps[step], [])
        names = {m.type_name for m in got}
        assert type_name in names, f"{step}: {sorted(names)}"
        assert all(m.role == "reply" for m in got if m.type_name == type_name), step
        assert not any(m.error for m in got), f"{step}: {[m.info for m in got if m.error]}"


def test_names_and_kinds_decode_as_created(links: SimpleNamespace) -> None:
    seq = links.steps["links_all"]
    seen: dict[str, str | None] = {}
    for _, m in links.pairs:
        if m.seq != seq or m.type_name != "RTM_NEWLINK":
            continue
        name = m.node.find("rtnl.link.ifname")
        kind = m.node.find("rtnl.link.linkinfo.kind")
        if name is not None:
            seen[name.value] = kind.value if kind is not None else None
    # the same bytes through the independent parser of nlsock
    raw: dict[str, str | None] = {}
    for _, _, data in links.rec.frames:
        for r in N.parse_msgs(data):
            if r.seq != seq or r.type != N.RTM_NEWLINK:
                continue
            attrs = N.attr_dict(r.body, 16)
            info = N.attr_dict(attrs.get(N.IFLA_LINKINFO, b""))
            kind_raw = info.get(N.IFLA_INFO_KIND)
            raw[N.cstr(attrs[N.IFLA_IFNAME])] = N.cstr(kind_raw) if kind_raw else None
    assert seen == raw
    for name, kind in links.created.items():
        assert seen.get(name) == kind, (name, kind, seen.get(name))


def test_summaries_name_the_links(links: SimpleNamespace) -> None:
    seq = links.steps["links_all"]
    infos = [m.info for _, m in links.pairs if m.seq == seq and m.type_name == "RTM_NEWLINK"]
    for name, kind in links.created.items():
        assert any(i.split()[0].split("@")[0] == name and kind in i.split() for i in infos), (
            name,
            kind,
        )


def test_mdb_vni_and_vlans_decoded(links: SimpleNamespace) -> None:
    if "bridge" not in links.created.values() or shutil.which("bridge") is None:
        pytest.skip("no bridge")
    # a bridge answers an mdb dump with RTM_GETMDB messages, a VXLAN device with RTM_NEWMDB
    mdb = [
        m
        for _, m in links.pairs
        if m.seq == links.steps["mdb"] and m.type_name in ("RTM_GETMDB", "RTM_NEWMDB")
    ]
    groups = [n for m in mdb for n in m.node.walk() if n.abbrev.endswith("br_mdb_entry.addr")]
    if not any("bridge mdb" in k for k in links.problems):
        assert any(bytes(g.value)[:4] == socket.inet_aton("239.1.1.1") for g in groups)
    if any(k.startswith("bridge vlan") for k in links.problems):
        return
    vids = {
        n.value
        for _, m in links.pairs
        if m.seq == links.steps["vlans"] and m.type_name == "RTM_NEWVLAN"
        for n in m.node.walk()
        if n.abbrev == "rtnl.vlan.entry.info.vid"
    }
    assert {1, 10, 20} <= vids
    if "kvx1" in links.created and not any("bridge vni" in k for k in links.problems):
        starts = {
            n.value
            for _, m in links.pairs
            if m.seq == links.steps["vni"]
            for n in m.node.walk()
            if n.abbrev == "rtnl.tunnel.entry.start"
        }
        assert {100, 200} <= starts


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "child":
        return scenario(argv[2])
    print(f"usage: {argv[0]} child OUT.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
