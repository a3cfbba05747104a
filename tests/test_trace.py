"""``nlshark trace`` on this machine's kernel, against real programs.

Every command that changes anything runs in a network namespace the test
creates (``unshare -n``, or ``ip netns add`` where a second process must
join the same namespace); read-only commands may run in the host's.  The
byte-for-byte check reads strace's own text (``--strace-log``) with a small
parser of its own, independent of dissect.capture.strace.  Tools that are
not installed are skipped, each with its reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dissect.api import read_capture
from dissect.capture import CaptureError, open_capture

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")

NLSHARK = [sys.executable, "-m", "dissect.cli"]
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
NETLINK_ROUTE, NETLINK_SOCK_DIAG, NETLINK_AUDIT, NETLINK_NETFILTER = 0, 4, 9, 12
NETLINK_KOBJECT_UEVENT, NETLINK_GENERIC = 15, 16


def _can_unshare() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare not installed"
    p = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    return None if p.returncode == 0 else f"cannot create a network namespace: {p.stderr.strip()}"


NO_NETNS = _can_unshare()
needs_netns = pytest.mark.skipif(NO_NETNS is not None, reason=str(NO_NETNS))


def trace(
    tmp_path: Path,
    *command: str,
    netns: bool = True,
    setup: str = "",
    opts: tuple[str, ...] = ("-q",),
) -> subprocess.CompletedProcess[str]:
    """Run ``nlshark trace -q -w t.pcapng --strace-log s.txt -- COMMAND`` (in
    a fresh network namespace after `setup`, a shell line, when `netns`)."""
    argv = [
        *NLSHARK,
        "trace",
        "-w",
        str(tmp_path / "t.pcapng"),
        "--strace-log",
        str(tmp_path / "s.txt"),
        *opts,
        "--",
        *command,
    ]
    if netns:
        script = (setup + "\n" if setup else "") + 'exec "$@"'
        argv = ["unshare", "-n", "sh", "-ec", script, "sh", *argv]
    return subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=120)


def frames(tmp_path: Path) -> list:
    with open_capture(tmp_path / "t.pcapng") as reader:
        return list(reader)


def strace_buffers(text: str) -> list[tuple[bool, bytes]]:
    """(sent, bytes) of every netlink send/receive in strace's text, read
    with nothing but the dump rows: the data of calls on ``<NETLINK:`` fds
    that returned data, without MSG_PEEK reads."""
    out: list[tuple[bool, bytes]] = []
    cur: bytearray | None = None
    sent = False
    limit = 0
    for line in text.splitlines():
        if line.startswith(" | "):
            if cur is not None:
                cur += bytes.fromhex(line[line.index("  ") + 2 :][:49])
            continue
        if line.startswith((" * ", " = ")):
            continue
        if cur:
            out.append((sent, bytes(cur[:limit])))
        cur = None
        m = re.search(r" (sendto|sendmsg|recvfrom|recvmsg)\(\d+<NETLINK:.*\) = (\d+)$", line)
        if m and "MSG_PEEK" not in line and int(m.group(2)) > 0:
            cur = bytearray()
            sent = m.group(1).startswith("send")
            limit = int(m.group(2))
    if cur:
        out.append((sent, bytes(cur[:limit])))
    return out


def messages(data: bytes) -> list[tuple[int, int]]:
    """(nlmsg_len, nlmsg_type) of each message of a frame's netlink data."""
    out = []
    off = 16
    while off + 16 <= len(data):
        n, t = (
            int.from_bytes(data[off : off + 4], "little"),
            int.from_bytes(data[off + 4 : off + 6], "little"),
        )
        out.append((n, t))
        if n < 16:
            break
        off += (n + 3) & ~3
    return out


@needs_netns
def test_ip_link_show_is_byte_identical_to_strace(tmp_path: Path) -> None:
    setup = "ip link add v0 type veth peer name v1; ip link add br0 type bridge"
    p = trace(tmp_path, "ip", "-d", "link", "show", setup=setup)
    assert p.returncode == 0, p.stderr
    assert "v0@v1" in p.stdout and "bridge" in p.stdout  # the program's own output passes
    text = (tmp_path / "s.txt").read_text()
    assert "MSG_PEEK" in text  # iproute2 peeks; those reads must not become frames
    expected = strace_buffers(text)
    got = frames(tmp_path)
    assert len(expected) >= 5 and {sent for sent, _ in expected} == {True, False}
    assert [(r.data[:2] == b"\x00\x04", r.data[16:]) for r in got] == expected
    assert all(r.data[14:16] == b"\x00\x00" for r in got)  # NETLINK_ROUTE
    # The decoder sees the requests and the links.
    decoded = list(read_capture(tmp_path / "t.pcapng"))
    names = {m.type_name for f in decoded for m in f.messages}
    assert {"RTM_GETLINK", "RTM_NEWLINK", "NLMSG_DONE"} <= names
    assert all(f.process is not None and f.process[1] == "ip" for f in decoded)

    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    # tshark names the type of an rtnetlink message netlink-route.nltype.
    fields = ["frame.number", "netlink.hdr_len", "netlink.hdr_type", "netlink-route.nltype"]
    t = subprocess.run(
        ["tshark", "-r", str(tmp_path / "t.pcapng"), "-T", "fields", "-E", "occurrence=f"]
        + [arg for f in fields for arg in ("-e", f)],
        capture_output=True,
        text=True,
    )
    assert t.returncode == 0, t.stderr
    rows = [line.split("\t") for line in t.stdout.splitlines()]
    assert len(rows) == len(got)
    for row, raw in zip(rows, got):
        assert (int(row[1]), int(row[2] or row[3], 0)) == messages(raw.data)[0]


def test_live_output(tmp_path: Path) -> None:
    """Without -q the messages are printed as they come, between the
    program's own lines; JSON lines name the process."""
    p = trace(tmp_path, "ip", "link", "show", "lo", netns=False, opts=())
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("1: lo:") or any(line.startswith("1: lo:") for line in lines)
    ours = [line for line in lines if line.rstrip().endswith("]") and "[ip " in line]
    assert len(ours) == len(frames(tmp_path)) >= 4
    assert any("user->kernel rt-link    RTM_GETLINK lo" in line for line in ours)
    # The program shares stdout: keep its output out of the JSON lines.
    p = trace(tmp_path, "sh", "-c", "ip link show lo >/dev/null", netns=False, opts=("-T", "jsonl"))
    objs = [json.loads(line) for line in p.stdout.splitlines()]
    assert objs and all(o["process"]["comm"] == "ip" for o in objs)


@needs_netns
def test_several_processes_named(tmp_path: Path) -> None:
    p = trace(tmp_path, "sh", "-c", "ip link show; ip addr show")
    assert p.returncode == 0, p.stderr
    decoded = list(read_capture(tmp_path / "t.pcapng"))
    procs = {f.process for f in decoded}
    assert len(procs) == 2 and {c for _, c in procs} == {"ip"}
    # Comments carry them; nlshark -r shows them.
    r = subprocess.run(
        [*NLSHARK, "-r", str(tmp_path / "t.pcapng")], capture_output=True, text=True, env=ENV
    )
    for pid, comm in procs:
        assert f"[{comm} {pid}]" in r.stdout


@needs_netns
def test_large_dump_over_several_reads(tmp_path: Path) -> None:
    routes = "\n".join(f"route add 10.{i // 250}.{i % 250}.0/24 dev v0" for i in range(3000))
    (tmp_path / "routes").write_text(routes + "\n")
    setup = (
        f"ip link add v0 type veth peer name v1; ip link set v0 up; ip -batch {tmp_path / 'routes'}"
    )
    p = trace(tmp_path, "ip", "route", "show", setup=setup)
    assert p.returncode == 0, p.stderr
    shown = len(p.stdout.splitlines())
    assert shown >= 3000
    decoded = list(read_capture(tmp_path / "t.pcapng"))
    replies = [f for f in decoded if any(m.type_name == "RTM_NEWROUTE" for m in f.messages)]
    assert len(replies) >= 3  # the dump arrived in several recvmsg calls
    assert sum(len(f.messages) for f in replies) == shown
    assert decoded[-1].messages[-1].type_name == "NLMSG_DONE"


TRUNCATING = """
import socket, struct
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
req = lambda seq: struct.pack("=IHHII", 32, 18, 1, seq, 0) + struct.pack("=BxHiII", 0, 0, 1, 0, 0)
s.send(req(1)); s.recvmsg(64)                   # kernel: MSG_TRUNC in msg_flags
s.send(req(2)); s.recv(64, socket.MSG_TRUNC)    # returns the real length
"""


def test_truncated_reads(tmp_path: Path) -> None:
    p = trace(tmp_path, sys.executable, "-c", TRUNCATING, netns=False)
    assert p.returncode == 0, p.stderr
    got = frames(tmp_path)
    assert [len(r.data) - 16 for r in got] == [32, 64, 32, 64]
    assert got[1].comment.endswith("recvmsg MSG_TRUNC")
    assert got[3].comment.endswith("recvfrom MSG_TRUNC")
    real = messages(got[3].data)[0][0]
    assert real > 64 and got[3].orig_len == 16 + real  # the full length is known there
    decoded = list(read_capture(tmp_path / "t.pcapng"))
    assert decoded[3].messages[0].type_name == "RTM_NEWLINK"


def test_exit_status_passes_through(tmp_path: Path) -> None:
    p = trace(tmp_path, "sh", "-c", "echo out; echo err >&2; exit 7", netns=False)
    assert (p.returncode, p.stdout, p.stderr) == (7, "out\n", "err\n")
    p = trace(tmp_path, "sh", "-c", "kill -TERM $$", netns=False)
    assert p.returncode == 128 + signal.SIGTERM
    assert frames(tmp_path) == []


def test_errors(tmp_path: Path) -> None:
    p = trace(tmp_path, "no-such-command-xyz", netns=False)
    assert p.returncode == 127
    assert p.stderr == "nlshark trace: no-such-command-xyz: command not found\n"
    (tmp_path / "plain").write_text("")
    p = trace(tmp_path, str(tmp_path / "plain"), netns=False)
    assert p.returncode == 126 and p.stderr.count("\n") == 1
    p = trace(tmp_path, "true", netns=False, opts=("--strace", str(tmp_path / "nostrace")))
    assert p.returncode == 2
    assert "install strace (Debian/Ubuntu package 'strace')" in p.stderr
    assert p.stderr.count("\n") == 1
    p = subprocess.run([*NLSHARK, "trace"], capture_output=True, text=True, env=ENV)
    assert p.returncode == 2 and "nothing to trace" in p.stderr


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_ptrace_not_permitted(tmp_path: Path) -> None:
    """An unprivileged user may not attach to init: one clear line."""
    p = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            *NLSHARK,
            "trace",
            "-q",
            "-p",
            "1",
        ],
        capture_output=True,
        text=True,
        # A home it can read: nobody may not look into root's.
        env={k: v for k, v in ENV.items() if k != "XDG_CONFIG_HOME"} | {"HOME": "/nonexistent"},
        timeout=60,
    )
    assert p.returncode != 0
    assert p.stderr.startswith("nlshark trace: ptrace is not permitted here"), p.stderr
    assert p.stderr.count("\n") == 1, p.stderr


BLOCKING = """
import socket, struct, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.send(struct.pack("=IHHII", 32, 18, 1, 1, 0) + struct.pack("=BxHiII", 0, 0, 1, 0, 0))
s.recv(65536)
print("ready", flush=True)
s.recv(65536)   # nothing more comes: wait for SIGINT
"""


def _wait_frames(path: Path, n: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open_capture(path) as reader:
                if sum(1 for _ in reader) >= n:
                    return
        except (CaptureError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} frames in {path} after {timeout} s")


def test_sigint_is_forwarded_and_the_file_closed(tmp_path: Path) -> None:
    out = tmp_path / "t.pcapng"
    proc = subprocess.Popen(
        [*NLSHARK, "trace", "-q", "-w", str(out), "--", sys.executable, "-c", BLOCKING],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        _wait_frames(out, 2)
        proc.send_signal(signal.SIGINT)  # a kill, not the terminal: nlshark forwards it
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, stderr
    assert "ready" in stdout and "KeyboardInterrupt" in stderr
    assert len(frames(tmp_path)) == 2


def test_attach_to_a_running_process(tmp_path: Path) -> None:
    script = "import time, socket, struct\ntime.sleep(1.5)\n" + BLOCKING.split("\n", 2)[2].replace(
        "s.recv(65536)   # nothing more comes: wait for SIGINT", ""
    )
    target = subprocess.Popen(
        [sys.executable, "-c", "import socket, struct\n" + script], stdout=subprocess.PIPE
    )
    try:
        p = subprocess.run(
            [*NLSHARK, "trace", "-q", "-w", str(tmp_path / "t.pcapng"), "-p", str(target.pid)],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=60,
        )
    finally:
        target.wait(timeout=30)
    assert p.returncode == 0, p.stderr
    decoded = list(read_capture(tmp_path / "t.pcapng"))
    assert [m.type_name for f in decoded for m in f.messages] == ["RTM_GETLINK", "RTM_NEWLINK"]
    # The kernel names a process after the file it executed, cut to 15 bytes.
    assert {f.process for f in decoded} == {(target.pid, Path(sys.executable).name[:15])}


@pytest.fixture
def named_netns():
    if shutil.which("ip") is None:
        pytest.skip("iproute2 not installed")
    name = f"nlshark-trace-{os.getpid()}"
    p = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"ip netns add: {p.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_socket_in_another_netns(tmp_path: Path, named_netns: str) -> None:
    """strace cannot name the family of a socket in another namespace
    (``NETLINK:[inode]``); the socket() call that made it can."""
    p = trace(tmp_path, "ip", "netns", "exec", named_netns, "ip", "link", "show", netns=False)
    assert p.returncode == 0, p.stderr
    assert re.search(r"sendto\(\d+<NETLINK:\[\d+\]>", (tmp_path / "s.txt").read_text())
    got = frames(tmp_path)
    assert got and all(r.data[14:16] == b"\x00\x00" for r in got)
    names = [m.type_name for f in read_capture(tmp_path / "t.pcapng") for m in f.messages]
    assert "RTM_NEWLINK" in names


def test_udevadm_monitor_uevents_and_sigint(tmp_path: Path, named_netns: str) -> None:
    """KOBJECT_UEVENT, which nlmon never mirrors; udevadm stops on the SIGINT
    nlshark forwards."""
    if shutil.which("udevadm") is None:
        pytest.skip("udevadm not installed (Debian package udev)")
    out = tmp_path / "t.pcapng"
    argv = ["ip", "netns", "exec", named_netns, *NLSHARK, "trace", "-q", "-w", str(out)]
    proc = subprocess.Popen(
        [*argv, "--", "udevadm", "monitor", "--kernel"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        # udevadm subscribes some time after it starts: add veth pairs until
        # it has seen one.
        for n in range(10):
            time.sleep(1)
            pair = (
                ["u0", "type", "veth", "peer", "name", "u1"]
                if n == 0
                else [f"w{n}", "type", "veth"]
            )
            subprocess.run(["ip", "-n", named_netns, "link", "add", *pair], check=True)
            try:
                _wait_frames(out, 1, timeout=3)
                break
            except AssertionError:
                continue
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert re.search(r"add +/devices/virtual/net/(u0|w\d)", stdout)
    got = frames(tmp_path)
    assert got and all(r.data[14:16] == NETLINK_KOBJECT_UEVENT.to_bytes(2, "big") for r in got)
    assert all(r.data[:2] == b"\x00\x00" for r in got)  # received
    assert any(re.match(rb"add@/devices/virtual/net/(u0|w\d)\0", r.data[16:]) for r in got)
    assert all(r.comment.split(") ")[0].endswith("(udevadm") for r in got)


TOOLS = [
    ("ip addr", ["ip", "addr", "show"], NETLINK_ROUTE, "RTM_GETADDR", "iproute2"),
    ("ip route", ["ip", "route", "show"], NETLINK_ROUTE, "RTM_GETROUTE", "iproute2"),
    ("ip rule", ["ip", "rule", "show"], NETLINK_ROUTE, "RTM_GETRULE", "iproute2"),
    ("ip neigh", ["ip", "neigh", "show"], NETLINK_ROUTE, "RTM_GETNEIGH", "iproute2"),
    ("tc qdisc", ["tc", "qdisc", "show"], NETLINK_ROUTE, "RTM_GETQDISC", "iproute2"),
    ("ss -a", ["ss", "-a"], NETLINK_SOCK_DIAG, None, "iproute2"),
    ("nft list ruleset", ["nft", "list", "ruleset"], NETLINK_NETFILTER, None, "nftables"),
    ("ethtool lo", ["ethtool", "lo"], NETLINK_GENERIC, None, "ethtool"),
    ("genl ctrl list", ["genl", "ctrl", "list"], NETLINK_GENERIC, "CTRL_CMD_GETFAMILY", "iproute2"),
    ("auditctl -s", ["auditctl", "-s"], NETLINK_AUDIT, None, "auditd"),
]


@needs_netns
@pytest.mark.parametrize(
    ("name", "command", "protocol", "request_type", "package"), TOOLS, ids=[t[0] for t in TOOLS]
)
def test_tools(
    tmp_path: Path,
    name: str,
    command: list[str],
    protocol: int,
    request_type: str | None,
    package: str,
) -> None:
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} not installed (Debian package {package})")
    # auditd's socket answers in the initial network namespace only; auditctl -s changes nothing.
    p = trace(tmp_path, *command, netns=protocol != NETLINK_AUDIT)
    got = [r for r in frames(tmp_path) if r.data[14:16] == protocol.to_bytes(2, "big")]
    assert any(r.data[:2] == b"\x00\x04" for r in got), (p.returncode, p.stderr)
    assert any(r.data[:2] == b"\x00\x00" for r in got), (p.returncode, p.stderr)
    if request_type is not None:
        names = {m.type_name for f in read_capture(tmp_path / "t.pcapng") for m in f.messages}
        assert request_type in names
    if name == "ethtool lo":
        families = {m.family for f in read_capture(tmp_path / "t.pcapng") for m in f.messages}
        assert "ethtool" in families


CTRL_C = BLOCKING.replace(
    "s.recv(65536)   # nothing more comes: wait for SIGINT",
    """import signal
def first(*_):
    print("SIGINT", flush=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGINT, first)
s.recv(65536)   # the first ^C is caught and the wait goes on; the second ends it""",
)


def test_ctrl_c_at_a_terminal(tmp_path: Path) -> None:
    """^C typed at a terminal reaches nlshark, strace and the program at once
    (the foreground process group): a program that catches the first one goes
    on, the second stops it, and nlshark writes everything and exits 130.
    (Whether nlshark also forwarded the signal cannot be seen here: the
    kernel merges a second SIGINT that arrives while the first is pending.)"""
    import pty

    out = tmp_path / "t.pcapng"
    argv = [*NLSHARK, "trace", "-q", "-w", str(out), "--", sys.executable, "-c", CTRL_C]
    pid, master = pty.fork()
    if pid == 0:  # a new session whose controlling terminal is the pty
        os.execve(sys.executable, argv, ENV)
    text = b""
    status = None
    try:
        _wait_frames(out, 2)
        os.write(master, b"\x03")  # the terminal's interrupt character
        end = time.monotonic() + 20
        while b"SIGINT" not in text and time.monotonic() < end:
            text += os.read(master, 4096)
        time.sleep(1)
        assert os.waitpid(pid, os.WNOHANG) == (0, 0), text  # one SIGINT only: still waiting
        os.write(master, b"\x03")
        _, status = os.waitpid(pid, 0)
        with contextlib.suppress(OSError):
            while chunk := os.read(master, 4096):
                text += chunk
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)
    assert text.count(b"SIGINT") == 1, text
    assert b"KeyboardInterrupt" in text
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGINT, text
    assert len(frames(tmp_path)) == 2
