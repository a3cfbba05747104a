"""Live capture on this machine: header rebuild, the receive loop, -w/-b/-a,
signals, the interface checks and their error messages.

This kernel has no nlmon module, so the receive loop is driven through its
test seam: `FakeSource` answers ``recvmsg_into`` the way a packet socket on
an nlmon device does (netlink bytes, ``sockaddr_ll`` as Python's address
tuple, SCM_TIMESTAMPNS ancillary data, MSG_TRUNC lengths).  The real packet
socket code (bind, timestamps, MSG_TRUNC, PACKET_STATISTICS) is exercised on
the loopback device of a network namespace the test creates.  The real nlmon
path is tests/test_live_vm.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dissect.capture import open_capture
from dissect.capture.frame import RawFrame
from dissect.capture.linktypes import ARPHRD_NETLINK, PACKET_OUTGOING, netlink_pseudo_header
from dissect.capture.live import (
    SCM_TIMESTAMPNS,
    LiveCapture,
    PortOwnerLookup,
    cooked_header,
)
from dissect.capture.ring import CaptureSink, ConditionError, parse_conditions
from dissect.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nlbuild as B  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"
RTM_NEWLINK = 16


def newlink(seq: int, pid: int = 0) -> bytes:
    return B.msg(RTM_NEWLINK, 0, B.ifinfomsg(index=seq) + B.string(3, f"d{seq}"), seq, pid)


class FakeSource:
    """A packet socket on an nlmon device, as the receive loop sees it.

    `packets` are (netlink bytes, protocol, kernel ts_ns or None); when they
    are used up, a blocking wait times out after the socket timeout (or
    `on_empty` runs), and a non-blocking one finds nothing queued.
    """

    def __init__(self, packets: list[tuple[bytes, int, int | None]], on_empty=None) -> None:
        self.packets = list(packets)
        self.timeout: float | None = None
        self.on_empty = on_empty
        self.closed = False
        self.stats = struct.pack("@II", 0, 0)

    def recvmsg_into(self, buffers, ancbufsize=0, flags=0):
        if not self.packets:
            if self.timeout == 0:
                raise BlockingIOError(11, "no packet queued")
            if self.on_empty is not None:
                self.on_empty()
            if not self.packets:
                time.sleep(self.timeout or 0)
                raise TimeoutError("timed out")
        data, proto, ts = self.packets.pop(0)
        buf = buffers[0]
        n = min(len(data), len(buf))
        buf[:n] = data[:n]
        anc = []
        if ts is not None:
            anc.append((socket.SOL_SOCKET, SCM_TIMESTAMPNS, struct.pack("@ll", *divmod(ts, 10**9))))
        size = len(data) if flags & socket.MSG_TRUNC else n
        return size, anc, 0, ("nlmon0", proto, PACKET_OUTGOING, ARPHRD_NETLINK, b"")

    def settimeout(self, value):
        self.timeout = value

    def setblocking(self, flag):
        self.timeout = None if flag else 0

    def getsockopt(self, level, option, size):
        return self.stats

    def close(self):
        self.closed = True


# ---------------------------------------------------------------- the header


@pytest.mark.parametrize("name", ["quickstart.pcap", "genl_misc.pcap", "routes_multi.pcapng"])
def test_rebuilt_header_matches_tcpdump_and_dumpcap(name: str) -> None:
    """Every frame libpcap wrote on nlmon0 starts with exactly the header we
    rebuild from the sockaddr_ll nlmon gives (pkttype OUTGOING, ARPHRD_NETLINK,
    no address, the frame's protocol)."""
    path = CAPTURES / name
    if not path.exists():
        pytest.skip(f"{name} is not in captures/")
    protocols = set()
    with open_capture(path) as reader:
        for raw in reader:
            proto = int.from_bytes(raw.data[14:16], "big")
            protocols.add(proto)
            assert cooked_header(PACKET_OUTGOING, ARPHRD_NETLINK, b"", proto) == raw.data[:16]
    assert protocols  # the capture had frames


def test_cooked_header_other_link_types() -> None:
    assert cooked_header(4, 824, b"", 16) == netlink_pseudo_header(16)
    # loopback: ARPHRD 772, a 6-byte address padded to 8, ETH_P_IP
    hdr = cooked_header(0, 772, bytes(6), 0x0800)
    assert hdr == bytes.fromhex("0000 0304 0006 000000000000 0000 0800")


# ---------------------------------------------------------------- the loop


def test_frames_carry_kernel_time_protocol_and_wire_length() -> None:
    big = newlink(3) + bytes(300)
    src = FakeSource(
        [(newlink(1), 0, 1_700_000_000_123_456_789), (newlink(2), 16, None), (big, 0, 5)]
    )
    cap = LiveCapture("nlmon0", source=src, snaplen=16 + 100)
    before = time.time_ns()
    frames = list(cap.frames(count=3))
    assert [f.number for f in frames] == [1, 2, 3]
    assert frames[0].ts_ns == 1_700_000_000_123_456_789
    assert frames[1].ts_ns >= before  # no ancillary data: the time of receipt
    assert frames[0].data == netlink_pseudo_header(0) + newlink(1)
    assert frames[1].data[:16] == netlink_pseudo_header(16)
    # cut at the snaplen, the wire length kept (MSG_TRUNC)
    assert len(frames[2].data) == 116 and frames[2].orig_len == 16 + len(big)
    assert cap.stats.captured == 3


def test_duration_ends_an_idle_capture() -> None:
    cap = LiveCapture("nlmon0", source=FakeSource([(newlink(1), 0, None)]))
    t0 = time.monotonic()
    frames = list(cap.frames(duration=0.5))
    elapsed = time.monotonic() - t0
    assert len(frames) == 1
    assert 0.45 <= elapsed < 1.5


def test_stop_request_drains_what_is_queued() -> None:
    """A stop (signal) arriving while the socket still holds packets: those
    were captured before it, so they are handed out, then the loop ends."""
    packets = [(newlink(i), 0, None) for i in range(1, 6)]
    src = FakeSource(packets[:2])
    cap = LiveCapture("nlmon0", source=src)
    got = []
    for frame in cap.frames():
        got.append(frame)
        if len(got) == 2:
            src.packets.extend(packets[2:])
            cap.request_stop()
    assert [f.number for f in got] == [1, 2, 3, 4, 5]


def test_count_limits_drain_too() -> None:
    src = FakeSource([(newlink(i), 0, None) for i in range(1, 6)])
    cap = LiveCapture("nlmon0", source=src)
    cap.request_stop()
    assert len(list(cap.frames(count=2))) == 2


def test_kernel_statistics_line() -> None:
    src = FakeSource([])
    src.stats = struct.pack("@II", 7, 2)
    cap = LiveCapture("nlmon0", source=src)
    assert list(cap.frames(duration=0.05)) == []
    cap.kernel_stats()
    assert cap.stats.line() == "0 packets captured, 7 received by filter, 2 dropped by kernel"
    cap.close()
    assert not src.closed  # a source handed in belongs to the caller


# ------------------------------------------------------- process attribution


class FakeOwners:
    def __init__(self) -> None:
        self.table: dict[tuple[int, int], tuple[int, str]] = {}
        self.refreshes = 0
        self.pending: dict[tuple[int, int], tuple[int, str]] = {}

    def refresh(self) -> None:
        self.refreshes += 1
        self.table.update(self.pending)

    def lookup(self, protocol: int, portid: int) -> tuple[int, str] | None:
        return self.table.get((protocol, portid))


def test_port_owner_lookup_refreshes_at_most_once_a_second() -> None:
    owners = FakeOwners()
    owners.table[(0, 4242)] = (4242, "ip")
    lookup = PortOwnerLookup(owners)
    frame = netlink_pseudo_header(0)
    assert lookup(0, frame + newlink(1, pid=4242)) == (4242, "ip")
    assert lookup(0, frame + newlink(1, pid=0)) is None  # the kernel: nobody
    assert owners.refreshes == 0
    owners.pending[(16, 77)] = (77, "genl")
    assert lookup(16, frame + newlink(1, pid=77)) == (77, "genl")  # unknown: refresh
    assert owners.refreshes == 1
    assert lookup(16, frame + newlink(1, pid=78)) is None  # within the second: no refresh
    assert owners.refreshes == 1
    lookup._last_refresh -= 2  # a second later
    assert lookup(16, frame + newlink(1, pid=78)) is None  # refreshed, still unknown
    assert owners.refreshes == 2
    lookup._last_refresh -= 2
    assert lookup(16, frame + newlink(1, pid=78)) is None  # known to be unknown: no refresh
    assert owners.refreshes == 2
    owners.pending[(16, 79)] = (79, "late")
    assert lookup(16, frame + newlink(1, pid=79)) == (79, "late")
    assert owners.refreshes == 3


def test_frames_name_their_process_in_the_summary(capsys) -> None:
    from dissect.api import decode_frames, default_registry
    from dissect.core.netlink import Session
    from dissect.render.output import FrameOutput

    owners = FakeOwners()
    owners.table[(0, 999)] = (999, "nmcli")
    cap = LiveCapture(
        "nlmon0",
        source=FakeSource([(newlink(1, pid=999), 0, None)]),
        owner_of=PortOwnerLookup(owners),
    )
    out = FrameOutput(sys.stdout, live=True)
    out.write_all(decode_frames(Session(default_registry()), cap.frames(count=1)))
    assert capsys.readouterr().out.rstrip().endswith("[nmcli 999]")


# ---------------------------------------------------------------- -b, -a


def raw(n: int, size: int = 200) -> RawFrame:
    data = netlink_pseudo_header(0) + newlink(n) + bytes(size)
    return RawFrame(n, 1_700_000_000_000_000_000 + n * 1000, 253, data, len(data))


@pytest.mark.parametrize("ext,pcapng", [(".pcap", False), (".pcapng", True)])
def test_ring_buffer_keeps_the_newest_files(tmp_path: Path, ext: str, pcapng: bool) -> None:
    sink = CaptureSink(
        str(tmp_path / f"ring{ext}"), pcapng=pcapng, ring_filesize_kb=1, ring_files=3
    )
    for n in range(1, 41):
        sink.write(raw(n))
    sink.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and sink.files_opened > 3
    pattern = re.compile(rf"ring_(\d{{5}})_\d{{14}}{re.escape(ext)}")
    numbers = [int(pattern.fullmatch(name).group(1)) for name in names]  # type: ignore[union-attr]
    assert numbers == list(range(sink.files_opened - 2, sink.files_opened + 1))
    # the kept files hold the last frames, in order, and each is complete
    seen = []
    for name in names:
        with open_capture(tmp_path / name) as reader:
            frames = list(reader)
        assert frames
        seen += [int.from_bytes(f.data[24:28], "little") for f in frames]  # nlmsg_seq
        size = (tmp_path / name).stat().st_size
        assert size < 1000 + len(raw(1).data) + 40  # rotated once it reached 1 kB
    assert seen == list(range(seen[0], 41))


def test_conditions_parse_and_refuse() -> None:
    assert parse_conditions(
        ["duration:1.5", "files:2"], {"duration": float, "files": int}, "-a"
    ) == {
        "duration": 1.5,
        "files": 2,
    }
    for bad in [
        "duration",
        "duration:",
        "duration:-1",
        "duration:0",
        "size:3",
        "files:1.5",
        "duration:nan",
    ]:
        with pytest.raises(ConditionError):
            parse_conditions([bad], {"duration": float, "files": int}, "-a")


# ------------------------------------------------------------ command line


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_no_such_interface(capsys) -> None:
    code, out, err = run(capsys, "-i", "nope0")
    assert code == 2 and not out
    assert err.strip() == (
        "nlshark: no such interface: nope0 (nlshark -D lists them; --create-nlmon makes nlmon0)"
    )


def test_not_an_nlmon_interface(capsys) -> None:
    code, _, err = run(capsys, "-i", "lo")
    assert code == 2
    assert err.startswith("nlshark: lo is not an nlmon interface (it is loopback, ARPHRD 772)")
    assert err.count("\n") == 1


def test_list_interfaces(capsys) -> None:
    code, out, err = run(capsys, "-D")
    assert code == 0
    lines = out.splitlines()
    names = [line.split()[1] for line in lines]
    assert [n for _, n in sorted(socket.if_nameindex())] == names
    lo = next(line for line in lines if line.split()[1] == "lo")
    assert lo.split()[2] == "loopback"
    nlmon = [
        name
        for name in names
        if Path(f"/sys/class/net/{name}/type").exists()
        and Path(f"/sys/class/net/{name}/type").read_text().strip() == "824"
    ]
    if not nlmon:
        assert "no nlmon interface here" in err
    for line in lines:
        assert ("<- nlmon" in line) == (line.split()[1] in nlmon)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["-i", "lo", "-a", "duration:x"], "-a duration needs a positive number, got 'x'"),
        (
            ["-i", "lo", "-a", "bogus:1"],
            "-a expects one of duration:N, packets:N, filesize:N, files:N; got 'bogus:1'",
        ),
        (["-i", "lo", "-b", "filesize:10"], "-b needs a file to write: -w FILE"),
        (["-i", "lo", "-w", "x.pcap", "-b", "files:3"], "-b files:N needs -b filesize:KB"),
        (["-i", "lo", "-a", "files:2"], "-a files:N needs a ring buffer: -b filesize:KB"),
        (["-i", "lo", "-a", "filesize:2"], "-a filesize:KB needs a file to write: -w FILE"),
        (["-r", "x.pcap", "-a", "duration:2"], "-a stops a live capture"),
        (["-i", "lo", "-w", "-", "-b", "filesize:1"], "-b cannot rotate standard output"),
    ],
)
def test_bad_conditions(capsys, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and not out
    assert err.startswith("nlshark: " + message) and err.count("\n") == 1


def test_copy_a_file_with_count(capsys, tmp_path: Path) -> None:
    src = CAPTURES / "quickstart.pcap"
    out_pcap = tmp_path / "first5.pcap"
    code, out, _ = run(capsys, "-r", str(src), "-c", "5", "-w", str(out_pcap))
    assert code == 0 and len(out.splitlines()) >= 5  # summaries still printed
    with open_capture(src) as a, open_capture(out_pcap) as b:
        orig = [(f.data, f.ts_ns // 1000) for f in a][:5]
        copy = [(f.data, f.ts_ns // 1000) for f in b]
    assert copy == orig
    out_ng = tmp_path / "all.pcapng"
    code, out, _ = run(capsys, "-q", "-r", str(src), "-w", str(out_ng))
    assert code == 0 and out == ""
    assert out_ng.read_bytes()[:4] == bytes.fromhex("0a0d0d0a")
    with open_capture(out_ng) as b:
        assert len(list(b)) == 116


def _root_with_netns() -> str | None:
    if os.geteuid() != 0:
        return "needs root (packet sockets, network namespaces)"
    if not shutil.which("unshare"):
        return "unshare (util-linux) not installed"
    r = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return None if r.returncode == 0 else "cannot create a network namespace"


def test_create_nlmon_without_the_module() -> None:
    """In a namespace of its own: the kernel refuses the link kind; nlshark
    names the missing module (this machine's kernel has none)."""
    why = _root_with_netns()
    if why:
        pytest.skip(why)
    if (
        Path("/sys/module/nlmon").exists()
        or subprocess.run(["modinfo", "nlmon"], capture_output=True).returncode == 0
    ):
        pytest.skip("this kernel has the nlmon module")
    r = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "dissect.cli", "--create-nlmon", "-c", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert "cannot create nlmon0: the kernel has no nlmon support" in r.stderr
    assert "nlmon module is missing" in r.stderr and r.stderr.count("\n") == 1


def test_no_permission_for_a_packet_socket() -> None:
    """As an unprivileged user, socket(AF_PACKET) fails with EPERM."""
    code = (
        "import os\n"
        "from dissect.capture.live import open_packet_socket, LiveCaptureError\n"
        "if os.geteuid() == 0: os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "try:\n    open_packet_socket('lo')\nexcept LiveCaptureError as e:\n    print(e)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        "no permission to capture on lo: packet sockets need root or CAP_NET_RAW"
    )


LOOPBACK_SCRIPT = r"""
import socket, subprocess, sys, time, json
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
from dissect.capture.live import LiveCapture, open_packet_socket
cap = LiveCapture("lo", source=open_packet_socket("lo"))
t0 = time.time_ns()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"x" * 1000, ("127.0.0.1", 9))
frames = list(cap.frames(count=1))
cap.snaplen  # noqa
cap.kernel_stats()
f = frames[0]
print(json.dumps({"t0": t0, "ts": f.ts_ns, "head": f.data[:16].hex(), "len": len(f.data),
                  "orig": f.orig_len, "recv": cap.stats.kernel_received,
                  "drop": cap.stats.kernel_dropped}))
"""


def test_real_packet_socket_on_loopback() -> None:
    """The packet socket code on a real interface (loopback of a private
    namespace): kernel timestamps, the cooked header from sockaddr_ll,
    wire lengths and PACKET_STATISTICS."""
    why = _root_with_netns()
    if why:
        pytest.skip(why)
    import json

    r = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", LOOPBACK_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    # pkttype OUTGOING (first copy, on transmit), ARPHRD_LOOPBACK, 6-byte
    # address (zero), protocol ETH_P_IP
    assert got["head"] == "00040304000600000000000000000800"
    assert got["len"] == got["orig"] == 16 + 20 + 8 + 1000
    assert got["t0"] <= got["ts"] <= got["t0"] + 5 * 10**9
    assert got["recv"] >= 1 and got["drop"] == 0


# ------------------------------------------------------------------ signals

ENDLESS_SCRIPT = r"""
import struct, sys, time, socket
sys.path.insert(0, sys.argv[1])
import test_live as T
from dissect.capture import live
from dissect import cli

class Endless(T.FakeSource):
    # a busy nlmon device: a new RTM_NEWLINK every 5 ms, forever
    def __init__(self):
        super().__init__([])
        self.seq = 0
        self.stats = b""
    def recvmsg_into(self, buffers, ancbufsize=0, flags=0):
        if not self.packets and self.timeout != 0:
            time.sleep(0.005)
            self.seq += 1
            self.packets.append((T.newlink(self.seq), 0, None))
        return super().recvmsg_into(buffers, ancbufsize, flags)
    def getsockopt(self, level, option, size):
        return struct.pack("@II", self.seq, 0)

live.check_nlmon = lambda name: None
live.open_packet_socket = lambda name, rcvbuf=0: Endless()
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("fmt", ["x.pcap", "x.pcapng"])
def test_signal_stops_cleanly(tmp_path: Path, sig: int, fmt: str) -> None:
    script = tmp_path / "endless.py"
    script.write_text(ENDLESS_SCRIPT)
    out_file = tmp_path / fmt
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(Path(__file__).parent),
            "-i",
            "nlmon0",
            "-w",
            str(out_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stderr is not None
    assert proc.stderr.readline().strip() == "Capturing on 'nlmon0'"
    time.sleep(1.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    m = re.fullmatch(
        r"(\d+) packets captured, (\d+) received by filter, 0 dropped by kernel\n", err
    )
    assert m, err
    captured = int(m.group(1))
    assert captured >= 20
    with open_capture(out_file) as reader:  # complete: no truncation error
        seqs = [int.from_bytes(f.data[24:28], "little") for f in reader]
    assert seqs == list(range(1, captured + 1))
    assert len(out.splitlines()) == captured  # every frame printed as well
    if shutil.which("tshark"):
        r = subprocess.run(
            ["tshark", "-r", str(out_file)], capture_output=True, text=True, timeout=300
        )
        assert r.returncode == 0 and len(r.stdout.splitlines()) == captured


def run_endless(tmp_path: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    script = tmp_path / "endless.py"
    script.write_text(ENDLESS_SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), str(Path(__file__).parent), "-i", "nlmon0", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_autostop_duration_and_json_trailer(tmp_path: Path) -> None:
    import json

    t0 = time.monotonic()
    r = run_endless(tmp_path, "-a", "duration:1", "-T", "json")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 20
    doc = json.loads(r.stdout)
    n = len(doc["frames"])
    assert n >= 10
    assert doc["end"] == {
        "frames": n,
        "packets_captured": n,
        "received_by_filter": n,
        "dropped_by_kernel": 0,
    }
    assert doc["nlshark"]["interface"] == "nlmon0"


def test_autostop_files_of_a_ring(tmp_path: Path) -> None:
    r = run_endless(
        tmp_path,
        "-q",
        "-w",
        str(tmp_path / "r.pcapng"),
        "-b",
        "filesize:1",
        "-b",
        "files:2",
        "-a",
        "files:3",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    kept = sorted(p.name for p in tmp_path.glob("r_*.pcapng"))
    assert [name[:8] for name in kept] == ["r_00002_", "r_00003_"]
    seqs = []
    for name in kept:
        with open_capture(tmp_path / name) as reader:
            seqs += [int.from_bytes(f.data[24:28], "little") for f in reader]
    captured = int(r.stderr.splitlines()[-1].split()[0])
    assert seqs == list(range(seqs[0], captured + 1))  # the ring ends with the last frame


def test_autostop_packets(tmp_path: Path) -> None:
    r = run_endless(tmp_path, "-a", "packets:7", "-c", "9")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 7
    assert r.stderr.splitlines()[-1].startswith("7 packets captured")
