"""``nlshark monitor FAMILY[:GROUP,...] ...``: dissect multicast events live.

Each family named gets one `RawNetlinkSocket` of its protocol (inside
``--netns`` if given) that joins the groups asked for
(`dissect.capture.mcast.resolve` turns names into numbers; generic netlink
ids come from the running kernel's controller).  Connector process events
also need a PROC_CN_MCAST_LISTEN message after joining (linux/cn_proc.h);
it is sent, and PROC_CN_MCAST_IGNORE at exit.

The sockets are watched with `selectors`; every buffer read (one skb) becomes
a LINKTYPE_NETLINK `RawFrame` whose pseudo-header carries the family's
protocol number and PACKET_USER (linux/if_packet.h: "to user space"), and
whose comment names the group it was sent to.  Frames go through
`api.decode_frames` into `FrameOutput(live=True)` and, with ``-w``, into a
pcap or pcapng file as they arrive.  A receive queue overrun (ENOBUFS: the
kernel dropped events for this socket) is a warning and monitoring goes on.
SIGINT and SIGTERM only set a flag (the signal wakes the selector through a
wakeup fd), so the file is closed between frames and exit status is 0.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import itertools
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, cast

from .. import __version__
from ..api import decode_frames
from ..capture import RawFrame
from ..capture.linktypes import LINKTYPE_NETLINK, netlink_pseudo_header
from ..capture.mcast import (
    CLASSIC_FAMILIES,
    CN_IDX_PROC,
    CN_VAL_PROC,
    GroupError,
    Subscription,
    classic_family,
    genl_families,
    resolve,
)
from ..capture.nlsocket import NetlinkSocketError, RawNetlinkSocket
from ..capture.ring import CaptureSink
from ..core.netlink import Frame, Session
from ..render.output import add_output_options, output_from_args
from ..schema import Registry

PACKET_USER = 6  # linux/if_packet.h
NETLINK_CONNECTOR = 11
NLMSG_DONE = 3
# linux/cn_proc.h: enum proc_cn_mcast_op
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
RCVBUF = 4 << 20  # room for bursts (a route flush); the kernel caps it at rmem_max


class MonitorError(Exception):
    """Monitoring cannot start or go on; the text is the one-line reason."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nlshark monitor",
        description="Join netlink multicast groups and dissect the events live.",
        epilog="FAMILY is route, netfilter, selinux, audit, xfrm, sock_diag, kobject_uevent, "
        "connector or a generic netlink family (nlctrl, ethtool, devlink, nl80211, ...). "
        "GROUP names drop the header's prefix (route:link,ipv4-ifaddr; netfilter:nftables); "
        "'all' joins every group; a family alone joins its usual groups "
        "(route: those 'ip monitor' shows; others: all). See --list.",
    )
    p.add_argument("families", nargs="*", metavar="FAMILY[:GROUP,...]")
    p.add_argument("-l", "--list", action="store_true", help="list families and groups and exit")
    p.add_argument("--netns", metavar="NAME", help="monitor inside this network namespace")
    p.add_argument("-w", dest="write", metavar="FILE", help="also write the frames to FILE")
    p.add_argument(
        "-F",
        dest="file_format",
        choices=["pcap", "pcapng"],
        help="format of -w FILE (default: pcap for *.pcap, else pcapng)",
    )
    p.add_argument(
        "-B",
        dest="buffer_kib",
        type=int,
        default=RCVBUF >> 10,
        metavar="KIB",
        help=f"socket receive buffer per family in KiB (default {RCVBUF >> 10}; capped by "
        "net.core.rmem_max)",
    )
    p.add_argument("-c", dest="count", type=int, metavar="N", help="stop after N frames")
    p.add_argument(
        "-a", dest="autostop", metavar="duration:S", help="stop after S seconds (duration:S)"
    )
    add_output_options(p)
    return p


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    key, _, value = text.partition(":")
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if key != "duration" or seconds <= 0:
        raise MonitorError(f"-a expects duration:SECONDS, got {text!r}")
    return seconds


def _err(text: str) -> None:
    print(f"nlshark monitor: {text}", file=sys.stderr, flush=True)


def _family_note(sub: Subscription) -> str:
    fam = classic_family(sub.family) if sub.genl_id is None else None
    return f" ({fam.note})" if fam is not None and fam.note else ""


class _Member:
    """One open socket and what it joined."""

    def __init__(self, sub: Subscription, sock: RawNetlinkSocket) -> None:
        self.sub = sub
        self.sock = sock
        self.by_number = {num: name for name, num in sub.groups.items()}
        self.overruns = 0
        self.listen_seq: int | None = None  # connector: our PROC_CN_MCAST_LISTEN


def _cn_proc_control(sock: RawNetlinkSocket, op: int) -> int:
    """Send PROC_CN_MCAST_LISTEN or _IGNORE (a struct cn_msg to CN_IDX_PROC
    carrying the u32 op; linux/connector.h, linux/cn_proc.h).  cn_msg.ack
    carries our sequence number: the kernel's answer has it plus one."""
    seq = sock.seq + 1
    payload = struct.pack("=IIIIHHI", CN_IDX_PROC, CN_VAL_PROC, seq, seq, 4, 0, op)
    sock.send(NLMSG_DONE, 0, payload)
    return seq


def _join(sub: Subscription, netns: str | None, rcvbuf: int) -> tuple[_Member, list[str]]:
    """Open the family's socket and join its groups; returns the member and
    warnings (groups from 'all' that this kernel refused)."""
    where = f" in network namespace {netns!r}" if netns else ""
    try:
        sock = RawNetlinkSocket(sub.protocol, netns=netns, rcvbuf=rcvbuf, ext_ack=False)
    except NetlinkSocketError as exc:
        if exc.errno == errno.EPROTONOSUPPORT:
            raise MonitorError(
                f"{sub.family}: this kernel has no such netlink family{where}"
            ) from None
        raise MonitorError(f"{sub.family}: {exc}") from None
    warnings: list[str] = []
    try:
        for name, num in list(sub.groups.items()):
            try:
                sock.add_membership(num)
            except NetlinkSocketError as exc:
                why = os.strerror(exc.errno) if exc.errno else str(exc)
                if exc.errno == errno.EINVAL:
                    why = "this kernel does not have this group"
                elif exc.errno == errno.EPERM:
                    why = f"permission denied{_family_note(sub)}"
                # A group 'all' picked that this kernel does not have yet is
                # a warning; anything else (permissions) is an error.
                if name in sub.optional and exc.errno == errno.EINVAL:
                    warnings.append(f"{sub.family}:{name} ({num}) not joined: {why}")
                    del sub.groups[name]
                    continue
                raise MonitorError(
                    f"cannot join {sub.family}:{name} ({num}){where}: {why}"
                ) from None
        if not sub.groups:
            raise MonitorError(f"{sub.family}: no group could be joined")
        member = _Member(sub, sock)
        if sub.protocol == NETLINK_CONNECTOR and CN_IDX_PROC in member.by_number:
            try:
                member.listen_seq = _cn_proc_control(sock, PROC_CN_MCAST_LISTEN)
            except OSError as exc:
                hint = (
                    " (the kernel sends process events in the initial network namespace only)"
                    if exc.errno == errno.ECONNREFUSED
                    else ""
                )
                raise MonitorError(
                    f"connector: PROC_CN_MCAST_LISTEN failed: {exc.strerror or exc}{hint}"
                ) from None
        sock.settimeout(0)
    except BaseException:
        sock.close()
        raise
    return member, warnings


def _leave(member: _Member) -> None:
    if member.listen_seq is not None:
        with contextlib.suppress(OSError):  # closing is all that is left to do
            _cn_proc_control(member.sock, PROC_CN_MCAST_IGNORE)
    member.sock.close()


def _cn_ack_error(member: _Member, data: bytes) -> int | None:
    """The error the kernel acknowledged our PROC_CN_MCAST_LISTEN with: a
    PROC_EVENT_NONE whose cn_msg.ack is our seq + 1 (drivers/connector/cn_proc.c
    answers every control message this way), else None."""
    if member.listen_seq is None or len(data) < 56:
        return None
    _, _, _, ack = struct.unpack_from("=IIII", data, 16)
    what, _cpu = struct.unpack_from("=II", data, 36)
    if what != 0 or ack != (member.listen_seq + 1) & 0xFFFFFFFF:
        return None
    return int(struct.unpack_from("=I", data, 52)[0])


class _Stop:
    """SIGINT/SIGTERM set `requested`; a wakeup fd wakes the selector."""

    def __init__(self) -> None:
        self.requested = False
        self.rfd: socket.socket | None = None
        self._wfd: socket.socket | None = None
        self._saved: list[tuple[int, Any]] = []
        self._old_wakeup = -1

    def install(self) -> None:
        try:
            r, w = socket.socketpair()
            r.setblocking(False)
            w.setblocking(False)
            self._old_wakeup = signal.set_wakeup_fd(w.fileno())
        except ValueError:  # not the main thread: leave the signals alone
            r.close()
            w.close()
            return
        self.rfd, self._wfd = r, w
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._saved.append((sig, signal.signal(sig, self._handler)))

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:  # asked twice (a reader that stopped reading): give up now
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for sig, old in self._saved:
            signal.signal(sig, old)
        self._saved = []
        if self.rfd is not None and self._wfd is not None:
            signal.set_wakeup_fd(self._old_wakeup)
            self.rfd.close()
            self._wfd.close()
            self.rfd = self._wfd = None


class _FdText(io.TextIOBase):
    """Text output that reaches its file descriptor whole.  Each flush
    writes with os.write until every byte is out: a signal that interrupts
    a write to a full pipe returns a short count, and CPython's buffered
    stdout was seen to drop the rest of such a write."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        stream.flush()
        self._fd = stream.fileno()
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._tty = stream.isatty()
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        data = memoryview("".join(self._parts).encode(self._encoding, "replace"))
        self._parts = []
        while data:
            data = data[os.write(self._fd, data) :]

    def isatty(self) -> bool:
        return self._tty


def _output_stream(out: IO[str]) -> IO[str]:
    try:
        out.fileno()
    except (OSError, ValueError, AttributeError):
        return out  # not a file (a test's capture buffer): nothing to guard
    return cast(IO[str], _FdText(out))


def _open_sink(path: str, fmt: str | None, specs: list[str]) -> CaptureSink:
    pcapng = (fmt or ("pcap" if path.endswith(".pcap") else "pcapng")) == "pcapng"
    return CaptureSink(
        path,
        pcapng=pcapng,
        interface_name="netlink monitor",
        section_comment="nlshark monitor " + " ".join(specs),
    )


def _frames(
    members: list[_Member],
    stop: _Stop,
    deadline: float | None,
    writer: CaptureSink | None,
    stats: dict[str, int],
) -> Iterator[RawFrame]:
    sel = selectors.DefaultSelector()
    for m in members:
        sel.register(m.sock.fileno(), selectors.EVENT_READ, m)
    if stop.rfd is not None:
        sel.register(stop.rfd.fileno(), selectors.EVENT_READ, None)
    try:
        while not stop.requested:
            timeout = None
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return
            for key, _ in sel.select(timeout):
                if stop.requested:
                    return
                member = key.data
                if member is None:
                    _drain(stop.rfd)
                    continue
                try:
                    data, _, group = member.sock.recvfrom()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    if exc.errno == errno.ENOBUFS:
                        member.overruns += 1
                        stats["overruns"] += 1
                        _err(
                            f"warning: {member.sub.family}: receive queue overrun (ENOBUFS), "
                            f"events were lost ({member.overruns} so far)"
                        )
                        continue
                    raise MonitorError(
                        f"{member.sub.family}: receive failed: {exc.strerror or exc}"
                    ) from None
                cn_err = _cn_ack_error(member, data)
                if cn_err:
                    _err(
                        f"warning: connector: the kernel refused PROC_CN_MCAST_LISTEN: {os.strerror(cn_err)}"
                    )
                stats["frames"] += 1
                frame = netlink_pseudo_header(member.sub.protocol, PACKET_USER) + data
                gname = member.by_number.get(group, str(group)) if group else "unicast"
                raw = RawFrame(
                    stats["frames"],
                    time.time_ns(),
                    LINKTYPE_NETLINK,
                    frame,
                    len(frame),
                    comment=f"{member.sub.family} group {gname}" + (f" ({group})" if group else ""),
                )
                if writer is not None:
                    writer.write(raw)
                yield raw
    finally:
        sel.close()


def _drain(rfd: socket.socket | None) -> None:
    if rfd is None:
        return
    try:
        while rfd.recv(512):
            pass
    except OSError:
        pass


def _list(args: argparse.Namespace, out: IO[str]) -> int:
    rows: list[dict[str, Any]] = []
    for fam in CLASSIC_FAMILIES:
        for i, (name, num) in enumerate(fam.groups.items()):
            rows.append(
                {
                    "family": fam.name,
                    "protocol": fam.protocol,
                    "group": name,
                    "id": num,
                    "default": name in fam.default or not fam.default,
                    "note": "" if i else fam.note,
                }
            )
    genl_error = None
    try:
        families = genl_families(args.netns)
    except GroupError as exc:
        families = {}
        genl_error = str(exc)
    for gfam in sorted(families.values(), key=lambda f: f.name.lower()):
        for name, num in gfam.groups.items():
            rows.append(
                {
                    "family": gfam.name,
                    "protocol": 16,
                    "genl_id": gfam.id,
                    "group": name,
                    "id": num,
                    "default": True,
                    "note": "",
                }
            )
    if args.format in ("json", "jsonl"):
        import json

        if args.format == "json":
            json.dump({"groups": rows}, out, indent=1)
            out.write("\n")
        else:
            for r in rows:
                out.write(json.dumps(r) + "\n")
    else:
        out.write(f"{'family':<16} {'protocol':<12} {'group':<24} {'id':>4}  default  note\n")
        for r in rows:
            proto = str(r["protocol"]) + (f" (genl {r['genl_id']})" if "genl_id" in r else "")
            out.write(
                f"{r['family']:<16} {proto:<12} {r['group']:<24} {r['id']:>4}  "
                f"{'yes' if r['default'] else 'no':<7}  {r['note']}".rstrip()
                + "\n"
            )
    if genl_error:
        _err(f"warning: generic netlink families not listed: {genl_error}")
    return 0


def _print(
    args: argparse.Namespace, out: IO[str], frames: Iterable[Frame], stats: dict[str, int]
) -> None:
    output = output_from_args(
        args, out, {"version": __version__, "monitor": args.families}, live=True
    )
    try:
        output.write_all(frames)
    finally:
        output.close({"overruns": stats["overruns"]} if stats["overruns"] else None)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    out = sys.stdout
    if args.list:
        return _list(args, out)
    if not args.families:
        _err("name at least one family to monitor (e.g. 'route'; see --list)")
        return 2
    if args.count is not None and args.count <= 0:
        _err("-c expects a positive number of frames")
        return 2
    if args.buffer_kib <= 0:
        _err("-B expects a positive size in KiB")
        return 2
    try:
        duration = _duration(args.autostop)
        subs = resolve(args.families, args.netns)
    except (MonitorError, GroupError) as exc:
        _err(str(exc))
        return 2
    members: list[_Member] = []
    writer: CaptureSink | None = None
    stop = _Stop()
    stats = {"frames": 0, "overruns": 0}
    try:
        for sub in subs:
            member, warnings = _join(sub, args.netns, args.buffer_kib << 10)
            members.append(member)
            for w in warnings:
                _err(f"warning: {w}")
        if args.write:
            try:
                writer = _open_sink(args.write, args.file_format, args.families)
            except OSError as exc:
                raise MonitorError(f"{args.write}: {exc.strerror or exc}") from None
        registry = Registry.default()
        for problem in registry.errors:
            _err(f"warning: spec not loaded: {problem}")
        session = Session(registry)
        for sub in subs:
            if sub.genl_id is not None:
                session.learn_genl(sub.genl_id, sub.family)
        stop.install()
        joined = "; ".join(f"{m.sub.family}:{','.join(m.sub.groups)}" for m in members)
        where = f" in network namespace {args.netns}" if args.netns else ""
        _err(f"monitoring {joined}{where}")
        deadline = None if duration is None else time.monotonic() + duration
        raws = _frames(members, stop, deadline, writer, stats)
        if args.write == "-":
            # The capture itself goes to stdout (tshark -w -): nothing else may.
            for _ in itertools.islice(raws, args.count):
                pass
        else:
            text = _output_stream(out)
            _print(args, text, decode_frames(session, raws, args.count), stats)
    except MonitorError as exc:
        _err(str(exc))
        return 2
    finally:
        stop.restore()
        if writer is not None:
            writer.close()
        for m in members:
            _leave(m)
    lost = f", {stats['overruns']} receive queue overruns" if stats["overruns"] else ""
    _err(f"{stats['frames']} frames{lost}")
    return 0
