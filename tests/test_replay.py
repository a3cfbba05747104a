"""``nlshark replay``: real captures re-sent to this machine's kernel in fresh namespaces.

The kernel here lacks some modules the capturing VM had (no dummy, vlan,
macvlan, bond), so some requests legitimately answer differently: every
mismatch must come with an explanation, the requests this kernel supports
(dumps, veth links) must match, and a capture recorded here by our own
socket code must replay with no mismatch at all.  The host's links,
addresses, routes and rules must be the same before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import dissect
from dissect.analysis.filter import compile_filter
from dissect.analysis.replay import Outcome, Replayer, load_requests
from dissect.api import default_registry
from dissect.capture import open_capture
from dissect.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nlsock as N  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUICK = ROOT / "captures" / "quickstart.pcap"
SHARED = ROOT.parent / "shared" / "captures"
GENERIC_FALLBACK = "this kernel answers differently"


def _need_netns() -> None:
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is not installed")
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root")


def host_state() -> dict[str, object]:
    """The host namespace's links, addresses, routes and rules, without
    what changes by itself (counters, address lifetimes)."""
    out: dict[str, object] = {}
    for what in (["link"], ["addr"], ["route"], ["-6", "route"], ["rule"], ["-6", "rule"]):
        proc = subprocess.run(["ip", "-j", *what, "show"], capture_output=True, text=True)
        data = json.loads(proc.stdout or "[]")
        for item in data:
            item.pop("stats64", None)
            for a in item.get("addr_info", []):
                a.pop("valid_life_time", None)
                a.pop("preferred_life_time", None)
        out[" ".join(what)] = data
    return out


@pytest.fixture
def host_unchanged() -> Iterator[None]:
    _need_netns()
    before = host_state()
    netns_before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    yield
    assert host_state() == before
    after = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    assert not after - netns_before, "a replay namespace was left behind"


def run_replay(path: Path, tmp_path: Path) -> list[Outcome]:
    """The library in a fresh namespace, from this process.  (``nlshark
    replay`` also runs alone in a PID namespace, so requests naming a pid
    cannot reach the host; these captures name none, which is checked.)"""
    from dissect.analysis.netns import ScratchNetns

    pids = "rtnl.link.net_ns_pid || rtnl.link.net_ns_fd"
    flt = compile_filter(pids, default_registry())
    assert not any(flt.match_frame(f) for f in dissect.read_capture(path))
    loaded = load_requests(str(path))
    with ScratchNetns("test") as ns:
        rep = Replayer(ns.name, loaded)
        try:
            return list(rep.run())
        finally:
            rep.close()


def assert_explained(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        if o.verdict == "mismatch":
            assert o.reasons, o.as_dict()
            for reason in o.reasons:
                if reason.startswith("errno differs"):
                    # "errno differs: original X, replay Y: why"
                    assert reason.count(": ") >= 2, reason
                    assert GENERIC_FALLBACK not in reason, reason


def by_label(outcomes: list[Outcome]) -> dict[str, Outcome]:
    return {o.request.label: o for o in outcomes}


def test_quickstart(tmp_path: Path, host_unchanged: None) -> None:
    outcomes = run_replay(QUICK, tmp_path)
    assert len(outcomes) == 37
    assert_explained(outcomes)
    o = by_label(outcomes)
    # Dumps and what needs only veth (which this kernel has) match.
    for label in ("1", "40", "45", "53", "82", "88", "90", "94", "96"):
        assert o[label].verdict == "match", o[label].as_dict()
    # veth q0 got another ifindex here than in the capture: rewritten.
    assert any("ifindex 5 -> " in r for r in o["90"].rewrites)
    # The generic netlink id of ethtool was mapped to this kernel's by name.
    assert o["69"].verdict == "match"
    # A dummy link cannot be made here, and what depends on it says so.
    if subprocess.run(["modinfo", "dummy"], capture_output=True).returncode != 0:
        assert o["6"].verdict == "mismatch"
        assert "link kind 'dummy' is not available" in o["6"].reasons[0]
        assert "frame 6" in o["13"].reasons[0]
    # Differences that follow the machine are listed, not counted.
    assert any("dump found" in b for b in o["1"].benign)


def test_addr_route_neigh(tmp_path: Path, host_unchanged: None) -> None:
    path = SHARED / "addr_route_neigh.pcap"
    if not path.exists():
        pytest.skip(f"{path.name} is not in the shared captures")
    outcomes = run_replay(path, tmp_path)
    assert outcomes
    assert_explained(outcomes)
    # The plain dumps need nothing the kernel lacks (a dump of one object
    # made by a failed request, like a nexthop group's buckets, fails here
    # with an explanation).
    plain = ("RTM_GETLINK", "RTM_GETADDR", "RTM_GETROUTE")
    dumps = [o for o in outcomes if o.request.is_dump and o.request.type_name in plain]
    assert len(dumps) >= 3 and all(o.verdict == "match" for o in dumps), [
        o.as_dict() for o in dumps if o.verdict != "match"
    ]


def test_own_capture_matches_fully(tmp_path: Path, host_unchanged: None) -> None:
    """Recorded here, in a namespace, by tests/nlsock.py: nothing may differ."""
    out = tmp_path / "scenario.json"
    proc = subprocess.run(
        [sys.executable, str(Path(N.__file__)), "netns", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode == 77:
        pytest.skip(f"network namespaces not available: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    rec = N.Recorder.load(json.loads(out.read_text())["frames"])
    pcap = tmp_path / "scenario.pcap"
    rec.write_pcap(pcap)
    outcomes = run_replay(pcap, tmp_path)
    assert len(outcomes) >= 10
    bad = [o.as_dict() for o in outcomes if o.verdict != "match"]
    assert not bad, bad


def nlshark(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dissect.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_cli_records_and_reports(tmp_path: Path, host_unchanged: None) -> None:
    out = tmp_path / "replayed.pcapng"
    run = nlshark(
        "replay", str(QUICK), "-Y", "netlink.flags contains DUMP", "-w", str(out), "-T", "json"
    )
    doc = json.loads(run.stdout)
    assert run.returncode == 0, doc
    assert [r["frame"] for r in doc["requests"]] == ["1", "40", "45", "53"]
    assert doc["summary"] == "4 requests, 4 match, 0 mismatch, 0 skipped"
    with open_capture(out) as reader:
        frames = list(reader)
    comments = [f.comment or "" for f in frames]
    assert [c for c in comments if c.startswith("replay of frame")] == [
        "replay of frame 1",
        "replay of frame 40",
        "replay of frame 45",
        "replay of frame 53",
    ]
    # each request is followed by its answer buffers, NLMSG_DONE last
    answers = [c for c in comments if c == "answer (replay)"]
    assert len(answers) == len(frames) - 4 >= 8
    decoded = list(dissect.read_capture(out))
    assert [m.type_name for f in decoded for m in f.messages].count("NLMSG_DONE") == 4


def test_cli_text_exit_status(tmp_path: Path, host_unchanged: None) -> None:
    run = nlshark("replay", str(QUICK), "-Y", 'rtnl.link.ifname == "d0"')
    assert run.returncode == 1, run.stderr
    assert "mismatch" in run.stdout
    assert run.stdout.rstrip().splitlines()[-1].endswith("0 skipped")


def test_cli_errors(capsys: pytest.CaptureFixture[str]) -> None:
    # These fail before anything is sent, in this process.
    assert main(["replay", str(QUICK), "-Y", "netlink.type =="]) == 2
    assert "expected a value" in capsys.readouterr().err
    assert main(["replay", "/nonexistent.pcap"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    run = nlshark("replay", str(QUICK), "--netns", "nlshark-no-such-ns")
    assert run.returncode == 2
    assert "no network namespace" in run.stderr and "Traceback" not in run.stderr
