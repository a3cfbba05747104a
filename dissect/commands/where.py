"""Where commands that send to the kernel send: ``--netns`` and ``--host``.

``nlshark replay`` and ``nlshark craft --send`` share one rule: by default
a fresh network namespace (``ip netns add nlshark-WHAT-...``, deleted at the
end), ``--netns NAME`` an existing one, and the host's own namespace only
with an explicit ``--host``, which warns.  Except with ``--host`` the work
runs alone in a new PID namespace (`run_isolated`), so a request naming a
process (IFLA_NET_NS_PID) cannot reach the host's network namespace.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def add_netns_options(p: argparse.ArgumentParser, when: str = "") -> None:
    """``--netns new|NAME`` (default new) and ``--host``, mutually exclusive."""
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--netns",
        default="new",
        metavar="new|NAME",
        help=f"{when}'new' (default): a fresh namespace deleted at exit; NAME: an existing one "
        "(ip netns)",
    )
    where.add_argument(
        "--host",
        action="store_true",
        help=f"{when}use the host's own namespace (changes this machine: explicit only)",
    )


def in_chosen_netns(
    args: argparse.Namespace, prog: str, what: str, run: Callable[[str | None], int]
) -> int:
    """Call ``run(netns)`` where `args` say: None for the host's namespace,
    else a namespace name; 2 when the namespace cannot be had."""
    from ..analysis.netns import NetnsError, ScratchNetns, netns_exists, run_isolated

    if args.host:
        print(
            f"{prog}: warning: working in the host's own network namespace: "
            "the messages can change this machine",
            file=sys.stderr,
        )
        return run(None)
    if args.netns != "new" and not netns_exists(args.netns):
        print(f"{prog}: no network namespace {args.netns!r}", file=sys.stderr)
        return 2

    def isolated() -> int:
        if args.netns != "new":
            return run(args.netns)
        try:
            scratch = ScratchNetns(what)
        except NetnsError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2
        try:
            return run(scratch.name)
        finally:
            scratch.close()

    return run_isolated(isolated)


__all__ = ["add_netns_options", "in_chosen_netns"]
