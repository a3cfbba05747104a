"""A plain AF_NETLINK socket for the commands that talk to the local kernel.

`RawNetlinkSocket` is the I/O edge under ``--genl-from-host``, ``nlshark
monitor``, ``nlshark sockets`` and live-capture set-up: it opens a socket of
one netlink protocol (optionally inside another network namespace), joins
multicast groups, sends requests and hands back what the kernel wrote, one
``recv`` (one skb) at a time, as bytes.  It does not parse: callers decode the
bytes with a `Session` like any captured frame (`as_frame` adds the
LINKTYPE_NETLINK pseudo-header), so what the user sees live and what a
capture shows come from the same decoder.

A socket created inside a namespace stays bound to it, so `netns` switches
this thread into the namespace just long enough to create the socket and
switches back.  Messages are packed in host byte order, as the kernel expects
(linux/netlink.h: struct nlmsghdr).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
from collections.abc import Iterator

from .linktypes import netlink_pseudo_header

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_DROP_MEMBERSHIP = 2
NETLINK_PKTINFO = 3
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12
CLONE_NEWNET = 0x40000000
_HDR = struct.Struct("=IHHII")


class NetlinkSocketError(Exception):
    """The socket could not be opened, set up or used; the text says why and
    `errno` is the system's error number when there was one."""

    def __init__(self, text: str, errno: int | None = None) -> None:
        super().__init__(text)
        self.errno = errno


def netns_path(netns: str) -> str:
    """A namespace given by name (``ip netns`` style), path or ``pid:N``."""
    if netns.startswith("pid:"):
        return f"/proc/{netns[4:]}/ns/net"
    if "/" in netns:
        return netns
    return f"/run/netns/{netns}"


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class RawNetlinkSocket:
    """One AF_NETLINK socket of `protocol`, bound with an automatic port id."""

    def __init__(
        self,
        protocol: int,
        *,
        groups: int = 0,
        netns: str | None = None,
        rcvbuf: int | None = None,
        ext_ack: bool = True,
    ) -> None:
        self.protocol = protocol
        self.seq = int.from_bytes(os.urandom(3), "little") or 1
        try:
            self.sock = self._open(protocol, netns)
        except OSError as exc:
            where = f" in network namespace {netns!r}" if netns else ""
            raise NetlinkSocketError(
                f"cannot open a netlink socket of protocol {protocol}{where}: {exc.strerror or exc}",
                exc.errno,
            ) from None
        try:
            if rcvbuf:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if ext_ack:
                # Best effort: older kernels or other protocols may refuse it.
                with contextlib.suppress(OSError):
                    self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            self.sock.bind((0, groups))
        except OSError as exc:
            self.sock.close()
            raise NetlinkSocketError(
                f"cannot bind a netlink socket of protocol {protocol}: {exc.strerror or exc}",
                exc.errno,
            ) from None

    @staticmethod
    def _open(protocol: int, netns: str | None) -> socket.socket:
        if netns is None:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        target = os.open(netns_path(netns), os.O_RDONLY)
        here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(target)
            try:
                return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
            finally:
                _setns(here)
        finally:
            os.close(target)
            os.close(here)

    @property
    def portid(self) -> int:
        return int(self.sock.getsockname()[0])

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawNetlinkSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_membership(self, group: int) -> None:
        """Join multicast group number `group` (any number, unlike bind's mask).
        NETLINK_PKTINFO is turned on too, so `recvfrom` can tell which group
        a message was sent to."""
        try:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
            with contextlib.suppress(OSError):
                self.sock.setsockopt(SOL_NETLINK, NETLINK_PKTINFO, 1)
        except OSError as exc:
            raise NetlinkSocketError(
                f"cannot join multicast group {group} of protocol {self.protocol}: {exc.strerror or exc}",
                exc.errno,
            ) from None

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def send(self, msg_type: int, flags: int, payload: bytes = b"") -> int:
        """Send one message (``NLM_F_REQUEST`` is added); returns its sequence number."""
        self.seq = (self.seq + 1) & 0xFFFFFFFF or 1
        data = _HDR.pack(16 + len(payload), msg_type, flags | NLM_F_REQUEST, self.seq, 0) + payload
        self.sock.send(data)
        return self.seq

    def recv(self, size: int = 1 << 20) -> bytes:
        """One buffer from the kernel (one skb: one or more messages)."""
        return self.sock.recv(size)

    def recvfrom(self) -> tuple[bytes, int, int]:
        """One whole buffer with its sender's port id and the multicast group
        it was sent to (0 for unicast).  The size is peeked first
        (MSG_PEEK|MSG_TRUNC gives the full length), so no skb is cut short.
        The group comes from the NETLINK_PKTINFO control message (struct
        nl_pktinfo) when there is one; the address's nl_groups only holds
        the group as a bit, and only for groups up to 32."""
        size = self.sock.recv_into(bytearray(16), 16, socket.MSG_PEEK | socket.MSG_TRUNC)
        data, ancillary, _, (portid, mask) = self.sock.recvmsg(max(size, 16), 64)
        group = mask.bit_length() if mask else 0
        for level, kind, value in ancillary:
            if level == SOL_NETLINK and kind == NETLINK_PKTINFO and len(value) >= 4:
                group = struct.unpack_from("=I", value)[0]
        return data, portid, group

    def transact(self, msg_type: int, flags: int, payload: bytes = b"") -> Iterator[bytes]:
        """Send a request and yield each buffer of its answer, up to and
        including the one with NLMSG_DONE or NLMSG_ERROR for it.  Buffers for
        other sequence numbers (multicast events) are skipped."""
        seq = self.send(msg_type, flags, payload)
        while True:
            data = self.recv()
            mine = False
            finished = False
            for mtype, mseq, mflags in _headers(data):
                if mseq != seq:
                    continue
                mine = True
                if mtype in (NLMSG_DONE, NLMSG_ERROR) or not mflags & NLM_F_MULTI:
                    finished = True
            if mine:
                yield data
            if finished or not data:
                return

    def as_frame(self, data: bytes) -> bytes:
        """`data` with the LINKTYPE_NETLINK header, as nlmon would show it."""
        return netlink_pseudo_header(self.protocol) + data


def _headers(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(type, seq, flags) of each complete message in a buffer."""
    off = 0
    while off + 16 <= len(data):
        length, mtype, flags, seq, _ = _HDR.unpack_from(data, off)
        if length < 16:
            return
        yield mtype, seq, flags
        off += (length + 3) & ~3


def error_of(data: bytes) -> int | None:
    """The (positive) errno of the first NLMSG_ERROR in a buffer, 0 for an
    ACK, None when there is none."""
    off = 0
    while off + 20 <= len(data):
        length, mtype, _, _, _ = _HDR.unpack_from(data, off)
        if length < 16:
            return None
        if mtype == NLMSG_ERROR:
            return -struct.unpack_from("=i", data, off + 16)[0]
        off += (length + 3) & ~3
    return None


__all__ = [
    "NLM_F_ACK",
    "NLM_F_DUMP",
    "NLM_F_REQUEST",
    "NetlinkSocketError",
    "RawNetlinkSocket",
    "error_of",
    "netns_path",
]
