"""``nlshark fuzz``: mutate a template message and send the cases to the kernel.

Argument parsing, the template's source, the -w capture, the state file
(``--resume``), progress and the report; the fuzzing itself is in
`dissect.analysis.fuzz`.  Cases only ever go to a throwaway network
namespace: there is no option to fuzz the host's own.

Template sources are the entries of `TEMPLATE_SOURCES`, each turning the
parsed arguments into (protocol, message bytes); a new source (a crafted
message, for instance) is one more entry and its option, and everything
after it -- structure, mutators, execution -- is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .. import __version__


class TemplateError(Exception):
    """The template could not be made; the text says why."""


def _protocol(text: str) -> int:
    from ..core.constants import protocol_number

    try:
        return protocol_number(text)
    except ValueError as exc:
        raise TemplateError(f"--protocol: {exc}") from None


def _from_capture(args: argparse.Namespace) -> tuple[int, bytes]:
    import dissect

    from ..capture import CaptureError

    if args.frame is None:
        raise TemplateError("--from needs --frame N (and --message I for a frame with several)")
    try:
        for f in dissect.read_capture(args.from_file):
            if f.number != args.frame:
                continue
            if not f.messages:
                raise TemplateError(f"frame {args.frame} holds no netlink message")
            i = args.message or 1
            if not 1 <= i <= len(f.messages):
                raise TemplateError(f"frame {args.frame} has {len(f.messages)} message(s), not {i}")
            m = f.messages[i - 1]
            data = bytes(f.data[m.node.offset : m.node.offset + m.node.length])
            return m.protocol, _local_genl(m, data)
    except (OSError, CaptureError) as exc:
        raise TemplateError(f"{args.from_file}: {exc}") from None
    raise TemplateError(f"{args.from_file} has no frame {args.frame}")


def _local_genl(msg: Any, data: bytes) -> bytes:
    """A generic netlink message gets this kernel's id of its family."""
    import struct

    if msg.protocol != 16 or msg.type == 16 or msg.family.startswith("genl id"):
        return data
    from ..capture.mcast import GroupError, genl_families

    try:
        fam = genl_families().get(msg.family)
    except GroupError as exc:
        raise TemplateError(f"cannot look up generic netlink families: {exc}") from None
    if fam is None:
        raise TemplateError(
            f"generic netlink family {msg.family!r} is not registered on this kernel"
        )
    return data[:4] + struct.pack("=H", fam.id) + data[6:]


def _from_hex(args: argparse.Namespace) -> tuple[int, bytes]:
    text = "".join(args.hex.split()).replace(":", "")
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise TemplateError("--hex: not hexadecimal bytes") from None
    return _protocol(args.protocol), data


def _from_craft(args: argparse.Namespace) -> tuple[int, bytes]:
    """A message from a Scapy expression (--craft) or a JSON/YAML
    description (--craft-file), built as ``nlshark craft`` builds it, with
    this kernel's generic netlink ids."""
    from ..scapy import NetlinkContext
    from ..scapy.craft import (
        CraftError,
        from_description,
        from_expression,
        load_description,
        message_protocol,
    )

    try:
        if args.craft is not None:
            msgs = from_expression(args.craft)
        else:
            path = args.craft_file
            try:
                text = sys.stdin.read() if path == "-" else open(path).read()  # noqa: SIM115
            except OSError as exc:
                raise TemplateError(f"--craft-file {path}: {exc.strerror or exc}") from None
            msgs = (
                from_expression(text.strip())
                if path.endswith(".py")
                else from_description(load_description(text))
            )
        if len(msgs) != 1:
            raise TemplateError(f"the crafted template is {len(msgs)} messages; give one")
        with NetlinkContext(host=True):
            m = msgs[0]
            data = m if isinstance(m, bytes) else bytes(m)
    except CraftError as exc:
        raise TemplateError(f"--craft: {exc}") from None
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise TemplateError(f"--craft: cannot build the message: {exc}") from None
    proto = _protocol(args.protocol) if isinstance(m, bytes) else message_protocol(m, 0)
    return int(proto or 0), data


# option dest -> builder; exactly one must be given.
TEMPLATE_SOURCES: dict[str, Callable[[argparse.Namespace], tuple[int, bytes]]] = {
    "from_file": _from_capture,
    "hex": _from_hex,
    "craft": _from_craft,
    "craft_file": _from_craft,
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nlshark fuzz",
        description="Mutate a netlink message field- and attribute-wise and send each case to "
        "the kernel inside a throwaway network namespace; record every case and answer, and "
        "report new errnos and extack messages, timeouts, malformed answers and taint changes.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--from", dest="from_file", metavar="FILE", help="take the template from a capture"
    )
    src.add_argument("--hex", metavar="HEX", help="the template as hex bytes (nlmsghdr included)")
    src.add_argument(
        "--craft",
        metavar="EXPR",
        help="the template as a Scapy expression, as nlshark craft takes it",
    )
    src.add_argument(
        "--craft-file",
        metavar="FILE",
        help="the template as a JSON/YAML description (or a .py expression), as nlshark craft takes it",
    )
    p.add_argument("--frame", type=int, metavar="N", help="with --from: the frame number")
    p.add_argument(
        "--message", type=int, metavar="I", help="with --from: the message of the frame (from 1)"
    )
    p.add_argument(
        "--protocol",
        default="route",
        metavar="P",
        help="with --hex (or a crafted bytes template): netlink protocol (name or number; "
        "default route)",
    )
    p.add_argument(
        "-n",
        dest="count",
        type=int,
        default=1000,
        metavar="COUNT",
        help="number of cases, case 0 being the template itself (default 1000)",
    )
    p.add_argument(
        "--time",
        dest="time_limit",
        type=float,
        default=300.0,
        metavar="S",
        help="stop after S seconds (default 300)",
    )
    p.add_argument("--seed", default=None, help="seed (default: chosen from the clock and printed)")
    p.add_argument("--case", type=int, metavar="K", help="run only case K (reproduce it)")
    p.add_argument("--mutators", metavar="A,B", help="only these mutators (default: all)")
    p.add_argument(
        "--case-timeout",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds to wait for an answer (default 1)",
    )
    p.add_argument(
        "--recreate-every",
        type=int,
        default=1000,
        metavar="N",
        help="new namespace every N cases (and after any accepted change)",
    )
    p.add_argument(
        "-w", dest="write_file", metavar="OUT", help="record every case and answer (pcapng)"
    )
    p.add_argument("--report", metavar="FILE", help="write the findings and statistics as JSON")
    p.add_argument(
        "--resume",
        metavar="STATE",
        help="state file: continue a run from it if it exists, keep it up to date",
    )
    p.add_argument(
        "--no-minimize",
        action="store_true",
        help="report findings as found, without deleting attributes while the answer stays the same",
    )
    p.add_argument("-q", dest="quiet", action="store_true", help="no progress on stderr")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from ..analysis.fuzz import MUTATORS, Template

    def fail(text: str) -> int:
        print(f"nlshark fuzz: {text}", file=sys.stderr)
        return 2

    given = [k for k in TEMPLATE_SOURCES if getattr(args, k) is not None]
    if len(given) != 1:
        return fail(
            "give one template: --from FILE --frame N, --hex HEX, --craft EXPR or --craft-file FILE"
        )
    if args.count < 1 or args.time_limit <= 0 or args.case_timeout <= 0 or args.recreate_every < 1:
        return fail("-n, --time, --case-timeout and --recreate-every need positive values")
    mutators = None
    if args.mutators:
        mutators = [m.strip() for m in args.mutators.split(",") if m.strip()]
        unknown = [m for m in mutators if m not in MUTATORS]
        if unknown:
            return fail(f"unknown mutator(s) {', '.join(unknown)}; known: {', '.join(MUTATORS)}")
    try:
        protocol, data = TEMPLATE_SOURCES[given[0]](args)
        template = Template.from_bytes(protocol, data)
    except (TemplateError, ValueError) as exc:
        return fail(str(exc))
    if len(data) >= 6 and not int.from_bytes(data[6:8], sys.byteorder) & 0x1:
        # The kernel ignores messages without NLM_F_REQUEST: mutating a
        # reply or notification mostly measures that.
        print(
            f"nlshark fuzz: warning: the template ({template.type_name}) has no NLM_F_REQUEST "
            "flag: it is not a request; pick a user->kernel message",
            file=sys.stderr,
        )
    from ..analysis.netns import run_isolated

    if os.geteuid() != 0:
        return fail("fuzzing needs root (network and PID namespaces)")
    # Everything from here runs alone in a new PID namespace: see run_isolated.
    return run_isolated(lambda: _run(args, protocol, data, template, mutators))


def _run(
    args: argparse.Namespace, protocol: int, data: bytes, template: Any, mutators: list[str] | None
) -> int:
    from ..analysis.fuzz import Fuzzer, RunState
    from ..analysis.netns import NetnsError
    from ..capture.nlsocket import NetlinkSocketError

    def fail(text: str) -> int:
        print(f"nlshark fuzz: {text}", file=sys.stderr)
        return 2

    state = None
    if args.resume and os.path.exists(args.resume):
        try:
            state = RunState.load(args.resume)
        except (OSError, ValueError, TypeError) as exc:
            return fail(f"--resume {args.resume}: {exc}")
        if state.template != template.data.hex() or state.protocol != protocol:
            return fail(f"--resume {args.resume}: the state is of another template")
        if args.seed is not None and str(args.seed) != str(state.seed):
            return fail(
                f"--resume {args.resume}: the state is of seed {state.seed}, not {args.seed}"
            )
        seed: int | str = state.seed
    else:
        seed = args.seed if args.seed is not None else str(time.time_ns() % 1_000_000_007)
    if not args.quiet:
        print(
            f"nlshark fuzz: seed {seed}, template {template.type_name} ({len(data)} bytes)",
            file=sys.stderr,
        )
    writer: Any = None
    if args.write_file:
        from ..capture.writer import PcapngWriter

        try:
            writer = PcapngWriter(
                args.write_file,
                section_comment=f"nlshark fuzz seed {seed} template {template.data.hex()}",
                application=f"nlshark {__version__}",
            )
        except OSError as exc:
            return fail(f"-w {args.write_file}: {exc.strerror or exc}")
        writer.add_interface(name="fuzz")

    def record(frame: bytes, comment: str) -> None:
        writer.write(frame, comment=comment)

    fz = Fuzzer(
        template,
        seed,
        state=state,
        mutators=mutators,
        case_timeout=args.case_timeout,
        recreate_every=args.recreate_every,
        record=record if writer is not None else None,
        minimize=not args.no_minimize,
    )
    st = fz.state
    first = st.next_case if args.case is None else args.case
    start = time.monotonic()
    status = 0
    stopped = "count"
    try:
        progress = None if args.quiet else (lambda s: print(f"nlshark fuzz: {s}", file=sys.stderr))
        last_save = time.monotonic()
        for finding in fz.run(args.count, args.time_limit, progress, only=args.case):
            if not args.quiet:
                print(
                    f"nlshark fuzz: case {finding.case} [{finding.mutator}] {finding.kind}: "
                    f"{finding.detail} ({finding.description})",
                    file=sys.stderr,
                )
            if args.resume and time.monotonic() - last_save > 2:
                st.save(args.resume)
                last_save = time.monotonic()
        if args.case is None and st.next_case < args.count:
            stopped = "time"
    except (NetnsError, NetlinkSocketError) as exc:
        status = fail(str(exc))
    except KeyboardInterrupt:
        stopped = "interrupted"
        status = 130
    finally:
        fz.close()
        if writer is not None:
            writer.close()
        if args.resume:
            st.save(args.resume)
    duration = time.monotonic() - start
    ran = (st.next_case - first) if args.case is None else 1
    summary = {
        "seed": seed,
        "protocol": protocol,
        "template": template.data.hex(),
        "template_type": template.type_name,
        "first_case": first,
        "next_case": st.next_case,
        "cases_run": ran,
        "stopped_by": stopped,
        "duration_s": round(duration, 3),
        "cases_per_s": round(ran / duration, 1) if duration > 0 else None,
        "namespaces": fz.namespaces,
        "timeouts": fz.timeouts,
        "errnos": st.errnos,
        "extacks": st.extacks,
        "findings": st.findings,
    }
    if args.report:
        try:
            with open(args.report, "w") as f:
                json.dump(summary, f, indent=1)
        except OSError as exc:
            return fail(f"--report {args.report}: {exc.strerror or exc}")
    if status == 0 or status == 130:
        errs = ", ".join(f"{k} {v}" for k, v in sorted(st.errnos.items(), key=lambda kv: -kv[1]))
        print(
            f"{ran} cases (#{first}..#{st.next_case - 1}) in {duration:.1f} s "
            f"({summary['cases_per_s']} cases/s), stopped by {stopped}; "
            f"{len(st.findings)} findings; answers: {errs or 'none'}"
        )
        for fd in st.findings:
            small = fd.get("minimal_hex")
            size = f"; minimal reproducer {len(small) // 2} bytes" if small else ""
            print(
                f"  case {fd['case']} {fd['kind']}: {fd['detail']} "
                f"[{fd['mutator']}: {fd['mutation']}{size}]"
            )
    return status
