"""``nlshark fuzz``: mutators, determinism, resume, and a 10,000-case run on RTM_NEWLINK.

The long run sends 10,000 mutations of an RTM_NEWLINK that creates a veth
pair (with IFLA_LINKINFO) to this machine's kernel in throwaway namespaces,
within a time bound, records every case and its answer, and must leave the
host's links, addresses, routes and rules exactly as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dissect
from dissect.analysis.fuzz import MUTATORS, Template, make_case
from dissect.capture import open_capture

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_replay import host_state  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUICK = ROOT / "captures" / "quickstart.pcap"
VETH_FRAME = 82  # RTM_NEWLINK q0 type veth peer q1, REQUEST|ACK|EXCL|CREATE
NLSHARK = [sys.executable, "-m", "dissect.cli"]


def veth_template() -> Template:
    for f in dissect.read_capture(QUICK):
        if f.number == VETH_FRAME:
            m = f.messages[0]
            assert m.type_name == "RTM_NEWLINK"
            return Template.from_bytes(
                0, bytes(f.data[m.node.offset : m.node.offset + m.node.length])
            )
    raise AssertionError("frame 82 of quickstart.pcap is the veth RTM_NEWLINK")


def test_model_round_trips_and_sees_structure() -> None:
    t = veth_template()
    assert t.msg.serialize() == t.data
    linkinfo = [a for a in t.msg.attrs if a.type & 0x3FFF == 18]  # IFLA_LINKINFO
    assert linkinfo and linkinfo[0].children is not None
    data = [a for a in linkinfo[0].children if a.type & 0x3FFF == 2]  # IFLA_INFO_DATA
    peer = data[0].children[0]  # VETH_INFO_PEER: struct ifinfomsg, then attributes
    assert len(peer.head) == 16 and peer.children and peer.children[0].head.startswith(b"q1")


@pytest.mark.parametrize("name", sorted(MUTATORS))
def test_every_mutator_changes_the_message(name: str) -> None:
    t = veth_template()
    base = make_case(t, 7, 0).data
    seen = set()
    for k in range(1, 60):
        case = make_case(t, 7, k, [name])
        assert case.mutator == name, case
        assert case.data != base, (name, k, case.description)
        seen.add(case.data)
    assert len(seen) > 5  # and they vary


def test_cases_depend_on_seed_and_index_only() -> None:
    t = veth_template()
    a = [make_case(t, "s1", k) for k in range(200)]
    b = [make_case(veth_template(), "s1", k) for k in reversed(range(200))][::-1]
    assert a == b
    assert [c.data for c in a] != [make_case(t, "s2", k).data for k in range(200)]
    assert a[0].mutator == "template" and a[0].data[4:6] == t.data[4:6]
    assert {c.mutator for c in a} == {"template", *MUTATORS}


def _need_root() -> None:
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is not installed")
    if os.geteuid() != 0:
        pytest.skip("fuzzing needs root (network and PID namespaces)")


def fuzz(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NLSHARK, "fuzz", "--from", str(QUICK), "--frame", str(VETH_FRAME), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def frames_by_case(path: Path) -> dict[int, list[str]]:
    """case number -> comments of its frames (request first, then answers)."""
    out: dict[int, list[str]] = {}
    with open_capture(path) as reader:
        for raw in reader:
            c = raw.comment or ""
            k = int(c.split()[1])
            out.setdefault(k, []).append(c)
    return out


def test_resume_continues_with_the_same_cases(tmp_path: Path) -> None:
    _need_root()
    state = tmp_path / "state.json"
    whole = fuzz(
        "-n",
        "60",
        "--seed",
        "42",
        "-q",
        "--report",
        str(tmp_path / "whole.json"),
        "-w",
        str(tmp_path / "whole.pcapng"),
    )
    assert whole.returncode == 0, whole.stderr
    first = fuzz(
        "-n", "25", "--seed", "42", "-q", "--resume", str(state), "-w", str(tmp_path / "a.pcapng")
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(state.read_text())["next_case"] == 25
    second = fuzz("-n", "60", "-q", "--resume", str(state), "-w", str(tmp_path / "b.pcapng"))
    assert second.returncode == 0, second.stderr
    assert json.loads(state.read_text())["next_case"] == 60

    def requests(p: Path) -> dict[int, bytes]:
        with open_capture(p) as reader:
            return {
                int((r.comment or "").split()[1]): r.data
                for r in reader
                if (r.comment or "").split()[2:3] == ["seed"]
            }

    both = requests(tmp_path / "a.pcapng") | requests(tmp_path / "b.pcapng")
    assert sorted(both) == list(range(60))
    assert both == requests(tmp_path / "whole.pcapng")
    # The same findings, found at the same cases.
    whole_findings = json.loads((tmp_path / "whole.json").read_text())["findings"]
    assert [(f["case"], f["kind"]) for f in json.loads(state.read_text())["findings"]] == [
        (f["case"], f["kind"]) for f in whole_findings
    ]


def test_single_case_and_reproducer(tmp_path: Path) -> None:
    _need_root()
    report = tmp_path / "r.json"
    run = fuzz("-n", "300", "--seed", "3", "-q", "--report", str(report))
    assert run.returncode == 0, run.stderr
    doc = json.loads(report.read_text())
    finding = next(f for f in doc["findings"] if f["kind"] == "new-errno")
    # Minimized: attributes deleted while the answer stayed the same.
    assert any(f["minimal_hex"] and len(f["minimal_hex"]) < len(f["hex"]) for f in doc["findings"])
    assert finding["reproduce"].split()[3] == (finding["minimal_hex"] or finding["hex"])
    # The reproducer's command line gets the same answer from the bytes alone.
    argv = finding["reproduce"].split()[2:]  # after "nlshark fuzz"
    again = subprocess.run(
        [*NLSHARK, "fuzz", *argv, "--report", str(tmp_path / "one.json"), "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert again.returncode == 0, again.stderr
    one = json.loads((tmp_path / "one.json").read_text())
    assert one["cases_run"] == 1
    name = finding["detail"].split()[0]
    assert one["errnos"] == {name: 1}


def test_ten_thousand_newlink_cases(tmp_path: Path) -> None:
    """10,000 cases within --time 300 on this 2-core machine; every case and
    its answer in the capture; the host untouched."""
    _need_root()
    before = host_state()
    netns_before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    cap = tmp_path / "fuzz.pcapng"
    report = tmp_path / "fuzz.json"
    t0 = time.monotonic()
    run = fuzz(
        "-n",
        "10000",
        "--time",
        "300",
        "--seed",
        "2026",
        "-q",
        "-w",
        str(cap),
        "--report",
        str(report),
        timeout=420,
    )
    took = time.monotonic() - t0
    assert run.returncode == 0, run.stderr
    doc = json.loads(report.read_text())
    print(
        f"\n10,000-case RTM_NEWLINK fuzz: {doc['cases_run']} cases in {doc['duration_s']} s "
        f"({doc['cases_per_s']} cases/s; {took:.1f} s with start-up), "
        f"{doc['namespaces']} namespaces, {len(doc['findings'])} findings, answers {doc['errnos']}"
    )
    assert doc["stopped_by"] == "count" and doc["cases_run"] == 10000
    assert doc["duration_s"] <= 300
    by_case = frames_by_case(cap)
    assert sorted(by_case) == list(range(10000))
    answered = sum(
        1 for comments in by_case.values() if any(c.endswith("answer") for c in comments)
    )
    dropped = doc["timeouts"]
    # every case was answered, except those the kernel drops by design
    # (nlmsg_len below 16 or beyond the buffer), which time out quietly
    assert answered + dropped == 10000, (answered, dropped)
    assert sum(doc["errnos"].values()) == answered
    assert not [f for f in doc["findings"] if f["kind"] in ("taint", "send-error")]
    assert host_state() == before
    after = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    assert not after - netns_before, "a fuzz namespace was left behind"


def test_bad_arguments() -> None:
    for argv, words in (
        (["fuzz"], "give one template"),
        (["fuzz", "--hex", "zz"], "not hexadecimal"),
        (["fuzz", "--hex", "0100"], "16 header bytes"),
        (["fuzz", "--from", str(QUICK)], "--frame"),
        (["fuzz", "--from", str(QUICK), "--frame", "9999"], "no frame 9999"),
        (["fuzz", "--hex", "00" * 16, "--mutators", "nope"], "unknown mutator"),
        (["fuzz", "--hex", "00" * 16, "--protocol", "bogus"], "--protocol"),
    ):
        run = subprocess.run(
            [*NLSHARK, *argv], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert run.returncode == 2, (argv, run.stderr)
        assert words in run.stderr and "Traceback" not in run.stderr, (argv, run.stderr)


def test_any_case_is_its_own_reproducer() -> None:
    """A case's bytes, taken as a template (``--hex``), are sent unchanged as
    case 0 but for seq and pid, even when their lengths are broken."""
    t = veth_template()
    for k in range(1, 400):
        case = make_case(t, 11, k)
        again = make_case(Template.from_bytes(0, case.data), 11, 0).data
        assert again[:8] == case.data[:8] and again[16:] == case.data[16:], (k, case.mutator)


def test_reproduce_case_from_hex_template() -> None:
    """``--hex TEMPLATE --seed S --case K`` builds the same case as the capture's frame."""
    t = veth_template()
    again = Template.from_bytes(0, bytes.fromhex(t.data.hex()))
    for k in (1, 17, 999, 123456):
        assert make_case(again, "9", k) == make_case(t, "9", k)


def test_sigterm_cleans_up(tmp_path: Path) -> None:
    """SIGTERM to the command ends the run in its PID namespace cleanly: the
    namespace is deleted and the state saved for --resume."""
    _need_root()
    netns_before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [*NLSHARK, "fuzz", "--from", str(QUICK), "--frame", str(VETH_FRAME), "-n", "1000000"]
        + ["--seed", "8", "-q", "--resume", str(state)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state.exists(), "no state file written"
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + 15, err
    assert "Traceback" not in err
    assert json.loads(state.read_text())["next_case"] > 0
    after = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    assert not after - netns_before, "a fuzz namespace was left behind"


def test_a_template_that_is_not_a_request_is_warned_about() -> None:
    _need_root()
    reply = subprocess.run(
        [*NLSHARK, "fuzz", "--from", str(QUICK), "--frame", "5", "-n", "1", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert "no NLM_F_REQUEST" in reply.stderr, reply.stderr
    request = fuzz("-n", "1", "-q", timeout=120)
    assert request.returncode == 0, request.stderr
    assert "NLM_F_REQUEST" not in request.stderr
