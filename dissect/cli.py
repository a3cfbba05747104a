"""Command line: argument parsing and wiring only.

``nlshark -r FILE`` prints one summary line per netlink message; ``-V`` the
annotated tree, ``-x`` the tree with each node's bytes plus a hex dump,
``-T json|jsonl`` machine-readable trees; ``-G families|fields`` the
catalogues.  Errors about the input are one line on stderr and a non-zero
exit status (2 for unusable input, 1 for a capture cut short after its
complete frames were shown).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import itertools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING

from . import __version__
from .api import decode_frames, prescan_genl
from .capture import LINKTYPE_NETLINK, CaptureError, RawFrame, TruncatedCaptureError, open_capture
from .core.netlink import Session
from .render.output import FrameOutput, add_output_options, output_from_args
from .schema import Registry

if TYPE_CHECKING:
    from .capture.ring import CaptureSink


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nlshark",
        description="Dissect Linux netlink captures (nlmon, LINKTYPE_NETLINK).",
        epilog="commands:\n"
        + "\n".join(f"  nlshark {name:<9} {doc}" for name, (_, doc) in COMMANDS.items())
        + "\n\n'nlshark COMMAND --help' describes each.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "-r",
        "--read-file",
        metavar="FILE",
        help="capture file to read (pcap or pcapng; '-' for stdin)",
    )
    source.add_argument(
        "-i",
        "--interface",
        metavar="IFACE",
        help="capture live from an nlmon interface (needs root or CAP_NET_RAW)",
    )
    source.add_argument(
        "-D",
        "--list-interfaces",
        action="store_true",
        help="list the network interfaces, marking the nlmon ones, and exit",
    )
    p.add_argument(
        "-w",
        dest="write_file",
        metavar="FILE",
        help="write the frames to FILE as they come (pcap; pcapng if FILE ends .pcapng or "
        "with -F pcapng; '-' for stdout); packets are still printed unless -q",
    )
    p.add_argument("-F", dest="file_format", choices=["pcap", "pcapng"], help="file format for -w")
    p.add_argument(
        "-q", dest="quiet", action="store_true", help="print no packets (only -w and statistics)"
    )
    p.add_argument(
        "-a",
        dest="autostop",
        action="append",
        default=[],
        metavar="COND",
        help="stop a live capture at duration:SECONDS, packets:N, filesize:KB (of the -w file) "
        "or files:N (of the -b ring); repeatable",
    )
    p.add_argument(
        "-b",
        dest="ring",
        action="append",
        default=[],
        metavar="COND",
        help="ring buffer for -w: filesize:KB starts a new file NAME_NNNNN_YYYYmmddHHMMSS.EXT "
        "at that size, files:N keeps only the newest N",
    )
    p.add_argument(
        "--create-nlmon",
        action="store_true",
        help="create and bring up the -i interface (default nlmon0) if missing; "
        "removed at exit if it was created",
    )
    p.add_argument(
        "--no-owners",
        action="store_true",
        help="live capture: do not look up the process owning each netlink port",
    )
    add_output_options(p)
    p.add_argument("-c", dest="count", type=int, metavar="N", help="stop after N frames")
    p.add_argument(
        "-Y",
        dest="display_filter",
        metavar="FILTER",
        help="show (and with -w write) only the messages matching a display filter "
        "(docs/filters.md), e.g. 'netlink.type == RTM_NEWLINK && rtnl.link.ifname'",
    )
    p.add_argument(
        "-G",
        dest="glossary",
        choices=["families", "fields", "groups"],
        help="print a catalogue and exit",
    )
    p.add_argument(
        "--byte-order",
        choices=["auto", "little", "big"],
        default="auto",
        help="byte order of the netlink data (default: guessed per capture)",
    )
    p.add_argument(
        "--genl",
        action="append",
        default=[],
        metavar="NAME=ID",
        help="name a generic netlink family id (repeatable)",
    )
    p.add_argument(
        "--genl-from-host",
        action="store_true",
        help="name generic netlink ids the capture does not name from this machine's kernel (right for captures made here since boot)",
    )
    p.add_argument(
        "--plugin-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="load family specs (YNL YAML) from DIR first; also NLSHARK_SPEC_PATH, ~/.config/nlshark/plugins",
    )
    p.add_argument(
        "--no-prescan",
        action="store_true",
        help="do not read the file twice to learn generic netlink ids used before their lookup",
    )
    p.add_argument("--version", action="version", version=f"nlshark {__version__}")
    return p


def _parse_genl(items: list[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for item in items:
        name, sep, num = item.partition("=")
        try:
            fid = int(num, 0)
        except ValueError:
            fid = -1
        if not sep or not name or fid < 0 or fid > 0xFFFF:
            raise SystemExit(f"nlshark: --genl expects NAME=ID (e.g. ethtool=20), got {item!r}")
        out[fid] = name
    return out


# ``nlshark COMMAND ...``: each command is a module with ``main(argv) -> int``.
# Without a command, nlshark reads captures the way tshark does.
COMMANDS = {
    "trace": ("dissect.commands.trace", "capture a program's netlink traffic by tracing it"),
    "monitor": ("dissect.commands.monitor", "dissect multicast events of netlink families live"),
    "sockets": ("dissect.commands.sockets", "list the host's netlink sockets and their processes"),
    "replay": (
        "dissect.commands.replay",
        "re-send a capture's requests in a fresh namespace, compare",
    ),
    "fuzz": (
        "dissect.commands.fuzz",
        "mutate a message and send the cases in a throwaway namespace",
    ),
    "craft": (
        "dissect.commands.craft",
        "build a message (Scapy or JSON/YAML); show, save or send it",
    ),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        import importlib

        module = importlib.import_module(COMMANDS[argv[0]][0])
        return _guarded(lambda: int(module.main(argv[1:])))
    args = _parser().parse_args(argv)
    return _guarded(lambda: _run(args))


def _guarded(run: Callable[[], int]) -> int:
    try:
        return run()
    except BrokenPipeError:
        # The reader went away (``| head``): point stdout at /dev/null so the
        # interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    out = sys.stdout
    registry = Registry.default(args.plugin_dir)
    # Decoding makes millions of short-lived, acyclic objects: keep the
    # cyclic collector from rescanning the long-lived schema tables.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    for err in registry.errors:
        print(f"nlshark: warning: spec not loaded: {err}", file=sys.stderr)
    if args.glossary:
        from .schema.catalog import write_families, write_fields, write_groups

        {"families": write_families, "fields": write_fields, "groups": write_groups}[args.glossary](
            registry, out
        )
        return 0
    if args.list_interfaces:
        return _list_interfaces(out)
    live = bool(args.interface or args.create_nlmon)
    if not args.read_file and not live:
        print(
            "nlshark: nothing to read: give a capture with -r FILE or an interface with -i IFACE "
            "(see --help)",
            file=sys.stderr,
        )
        return 2
    try:
        plan = _OutputPlan.of(args, live)
    except ValueError as exc:
        print(f"nlshark: {exc}", file=sys.stderr)
        return 2
    flt = None
    if args.display_filter is not None:
        from .analysis.filter import FilterError, compile_filter

        if live:
            print("nlshark: -Y filters captures read with -r, not live capture", file=sys.stderr)
            return 2
        try:
            flt = compile_filter(args.display_filter, registry)
        except FilterError as exc:
            print(exc.render(), file=sys.stderr)
            return 2
    bo = None if args.byte_order == "auto" else args.byte_order
    session = Session(registry, bo)
    session.genl_overrides = _parse_genl(args.genl)
    if args.genl_from_host:
        from .capture.host import HostQueryError, host_genl_families

        try:
            session.genl_fallback = host_genl_families(session)
        except HostQueryError as exc:
            print(f"nlshark: --genl-from-host: {exc}", file=sys.stderr)
            return 2
    elif live:
        from .capture.host import HostQueryError, host_genl_families

        # Generic netlink ids are global to the running kernel, which is the
        # one being captured: name the ids the traffic does not name itself.
        with contextlib.suppress(HostQueryError):
            session.genl_fallback = host_genl_families(session)
    if live:
        return _run_live(args, plan, session, out)
    status = 0
    try:
        if not args.no_prescan and args.read_file != "-":
            session.genl_names.update(prescan_genl(args.read_file, registry, bo))
        output = None
        if plan.print_frames:
            meta = {"version": __version__, "file": os.path.basename(args.read_file)}
            output = output_from_args(args, out, meta)
        sink = plan.sink()
        try:
            with open_capture(args.read_file) as reader:
                if flt is not None:
                    from .analysis.filter import filtered_output

                    frames = decode_frames(session, itertools.islice(reader, args.count))
                    shown = filtered_output(frames, flt, sink, output)
                    collections.deque(shown, maxlen=0)
                else:
                    _emit(_tee(itertools.islice(reader, args.count), sink), session, output)
        finally:
            if sink is not None:
                sink.close()
            if output is not None:
                output.close()
    except TruncatedCaptureError as exc:
        out.flush()
        print(f"nlshark: {exc}", file=sys.stderr)
        status = 1
    except CaptureError as exc:
        out.flush()
        print(f"nlshark: {exc}", file=sys.stderr)
        status = 2
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        print(f"nlshark: {args.read_file}: {exc.strerror or exc}", file=sys.stderr)
        status = 2
    return status


class _OutputPlan:
    """What a run does with its frames: print them, write them (-w, -F, -b),
    and when a live capture stops (-c, -a); built from the arguments, with
    a ValueError for combinations that cannot work."""

    def __init__(self) -> None:
        self.print_frames = True
        self.write_file: str | None = None
        self.pcapng = False
        self.ring: dict[str, int | float] = {}
        self.autostop: dict[str, int | float] = {}
        self.interface_name: str | None = None

    @classmethod
    def of(cls, args: argparse.Namespace, live: bool) -> _OutputPlan:
        from .capture.ring import ConditionError, is_pcapng_name, parse_conditions

        plan = cls()
        if args.count is not None and args.count < 0:
            raise ValueError(f"-c needs a number of frames, got {args.count}")
        try:
            plan.ring = parse_conditions(args.ring, {"filesize": int, "files": int}, "-b")
            plan.autostop = parse_conditions(
                args.autostop,
                {"duration": float, "packets": int, "filesize": int, "files": int},
                "-a",
            )
        except ConditionError as exc:
            raise ValueError(str(exc)) from None
        w = args.write_file
        if args.create_nlmon and args.read_file:
            raise ValueError("--create-nlmon is for live capture (-i), not with -r")
        if plan.autostop and not live:
            raise ValueError("-a stops a live capture; use -c N to read part of a file")
        if plan.ring and not w:
            raise ValueError("-b needs a file to write: -w FILE")
        if plan.ring and w == "-":
            raise ValueError("-b cannot rotate standard output (-w -)")
        if "files" in plan.ring and "filesize" not in plan.ring:
            raise ValueError("-b files:N needs -b filesize:KB to know when to start a new file")
        if "filesize" in plan.autostop and not w:
            raise ValueError("-a filesize:KB needs a file to write: -w FILE")
        if "files" in plan.autostop and "filesize" not in plan.ring:
            raise ValueError("-a files:N needs a ring buffer: -b filesize:KB")
        if w is not None and w != "-":
            folder = os.path.dirname(os.path.abspath(w))
            if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
                raise ValueError(f"-w {w}: cannot write into {folder}")
        plan.write_file = w
        plan.pcapng = args.file_format == "pcapng" or (
            args.file_format is None and w is not None and is_pcapng_name(w)
        )
        # tshark -w - writes the capture to stdout: nothing else may go there.
        plan.print_frames = not args.quiet and w != "-"
        plan.interface_name = args.interface or ("nlmon0" if live else None)
        return plan

    def sink(self) -> _LazySink | None:
        return None if self.write_file is None else _LazySink(self)


class _LazySink:
    """The -w file, opened with the link type of the first frame (a copied
    file may be LINUX_SLL) and refusing frames of another link type."""

    def __init__(self, plan: _OutputPlan) -> None:
        self.plan = plan
        self.sink: CaptureSink | None = None

    def open(self, linktype: int) -> CaptureSink:
        from .capture.ring import CaptureSink

        assert self.plan.write_file is not None
        try:
            self.sink = CaptureSink(
                self.plan.write_file,
                pcapng=self.plan.pcapng,
                interface_name=self.plan.interface_name,
                linktype=linktype,
                ring_filesize_kb=_int_or_none(self.plan.ring.get("filesize")),
                ring_files=_int_or_none(self.plan.ring.get("files")),
            )
        except OSError as exc:
            raise CaptureError(f"{self.plan.write_file}: {exc.strerror or exc}") from None
        return self.sink

    def write(self, raw: RawFrame) -> None:
        sink = self.sink or self.open(raw.linktype)
        if raw.linktype != sink.linktype:
            raise CaptureError(
                f"frame {raw.number} has link type {raw.linktype}, the -w file holds "
                f"{sink.linktype}: a pcap file has one link type"
            )
        try:
            sink.write(raw)
        except OSError as exc:
            raise CaptureError(f"{self.plan.write_file}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
        elif self.plan.write_file is not None and self.plan.ring.get("filesize") is None:
            # Nothing came: still leave a valid, empty capture, as tcpdump does.
            self.open(LINKTYPE_NETLINK).close()


def _int_or_none(value: int | float | None) -> int | None:
    return None if value is None else int(value)


def _emit(raws: Iterable[RawFrame], session: Session, output: FrameOutput | None) -> None:
    """Decode and print the frames, or with nothing to print (``-q``) only
    consume them (the sink upstream still writes each one)."""
    if output is None:
        collections.deque(raws, maxlen=0)
    else:
        output.write_all(decode_frames(session, raws))


def _tee(raws: Iterable[RawFrame], sink: _LazySink | None) -> Iterator[RawFrame]:
    """Write each frame to the -w file (if any) before it is decoded."""
    for raw in raws:
        if sink is not None:
            sink.write(raw)
        yield raw


def _list_interfaces(out: IO[str]) -> int:
    from .capture.live import list_interfaces

    try:
        interfaces = list_interfaces()
    except OSError as exc:
        print(f"nlshark: cannot list interfaces: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for i, info in enumerate(interfaces, 1):
        mark = "  <- nlmon: nlshark -i " + info.name if info.is_nlmon else ""
        state = "up" if info.up else "down"
        out.write(f"{i}. {info.name:<16} {info.kind:<10} {state:<5}{mark}".rstrip() + "\n")
    if not any(info.is_nlmon for info in interfaces):
        print(
            "nlshark: no nlmon interface here: create one with 'nlshark -i nlmon0 --create-nlmon' "
            "or 'ip link add nlmon0 type nlmon && ip link set nlmon0 up' (root)",
            file=sys.stderr,
        )
    return 0


@contextlib.contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP ask the capture to stop instead of
    killing the process mid-write; the previous handlers come back after."""
    import signal

    def handler(signum: int, frame: object) -> None:
        stop()

    sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    previous = {sig: signal.signal(sig, handler) for sig in sigs}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run_live(args: argparse.Namespace, plan: _OutputPlan, session: Session, out: IO[str]) -> int:
    from .capture import live

    name = plan.interface_name or "nlmon0"
    count = args.count
    if "packets" in plan.autostop:
        packets = int(plan.autostop["packets"])
        count = packets if count is None else min(count, packets)
    duration = plan.autostop.get("duration")
    handle: live.NlmonHandle | None = None
    capture: live.LiveCapture | None = None
    started = False
    status = 0
    try:
        if args.create_nlmon:
            handle = live.ensure_nlmon(name)
        owners = None if args.no_owners else live.PortOwnerLookup.create()
        capture = live.LiveCapture(name, owner_of=owners)
        sink = plan.sink()
        if sink is not None and not plan.ring:
            sink.open(LINKTYPE_NETLINK)  # a file that cannot be written fails now
        output = None
        if plan.print_frames:
            meta = {"version": __version__, "interface": name}
            output = output_from_args(args, out, meta, live=True)
        try:
            with _stop_on_signals(capture.request_stop):
                print(f"Capturing on '{name}'", file=sys.stderr, flush=True)
                started = True
                raws = _autostop(_tee(capture.frames(count, duration), sink), sink, plan)
                _emit(raws, session, output)
        finally:
            # The file first: it must be complete even if stdout is gone.
            if sink is not None:
                sink.close()
            capture.kernel_stats()
            if output is not None:
                output.close(capture.stats.as_dict())
    except (live.LiveCaptureError, CaptureError) as exc:
        out.flush()
        print(f"nlshark: {exc}", file=sys.stderr)
        status = 1 if started else 2
    finally:
        if capture is not None:
            capture.close()
            if started:
                print(capture.stats.line(), file=sys.stderr)
        if handle is not None:
            try:
                live.remove_nlmon(handle)
            except live.LiveCaptureError as exc:
                print(f"nlshark: {exc}", file=sys.stderr)
    return status


def _autostop(
    raws: Iterable[RawFrame], sink: _LazySink | None, plan: _OutputPlan
) -> Iterator[RawFrame]:
    """End the stream once the -w file or the ring reached an -a limit."""
    max_bytes = plan.autostop.get("filesize")
    max_files = plan.autostop.get("files")
    for raw in raws:
        yield raw
        current = sink.sink if sink is not None else None
        if current is None:
            continue
        if max_bytes is not None and current.current_size >= max_bytes * 1000:
            return
        if max_files is not None and current.rotation_due and current.files_opened >= max_files:
            return


if __name__ == "__main__":
    sys.exit(main())
