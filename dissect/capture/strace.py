"""Netlink traffic recovered from strace's text output.

``nlshark trace`` runs a program under ``strace -f`` with hex dumps of every
read and write (``-e read=all -e write=all``) and socket annotations
(``-yy``); this module turns that text back into the netlink buffers the
program sent and received.  It is a line-at-a-time state machine, so a trace
of a long-running program (``udevadm monitor`` until Ctrl-C) is handled as
it is produced, with memory bounded by one system call's data.

What strace prints, and what we take from it (strace 6.1, ``-f -ttt -yy
--decode-pids=comm -s 0``):

- a line per system call: ``PID<comm> SECONDS.MICROS name(args) = ret``.
  The netlink family comes from the fd annotation, ``3<NETLINK:[ROUTE:1234]>``
  (family and port id).  strace names the family only when it can find the
  socket with its own NETLINK_SOCK_DIAG query, i.e. when the socket is bound
  and lives in strace's network namespace; otherwise the annotation is
  ``3<NETLINK:[INODE]>``, and the family is the one ``socket(AF_NETLINK, ...,
  NETLINK_X)`` returned that inode with (sockets are keyed by inode, which
  covers dup(), fork() and threads without tracking fd tables), or as a last
  resort the ``Eth`` column of ``/proc/PID/net/netlink``.
- the data, after the call's line: `` | 00000  hex...  ascii |`` rows; for
  calls with several buffers (sendmsg, recvmsg, readv, writev) each buffer
  starts with `` * N bytes in buffer K``, and sendmmsg/recvmmsg start each
  message with `` = N buffers in vector K``.  strace dumps as many bytes as
  the call returned, so a recvfrom(..., MSG_TRUNC) that returns more than
  its buffer holds is cut back to the buffer length (the rest of the dump is
  whatever memory followed the buffer).
- calls interrupted by another process's line: ``name(args <unfinished ...>``
  then ``<... name resumed>rest``; the two halves are joined per pid.
- failed calls (``= -1 EAGAIN``) carry no data and make no buffer; reads with
  MSG_PEEK are dropped (iproute2 peeks to size its buffer, then reads the same
  datagram again).

Each recovered buffer is a `NetlinkIO`: one send (user->kernel) or one
receive (kernel->user) on one netlink socket, with the time of the line that
completed the call.  `NetlinkIO.comment` is the pcapng packet comment
``pid 1234 (ip) fd 3 sendmsg``; `process_from_comment` reads it back.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..core.constants import PROTOCOLS

# The calls that move netlink data, plus socket() (family of a new socket)
# and execve (a process's command name changes).  On x86-64 recv/send are
# recvfrom/sendto; other architectures have them as calls of their own.
SEND_CALLS = frozenset({"sendto", "send", "sendmsg", "sendmmsg", "write", "writev"})
RECV_CALLS = frozenset({"recvfrom", "recv", "recvmsg", "recvmmsg", "read", "readv"})
TRACED_CALLS = ("execve", "execveat", "socket", *sorted(SEND_CALLS), *sorted(RECV_CALLS))

# strace's -yy names are linux/netlink.h's NETLINK_* without the prefix.
_PROTOCOL_NUMBERS = {name: num for num, name in PROTOCOLS.items()}
_PROTOCOL_NUMBERS["INET_DIAG"] = 4  # linux/netlink.h: NETLINK_INET_DIAG = NETLINK_SOCK_DIAG

_PREFIX = re.compile(r"(?:\[pid +(\d+)(?:<(.*?)>)?\] |(\d+)(?:<(.*?)>)? +)?(?:(\d+)\.(\d+) +)?")
_NETLINK_FD = re.compile(r"\s*(\d+)<NETLINK:\[([^\]]*)\]>")
_INT = re.compile(r"-?\d+")
_DUMP_ROW = re.compile(r" \| ([0-9a-f]+)  ")
_BUFFER = re.compile(r" \* (\d+) bytes in buffer (\d+)")
_MSG_FLAGS = re.compile(r"msg_flags=([A-Z_0-9|x]+)")
_EXEC_PATH = re.compile(r'"((?:[^"\\]|\\.)*)"')
_COMMENT = re.compile(r"pid (\d+) \((.*)\) fd (\d+) (\w+)")
_DUMP_HEX_WIDTH = 16 * 3 + 1  # 16 "xx " cells and the extra space after the 8th


@dataclass(slots=True)
class NetlinkIO:
    """One buffer a traced process sent to or received from a netlink socket."""

    ts_ns: int
    pid: int
    comm: str | None
    fd: int
    syscall: str
    protocol: int | None  # NETLINK_* number; None when strace and /proc could not tell
    outgoing: bool  # True: the program sent it (user->kernel)
    data: bytes
    orig_len: int  # what the kernel had; more than len(data) when the receiver cut it
    truncated: bool = False  # the kernel said MSG_TRUNC: the receiver's buffer was too small

    @property
    def comment(self) -> str:
        text = f"pid {self.pid} ({self.comm or '?'}) fd {self.fd} {self.syscall}"
        return text + " MSG_TRUNC" if self.truncated else text


def process_from_comment(comment: str | None) -> tuple[int, str] | None:
    """``(pid, comm)`` from a packet comment written by ``nlshark trace``."""
    if not comment:
        return None
    m = _COMMENT.match(comment)
    return (int(m.group(1)), m.group(2)) if m else None


def protocol_number(name: str) -> int | None:
    """``ROUTE``, ``NETLINK_ROUTE`` or ``0`` -> 0; None when unknown."""
    name = name.strip()
    if name.startswith("NETLINK_"):
        name = name[8:]
    if name in _PROTOCOL_NUMBERS:
        return _PROTOCOL_NUMBERS[name]
    m = _INT.match(name)
    return int(m.group(0), 0) if m else None


def proc_netlink_protocol(pid: int, inode: int) -> int | None:
    """The protocol of netlink socket `inode` from /proc/PID/net/netlink (the
    process's own network namespace), or None."""
    try:
        with open(f"/proc/{pid}/net/netlink") as f:
            next(f, None)
            for line in f:
                cols = line.split()
                if len(cols) >= 10 and cols[9] == str(inode):
                    return int(cols[1])
    except (OSError, ValueError):
        return None
    return None


def split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments of a strace call (brackets and
    quoted strings kept whole)."""
    args: list[str] = []
    depth = 0
    start = 0
    quoted = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
        i += 1
    args.append(text[start:].strip())
    return args


def _int_arg(args: list[str], i: int) -> int | None:
    if i >= len(args):
        return None
    m = _INT.fullmatch(args[i])
    return int(m.group(0)) if m else None


class _Call:
    """A netlink call whose dump rows are still arriving."""

    __slots__ = ("ts_ns", "pid", "comm", "name", "fd", "protocol", "args", "ret", "vectors")

    def __init__(
        self,
        ts_ns: int,
        pid: int,
        comm: str | None,
        name: str,
        fd: int,
        protocol: int | None,
        args: list[str],
        ret: int,
    ) -> None:
        self.ts_ns = ts_ns
        self.pid = pid
        self.comm = comm
        self.name = name
        self.fd = fd
        self.protocol = protocol
        self.args = args
        self.ret = ret
        # vectors[message][buffer] -> bytes so far
        self.vectors: list[list[bytearray]] = []

    def buffer(self) -> bytearray:
        if not self.vectors:
            self.vectors.append([])
        if not self.vectors[-1]:
            self.vectors[-1].append(bytearray())
        return self.vectors[-1][-1]


class StraceParser:
    """Feed strace output lines; get back the netlink buffers they show.

    `comm_of(pid)` names a process when strace's lines do not
    (``--decode-pids=comm`` absent); `netlink_protocol_of(pid, inode)` is the
    last resort for a socket whose family strace did not show (default:
    /proc/PID/net/netlink).  `pids` holds the processes seen and not yet
    exited, `first_pid` the first one (the traced program).
    """

    def __init__(
        self,
        comm_of: Callable[[int], str | None] | None = None,
        netlink_protocol_of: Callable[[int, int], int | None] | None = proc_netlink_protocol,
    ) -> None:
        self.comm_of = comm_of
        self.netlink_protocol_of = netlink_protocol_of
        self.inodes: dict[int, int] = {}  # socket inode -> netlink protocol
        self.pids: set[int] = set()
        self.first_pid: int | None = None
        self._unfinished: dict[int, str] = {}
        # pid -> (comm strace still shows, the program's name since execve):
        # strace 6.1 may keep the pre-exec name for a process that execs.
        self._exec_names: dict[int, tuple[str | None, str]] = {}
        self._call: _Call | None = None

    def parse(self, lines: Iterable[str]) -> Iterator[NetlinkIO]:
        """All buffers of a whole trace (a file, or a pipe read to its end)."""
        for line in lines:
            yield from self.feed(line)
        yield from self.finish()

    def finish(self) -> list[NetlinkIO]:
        """Buffers of the last call (its dump may have been the trace's end)."""
        call, self._call = self._call, None
        return _buffers(call) if call is not None else []

    def feed(self, line: str) -> list[NetlinkIO]:
        line = line.rstrip("\n")
        if line[:2] in (" |", " *", " ="):
            self._dump_line(line)
            return []
        out = self.finish()
        self._call_line(line)
        return out

    def _dump_line(self, line: str) -> None:
        call = self._call
        if call is None:
            return
        if line[1] == "|":
            m = _DUMP_ROW.match(line)
            if m:
                start = m.end()
                with contextlib.suppress(ValueError):  # not a dump row after all
                    call.buffer().extend(bytes.fromhex(line[start : start + _DUMP_HEX_WIDTH]))
        elif line[1] == "*":
            if not call.vectors:
                call.vectors.append([])
            call.vectors[-1].append(bytearray())
        else:  # " = N buffers in vector K"
            call.vectors.append([])

    def _call_line(self, line: str) -> None:
        m = _PREFIX.match(line)
        assert m is not None  # every group is optional
        pid_text = m.group(1) or m.group(3)
        pid = int(pid_text) if pid_text else 0
        comm = m.group(2) if m.group(1) else m.group(4)
        ts_ns = (
            int(m.group(5)) * 1_000_000_000 + int(m.group(6).ljust(9, "0")[:9]) if m.group(5) else 0
        )
        body = line[m.end() :]
        if pid not in self.pids and not body.startswith("+++"):
            self.pids.add(pid)
            if self.first_pid is None:
                self.first_pid = pid
        if body.startswith("---"):
            return  # a signal
        if body.startswith("+++"):
            self.pids.discard(pid)  # exited, or killed
            return
        if body.startswith("<... "):
            head = self._unfinished.pop(pid, None)
            end = body.find(" resumed>")
            if head is None or end < 0:
                return  # the call started before we attached
            body = head + body[end + 9 :]
        elif body.endswith(" <unfinished ...>"):
            self._unfinished[pid] = body[: -len(" <unfinished ...>")]
            return
        paren = body.find("(")
        close = body.rfind(") = ")
        if paren <= 0 or close < paren:
            return
        name = body[:paren]
        args_text = body[paren + 1 : close]
        ret_text = body[close + 4 :]
        renamed = self._exec_names.get(pid)
        if renamed is not None:
            if comm == renamed[0]:
                comm = renamed[1]
            else:
                del self._exec_names[pid]  # strace caught up, or no longer the same process
        if comm is None and self.comm_of is not None:
            comm = self.comm_of(pid)
        if name in ("execve", "execveat"):
            path = _EXEC_PATH.search(args_text)
            if path and ret_text.startswith("0") and (name == "execve" or path.group(1)):
                # The kernel names the process after the file it executes
                # (its last path component, at most TASK_COMM_LEN - 1 = 15 bytes).
                self._exec_names[pid] = (comm, path.group(1).rsplit("/", 1)[-1][:15])
            return
        if name == "socket":
            self._socket(args_text, ret_text)
            return
        if name not in SEND_CALLS and name not in RECV_CALLS:
            return
        fd_match = _NETLINK_FD.match(args_text)
        if fd_match is None:
            return  # not a netlink socket
        rm = _INT.match(ret_text)
        ret = int(rm.group(0)) if rm else -1
        if ret <= 0:
            return  # failed, interrupted (= ?) or nothing moved: no data
        args = split_args(args_text)
        if name in RECV_CALLS and "MSG_PEEK" in _recv_flags(name, args):
            return
        fd = int(fd_match.group(1))
        self._call = _Call(
            ts_ns, pid, comm, name, fd, self._protocol(pid, fd_match.group(2)), args, ret
        )

    def _socket(self, args_text: str, ret_text: str) -> None:
        args = split_args(args_text)
        if len(args) < 3 or args[0] not in ("AF_NETLINK", "16"):
            return
        m = _NETLINK_FD.match(ret_text)
        if m is None or ":" in m.group(2):
            return
        protocol = protocol_number(args[2].split()[0])
        if protocol is not None and m.group(2).isdigit():
            self.inodes[int(m.group(2))] = protocol

    def _protocol(self, pid: int, annotation: str) -> int | None:
        family, sep, _ = annotation.partition(":")
        if sep:
            return protocol_number(family)
        if not annotation.isdigit():
            return None
        inode = int(annotation)
        protocol = self.inodes.get(inode)
        if protocol is None and self.netlink_protocol_of is not None:
            protocol = self.netlink_protocol_of(pid, inode)
            if protocol is not None:
                self.inodes[inode] = protocol
        return protocol


def _recv_flags(name: str, args: list[str]) -> str:
    """The flags argument of a receive call (empty for read/readv)."""
    if name == "recvmsg":
        return args[2] if len(args) > 2 else ""
    if name in ("recvfrom", "recv", "recvmmsg"):
        return args[3] if len(args) > 3 else ""
    return ""


def _buffers(call: _Call) -> list[NetlinkIO]:
    """The NetlinkIO records of a finished call."""
    outgoing = call.name in SEND_CALLS

    def io(data: bytes, orig_len: int, truncated: bool = False) -> NetlinkIO:
        return NetlinkIO(
            call.ts_ns,
            call.pid,
            call.comm,
            call.fd,
            call.name,
            call.protocol,
            outgoing,
            data,
            orig_len,
            truncated,
        )

    if call.name in ("sendmmsg", "recvmmsg"):
        # ret is the number of messages; each vector is one datagram.
        return [
            io(data, len(data)) for data in (b"".join(v) for v in call.vectors[: call.ret]) if data
        ]
    data = b"".join(b for v in call.vectors for b in v)
    if call.name in ("recvfrom", "recv", "read", "write", "sendto", "send"):
        # One buffer whose size is the third argument: strace dumps `ret`
        # bytes even when MSG_TRUNC made ret the datagram's full length.
        size = _int_arg(call.args, 2)
        if size is not None:
            data = data[:size]
    data = data[: call.ret]
    if not data:
        return []
    truncated = False
    if call.name == "recvmsg":
        m = _MSG_FLAGS.search(call.args[1] if len(call.args) > 1 else "")
        truncated = bool(m and "MSG_TRUNC" in m.group(1))
    if call.ret > len(data) and call.name in RECV_CALLS:
        truncated = True  # recv*(..., MSG_TRUNC) returned the datagram's real length
    return [io(data, max(call.ret, len(data)), truncated)]
