"""``nlshark craft``: build netlink messages, show them, save them, send them.

The message comes from a Scapy expression (``EXPR``) or a JSON/YAML
description (``-f FILE``, ``--desc TEXT``); `dissect.scapy.craft` turns
either into the generated layers.  What was built is then shown the way
nlshark shows a capture -- the same dissector, so a malformed message gets
the same expert notes as one read from a file -- or printed as hex, written
as a capture, or written as a Python reproducer.

``--send`` sends each message with `NetlinkSocket` and dissects the whole
exchange (requests and every answer buffer, in order).  Like ``nlshark
replay`` it sends inside a fresh network namespace (and a PID namespace of
its own) unless told ``--netns NAME`` or ``--host``: a crafted request that
changes links or routes changes them there.  The exit status is 0 when
every message was answered without an errno, 1 when one was refused or
unanswered, 2 for a message that cannot be built or sent.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import IO, Any


def _parser() -> argparse.ArgumentParser:
    from ..render.output import add_output_options
    from .where import add_netns_options

    p = argparse.ArgumentParser(
        prog="nlshark craft",
        description="Build netlink messages from a Scapy expression or a JSON/YAML description; "
        "show them dissected, as hex or as a Python reproducer; write them to a capture; or "
        "send them to the kernel (in a fresh network namespace by default) and dissect the "
        "answers.",
        epilog="examples:\n"
        "  nlshark craft 'Netlink(nlmsg_flags=\"REQUEST|DUMP\") / rt_link.getlink()' --send --host\n"
        "  nlshark craft -f vlan.yaml --send -w vlan.pcapng\n"
        "  nlshark craft --desc '{family: rt-link, op: getlink, flags: [REQUEST, DUMP]}' --hex\n"
        "  nlshark craft -f bug.yaml --python repro.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "expression",
        nargs="?",
        metavar="EXPR",
        help="a Scapy expression: Netlink(...)/rt_link.newlink(...), a list of messages, "
        "a NetlinkBatch, or bytes",
    )
    p.add_argument(
        "-f",
        dest="file",
        metavar="FILE",
        help="a JSON or YAML description ('-' for stdin); a .py file holds an expression",
    )
    p.add_argument("--desc", metavar="TEXT", help="a JSON or YAML description given inline")
    add_output_options(p)
    p.add_argument(
        "--brief", action="store_true", help="one summary line per message instead of the tree"
    )
    p.add_argument(
        "--hex", dest="hex_only", action="store_true", help="print each message as hex bytes"
    )
    p.add_argument(
        "--python",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write a Python reproducer (to stdout without FILE)",
    )
    p.add_argument(
        "-w",
        dest="write_file",
        metavar="OUT",
        help="write the message(s), or with --send the whole exchange, to a capture "
        "(pcapng; pcap when OUT ends in .pcap)",
    )
    p.add_argument("--send", action="store_true", help="send to the kernel and dissect the answers")
    add_netns_options(p, "with --send: ")
    p.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="S",
        help="with --send: seconds of silence before a message counts as unanswered (default 2)",
    )
    p.add_argument(
        "--protocol",
        metavar="P",
        help="netlink protocol of messages given as bytes or without a family (name or number)",
    )
    p.add_argument(
        "--genl",
        action="append",
        default=[],
        metavar="NAME=ID",
        help="a generic netlink family's id (default: this kernel's)",
    )
    return p


def _fail(text: str) -> int:
    print(f"nlshark craft: {text}", file=sys.stderr)
    return 2


def _source(args: argparse.Namespace) -> tuple[str | None, Any]:
    """(expression, description): exactly one is given."""
    from ..scapy.craft import CraftError, load_description

    given = [x for x in (args.expression, args.file, args.desc) if x is not None]
    if len(given) != 1:
        raise CraftError("give one message source: EXPR, -f FILE or --desc TEXT (see --help)")
    if args.expression is not None:
        return args.expression, None
    if args.desc is not None:
        return None, load_description(args.desc)
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    except OSError as exc:
        raise CraftError(f"{args.file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CraftError(f"{args.file}: not a text file") from None
    if args.file.endswith(".py"):
        return text.strip(), None
    return None, load_description(text)


def _genl_ids(pairs: list[str]) -> dict[str, int]:
    from ..scapy.craft import CraftError

    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise CraftError(f"--genl wants NAME=ID, not {pair!r}")
        out[name.strip()] = int(value)
    return out


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from ..scapy.craft import CraftError

    if args.timeout <= 0:
        return _fail("--timeout needs a positive number of seconds")
    try:
        built = _build(args)
    except CraftError as exc:
        return _fail(str(exc))
    if args.python is not None:
        code = _write_python(args, built)
        if code:
            return code
        if args.python == "-" and not (args.send or args.write_file):
            return 0
    if not args.send:
        if args.write_file:
            code = _write_capture(args.write_file, _frames(built), "nlshark craft")
            if code:
                return code
        if args.hex_only:
            for _, data, _ in built.items:
                print(data.hex())
            return 0
        _print(args, built, [(time.time_ns(), f) for f in _frames(built)], sys.stdout)
        return 0
    from .where import in_chosen_netns

    return in_chosen_netns(args, "nlshark craft", "craft", lambda netns: _send(args, built, netns))


class Built:
    """The messages built: (packet, bytes, protocol) each, and the context
    that numbered their generic netlink families."""

    def __init__(self, expression: str | None, description: Any, context: Any) -> None:
        self.expression = expression
        self.description = description
        self.context = context
        self.items: list[tuple[Any, bytes, int]] = []


def _build(args: argparse.Namespace) -> Built:
    from ..core.constants import protocol_number
    from ..scapy import NetlinkContext
    from ..scapy.craft import CraftError, from_description, from_expression, message_protocol
    from ..scapy.layers import GenlIdError

    expression, description = _source(args)
    context = NetlinkContext(_genl_ids(args.genl) or None, host=True, host_names=True)
    default_proto: int | None = None
    if args.protocol is not None:
        try:
            default_proto = protocol_number(args.protocol)
        except ValueError as exc:
            raise CraftError(f"--protocol: {exc}") from None
    with context:
        msgs = (
            from_expression(expression) if expression is not None else from_description(description)
        )
        built = Built(expression, description, context)
        for i, m in enumerate(msgs, 1):
            try:
                data = m if isinstance(m, bytes) else bytes(m)
            except GenlIdError as exc:
                raise CraftError(
                    f"generic netlink family {exc.family!r} is not registered on this kernel "
                    f"(is its module loaded?); give its id with --genl {exc.family}=ID to build "
                    "the message anyway"
                ) from None
            except (ValueError, TypeError, KeyError, OverflowError) as exc:
                where = f"message {i}: " if len(msgs) > 1 else ""
                raise CraftError(f"{where}cannot build it: {exc}") from None
            proto = default_proto if isinstance(m, bytes) else message_protocol(m, default_proto)
            if proto is None:
                proto = 0
            built.items.append((m, data, proto))
    protos = {p for _, _, p in built.items}
    if args.send and len(protos) > 1:
        raise CraftError(
            f"--send: the messages belong to {len(protos)} netlink protocols; send them one "
            "protocol at a time"
        )
    return built


def _frames(built: Built) -> list[bytes]:
    from ..capture.linktypes import netlink_pseudo_header

    return [netlink_pseudo_header(p) + d for _, d, p in built.items]


def _session(built: Built) -> Any:
    from ..core.netlink import Session

    s = Session(built.context.registry)
    s.genl_overrides.update(built.context.user)
    s.genl_names.update(built.context.names)
    if any(p == 16 for _, _, p in built.items):
        s.genl_fallback = dict(built.context.host_names())
    return s


def _print(
    args: argparse.Namespace, built: Built, frames: list[tuple[int, bytes]], out: IO[str]
) -> None:
    from ..api import decode_frames
    from ..capture.frame import RawFrame
    from ..render.output import output_from_args

    if not args.brief and args.format == "text":
        args.verbose = True
    sink = output_from_args(args, out, {"source": "nlshark craft"})
    raws = (RawFrame(i, ts, 253, data, len(data)) for i, (ts, data) in enumerate(frames, 1))
    sink.write_all(decode_frames(_session(built), raws))
    sink.close()


def _write_capture(path: str, frames: list[bytes] | list[tuple[int, bytes]], comment: str) -> int:
    from ..capture.frame import RawFrame
    from ..capture.ring import CaptureSink

    try:
        sink = CaptureSink(
            path,
            pcapng=not path.endswith(".pcap"),
            interface_name="nlshark craft",
            section_comment=comment,
        )
    except OSError as exc:
        return _fail(f"-w {path}: {exc.strerror or exc}")
    now = time.time_ns()
    for i, f in enumerate(frames, 1):
        ts, data = f if isinstance(f, tuple) else (now, f)
        sink.write(RawFrame(i, ts, 253, data, len(data)))
    sink.close()
    return 0


def _write_python(args: argparse.Namespace, built: Built) -> int:
    from ..scapy.craft import reproducer, socket_family

    first, _, proto = built.items[0]
    netns = None if args.host else args.netns
    text = reproducer(
        expression=built.expression,
        description=built.description,
        hex_messages=[d for _, d, _ in built.items],
        family_arg=socket_family(first, proto),
        netns=netns,
    )
    if args.python == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        Path(args.python).write_text(text)
    except OSError as exc:
        return _fail(f"--python {args.python}: {exc.strerror or exc}")
    print(f"nlshark craft: reproducer written to {args.python}", file=sys.stderr)
    return 0


def _send(args: argparse.Namespace, built: Built, netns: str | None) -> int:
    from ..scapy import HOST_BO, Netlink, NetlinkSocket
    from ..scapy.craft import socket_family
    from ..scapy.socket import error_of, requests_in

    first, _, proto = built.items[0]
    try:
        nl = NetlinkSocket(
            socket_family(first, proto), netns=netns, context=built.context, record=True
        )
    except (OSError, ValueError) as exc:
        return _fail(f"cannot open the socket: {exc}")
    sent = answered = refused = 0
    try:
        for m, data, _ in built.items:
            ans, unans = nl.sr(data if isinstance(m, bytes) else m, timeout=args.timeout)
            # the sequence numbers the buffer went out with (the socket
            # numbers messages that have none), and which got an answer
            q = ans[0][0] if ans else unans[0]
            with built.context:
                seqs = [
                    seq for seq, _ in requests_in(q if isinstance(q, bytes) else bytes(q), HOST_BO)
                ]
            got = {a[Netlink].nlmsg_seq for _, a in ans if a.haslayer(Netlink)}
            sent += len(seqs)
            answered += sum(1 for seq in seqs if seq in got)
            refused += sum(1 for _, a in ans if error_of(a) is not None)
    except OSError as exc:
        return _fail(f"sending failed: {exc.strerror or exc}")
    finally:
        nl.close()
    frames = [(int(t * 1e9), f) for t, f in nl.recorded]
    where = "the host namespace" if netns is None else f"network namespace {netns}"
    if args.write_file:
        code = _write_capture(args.write_file, frames, f"nlshark craft --send in {where}")
        if code:
            return code
    _print(args, built, frames, sys.stdout)
    unanswered = sent - answered
    buffers = f" in {len(built.items)} buffers" if len(built.items) not in (1, sent) else ""
    print(
        f"nlshark craft: {sent} message(s){buffers} sent in {where}: "
        f"{answered} answered, {refused} refused, {unanswered} unanswered",
        file=sys.stderr,
    )
    return 1 if refused or unanswered else 0


__all__ = ["main"]
