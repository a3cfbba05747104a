"""``nlshark replay FILE``: re-send a capture's requests and compare the answers.

Argument parsing, the choice of namespace (a fresh one by default, an
existing one with ``--netns NAME``, the host's own only with ``--host``),
the optional ``-w`` recording and the report; the work itself is in
`dissect.analysis.replay`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .. import __version__


def _parser() -> argparse.ArgumentParser:
    from .where import add_netns_options

    p = argparse.ArgumentParser(
        prog="nlshark replay",
        description="Re-send the user->kernel requests of a capture to the local kernel, inside "
        "a fresh network namespace unless told otherwise, and report per request whether the "
        "answer matches the original (errno, reply types, attribute names).",
    )
    p.add_argument("file", metavar="FILE", help="capture to replay (pcap or pcapng)")
    p.add_argument(
        "-Y",
        dest="display_filter",
        metavar="FILTER",
        help="replay only the requests matching this display filter",
    )
    add_netns_options(p)
    p.add_argument("-w", dest="write_file", metavar="OUT", help="record the new exchange (pcapng)")
    p.add_argument(
        "-T", dest="format", choices=["text", "json"], default="text", help="report format"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds to wait for each answer (default 2)",
    )
    p.add_argument(
        "--plugin-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="load family specs from DIR first",
    )
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from ..analysis.filter import FilterError, compile_filter
    from ..analysis.replay import load_requests
    from ..capture import CaptureError
    from ..schema import Registry

    if args.timeout <= 0:
        print("nlshark replay: --timeout needs a positive number of seconds", file=sys.stderr)
        return 2
    registry = Registry.default(args.plugin_dir)
    flt = None
    if args.display_filter is not None:
        try:
            flt = compile_filter(args.display_filter, registry)
        except FilterError as exc:
            print(exc.render("nlshark replay: -Y"), file=sys.stderr)
            return 2
    try:
        loaded = load_requests(args.file, registry, flt)
    except CaptureError as exc:
        print(f"nlshark replay: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"nlshark replay: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    from .where import in_chosen_netns

    return in_chosen_netns(
        args, "nlshark replay", "replay", lambda netns: _run(args, loaded, registry, netns)
    )


def _run(args: argparse.Namespace, loaded: Any, registry: Any, netns: str | None) -> int:
    from ..analysis.replay import Replayer, outcome_line, summary_line
    from ..capture.nlsocket import NetlinkSocketError

    writer: Any = None
    try:
        if args.write_file:
            from ..capture.writer import PcapngWriter

            try:
                writer = PcapngWriter(
                    args.write_file,
                    section_comment=f"nlshark replay of {os.path.basename(args.file)} "
                    f"in {'the host namespace' if netns is None else 'network namespace ' + netns}",
                    application=f"nlshark {__version__}",
                )
            except OSError as exc:
                print(
                    f"nlshark replay: -w {args.write_file}: {exc.strerror or exc}", file=sys.stderr
                )
                return 2
            writer.add_interface(name="replay")

        def record(frame: bytes, comment: str) -> None:
            writer.write(frame, comment=comment)

        rep = Replayer(netns, loaded, registry, args.timeout, record if writer else None)
        outcomes = []
        try:
            for o in rep.run():
                outcomes.append(o)
                if args.format == "text":
                    print(outcome_line(o), flush=True)
        except NetlinkSocketError as exc:
            print(f"nlshark replay: {exc}", file=sys.stderr)
            return 2
        finally:
            rep.close()
        line = summary_line(outcomes)
        if args.format == "json":
            json.dump(
                {
                    "file": os.path.basename(args.file),
                    "netns": netns or "host",
                    "requests": [o.as_dict() for o in outcomes],
                    "summary": line,
                },
                sys.stdout,
                indent=1,
            )
            sys.stdout.write("\n")
        else:
            print(line)
        return 0 if outcomes and all(o.verdict == "match" for o in outcomes) else 1
    finally:
        if writer is not None:
            writer.close()
