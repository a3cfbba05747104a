"""Real-kernel test: every link kind this kernel can create, dumped the way
``ip -d -s link``, ``bridge -d vlan``, ``ip stats``, ``ip ntable``,
``ip netconf``, ``bridge mdb``, ``bridge vni`` and ``ip netns list-id`` ask,
must decode with no ``undecoded`` and no ``malformed`` note.

The changes happen only in a child process (`linkscenario`) that first
enters a network namespace of its own (``unshare(CLONE_NEWNET)``): it adds
one link of each kind in ``linkscenario.KINDS`` with ``ip link add`` (a kind
the kernel or iproute2 refuses is recorded as skipped and printed), a bridge
port, a bond slave, an mdb entry, VXLAN VNI filter entries, an IPv6 address
label and nexthops, then sends its dumps over a plain ``AF_NETLINK`` socket
(`nlsock.NlSock`) and records every request and every buffer received.  The test turns the
recording into a pcap, reads it with `dissect.read_capture` and checks
what the kernel said: no notes, and each created link's name and kind
decoded as created (compared with the independent parse in `nlsock`).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import linkscenario
import pytest

import dissect
from dissect.core.netlink import TO_USER
from dissect.core.tree import MALFORMED, UNDECODED

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nlsock as N  # noqa: E402

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
            [sys.executable, linkscenario.__file__, str(out)],
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
