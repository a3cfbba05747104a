"""``nlshark trace``: capture a program's netlink traffic by tracing it.

The program runs under ``strace -f`` (children and threads included), whose
hex dumps of every send and receive hold the exact bytes; strace writes its
trace into a pipe that `dissect.capture.strace.StraceParser` reads line by
line, so frames are decoded, printed and written while the program runs.
One frame per send (user->kernel) and per receive (kernel->user) on a
netlink socket of any family, including those nlmon never mirrors (AUDIT,
KOBJECT_UEVENT, CONNECTOR, SELINUX...).

Frames are LINKTYPE_NETLINK: the 16-byte pseudo-header carries the socket's
netlink protocol and, as packet type, PACKET_OUTGOING (4) for what the
program sent and PACKET_HOST (0) for what it received (nlmon writes 4 for
both; tshark 4.0 and our decoder read the direction from the messages, so
these values only add the fact where someone looks for it).  In pcapng each
frame has the comment ``pid 1234 (ip) fd 3 sendmsg``, from which nlshark
gives read-back frames their process again.

The program keeps our stdin and stdout; its stderr is ours too, while
strace's own stderr comes to us through a pipe (a ``/bin/sh -c 'exec ...'``
wrapper gives the program back the original stderr before it starts), so
strace's complaints, such as ptrace being forbidden, become one-line nlshark
errors.  nlshark exits with the program's status (128+N when a signal N
killed it).

Signals: SIGINT and SIGTERM are taken by a thread with sigtimedwait, which
tells a Ctrl-C at the terminal (the kernel sent it to the whole foreground
process group, so the program has it already) from a kill aimed at nlshark
alone, which is forwarded to the traced processes.  Either way nlshark keeps
reading until strace has written everything and exits, then closes the file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

from .. import __version__
from ..api import decode_frames
from ..capture.frame import RawFrame
from ..capture.linktypes import LINKTYPE_NETLINK, PACKET_OUTGOING, netlink_pseudo_header
from ..capture.ring import CaptureSink
from ..capture.strace import TRACED_CALLS, NetlinkIO, StraceParser
from ..core.netlink import Session
from ..render.output import add_output_options, output_from_args
from ..schema import Registry

PACKET_HOST = 0  # include/uapi/linux/if_packet.h: addressed to this host
# A netlink socket whose family neither strace nor /proc could tell (a socket
# inherited from before an attach, in another network namespace): its frames
# keep their bytes under a protocol number no family has.
UNKNOWN_PROTOCOL = 0xFFFF
SI_KERNEL = 0x80  # siginfo si_code of a signal the kernel raised (terminal keys)
_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nlshark trace",
        usage="nlshark trace [options] [--] COMMAND [ARG...]\n       nlshark trace [options] -p PID",
        description="Run COMMAND (or attach to PID) under strace and capture the netlink "
        "messages it and its children send and receive, on sockets of every netlink family.",
    )
    p.add_argument(
        "-w",
        dest="write",
        metavar="FILE",
        help="write the frames to FILE (pcapng; pcap if FILE ends in .pcap)",
    )
    p.add_argument(
        "-q", dest="quiet", action="store_true", help="print nothing, only write the file"
    )
    add_output_options(p)
    p.add_argument(
        "-p",
        dest="pid",
        type=int,
        metavar="PID",
        help="attach to a running process (and its threads) instead of running COMMAND",
    )
    p.add_argument(
        "--strace", metavar="PATH", help="the strace binary to use (default: strace from PATH)"
    )
    p.add_argument(
        "--strace-log",
        metavar="FILE",
        help="also keep strace's own text output in FILE (a second opinion on every byte)",
    )
    p.add_argument(
        "--genl-from-host",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="name generic netlink ids the trace does not name from this machine's kernel (default: on; the program runs here)",
    )
    p.add_argument(
        "--plugin-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="load family specs (YNL YAML) from DIR first",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


class TraceError(Exception):
    """A one-line reason nlshark trace cannot run; `status` is the exit status."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def strace_argv(strace: str, output: str, *, pid: int | None = None) -> list[str]:
    """strace's options for a trace the parser reads (everything but the program)."""
    argv = [
        strace,
        "-f",  # children and threads
        "-q",  # no attach/detach chatter; exit lines stay (they end a pid)
        "-ttt",
        "-yy",  # fd annotations: NETLINK:[ROUTE:portid]
        "--decode-pids=comm",
        "-s",
        "0",  # the dumps carry the data; keep the call lines short
        "-e",
        "trace=" + ",".join(TRACED_CALLS),
        "-e",
        "signal=none",
        "-e",
        "read=all",
        "-e",
        "write=all",
        "-o",
        output,
    ]
    if pid is not None:
        argv += ["-p", str(pid)]
    return argv


def _find_command(name: str) -> str:
    """The program's path, or a TraceError with a shell's status (127, 126)."""
    if "/" in name:
        if not os.path.exists(name):
            raise TraceError(f"{name}: No such file or directory", 127)
        path = name
    else:
        found = shutil.which(name)
        if found is None:
            raise TraceError(f"{name}: command not found", 127)
        path = found
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise TraceError(f"{name}: Permission denied (not an executable file)", 126)
    return path


def _ptrace_scope() -> int | None:
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _ptrace_hint() -> str:
    scope = _ptrace_scope()
    yama = f"kernel.yama.ptrace_scope is {scope}" if scope is not None else "no Yama LSM"
    return (
        f"ptrace is not permitted here ({yama}; containers need CAP_SYS_PTRACE and a seccomp "
        "profile that allows ptrace, e.g. docker run --cap-add SYS_PTRACE)"
    )


def frame_of(number: int, io: NetlinkIO) -> RawFrame:
    """The LINKTYPE_NETLINK frame of one traced buffer."""
    protocol = UNKNOWN_PROTOCOL if io.protocol is None else io.protocol
    pkttype = PACKET_OUTGOING if io.outgoing else PACKET_HOST
    header = netlink_pseudo_header(protocol, pkttype)
    return RawFrame(
        number,
        io.ts_ns,
        LINKTYPE_NETLINK,
        header + io.data,
        len(header) + io.orig_len,
        comment=io.comment,
        process=(io.pid, io.comm or "?"),
    )


class _Tracer:
    """strace running the program, its two pipes and the signal thread."""

    def __init__(
        self, strace: str, command: list[str] | None, pid: int | None, log: IO[str] | None = None
    ) -> None:
        self.command = command
        self.log = log
        self.attach_pid = pid
        self.parser = StraceParser()
        self.ptrace_denied = False
        self.strace_errors: list[str] = []
        self._done = threading.Event()
        trace_r, trace_w = os.pipe()
        err_r, err_w = os.pipe()
        pass_fds = [trace_w]
        argv = strace_argv(strace, f"/dev/fd/{trace_w}", pid=pid)
        if command is not None:
            # The program gets our stderr back and neither pipe end.
            stderr_fd = os.dup(2)
            pass_fds.append(stderr_fd)
            script = f'exec 2>&{stderr_fd} {stderr_fd}>&- {trace_w}>&- "$@"'
            argv += ["--", "/bin/sh", "-c", script, command[0], *command]
        # Block SIGINT/SIGTERM before any thread exists, so only the signal
        # thread receives them; strace gets the default mask back.
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=None if command is not None else subprocess.DEVNULL,
                stderr=err_w,
                pass_fds=pass_fds,
                preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS),
            )
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            for fd in (trace_r, trace_w, err_r, err_w):
                os.close(fd)
            raise TraceError(f"cannot run {strace}: {exc.strerror or exc}") from None
        finally:
            if command is not None:
                os.close(stderr_fd)
        os.close(trace_w)
        os.close(err_w)
        self.trace = open(trace_r, encoding="utf-8", errors="replace", newline="\n")  # noqa: SIM115
        self._stderr_thread = threading.Thread(
            target=self._relay_stderr, args=(err_r,), daemon=True
        )
        self._stderr_thread.start()
        self._signal_thread = threading.Thread(target=self._wait_signals, daemon=True)
        self._signal_thread.start()

    def _relay_stderr(self, fd: int) -> None:
        """strace's own messages: ptrace refusals become our error, the rest pass."""
        with open(fd, encoding="utf-8", errors="replace") as err:
            for line in err:
                text = line.rstrip("\n")
                lower = text.lower()
                if "ptrace" in lower and ("not permitted" in lower or "permission denied" in lower):
                    self.ptrace_denied = True
                    continue
                if text.startswith("strace: "):
                    self.strace_errors.append(text[8:])
                sys.stderr.write(line)
                sys.stderr.flush()

    def _wait_signals(self) -> None:
        while not self._done.is_set():
            info = signal.sigtimedwait(_SIGNALS, 0.2)
            if info is None:
                continue
            if info.si_code == SI_KERNEL:
                # From the terminal: the foreground process group, the program
                # included, has it already.
                continue
            self.forward(info.si_signo)

    def forward(self, signo: int) -> None:
        """Pass a signal sent to nlshark on to the traced program."""
        if self.command is None:
            targets = [self.proc.pid]  # strace detaches and exits
        else:
            first = self.parser.first_pid
            targets = sorted(self.parser.pids - {first}) if first is not None else []
            if first is not None:
                targets.insert(0, first)
        for pid in targets:
            with contextlib.suppress(OSError):
                os.kill(pid, signo)

    def buffers(self) -> Iterator[NetlinkIO]:
        log = self.log
        for line in self.trace:
            if log is not None:
                log.write(line)
            yield from self.parser.feed(line)
        yield from self.parser.finish()

    def finish(self) -> int:
        """Wait for strace; the program's exit status."""
        self.trace.close()
        rc = self.proc.wait()
        self._stderr_thread.join(timeout=5)
        self._done.set()
        self._signal_thread.join(timeout=1)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        return 128 - rc if rc < 0 else rc


def _open_sink(path: str) -> CaptureSink:
    if path == "-":
        raise TraceError("-w -: the program's own output goes to stdout; give a file name")
    try:
        return CaptureSink(path, pcapng=not path.endswith(".pcap"), interface_name="strace")
    except OSError as exc:
        raise TraceError(f"{path}: {exc.strerror or exc}") from None


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except TraceError as exc:
        print(f"nlshark trace: {exc}", file=sys.stderr)
        return exc.status


def _run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if args.pid is not None and command:
        raise TraceError("give either -p PID or a COMMAND, not both")
    if args.pid is None and not command:
        raise TraceError(
            "nothing to trace: nlshark trace [options] -- COMMAND [ARG...] (or -p PID)"
        )
    strace = args.strace or shutil.which("strace")
    if strace is None or not os.access(strace, os.X_OK):
        where = args.strace or "strace"
        raise TraceError(f"{where} not found: install strace (Debian/Ubuntu package 'strace')")
    if _ptrace_scope() == 3:
        raise TraceError(_ptrace_hint())
    if args.pid is not None:
        if args.pid <= 0 or not os.path.exists(f"/proc/{args.pid}"):
            raise TraceError(f"-p {args.pid}: no such process")
    else:
        _find_command(command[0])

    registry = Registry.default(args.plugin_dir)
    session = Session(registry)
    if args.genl_from_host:
        from ..capture.host import HostQueryError, host_genl_families

        try:
            session.genl_fallback = host_genl_families(session)
        except HostQueryError as exc:
            print(f"nlshark trace: warning: --genl-from-host: {exc}", file=sys.stderr)

    writer = _open_sink(args.write) if args.write else None
    what = f"pid {args.pid}" if args.pid is not None else shlex.join(command)
    output = None
    if not args.quiet:
        out: IO[str] = sys.stdout
        output = output_from_args(args, out, {"version": __version__, "trace": what}, live=True)
    log = None
    try:
        if args.strace_log:
            try:
                log = open(args.strace_log, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise TraceError(f"{args.strace_log}: {exc.strerror or exc}") from None
        tracer = _Tracer(strace, command if args.pid is None else None, args.pid, log)
    except TraceError:
        if writer is not None:
            writer.close()
        if log is not None:
            log.close()
        raise
    unknown: set[tuple[int, int]] = set()

    def raw_frames() -> Iterator[RawFrame]:
        for number, io in enumerate(tracer.buffers(), 1):
            if io.protocol is None and (io.pid, io.fd) not in unknown:
                unknown.add((io.pid, io.fd))
                print(
                    f"nlshark trace: warning: pid {io.pid} fd {io.fd}: netlink family unknown; "
                    f"its frames carry protocol {UNKNOWN_PROTOCOL}",
                    file=sys.stderr,
                )
            raw = frame_of(number, io)
            if writer is not None:
                writer.write(raw)
            yield raw

    try:
        if output is None:
            for _ in raw_frames():
                pass
        else:
            for f in decode_frames(session, raw_frames()):
                try:
                    output.write(f)
                except BrokenPipeError:
                    # Our reader left (| head): keep tracing into the file.
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, sys.stdout.fileno())
                    os.close(devnull)
                    output = None
                    for _ in raw_frames():
                        pass
                    break
    finally:
        status = tracer.finish()
        if writer is not None:
            writer.close()
        if log is not None:
            log.close()
        if output is not None:
            output.close({"status": status})
    if tracer.ptrace_denied:
        raise TraceError(_ptrace_hint(), 1)
    if args.pid is not None and tracer.strace_errors and tracer.parser.first_pid is None:
        return status or 1
    return status
