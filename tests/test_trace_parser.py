"""The strace text parser behind ``nlshark trace``, on recorded strace output.

tests/data/strace_sample.txt is strace 6.1's trace of
tests/data/strace_sample.py (how it was recorded is in that script): an
``ip link set lo up``, then one netlink request per way of moving data
(sendmsg with two iovecs, write/read, writev/readv on a dup'd fd, sendto,
send, sendmmsg, recvmsg into two buffers, recvfrom, recvmmsg), a MSG_PEEK
read, reads cut short by a small buffer (with and without MSG_TRUNC), an
EAGAIN, a receive in a second thread that strace shows as
``<unfinished ...>``/``<... resumed>``, a socket strace cannot name (unbound
generic netlink) and a forked child.  Every request carries its own sequence
number, so each expected frame is identified by it.
"""

from __future__ import annotations

import struct
from pathlib import Path

from dissect.api import decode_frames
from dissect.capture import PcapngWriter, open_capture
from dissect.capture.strace import (
    NetlinkIO,
    StraceParser,
    process_from_comment,
    protocol_number,
    split_args,
)
from dissect.commands.trace import frame_of
from dissect.core.netlink import Session

SAMPLE = Path(__file__).parent / "data" / "strace_sample.txt"

# (pid, comm, syscall, fd, protocol, outgoing, len(data), orig_len, truncated, seq)
EXPECTED = [
    (2523, "ip", "sendto", 3, 0, True, 32, 32, False, 0),
    (2523, "ip", "recvmsg", 3, 0, False, 52, 52, False, 0),
    (2523, "ip", "sendmsg", 4, 0, True, 48, 48, False, 1795853870),
    (2523, "ip", "recvmsg", 4, 0, False, 1100, 1100, False, 1795853870),
    (2523, "ip", "sendmsg", 3, 0, True, 32, 32, False, 1795853870),
    (2523, "ip", "recvmsg", 3, 0, False, 36, 36, False, 1795853870),
    (2521, "python3", "sendmsg", 3, 0, True, 24, 24, False, 1),
    (2521, "python3", "recvmsg", 3, 0, False, 76, 76, False, 1),
    (2521, "python3", "recvfrom", 3, 0, False, 20, 20, False, 1),
    (2521, "python3", "write", 3, 0, True, 24, 24, False, 2),
    (2521, "python3", "read", 3, 0, False, 76, 76, False, 2),
    (2521, "python3", "read", 3, 0, False, 20, 20, False, 2),
    (2521, "python3", "writev", 4, 0, True, 24, 24, False, 3),
    (2521, "python3", "readv", 4, 0, False, 76, 76, False, 3),
    (2521, "python3", "readv", 4, 0, False, 20, 20, False, 3),
    (2521, "python3", "sendto", 3, 0, True, 24, 24, False, 4),
    (2521, "python3", "recvmsg", 3, 0, False, 24, 24, True, 4),
    (2521, "python3", "recvfrom", 3, 0, False, 20, 20, False, 4),
    (2521, "python3", "sendto", 3, 0, True, 24, 24, False, 5),
    (2521, "python3", "recvfrom", 3, 0, False, 24, 76, True, 5),
    (2521, "python3", "recvfrom", 3, 0, False, 20, 20, False, 5),
    (2521, "python3", "sendto", 4, 16, True, 32, 32, False, 6),
    (2524, "python3", "recvfrom", 4, 16, False, 136, 136, False, 6),
    (2521, "python3", "sendmmsg", 3, 0, True, 32, 32, False, 7),
    (2521, "python3", "sendmmsg", 3, 0, True, 32, 32, False, 8),
    (2521, "python3", "recvmmsg", 3, 0, False, 52, 52, False, 7),
    (2521, "python3", "recvmmsg", 3, 0, False, 52, 52, False, 8),
    (2525, "python3", "sendto", 5, 0, True, 32, 32, False, 9),
    (2525, "python3", "recvfrom", 5, 0, False, 52, 52, False, 9),
]


def _sample() -> list[NetlinkIO]:
    # No /proc fallback: the recorded processes are long gone.
    with SAMPLE.open() as f:
        return list(StraceParser(netlink_protocol_of=None).parse(f))


def _dump_bytes(text: str) -> list[bytes]:
    """A second reading of the dump rows, independent of the parser: the
    bytes of every row block that follows a netlink call line."""
    blocks: list[bytes] = []
    cur: bytearray | None = None
    for line in text.splitlines():
        if line.startswith(" | "):
            if cur is not None:
                cur += bytes.fromhex(" ".join(line[3:].split("  ")[1:3]))
            continue
        if line.startswith((" * ", " = ")):
            continue
        if cur:
            blocks.append(bytes(cur))
        cur = bytearray() if "NETLINK" in line else None
    if cur:
        blocks.append(bytes(cur))
    return blocks


def test_sample_frames() -> None:
    got = [
        (
            io.pid,
            io.comm,
            io.syscall,
            io.fd,
            io.protocol,
            io.outgoing,
            len(io.data),
            io.orig_len,
            io.truncated,
            struct.unpack_from("<I", io.data, 8)[0],
        )
        for io in _sample()
    ]
    assert got == EXPECTED


def test_sample_bytes_are_whole_messages() -> None:
    """Every complete buffer is a run of whole netlink messages; a cut one
    starts with a message longer than what was kept."""
    for io in _sample():
        off = 0
        while off + 16 <= len(io.data):
            nlmsg_len = struct.unpack_from("<I", io.data, off)[0]
            assert nlmsg_len >= 16
            off += (nlmsg_len + 3) & ~3
        if io.truncated:
            assert off > len(io.data)
        else:
            assert off == len(io.data), io.comment


def test_sample_bytes_match_the_dump_rows() -> None:
    """What the parser took is what the rows show, in order (MSG_PEEK and
    cut-back reads aside, which the second reading does not know about)."""
    rows = _dump_bytes(SAMPLE.read_text())
    data = b"".join(io.data for io in _sample())
    assert data
    pos = 0
    for block in rows:
        i = data.find(block[:16], pos)
        if i < 0:
            continue  # a peeked datagram or bytes past a small buffer
        n = 0
        while n < len(block) and i + n < len(data) and data[i + n] == block[n]:
            n += 1
        assert n >= min(len(block), 24)
        pos = i + n
    assert pos == len(data)


def test_sample_drops_peeks_failures_and_other_fds() -> None:
    text = SAMPLE.read_text()
    assert "MSG_PEEK" in text and "EAGAIN" in text and "</usr/share" in text
    assert {io.syscall for io in _sample()} >= {"recvmsg", "recvfrom", "read", "readv"}
    # 3 peeks (ip's two recvmsg(MSG_PEEK|MSG_TRUNC), our recv(MSG_PEEK)) and one EAGAIN
    calls = [line for line in text.splitlines() if not line.startswith(" ") and "NETLINK:" in line]
    peeks = [c for c in calls if "MSG_PEEK" in c]
    assert len(peeks) == 3
    assert sum(1 for c in calls if "= -1 " in c) == 1


def test_unfinished_resumed_across_processes() -> None:
    lines = [
        "100<a> 1.000001 recvmsg(3<NETLINK:[ROUTE:100]>,  <unfinished ...>\n",
        "101<b> 1.000002 sendto(4<NETLINK:[GENERIC:101]>, ..., 20, 0, NULL, 0) = 20\n",
        " | 00000  14 00 00 00 10 00 01 00  05 00 00 00 00 00 00 00  ................ |\n",
        " | 00010  03 01 00 00                                       ....             |\n",
        "100<a> 1.000003 <... recvmsg resumed>{msg_name={sa_family=AF_NETLINK}, msg_iov=[...], msg_iovlen=1, msg_flags=0}, 0) = 20\n",
        " * 20 bytes in buffer 0\n",
        " | 00000  14 00 00 00 03 00 02 00  05 00 00 00 65 00 00 00  ............e... |\n",
        " | 00010  00 00 00 00                                       ....             |\n",
    ]
    ios = list(StraceParser().parse(lines))
    assert [(io.pid, io.comm, io.protocol, io.outgoing, io.ts_ns) for io in ios] == [
        (101, "b", 16, True, 1_000_002_000),
        (100, "a", 0, False, 1_000_003_000),
    ]
    assert ios[0].data == bytes.fromhex("1400000010000100050000000000000003010000")
    assert ios[1].data[4:6] == b"\x03\x00"


def test_pid_brackets_without_comm_and_proc_fallback() -> None:
    """``[pid N]`` prefixes (strace writing to a terminal), no comm (asked
    from a callback) and a socket known only by inode (family from the
    /proc fallback)."""
    asked: list[tuple[int, int]] = []

    def protocol_of(pid: int, inode: int) -> int | None:
        asked.append((pid, inode))
        return 15

    lines = [
        "[pid  7] 2.5 recvfrom(5<NETLINK:[4242]>, ..., 8192, 0, NULL, NULL) = 4\n",
        " | 00000  61 64 64 40                                       add@             |\n",
        '2.6 write(5<NETLINK:[4242]>, ""..., 2) = 2\n',
        " | 00000  61 62                                             ab               |\n",
    ]
    parser = StraceParser(comm_of=lambda pid: f"c{pid}", netlink_protocol_of=protocol_of)
    ios = list(parser.parse(lines))
    assert [(io.pid, io.comm, io.protocol, io.data, io.outgoing) for io in ios] == [
        (7, "c7", 15, b"add@", False),
        (0, "c0", 15, b"ab", True),  # the ascii column "ab" is not taken for hex
    ]
    assert asked == [(7, 4242)]  # the answer is kept per inode


def test_socket_call_names_an_unbound_socket_for_every_process() -> None:
    lines = [
        "10<x> 1.0 socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_AUDIT) = 3<NETLINK:[77]>\n",
        "11<x> 1.1 sendto(3<NETLINK:[77]>, ..., 16, 0, NULL, 0) = 16\n",
        " | 00000  10 00 00 00 e8 03 05 00  01 00 00 00 00 00 00 00  ................ |\n",
        "12<x> 1.2 sendto(3<NETLINK:[78]>, ..., 16, 0, NULL, 0) = 16\n",
        " | 00000  10 00 00 00 e8 03 05 00  01 00 00 00 00 00 00 00  ................ |\n",
    ]
    ios = list(StraceParser(netlink_protocol_of=None).parse(lines))
    assert [(io.pid, io.protocol) for io in ios] == [(11, 9), (12, None)]


def test_exec_renames_the_process() -> None:
    """strace 6.1 can keep showing the old name after a process execs."""
    lines = [
        '5<sh> 1.0 execve("/usr/sbin/ip", [...], 0x1 /* 3 vars */) = 0\n',
        "5<sh> 1.1 sendto(3<NETLINK:[ROUTE:5]>, ..., 16, 0, NULL, 0) = 16\n",
        " | 00000  10 00 00 00 12 00 01 00  01 00 00 00 00 00 00 00  ................ |\n",
        "5<ip> 1.2 sendto(3<NETLINK:[ROUTE:5]>, ..., 16, 0, NULL, 0) = 16\n",
        " | 00000  10 00 00 00 12 00 01 00  02 00 00 00 00 00 00 00  ................ |\n",
        '6<sh> 1.3 execve("/nope", [...], 0x1 /* 3 vars */) = -1 ENOENT (No such file or directory)\n',
        "6<sh> 1.4 sendto(3<NETLINK:[ROUTE:6]>, ..., 16, 0, NULL, 0) = 16\n",
        " | 00000  10 00 00 00 12 00 01 00  03 00 00 00 00 00 00 00  ................ |\n",
    ]
    assert [io.comm for io in StraceParser().parse(lines)] == ["ip", "ip", "sh"]


def test_helpers() -> None:
    assert protocol_number("ROUTE") == 0
    assert protocol_number("NETLINK_KOBJECT_UEVENT") == 15
    assert protocol_number("INET_DIAG") == 4
    assert protocol_number("23 /* NETLINK_??? */") == 23
    assert protocol_number("WHAT") is None
    assert split_args('3<NETLINK:[ROUTE:1]>, {a=[1, 2], b="x,)"}, 0') == [
        "3<NETLINK:[ROUTE:1]>",
        '{a=[1, 2], b="x,)"}',
        "0",
    ]
    io = NetlinkIO(1, 42, "ip link", 3, "recvmsg", 0, False, b"", 0, truncated=True)
    assert io.comment == "pid 42 (ip link) fd 3 recvmsg MSG_TRUNC"
    assert process_from_comment(io.comment) == (42, "ip link")
    assert process_from_comment("some other comment") is None
    assert process_from_comment(None) is None


def test_frames_written_and_read_back(tmp_path: Path) -> None:
    """pcapng frames keep direction (packet type), protocol and process."""
    ios = _sample()
    path = tmp_path / "t.pcapng"
    with PcapngWriter(path) as w:
        for n, io in enumerate(ios, 1):
            raw = frame_of(n, io)
            w.write(raw.data, raw.ts_ns, orig_len=raw.orig_len, comment=raw.comment)
    with open_capture(path) as reader:
        raws = list(reader)
    assert len(raws) == len(ios)
    for raw, io in zip(raws, ios):
        assert raw.data[16:] == io.data
        assert raw.data[:2] == (b"\x00\x04" if io.outgoing else b"\x00\x00")
        assert int.from_bytes(raw.data[14:16], "big") == io.protocol
        assert raw.orig_len == 16 + io.orig_len
    frames = list(decode_frames(Session(), raws))
    assert [f.process for f in frames] == [(io.pid, io.comm) for io in ios]
    assert [f.messages[0].direction for f in frames[:2]] == ["user->kernel", "kernel->user"]


def test_sample_processes() -> None:
    """The first process is the program; each pid leaves with its exit line."""
    parser = StraceParser(netlink_protocol_of=None)
    seen: set[int] = set()
    with SAMPLE.open() as f:
        for line in f:
            parser.feed(line)
            seen |= parser.pids
    assert parser.first_pid == 2521
    assert seen == {2521, 2522, 2523, 2524, 2525}
    assert parser.pids == set()
