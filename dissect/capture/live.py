"""Live capture from an nlmon interface over AF_PACKET.

An nlmon device (``ip link add nlmon0 type nlmon``) is a network interface of
type ARPHRD_NETLINK whose "transmit" path receives a clone of every netlink
skb the kernel delivers, for the families ``netlink_filter_tap()`` lets
through.  A packet socket bound to that interface reads them like any other
outgoing packets: `LiveCapture` opens one (SOCK_DGRAM, so the kernel hands
out the netlink bytes without any link header, the way libpcap reads nlmon),
binds it to the interface with protocol ETH_P_ALL, and turns each
``recvmsg`` into a `RawFrame` of LINKTYPE_NETLINK.

The 16-byte pseudo-header is rebuilt from the sockaddr_ll the kernel filled
in (include/uapi/linux/if_packet.h: sll_pkttype, sll_hatype, sll_halen,
sll_addr, sll_protocol), exactly as libpcap's cooked mode writes it:
sll_protocol is the netlink protocol of the socket the message went to or
came from (af_netlink.c sets ``skb->protocol = htons(sk->sk_protocol)``),
and sll_pkttype is PACKET_OUTGOING because the clone travels the transmit
path.  Timestamps come from the kernel (SO_TIMESTAMPNS ancillary data),
``MSG_TRUNC`` gives the wire length of frames longer than the snaplen, and
PACKET_STATISTICS gives the kernel's received/dropped counters at the end.

The receive loop waits with a short socket timeout, so a stop request (a
signal handler calling `request_stop`, ``-a duration``) is seen within a
fraction of a second; after a stop it drains what the socket already holds,
so nothing the kernel accepted for us is lost.  Anything with the socket
methods the loop uses (`PacketSource`) can stand in for the socket: tests
feed prepared packets through that seam.

The rest of the module serves the command line: the interface table behind
``-D`` (ioctls on a throwaway socket, so it answers for the caller's network
namespace, unlike /sys), the nlmon check, and ``--create-nlmon`` (RTM_NEWLINK
with IFLA_LINKINFO kind "nlmon" over `RawNetlinkSocket`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .frame import RawFrame
from .linktypes import ARPHRD_NETLINK, LINKTYPE_NETLINK, netlink_pseudo_header
from .nlsocket import NLM_F_ACK, NetlinkSocketError, RawNetlinkSocket, error_of

# include/uapi/linux/if_ether.h, linux/socket.h, linux/if_packet.h,
# asm-generic/socket.h (SO_TIMESTAMPNS_OLD: struct timespec of longs),
# linux/sockios.h.
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
SIOCGIFFLAGS = 0x8913
SIOCGIFHWADDR = 0x8927
IFF_UP = 0x1
IFNAMSIZ = 16
ARPHRD_LOOPBACK = 772
ARPHRD_ETHER = 1
ARPHRD_NONE = 0xFFFE

DEFAULT_SNAPLEN = 262144  # what tcpdump and dumpcap use
DEFAULT_RCVBUF = 8 << 20
_TIMESPEC = struct.Struct("@ll")
_TPACKET_STATS = struct.Struct("@II")
_COOKED = struct.Struct(">HHH8sH")
# How long one wait for a packet lasts before the stop flag is looked at.
POLL_INTERVAL = 0.2
# After a stop: at most this many packets already queued are still read.
DRAIN_LIMIT = 100_000

# include/uapi/linux/rtnetlink.h, netlink.h, if_link.h
NETLINK_ROUTE = 0
RTM_NEWLINK = 16
RTM_DELLINK = 17
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
IFLA_IFNAME = 3
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
_IFINFOMSG = struct.Struct("=BxHiII")


class LiveCaptureError(Exception):
    """Live capture cannot start or go on; ``str(e)`` is one line for the user."""


class PacketSource(Protocol):
    """What the receive loop needs of its socket (`socket.socket` has it all)."""

    def recvmsg_into(
        self, buffers: list[bytearray], ancbufsize: int = ..., flags: int = ...
    ) -> tuple[int, list[tuple[int, int, bytes]], int, Any]: ...

    def settimeout(self, value: float | None) -> None: ...

    def setblocking(self, flag: bool) -> None: ...

    def close(self) -> None: ...


@dataclass
class InterfaceInfo:
    index: int
    name: str
    arphrd: int  # dev->type (include/uapi/linux/if_arp.h ARPHRD_*)
    up: bool

    @property
    def is_nlmon(self) -> bool:
        return self.arphrd == ARPHRD_NETLINK

    @property
    def kind(self) -> str:
        return _ARPHRD_NAMES.get(self.arphrd, f"arphrd {self.arphrd}")


_ARPHRD_NAMES = {
    ARPHRD_NETLINK: "nlmon",
    ARPHRD_LOOPBACK: "loopback",
    ARPHRD_ETHER: "ethernet",
    ARPHRD_NONE: "none",
    65534: "none",
    776: "sit",
    768: "ipip",
    778: "gre",
    823: "ip6gre",
    769: "tunnel6",
    512: "ppp",
    801: "ieee80211",
    803: "radiotap",
    280: "can",
}


def _ifreq_ioctl(sock: socket.socket, request: int, name: str) -> bytes:
    # struct ifreq: IFNAMSIZ name, then a 24-byte union (include/uapi/linux/if.h)
    ifreq = struct.pack("16s24x", name.encode())
    return fcntl.ioctl(sock.fileno(), request, ifreq)


def interface_info(name: str) -> InterfaceInfo:
    """Index, ARPHRD type and up flag of interface `name` in this network
    namespace; `LiveCaptureError` when there is no such interface."""
    if not name or len(name.encode()) >= IFNAMSIZ or "/" in name:
        raise LiveCaptureError(f"{name!r} is not a valid interface name")
    try:
        index = socket.if_nametoindex(name)
    except OSError:
        raise LiveCaptureError(
            f"no such interface: {name} (nlshark -D lists them; --create-nlmon makes nlmon0)"
        ) from None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            hw = _ifreq_ioctl(s, SIOCGIFHWADDR, name)
            fl = _ifreq_ioctl(s, SIOCGIFFLAGS, name)
        except OSError as exc:
            raise LiveCaptureError(f"{name}: cannot read its type: {exc.strerror}") from None
    # ifr_hwaddr is a struct sockaddr whose sa_family holds dev->type; ifr_flags a short
    (arphrd,) = struct.unpack_from("=H", hw, 16)
    (flags,) = struct.unpack_from("=H", fl, 16)
    return InterfaceInfo(index, name, arphrd, bool(flags & IFF_UP))


def list_interfaces() -> list[InterfaceInfo]:
    """Every interface of this network namespace, by index."""
    out = []
    for _, name in sorted(socket.if_nameindex()):
        try:
            out.append(interface_info(name))
        except LiveCaptureError:
            continue  # removed while we were listing
    return out


def check_nlmon(name: str) -> InterfaceInfo:
    """The interface's facts if it is an nlmon device, else `LiveCaptureError`."""
    info = interface_info(name)
    if not info.is_nlmon:
        raise LiveCaptureError(
            f"{name} is not an nlmon interface (it is {info.kind}, ARPHRD {info.arphrd}); "
            "capture on one made with 'ip link add nlmon0 type nlmon' or --create-nlmon"
        )
    return info


def cooked_header(pkttype: int, hatype: int, addr: bytes, protocol: int) -> bytes:
    """The 16-byte LINKTYPE_NETLINK (= LINUX_SLL) header libpcap builds from
    a sockaddr_ll: pkttype, hatype, halen, address padded to 8, protocol."""
    if hatype == ARPHRD_NETLINK and not addr:
        return netlink_pseudo_header(protocol, pkttype)
    return _COOKED.pack(pkttype, hatype, len(addr), addr[:8], protocol)


@dataclass
class CaptureStats:
    captured: int = 0  # frames handed out
    kernel_received: int | None = None  # tp_packets: passed to the socket
    kernel_dropped: int | None = None  # tp_drops: lost because the buffer was full

    def as_dict(self) -> dict[str, int | None]:
        """For the end of a JSON document."""
        return {
            "packets_captured": self.captured,
            "received_by_filter": self.kernel_received,
            "dropped_by_kernel": self.kernel_dropped,
        }

    def line(self) -> str:
        """One line like tcpdump's three: captured, received by filter, dropped."""
        text = f"{self.captured} packet{'s' if self.captured != 1 else ''} captured"
        if self.kernel_received is not None:
            text += (
                f", {self.kernel_received} received by filter, "
                f"{self.kernel_dropped} dropped by kernel"
            )
        return text


def open_packet_socket(ifname: str, rcvbuf: int = DEFAULT_RCVBUF) -> socket.socket:
    """A SOCK_DGRAM packet socket bound to `ifname`, with kernel timestamps."""
    try:
        # Protocol 0 until bound: no packets of other interfaces slip in.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    except PermissionError:
        raise LiveCaptureError(
            f"no permission to capture on {ifname}: packet sockets need root or CAP_NET_RAW"
        ) from None
    except OSError as exc:
        raise LiveCaptureError(f"cannot open a packet socket: {exc.strerror or exc}") from None
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            # Without CAP_NET_ADMIN the size is capped by net.core.rmem_max.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind((ifname, ETH_P_ALL))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.ENODEV:
            raise LiveCaptureError(f"no such interface: {ifname}") from None
        raise LiveCaptureError(f"cannot bind to {ifname}: {exc.strerror or exc}") from None
    return sock


def _kernel_ts(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return sec * 1_000_000_000 + nsec
    return None


class LiveCapture:
    """Frames from one nlmon interface, as `RawFrame`s of LINKTYPE_NETLINK.

    `source` replaces the packet socket (tests); `owner_of(protocol, data)`
    names the process of a frame, or returns None.
    """

    def __init__(
        self,
        interface: str,
        *,
        source: PacketSource | None = None,
        snaplen: int = DEFAULT_SNAPLEN,
        rcvbuf: int = DEFAULT_RCVBUF,
        owner_of: Callable[[int, bytes], tuple[int, str] | None] | None = None,
    ) -> None:
        self.interface = interface
        self.snaplen = snaplen
        self.owner_of = owner_of
        self.stats = CaptureStats()
        self._stop = False
        self._owns_socket = source is None
        if source is None:
            check_nlmon(interface)
            source = open_packet_socket(interface, rcvbuf)
        self.source: PacketSource = source
        self._buf = bytearray(snaplen)
        self._view = memoryview(self._buf)

    def request_stop(self) -> None:
        """Stop after the packet in hand and what the socket already holds
        (safe to call from a signal handler)."""
        self._stop = True

    def _receive(self) -> RawFrame | None:
        """One frame, or None when none came within POLL_INTERVAL (or none
        is queued, in non-blocking mode)."""
        try:
            nbytes, ancdata, _, addr = self.source.recvmsg_into(
                [self._buf], socket.CMSG_SPACE(_TIMESPEC.size), socket.MSG_TRUNC
            )
        except (TimeoutError, BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            if exc.errno == errno.ENETDOWN:
                raise LiveCaptureError(f"{self.interface} went down") from None
            if exc.errno == errno.ENODEV:
                raise LiveCaptureError(f"{self.interface} was removed") from None
            raise LiveCaptureError(f"{self.interface}: receive failed: {exc.strerror}") from None
        ts_ns = _kernel_ts(ancdata) or time.time_ns()
        # addr: (ifname, protocol in host order, pkttype, hatype, address)
        _, protocol, pkttype, hatype, hwaddr = addr
        caplen = min(nbytes, self.snaplen - 16)
        data = cooked_header(pkttype, hatype, hwaddr, protocol) + bytes(self._view[:caplen])
        self.stats.captured += 1
        process = self.owner_of(protocol, data) if self.owner_of else None
        return RawFrame(
            self.stats.captured,
            ts_ns,
            LINKTYPE_NETLINK,
            data,
            nbytes + 16,
            process=process,
        )

    def frames(self, count: int | None = None, duration: float | None = None) -> Iterator[RawFrame]:
        """Yield frames until `count` were captured, `duration` seconds
        passed, or a stop was requested; then drain the socket's queue."""
        deadline = None if duration is None else time.monotonic() + duration
        while not self._stop and (count is None or self.stats.captured < count):
            wait = POLL_INTERVAL
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return
            self.source.settimeout(wait)
            frame = self._receive()
            if frame is not None:
                yield frame
        if self._stop:
            # A signal asked to stop: what the kernel already queued for us
            # was captured before it, so it belongs in the output.
            self.source.setblocking(False)
            for _ in range(DRAIN_LIMIT):
                if count is not None and self.stats.captured >= count:
                    return
                frame = self._receive()
                if frame is None:
                    return
                yield frame

    def kernel_stats(self) -> None:
        """Add the kernel's PACKET_STATISTICS to `stats` (reading resets
        them, so call once, at the end)."""
        getsockopt = getattr(self.source, "getsockopt", None)
        if getsockopt is None:
            return
        try:
            raw = getsockopt(SOL_PACKET, PACKET_STATISTICS, _TPACKET_STATS.size)
        except OSError:
            return
        received, dropped = _TPACKET_STATS.unpack(raw)
        self.stats.kernel_received = (self.stats.kernel_received or 0) + received
        self.stats.kernel_dropped = (self.stats.kernel_dropped or 0) + dropped

    def close(self) -> None:
        if self._owns_socket:
            self.source.close()


# --------------------------------------------------------------- nlmon set-up


@dataclass
class NlmonHandle:
    """An nlmon interface ensured by `ensure_nlmon`; `created` says whether
    we made it (and so must remove it)."""

    name: str
    created: bool


def _nlattr(kind: int, payload: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(payload), kind) + payload + bytes(-len(payload) & 3)


def _newlink_nlmon(name: str) -> bytes:
    # struct ifinfomsg with IFF_UP in flags and change: the link comes up as
    # it is created (rtnl_newlink -> rtnl_configure_link).
    ifi = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP)
    return (
        ifi
        + _nlattr(IFLA_IFNAME, name.encode() + b"\0")
        + _nlattr(IFLA_LINKINFO, _nlattr(IFLA_INFO_KIND, b"nlmon\0"))
    )


def _rtnl_request(msg_type: int, flags: int, payload: bytes) -> int:
    """Send one rtnetlink request with NLM_F_ACK; the errno of the answer (0: ok)."""
    with RawNetlinkSocket(NETLINK_ROUTE) as sock:
        sock.settimeout(5.0)
        for data in sock.transact(msg_type, flags | NLM_F_ACK, payload):
            err = error_of(data)
            if err is not None:
                return err
    return 0


def _modprobe_nlmon() -> str:
    """Try to load the nlmon module; say what was tried, for the error text."""
    modprobe = shutil.which("modprobe") or (
        "/sbin/modprobe" if os.access("/sbin/modprobe", os.X_OK) else None
    )
    if not modprobe:
        return "no modprobe to load it"
    try:
        r = subprocess.run([modprobe, "nlmon"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"modprobe nlmon: {exc}"
    lines = (r.stderr or r.stdout).strip().splitlines()
    return "modprobe nlmon failed" + (f": {lines[-1]}" if lines else "")


def ensure_nlmon(name: str) -> NlmonHandle:
    """Make sure `name` exists as an up nlmon interface: create it (loading
    the nlmon module first if needed) or bring it up."""
    try:
        info = interface_info(name)
    except LiveCaptureError:
        info = None
    if info is not None:
        if not info.is_nlmon:
            check_nlmon(name)  # raises with the reason
        if not info.up:
            ifi = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, info.index, IFF_UP, IFF_UP)
            err = _rtnl_call(name, RTM_NEWLINK, 0, ifi, "bring up")
            if err:
                raise LiveCaptureError(f"cannot bring {name} up: {os.strerror(err)}")
        return NlmonHandle(name, created=False)
    payload = _newlink_nlmon(name)
    flags = NLM_F_CREATE | NLM_F_EXCL
    err = _rtnl_call(name, RTM_NEWLINK, flags, payload, "create")
    tried = ""
    if err == errno.EOPNOTSUPP:
        # The kernel autoloads "rtnl-link-nlmon" when it can; try once more
        # after an explicit modprobe (containers often cannot).
        tried = _modprobe_nlmon()
        err = _rtnl_call(name, RTM_NEWLINK, flags, payload, "create")
    if err == errno.EOPNOTSUPP:
        raise LiveCaptureError(
            f"cannot create {name}: the kernel has no nlmon support "
            f"(the nlmon module is missing, CONFIG_NLMON; {tried})"
        )
    if err in (errno.EPERM, errno.EACCES):
        raise LiveCaptureError(f"no permission to create {name}: needs root or CAP_NET_ADMIN")
    if err:
        raise LiveCaptureError(f"cannot create {name}: {os.strerror(err)}")
    return NlmonHandle(name, created=True)


def _rtnl_call(name: str, msg_type: int, flags: int, payload: bytes, what: str) -> int:
    try:
        return _rtnl_request(msg_type, flags, payload)
    except NetlinkSocketError as exc:
        raise LiveCaptureError(f"cannot {what} {name}: {exc}") from None
    except OSError as exc:
        raise LiveCaptureError(f"cannot {what} {name}: {exc.strerror or exc}") from None


def remove_nlmon(handle: NlmonHandle) -> None:
    """Delete the interface if `ensure_nlmon` created it; report failures."""
    if not handle.created:
        return
    try:
        index = socket.if_nametoindex(handle.name)
    except OSError:
        return  # already gone
    err = _rtnl_call(
        handle.name, RTM_DELLINK, 0, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0), "remove"
    )
    if err:
        print(f"nlshark: cannot remove {handle.name}: {os.strerror(err)}", file=sys.stderr)


# ------------------------------------------------------- process attribution


class PortOwnerLookup:
    """Names the process behind a frame's netlink port id, through
    `dissect.capture.sockets.PortOwners` when that module is present.

    The port id is the frame's first ``nlmsg_pid``: for requests the
    sender's port (when the program set it), for unicast replies the port
    they go to; 0 is the kernel (or unset) and names nobody.  An unknown port
    refreshes the socket table, at most once per second, and a port still
    unknown after a refresh (its socket was already closed) is not asked
    about again for a while.  That matters because the refresh is a
    NETLINK_SOCK_DIAG dump, which nlmon mirrors too: without the negative
    cache, the replies to the dump (addressed to a port that no longer
    exists once the dump is over) would trigger the next dump, forever.
    """

    REFRESH_INTERVAL = 1.0
    FORGET_UNKNOWN_AFTER = 30.0

    def __init__(self, table: Any) -> None:
        self.table = table
        self._last_refresh = -1e9
        self._warned = False
        self._unknown: dict[tuple[int, int], float] = {}

    @classmethod
    def create(cls) -> PortOwnerLookup | None:
        """None when the socket-table module is not available or fails."""
        try:
            from . import sockets  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            return None
        owners_cls = getattr(sockets, "PortOwners", None)
        if owners_cls is None:
            return None
        try:
            table = owners_cls()
        except Exception as exc:  # an optional feature must not stop the capture
            print(f"nlshark: warning: no process attribution: {exc}", file=sys.stderr)
            return None
        lookup = cls(table)
        lookup._refresh()
        return lookup

    def _refresh(self) -> None:
        self._last_refresh = time.monotonic()
        try:
            self.table.refresh()
        except Exception as exc:  # an optional feature must not end the capture
            if not self._warned:
                print(f"nlshark: warning: process attribution: {exc}", file=sys.stderr)
                self._warned = True

    def __call__(self, protocol: int, data: bytes) -> tuple[int, str] | None:
        if len(data) < 32:
            return None
        # nlmsg_pid of the first message, host byte order (struct nlmsghdr)
        portid = int.from_bytes(data[28:32], sys.byteorder)
        if portid == 0:
            return None
        owner: tuple[int, str] | None = self.table.lookup(protocol, portid)
        if owner is not None:
            return owner
        now = time.monotonic()
        key = (protocol, portid)
        if now - self._unknown.get(key, -1e9) < self.FORGET_UNKNOWN_AFTER:
            return None
        if now - self._last_refresh < self.REFRESH_INTERVAL:
            return None
        self._refresh()
        owner = self.table.lookup(protocol, portid)
        if owner is None:
            if len(self._unknown) > 4096:
                self._unknown.clear()
            self._unknown[key] = now
        return owner
