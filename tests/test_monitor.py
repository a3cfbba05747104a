"""``nlshark monitor`` on the running kernel.

Each test starts the command as a separate process (``python -m dissect.cli
monitor ...``), waits for its "monitoring ..." line on stderr (the groups are
joined by then), makes changes inside a network namespace it created (veth
links, addresses, routes, ethtool features; never in the host's namespace)
and reads the events from stdout as JSON lines until the expected ones have
come, then stops it with SIGTERM and checks that it exits 0 with the file
it wrote complete.  Connector process events and the audit/selinux groups
exist in the initial namespace only: there the tests only listen (and run
``true``), they change nothing.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import dissect
from dissect.capture import open_capture
from dissect.commands.monitor import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from netns import named_netns, ns_run  # noqa: E402

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "AF_NETLINK"), reason="AF_NETLINK sockets need Linux"
)
ROOT = Path(__file__).resolve().parents[1]
NETLINK_ROUTE, NETLINK_CONNECTOR, NETLINK_KOBJECT_UEVENT = 0, 11, 15


class Monitor:
    """``nlshark monitor ARGS`` running in the background."""

    def __init__(self, *args: str, prefix: tuple[str, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "dissect.cli", "monitor", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.lines: list[str] = []
        self.stdout = b""  # everything read so far
        self._buf = b""
        first = self.proc.stderr.readline().decode()  # type: ignore[union-attr]
        if "monitoring " not in first:
            rest = self.finish()[1]
            raise AssertionError(f"monitor did not start: {first}{rest}")
        self.started = first

    def read_until(self, done: Callable[[list[dict]], bool], timeout: float = 20) -> list[dict]:
        """JSON lines read so far, once `done` says they suffice."""
        sel = selectors.DefaultSelector()
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        sel.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while not done(self.records()):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self._take(chunk)
        sel.close()
        return self.records()

    def read_to_end(self, timeout: float = 30) -> list[dict]:
        """Everything it prints until it exits by itself (read as it comes:
        a full pipe would stop it)."""
        return self.read_until(lambda _: self.proc.poll() is not None, timeout)

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines if line.strip()]

    def finish(self, sig: int = signal.SIGTERM, timeout: float = 20) -> tuple[int, str]:
        """Stop it (unless it ended by itself); exit code and all of stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        self._take(out)
        return self.proc.returncode, err.decode()

    def _take(self, chunk: bytes) -> None:
        self.stdout += chunk
        self._buf += chunk
        *complete, self._buf = self._buf.split(b"\n")
        self.lines += [c.decode(errors="replace") for c in complete]


def _types(records: list[dict]) -> set[str]:
    return {r["type_name"] for r in records}


def _has(records: list[dict], type_name: str, text: str) -> bool:
    return any(r["type_name"] == type_name and text in r["info"] for r in records)


@pytest.fixture
def ns():
    with named_netns("nlshark-mon") as name:
        yield name


def _veth_with_address_and_route(ns: str) -> None:
    ns_run(ns, "ip", "link", "add", "mv0", "type", "veth", "peer", "name", "mv1")
    ns_run(ns, "ip", "addr", "add", "192.0.2.1/24", "dev", "mv0")
    ns_run(ns, "ip", "link", "set", "mv0", "up")
    ns_run(ns, "ip", "link", "set", "mv1", "up")
    ns_run(ns, "ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.2")


def _route_done(records: list[dict]) -> bool:
    return (
        _has(records, "RTM_NEWLINK", "mv0")
        and _has(records, "RTM_NEWADDR", "192.0.2.1/24")
        and _has(records, "RTM_NEWROUTE", "198.51.100.0/24")
    )


def test_route_events_and_capture(ns, tmp_path):
    cap = tmp_path / "route.pcapng"
    mon = Monitor("route", "-T", "jsonl", "--netns", ns, "-w", str(cap))
    assert "route:link,ipv4-ifaddr" in mon.started and ns in mon.started
    _veth_with_address_and_route(ns)
    records = mon.read_until(_route_done)
    code, err = mon.finish()
    assert code == 0, err
    assert _route_done(records), sorted(_types(records))
    assert all(r["direction"] == "kernel->user" for r in records)
    assert all(r["protocol"] == "NETLINK_ROUTE" for r in records)
    assert "Traceback" not in err
    frames = max(r["frame"] for r in records)
    assert err.strip().splitlines()[-1] == f"nlshark monitor: {frames} frames"
    # The file holds the same frames: nlshark reads the same messages back,
    # byte for byte, with the multicast group in each packet comment.
    back = list(dissect.read_capture(cap))
    assert len(back) == frames
    again = [(f.number, m.type_name, m.info) for f in back for m in f.messages]
    assert again == [(r["frame"], r["type_name"], r["info"]) for r in records]
    with open_capture(cap) as reader:
        raws = list(reader)
    assert all(r.data[:16] == struct.pack(">HHH8sH", 6, 824, 0, bytes(8), 0) for r in raws)
    comments = {r.comment for r in raws}
    assert {"route group link (1)", "route group ipv4-ifaddr (5)"} <= comments
    assert "route group ipv4-route (7)" in comments
    if shutil.which("tshark"):
        # tshark sees the same rtnetlink message types in the same frames
        out = subprocess.run(
            ["tshark", "-r", str(cap), "-T", "fields", "-e", "frame.number",
             "-e", "netlink-route.nltype"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout  # fmt: skip
        theirs = {}
        for line in out.splitlines():
            num, _, types = line.partition("\t")
            theirs[int(num)] = [int(t) for t in types.split(",") if t]
        ours: dict[int, list[int]] = {}
        for r in records:
            ours.setdefault(r["frame"], []).append(r["netlink"]["type"])
        assert theirs == ours


def test_pcap_format_and_count(ns, tmp_path):
    cap = tmp_path / "two.pcap"
    mon = Monitor("route:link", "-c", "2", "-T", "jsonl", "--netns", ns, "-w", str(cap))
    ns_run(ns, "ip", "link", "add", "mc0", "type", "veth", "peer", "name", "mc1")
    ns_run(ns, "ip", "link", "set", "mc0", "up")
    mon.read_to_end()  # -c 2: it stops by itself
    code, err = mon.finish()
    assert code == 0, err
    records = mon.records()
    assert {r["frame"] for r in records} == {1, 2}
    assert _types(records) == {"RTM_NEWLINK"}
    assert cap.read_bytes()[:4] == struct.pack("<I", 0xA1B23C4D)  # pcap, nanoseconds
    assert len(list(dissect.read_capture(cap))) == 2


def test_capture_to_stdout(ns, tmp_path):
    """``-w -``: the pcapng goes to stdout and nothing else does."""
    mon = Monitor("route:link", "-c", "1", "--netns", ns, "-w", "-")
    ns_run(ns, "ip", "link", "add", "ms0", "type", "veth", "peer", "name", "ms1")
    mon.proc.wait(timeout=30)  # -c 1 ends it; one small frame fits the pipe
    code, err = mon.finish()
    assert code == 0, err
    cap = tmp_path / "stdout.pcapng"
    cap.write_bytes(mon.stdout)
    frames = list(dissect.read_capture(cap))
    assert len(frames) == 1 and frames[0].messages[0].type_name == "RTM_NEWLINK"


def test_duration_stops_quietly(ns):
    t0 = time.monotonic()
    mon = Monitor("route", "-a", "duration:1", "--netns", ns)
    mon.read_to_end()
    code, err = mon.finish()
    assert code == 0 and time.monotonic() - t0 >= 1
    assert mon.lines == [] and err.strip().endswith("0 frames")


def test_sigint_exits_zero_and_closes_json(ns):
    mon = Monitor("route:link", "-T", "json", "--netns", ns)
    ns_run(ns, "ip", "link", "add", "mj0", "type", "veth", "peer", "name", "mj1")
    time.sleep(0.5)
    code, err = mon.finish(signal.SIGINT)
    assert code == 0, err
    doc = json.loads("\n".join(mon.lines))
    assert doc["end"]["frames"] == len(doc["frames"]) >= 2
    assert doc["nlshark"]["monitor"] == ["route:link"]


@pytest.mark.skipif(shutil.which("ethtool") is None, reason="ethtool is not installed")
def test_genl_ethtool_notifications(ns):
    mon = Monitor("ethtool:monitor", "-T", "jsonl", "--netns", ns)
    assert "ethtool:monitor" in mon.started
    ns_run(ns, "ip", "link", "add", "me0", "type", "veth", "peer", "name", "me1")
    ns_run(ns, "ethtool", "-K", "me0", "tso", "off")
    records = mon.read_until(lambda r: _has(r, "ETHTOOL_MSG_FEATURES_NTF", "me0"))
    code, err = mon.finish()
    assert code == 0, err
    assert _has(records, "ETHTOOL_MSG_FEATURES_NTF", "me0"), records
    assert {r["family"] for r in records} == {"ethtool"}


def test_several_families_at_once(ns):
    mon = Monitor("route:ipv4-ifaddr", "nlctrl", "kobject_uevent", "-T", "jsonl", "--netns", ns)
    assert "nlctrl:notify" in mon.started and "kobject_uevent:kernel,udev" in mon.started
    ns_run(ns, "ip", "link", "add", "mk0", "type", "veth", "peer", "name", "mk1")
    ns_run(ns, "ip", "addr", "add", "192.0.2.9/24", "dev", "mk0")
    records = mon.read_until(
        lambda r: (
            _has(r, "RTM_NEWADDR", "192.0.2.9")
            and any(x["protocol"] == "NETLINK_KOBJECT_UEVENT" for x in r)
        )
    )
    code, err = mon.finish()
    assert code == 0 and "Traceback" not in err, err
    assert _has(records, "RTM_NEWADDR", "192.0.2.9")
    assert not _types(records) & {"RTM_NEWLINK"}  # not joined


def test_uevents_in_the_namespace(ns, tmp_path):
    """Creating a veth in a namespace sends its uevents to that namespace's
    KOBJECT_UEVENT sockets; they are not netlink messages (ACTION@DEVPATH and
    KEY=VALUE strings), and must reach the file as sent and show without a
    traceback whether or not a decoder for them is loaded."""
    cap = tmp_path / "uevent.pcapng"
    mon = Monitor("kobject_uevent:kernel", "-T", "jsonl", "--netns", ns, "-w", str(cap))
    ns_run(ns, "ip", "link", "add", "mu0", "type", "veth", "peer", "name", "mu1")
    # -w flushes every frame: the file tells when the link's own uevent came
    mon.read_until(lambda _: b"add@/devices/virtual/net/mu0\0" in cap.read_bytes())
    code, err = mon.finish()
    assert code == 0 and "Traceback" not in err, err
    with open_capture(cap) as reader:
        raws = list(reader)
    payloads = [r.data[16:] for r in raws]
    assert all(r.data[14:16] == struct.pack(">H", NETLINK_KOBJECT_UEVENT) for r in raws)
    assert any(p.startswith(b"add@/devices/virtual/net/mu0\0ACTION=add\0") for p in payloads)
    assert all(r.comment == "kobject_uevent group kernel (1)" for r in raws)
    # every frame read is shown (text and JSON) without a traceback
    proc = subprocess.run(
        [sys.executable, "-m", "dissect.cli", "-r", str(cap), "-V"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert proc.stdout.count("Frame ") >= len(raws)


def _proc_events(path: Path) -> list[tuple[int, tuple[int, ...]]]:
    """(what, fields) of each PROC_EVENT_* in a capture (linux/cn_proc.h:
    struct proc_event after struct cn_msg)."""
    out = []
    with open_capture(path) as reader:
        for raw in reader:
            d = raw.data[16:]
            if len(d) < 16 + 20 + 16 + 16:
                continue
            idx = struct.unpack_from("=I", d, 16)[0]
            what = struct.unpack_from("=I", d, 36)[0]
            if idx == 1:
                out.append((what, struct.unpack_from("=4I", d, 52)))
    return out


def test_connector_process_events(tmp_path):
    """Listening only, in the initial namespace: our PROC_CN_MCAST_LISTEN is
    acknowledged without error and the fork and exec of a child are seen."""
    cap = tmp_path / "proc.pcapng"
    mon = Monitor("connector", "-T", "jsonl", "-w", str(cap))
    child = subprocess.run(["true"], check=True)
    del child
    mon.read_until(lambda r: len({x["frame"] for x in r}) >= 3, timeout=5)
    code, err = mon.finish()
    assert code == 0 and "Traceback" not in err, err
    assert "refused PROC_CN_MCAST_LISTEN" not in err
    events = _proc_events(cap)
    assert events, "no process event received"
    # PROC_EVENT_NONE acknowledges the listen request with err 0 ...
    acks = [fields for what, fields in events if what == 0]
    assert acks and acks[0][0] == 0
    # ... and PROC_EVENT_FORK (1) / PROC_EVENT_EXEC (2) follow
    assert {what for what, _ in events} & {1, 2}


def test_connector_outside_the_initial_namespace(ns):
    proc = subprocess.run(
        [sys.executable, "-m", "dissect.cli", "monitor", "connector", "--netns", ns],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "initial network namespace" in proc.stderr


def test_receive_queue_overrun_is_a_warning(ns):
    """A tiny receive buffer and a stopped reader: the kernel drops events
    (ENOBUFS on the next read); monitoring goes on and later events arrive."""
    mon = Monitor("route:ipv4-ifaddr", "-B", "1", "-T", "jsonl", "--netns", ns)
    ns_run(ns, "ip", "link", "add", "mo0", "type", "veth", "peer", "name", "mo1")
    mon.proc.send_signal(signal.SIGSTOP)
    batch = "".join(f"address add 10.{i // 250}.{i % 250}.1/32 dev mo0\n" for i in range(300))
    subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch, text=True, check=True)
    mon.proc.send_signal(signal.SIGCONT)
    time.sleep(0.5)
    ns_run(ns, "ip", "addr", "add", "192.0.2.77/24", "dev", "mo0")
    records = mon.read_until(lambda r: _has(r, "RTM_NEWADDR", "192.0.2.77"))
    code, err = mon.finish()
    assert code == 0, err
    assert "receive queue overrun (ENOBUFS)" in err
    assert _has(records, "RTM_NEWADDR", "192.0.2.77")
    assert len(records) < 301  # some were lost
    assert "receive queue overruns" in err.strip().splitlines()[-1]


# ---------------------------------------------------------------------------
# Errors and the listing (in-process: nothing is joined)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nosuchfamily"], "unknown netlink family 'nosuchfamily'"),
        (["route:bogus"], "route has no multicast group 'bogus' (groups: link, notify,"),
        (["netfilter:conntrack-nope"], "(groups: conntrack-new, conntrack-update,"),
        (["nlctrl:nosuch"], "nlctrl has no multicast group 'nosuch' (groups: notify)"),
        (["route:"], "no group after ':'"),
        ([], "name at least one family"),
        (["route", "-a", "2"], "-a expects duration:SECONDS"),
        (["route", "-c", "0"], "-c expects a positive number"),
        (["route", "--netns", "nlshark-no-such-ns"], "nlshark-no-such-ns"),
    ],
)
def test_one_line_errors(capsys, argv, expected):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and expected in err, err


def test_unregistered_genl_family(capsys):
    # a name the controller does not know (genl names are at most 15 bytes)
    assert main(["nlshark_nofam"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "'nlshark_nofam'" in err
    assert "generic netlink family registered on this kernel" in err


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
def test_permission_denied_for_audit():
    if os.geteuid() != 0:
        pytest.skip("dropping a capability from root's bounding set needs root")
    proc = subprocess.run(
        ["setpriv", "--inh-caps=-audit_read", "--bounding-set=-audit_read", sys.executable,
         "-m", "dissect.cli", "monitor", "audit"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == (
        "nlshark monitor: cannot join audit:readlog (1): permission denied "
        "(needs CAP_AUDIT_READ; initial netns)\n"
    )


def test_route_all_skips_groups_the_kernel_lacks(ns):
    mon = Monitor("route:all", "--netns", ns, "-a", "duration:0.5")
    mon.read_to_end()
    code, err = mon.finish()
    assert code == 0
    assert "route:link,notify,neigh" in mon.started
    # groups newer than this kernel are named in warnings, never dropped silently
    joined = mon.started.split("route:", 1)[1].split(" ", 1)[0].split(",")
    warned = [line for line in err.splitlines() if "not joined" in line]
    assert len(joined) + len(warned) == 37


def test_list(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in out[1:]]
    assert rows[0][:5] == ["route", "0", "link", "1", "yes"]
    assert any(r[:4] == ["audit", "9", "readlog", "1"] for r in rows)
    assert any(r[:4] == ["kobject_uevent", "15", "udev", "2"] for r in rows)
    nlctrl = [r for r in rows if r[0] == "nlctrl"]
    assert nlctrl and nlctrl[0][1:6] == ["16", "(genl", "16)", "notify", "16"]
    assert main(["--list", "-T", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_name = {(g["family"], g["group"]): g for g in doc["groups"]}
    assert by_name[("route", "ipv6-route")]["id"] == 11
    assert by_name[("nlctrl", "notify")]["genl_id"] == 16


def test_group_words(monkeypatch):
    """Group names in any case, '-' or '_', with or without the header's
    prefix, by number for classic families; generic netlink names keep the
    kernel's spelling."""
    from dissect.capture import mcast

    fake = mcast.GenlFamily(28, "mptcp_pm", {"mptcp_pm_cmds": 8, "mptcp_pm_events": 9})
    monkeypatch.setattr(
        mcast, "find_genl", lambda name, netns: fake if name == "mptcp_pm" else None
    )
    (sub,) = mcast.resolve(["route:RTNLGRP_IPV4_IFADDR,ipv6_route,Link,27"])
    assert sub.groups == {"ipv4-ifaddr": 5, "ipv6-route": 11, "link": 1, "mpls-route": 27}
    assert sub.optional == set() and sub.protocol == 0
    (sub,) = mcast.resolve(["mptcp_pm:MPTCP-PM-EVENTS"])
    assert sub.groups == {"mptcp_pm_events": 9} and sub.genl_id == 28 and sub.protocol == 16
    (sub,) = mcast.resolve(["mptcp_pm"])  # all its groups
    assert list(sub.groups) == ["mptcp_pm_cmds", "mptcp_pm_events"]
    subs = mcast.resolve(["route:link", "netfilter:nftables", "route:all"])
    assert [s.family for s in subs] == ["route", "netfilter"]
    assert subs[0].groups["link"] == 1 and "link" not in subs[0].optional
    assert len(subs[0].groups) == 37 and "stats" in subs[0].optional
    assert subs[1].groups == {"nftables": 7}
    (sub,) = mcast.resolve(["connector"])
    assert sub.groups == {"proc": 1}
    (sub,) = mcast.resolve(["uevent"])
    assert sub.family == "kobject_uevent" and sub.groups == {"kernel": 1, "udev": 2}
