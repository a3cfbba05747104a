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
import gc
import os
import sys
from collections.abc import Callable
from typing import IO

from . import __version__
from .api import decode_capture, prescan_genl
from .capture import CaptureError, TruncatedCaptureError
from .core.netlink import Session
from .render import text as tr
from .render.output import FrameOutput
from .schema import Registry


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nlshark",
        description="Dissect Linux netlink captures (nlmon, LINKTYPE_NETLINK).",
        epilog="commands:\n"
        + "\n".join(f"  nlshark {name:<9} {doc}" for name, (_, doc) in COMMANDS.items())
        + "\n\n'nlshark COMMAND --help' describes each.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-r",
        "--read-file",
        metavar="FILE",
        help="capture file to read (pcap or pcapng; '-' for stdin)",
    )
    p.add_argument(
        "-V",
        dest="verbose",
        action="store_true",
        help="print the full annotated tree of every message",
    )
    p.add_argument(
        "-x",
        dest="hex",
        action="store_true",
        help="print the tree with each node's bytes, plus a hex dump of each frame",
    )
    p.add_argument(
        "-T", dest="format", choices=["text", "json", "jsonl"], default="text", help="output format"
    )
    p.add_argument("-c", dest="count", type=int, metavar="N", help="stop after N frames")
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
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour output (auto: on a terminal, unless NO_COLOR is set)",
    )
    p.add_argument("--version", action="version", version=f"nlshark {__version__}")
    return p


def _use_color(choice: str, stream: IO[str]) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


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
    if not args.read_file:
        print("nlshark: nothing to read: give a capture with -r FILE (see --help)", file=sys.stderr)
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
    style = tr.Style(_use_color(args.color, out))
    status = 0
    try:
        if not args.no_prescan and args.read_file != "-":
            session.genl_names.update(prescan_genl(args.read_file, registry, bo))
        output = FrameOutput(
            out,
            args.format,
            tree=args.verbose,
            hex_bytes=args.hex,
            style=style,
            meta={"version": __version__, "file": os.path.basename(args.read_file)},
        )
        try:
            output.write_all(decode_capture(session, args.read_file, args.count))
        finally:
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


if __name__ == "__main__":
    sys.exit(main())
