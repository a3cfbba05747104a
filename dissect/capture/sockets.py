"""The host's netlink sockets and the processes that own them.

`netlink_sockets` asks the kernel for every AF_NETLINK socket of one network
namespace: a SOCK_DIAG_BY_FAMILY dump on NETLINK_SOCK_DIAG with a
``struct netlink_diag_req`` (linux/netlink_diag.h) for all protocols,
showing memory counters, joined groups and flags.  Each answer is a
``struct netlink_diag_msg`` (protocol, port id, peer, inode) followed by
NETLINK_DIAG_* attributes, which our SOCK_DIAG spec decodes like any
captured answer; `info_from_message` reads a socket from the decoded tree.  The kernel answers for the namespace the asking
socket lives in, so ``netns`` selects whose sockets are listed.

Owners are found the way ``ss -p`` finds them: every ``/proc/PID/fd/N`` that
links to ``socket:[INODE]`` names a process holding that socket.  Processes
vanish and other users' fd tables are unreadable while we walk; both are
skipped.  Kernel sockets have port id 0 and no owner.

`PortOwners` keeps a ``(protocol, portid) -> (pid, comm)`` table for live
capture and tracing, which see port ids in nlmsg_pid and want a process
name.  A lookup that misses refreshes the table, at most every
`min_interval` seconds; entries of sockets that have since closed are kept,
so a message from a short-lived program still names it when the socket was
seen once.
"""

from __future__ import annotations

import errno
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from ..core.constants import protocol_name
from ..core.netlink import Message, Node, Session
from .linktypes import netlink_pseudo_header
from .nlsocket import NLM_F_DUMP, NetlinkSocketError, RawNetlinkSocket, error_of

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20  # linux/sock_diag.h
AF_NETLINK = 16
NDIAG_PROTO_ALL = 0xFF
# linux/netlink_diag.h: what the request asks to be shown.  Everything in
# the answers is read from the tree our SOCK_DIAG spec decodes
# (plugins/sock-diag.yaml: netlink-diag-msg, netlink-diag-attrs).
NDIAG_SHOW_MEMINFO = 0x1
NDIAG_SHOW_GROUPS = 0x2
NDIAG_SHOW_RING_CFG = 0x4
NDIAG_SHOW_FLAGS = 0x8
# include/net/tcp_states.h values the kernel reuses for netlink sockets.
TCP_ESTABLISHED = 1
TCP_CLOSE = 7
# struct netlink_diag_req
_DIAG_REQ = struct.Struct("=BBHIIII")
_NLMSGHDR = struct.Struct("=IHHII")
NLM_F_MULTI = 0x2


class SocketQueryError(Exception):
    """The kernel could not be asked for its netlink sockets; the text says why."""


@dataclass
class NetlinkSocketInfo:
    """One netlink socket as netlink_diag reports it, with its owners."""

    protocol: int
    portid: int
    dst_portid: int
    dst_group: int
    groups: list[int]
    state: int  # TCP_ESTABLISHED when connected to a peer, else TCP_CLOSE
    sock_type: int  # SOCK_RAW or SOCK_DGRAM
    rqueue: int | None  # bytes waiting to be read (SK_MEMINFO_RMEM_ALLOC)
    wqueue: int | None  # bytes being written (SK_MEMINFO_WMEM_ALLOC)
    meminfo: dict[str, int]
    flags: int | None
    flag_names: list[str]  # as the spec's ndiag-flags enum names them
    inode: int
    cookie: int
    # The processes holding the socket (a socket can be shared after fork);
    # pid/comm/cmdline are the first of them.
    processes: list[tuple[int, str]] = field(default_factory=list)
    cmdline: str | None = None

    @property
    def pid(self) -> int | None:
        return self.processes[0][0] if self.processes else None

    @property
    def comm(self) -> str | None:
        return self.processes[0][1] if self.processes else None

    @property
    def kernel(self) -> bool:
        return self.portid == 0

    @property
    def protocol_name(self) -> str:
        return protocol_name(self.protocol).lower()

    @property
    def state_name(self) -> str:
        return {TCP_ESTABLISHED: "connected", TCP_CLOSE: "unconnected"}.get(
            self.state, str(self.state)
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "protocol": self.protocol,
            "family": self.protocol_name,
            "portid": self.portid,
            "kernel": self.kernel,
            "dst_portid": self.dst_portid,
            "dst_group": self.dst_group,
            "groups": self.groups,
            "state": self.state_name,
            "type": {2: "dgram", 3: "raw"}.get(self.sock_type, self.sock_type),
            "rqueue": self.rqueue,
            "wqueue": self.wqueue,
            "meminfo": self.meminfo,
            "flags": self.flag_names,
            "inode": self.inode,
            "pid": self.pid,
            "comm": self.comm,
            "cmdline": self.cmdline,
            "processes": [{"pid": p, "comm": c} for p, c in self.processes],
        }


_SESSION: Session | None = None


def _session() -> Session:
    global _SESSION
    if _SESSION is None:
        _SESSION = Session()
    return _SESSION


def parse_diag_message(data: bytes, off: int, end: int) -> NetlinkSocketInfo | None:
    """The socket described by the netlink_diag_msg body ``data[off:end]``."""
    body = bytes(data[off:end])
    frame = (
        netlink_pseudo_header(NETLINK_SOCK_DIAG)
        + _NLMSGHDR.pack(16 + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, 0, 0)
        + body
    )
    msgs = _session().decode(frame).messages
    return info_from_message(msgs[0]) if msgs else None


def info_from_message(msg: Message) -> NetlinkSocketInfo | None:
    """A socket from one decoded SOCK_DIAG_BY_FAMILY answer about an
    AF_NETLINK socket; None when the message is not one, or is too short
    for struct netlink_diag_msg."""
    members: dict[str, Any] = {}
    attrs: dict[str, Node] = {}
    for c in msg.node.children or ():
        if c.abbrev.endswith(".netlink_diag_msg"):
            for m in c.children or ():
                members[m.abbrev.rsplit(".", 1)[1]] = m.value
        elif c.abbrev.startswith("sockdiag.netlink.") and c.abbrev.count(".") == 2:
            attrs.setdefault(c.abbrev.rsplit(".", 1)[1], c)
    if members.get("ndiag_family") != AF_NETLINK or not isinstance(
        members.get("ndiag_cookie"), int
    ):
        return None
    meminfo: dict[str, int] = {}
    mem = attrs.get("meminfo")
    for i, m in enumerate(mem.children or () if mem is not None else ()):
        if isinstance(m.value, int):
            name = m.name.removeprefix("SK_MEMINFO_").lower() if m.name else f"meminfo_{i}"
            meminfo[name] = m.value
    groups = attrs.get("groups")
    flags = attrs.get("flags")
    flag_value = flags.value if flags is not None and isinstance(flags.value, int) else None
    return NetlinkSocketInfo(
        protocol=int(members.get("ndiag_protocol") or 0),
        portid=int(members.get("ndiag_portid") or 0),
        dst_portid=int(members.get("ndiag_dst_portid") or 0),
        dst_group=int(members.get("ndiag_dst_group") or 0),
        groups=list(groups.value) if groups is not None and isinstance(groups.value, list) else [],
        state=int(members.get("ndiag_state") or 0),
        sock_type=int(members.get("ndiag_type") or 0),
        rqueue=meminfo.get("rmem_alloc"),
        wqueue=meminfo.get("wmem_alloc"),
        meminfo=meminfo,
        flags=flag_value,
        flag_names=_flag_names(flags) if flags is not None and flag_value else [],
        inode=int(members.get("ndiag_ino") or 0),
        cookie=int(members.get("ndiag_cookie") or 0),
    )


def _flag_names(node: Node) -> list[str]:
    """``0x00000109 (CB_RUNNING|NO_ENOBUFS|0x100)`` -> [cb_running, no_enobufs, 0x100]."""
    shown = node.display or ""
    inner = shown[shown.find("(") + 1 : shown.rfind(")")] if "(" in shown else ""
    return [n.lower() if not n.startswith("0x") else n for n in inner.split("|") if n]


def diag_request() -> bytes:
    """The SOCK_DIAG_BY_FAMILY body asking for every netlink socket with
    memory counters, groups and flags (netlink_diag answers dumps only and
    does not filter by inode or cookie)."""
    show = NDIAG_SHOW_MEMINFO | NDIAG_SHOW_GROUPS | NDIAG_SHOW_FLAGS
    return _DIAG_REQ.pack(AF_NETLINK, NDIAG_PROTO_ALL, 0, 0, show, 0, 0)


def query_sockets(netns: str | None = None, timeout: float = 5.0) -> list[NetlinkSocketInfo]:
    """The netlink sockets of a network namespace, without their owners."""
    out: dict[int, NetlinkSocketInfo] = {}
    try:
        with RawNetlinkSocket(NETLINK_SOCK_DIAG, netns=netns, ext_ack=False) as sock:
            sock.settimeout(timeout)
            own_inode = os.fstat(sock.fileno()).st_ino
            for data in sock.transact(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, diag_request()):
                err = error_of(data)
                if err:
                    if err == errno.ENOENT:
                        raise SocketQueryError(
                            "the kernel cannot list netlink sockets: SOCK_DIAG for AF_NETLINK "
                            "is not available (load the netlink_diag module)"
                        )
                    raise SocketQueryError(f"netlink socket dump refused: {os.strerror(err)}")
                for msg in _session().decode(sock.as_frame(data)).messages:
                    if msg.type != SOCK_DIAG_BY_FAMILY:
                        continue
                    info = info_from_message(msg)
                    # A socket that joined groups came twice in the dumps
                    # seen here (6.18: the port table, then the multicast
                    # list are walked): keep one per inode.
                    if info is not None and info.inode not in out:
                        out[info.inode] = info
    except NetlinkSocketError as exc:
        raise SocketQueryError(str(exc)) from None
    except OSError as exc:
        raise SocketQueryError(f"netlink socket dump failed: {exc.strerror or exc}") from None
    # The asking socket is closed before anyone could find it in /proc.
    if own_inode in out:
        comm = (_read("/proc/self/comm") or b"").decode(errors="replace").rstrip("\n")
        out[own_inode].processes = [(os.getpid(), comm)]
    return list(out.values())


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def socket_inode_owners(
    inodes: set[int] | None = None, with_cmdline: bool = False
) -> dict[int, list[tuple[int, str, str | None]]]:
    """Socket inode -> [(pid, comm, cmdline)] from /proc/*/fd links, pids in
    ascending order; `inodes` limits the result.  Unreadable or vanished
    processes are left out."""
    owners: dict[int, list[tuple[int, str, str | None]]] = {}
    try:
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    except OSError:
        return owners
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or another user's process
            continue
        found: list[int] = []
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                try:
                    ino = int(target[8:-1])
                except ValueError:
                    continue
                if (inodes is None or ino in inodes) and ino not in found:
                    found.append(ino)
        if not found:
            continue
        comm_raw = _read(f"/proc/{pid}/comm")
        if comm_raw is None:
            continue
        comm = comm_raw.decode(errors="replace").rstrip("\n")
        cmdline = None
        if with_cmdline:
            raw = _read(f"/proc/{pid}/cmdline")
            if raw is not None:
                cmdline = " ".join(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        for ino in found:
            owners.setdefault(ino, []).append((pid, comm, cmdline))
    return owners


def netlink_sockets(netns: str | None = None) -> list[NetlinkSocketInfo]:
    """The netlink sockets of a namespace (this one by default) with the
    processes holding them."""
    socks = query_sockets(netns)
    owners = socket_inode_owners({s.inode for s in socks if s.inode}, with_cmdline=True)
    for s in socks:
        held = owners.get(s.inode, [])
        if held:
            s.processes = [(pid, comm) for pid, comm, _ in held]
            s.cmdline = held[0][2]
    return socks


class PortOwners:
    """``(protocol, portid) -> (pid, comm)`` of the netlink sockets of one
    namespace, for naming the process behind a message's nlmsg_pid."""

    def __init__(self, netns: str | None = None, min_interval: float = 0.5) -> None:
        self.netns = netns
        self.min_interval = min_interval
        self.table: dict[tuple[int, int], tuple[int, str]] = {}
        self.last_refresh: float | None = None
        self.error: str | None = None  # why the last refresh failed, if it did

    def refresh(self) -> None:
        """Read the socket table again; entries of closed sockets stay."""
        self.last_refresh = time.monotonic()
        try:
            socks = query_sockets(self.netns)
        except SocketQueryError as exc:
            self.error = str(exc)
            return
        self.error = None
        owners = socket_inode_owners({s.inode for s in socks if s.portid and s.inode})
        for s in socks:
            held = owners.get(s.inode)
            if s.portid and held:
                pid, comm, _ = held[0]
                self.table[(s.protocol, s.portid)] = (pid, comm)

    def lookup(self, protocol: int, portid: int) -> tuple[int, str] | None:
        """The process owning `portid` of `protocol`, or None (the kernel's
        port 0, or a socket no process could be found for)."""
        if portid == 0:
            return None
        key = (protocol, portid)
        hit = self.table.get(key)
        if hit is None and (
            self.last_refresh is None or time.monotonic() - self.last_refresh >= self.min_interval
        ):
            self.refresh()
            hit = self.table.get(key)
        return hit
