"""``nlshark sockets``: the netlink sockets of a namespace and their processes.

Like ``ss -f netlink -p``: one row per socket from NETLINK_SOCK_DIAG
(`dissect.capture.sockets.netlink_sockets`), with the joined multicast
groups by name (classic families from the uapi tables in
`dissect.capture.mcast`, generic netlink group ids from the controller's
family dump), queue sizes, state and flags, and the processes holding the
socket.  ``--json`` gives the same rows as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..capture.mcast import GroupError, genl_families, genl_group_names, group_name
from ..capture.sockets import NetlinkSocketInfo, SocketQueryError, netlink_sockets
from ..core import constants
from ..core.constants import PROTOCOLS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nlshark sockets",
        description="List netlink sockets (NETLINK_SOCK_DIAG) with the processes that hold them.",
    )
    p.add_argument("--json", action="store_true", help="print the sockets as JSON")
    p.add_argument(
        "--netns",
        metavar="NAME",
        help="list the sockets of this network namespace ('ip netns' name, path or pid:N)",
    )
    p.add_argument(
        "-f",
        "--family",
        action="append",
        default=[],
        metavar="FAMILY",
        help="only this netlink protocol (route, generic, sock_diag, ... or a number; repeatable)",
    )
    p.add_argument("--pid", type=int, action="append", default=[], help="only sockets held by PID")
    p.add_argument("--no-kernel", action="store_true", help="leave out the kernel's own sockets")
    return p


def protocol_number(word: str) -> int | None:
    """A netlink protocol given by number or name (``route``, ``NETLINK_GENERIC``, ``genl``)."""
    w = word.strip()
    if w.isdigit():
        return int(w)
    try:
        return constants.protocol_number(w)
    except ValueError:
        return None


def _group_text(s: NetlinkSocketInfo, genl: dict[int, str]) -> str:
    return ",".join(group_name(s.protocol, g, genl) for g in s.groups) or "-"


def _process_text(s: NetlinkSocketInfo) -> str:
    if s.kernel:
        return "kernel"
    return " ".join(f"{comm} {pid}" for pid, comm in s.processes) or "-"


def _state_text(s: NetlinkSocketInfo) -> str:
    parts = [s.state_name]
    if s.dst_portid or s.dst_group:
        parts.append(f"peer {s.dst_portid}" + (f"/{s.dst_group}" if s.dst_group else ""))
    return " ".join(parts + s.flag_names)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    out = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths)] + [r[-1]]
        out.append("  ".join(cells).rstrip())
    return out


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    protocols: set[int] = set()
    for word in args.family:
        num = protocol_number(word)
        if num is None:
            known = ", ".join(n.lower() for n in PROTOCOLS.values())
            print(
                f"nlshark sockets: unknown netlink family {word!r} (one of: {known})",
                file=sys.stderr,
            )
            return 2
        protocols.add(num)
    try:
        socks = netlink_sockets(args.netns)
    except SocketQueryError as exc:
        print(f"nlshark sockets: {exc}", file=sys.stderr)
        return 2
    if protocols:
        socks = [s for s in socks if s.protocol in protocols]
    if args.pid:
        socks = [s for s in socks if any(pid in args.pid for pid, _ in s.processes)]
    if args.no_kernel:
        socks = [s for s in socks if not s.kernel]
    genl: dict[int, str] = {}
    if any(s.protocol == 16 and s.groups for s in socks):
        try:
            genl = genl_group_names(genl_families(args.netns))
        except GroupError as exc:
            print(
                f"nlshark sockets: warning: generic netlink groups not named: {exc}",
                file=sys.stderr,
            )
    socks.sort(key=lambda s: (s.protocol, s.portid != 0, s.portid))
    if args.json:
        doc = []
        for s in socks:
            d = s.as_dict()
            d["group_names"] = [group_name(s.protocol, g, genl) for g in s.groups]
            doc.append(d)
        json.dump({"netns": args.netns, "sockets": doc}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    rows = [["Family", "Portid", "Recv-Q", "Send-Q", "State", "Groups", "Process"]]
    for s in socks:
        rows.append(
            [
                s.protocol_name,
                "kernel" if s.kernel else str(s.portid),
                "-" if s.rqueue is None else str(s.rqueue),
                "-" if s.wqueue is None else str(s.wqueue),
                _state_text(s),
                _group_text(s, genl),
                _process_text(s),
            ]
        )
    sys.stdout.write("\n".join(_table(rows)) + "\n")
    return 0
