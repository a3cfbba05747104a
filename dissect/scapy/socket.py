"""`NetlinkSocket`: a Scapy SuperSocket over AF_NETLINK.

    from dissect.scapy import Netlink, NetlinkSocket, family

    rt = family("rt-link")
    with NetlinkSocket("route") as nl:
        ans, unans = nl.sr(Netlink(nlmsg_flags="REQUEST|DUMP") / rt.getlink())
        for _, reply in ans:
            print(reply.summary())

Theory of operation.  The socket is a `RawNetlinkSocket` (the same I/O edge
the commands use: protocol, network namespace, extended ACKs) dressed as a
Scapy `SuperSocket`.  The family is named the way users name it: a
protocol number, a classic family (``route``, ``sock_diag``, ``audit``), one
of our specs (``rt-link``) or a generic netlink family (``nl80211``), whose
id and multicast groups the running kernel's controller tells the socket
when it opens.  Group names are resolved the way ``nlshark monitor``
resolves them.

The kernel writes one buffer (one skb) per ``recvmsg``; a dump's buffer
holds many messages.  `recv` hands back one message at a time, each as
``NetlinkCooked / Netlink / body`` (the LINKTYPE_NETLINK header carries the
protocol, so ``wrpcap`` of sniffed or answered packets gives a capture
nlshark and tshark read), with ``.time``, ``.nl_portid`` (the sender) and
``.nl_group`` (the multicast group, 0 for unicast).  Messages split from a
buffer wait in a queue, and `select` reports a socket with queued messages
as ready, so Scapy's ``sniff`` never stalls on them.

`sr` sends each request and reads its answer to the end: a dump to its
NLMSG_DONE, a request with NLM_F_ACK to its NLMSG_ERROR (the ACK), anything
else to its first message that is not part of a multi-part answer.  A
request without an explicit ``nlmsg_seq`` gets the socket's next sequence
number, so answers are never confused with multicast events (sequence 0);
events read meanwhile stay queued for `recv` and ``sniff``.  Errors arrive
as decoded ``NLMSG_ERROR`` layers; the same message is also decoded by
nlshark's own dissector together with the request it answers, so the
extended ACK's offset is resolved to the attribute it points at, and
`NetlinkError` (raised by ``check=True`` and by `query`) carries the errno,
the kernel's message and that attribute path.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import select as select_mod
import struct
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any

from scapy.error import log_runtime
from scapy.packet import Packet
from scapy.plist import PacketList, QueryAnswer, SndRcvList
from scapy.supersocket import SuperSocket

from ..capture.linktypes import netlink_pseudo_header
from ..capture.nlsocket import (
    NETLINK_DROP_MEMBERSHIP,
    NETLINK_GET_STRICT_CHK,
    SOL_NETLINK,
    NetlinkSocketError,
    RawNetlinkSocket,
)
from ..core import constants as C
from ..core.display import errno_name, errno_text
from .layers import HOST_BO, Family, Netlink, NetlinkBatch, NetlinkContext, NetlinkCooked, NlBody

_HDR = struct.Struct("=IHHII")
NETLINK_KOBJECT_UEVENT = 15
# Multicast events and other unanswered messages kept for recv/sniff; past
# this many the oldest are dropped and counted in `NetlinkSocket.dropped`.
MAX_QUEUED = 65536
# Requests kept (by sequence number) for decoding the errors that answer them.
MAX_SENT = 1024


class NetlinkError(Exception):
    """The kernel refused a request (an NLMSG_ERROR, or NLMSG_DONE, with a
    negative errno).

    `errno` is positive; `name` is its symbol (``ERANGE``); `message` the
    extended ACK's text; `attribute` the attribute path its offset or
    missing-type points at, as nlshark resolves it (``linkinfo > kind``);
    `request` and `reply` are the packets."""

    def __init__(
        self,
        errno: int,
        message: str | None = None,
        attribute: str | None = None,
        request: Any = None,
        reply: Any = None,
    ) -> None:
        self.errno = errno
        self.name = errno_name(errno)
        self.strerror = errno_text(errno)
        self.message = message
        self.attribute = attribute
        self.request = request
        self.reply = reply
        super().__init__(str(self))

    def __str__(self) -> str:
        what = ""
        body = getattr(self.request, "payload", None)
        if isinstance(self.request, Netlink) and isinstance(body, NlBody):
            what = f"{body.name}: "
        text = f"{what}{self.name} ({self.strerror})"
        if self.message:
            text += f": {self.message}"
        if self.attribute:
            text += f" [at {self.attribute}]"
        return text


class NetlinkSocket(SuperSocket):
    """A netlink socket whose packets are nlshark's Scapy layers.

    `family`: a protocol number, a protocol or classic family name
    (``route``, ``generic``, ``sock_diag``, ``audit``, ``kobject_uevent``),
    a spec name (``rt-link``), a generic netlink family name (``nl80211``,
    its id looked up on the local kernel), or a `Family`.  `groups`: multicast
    groups to join, by number or by name (``link``, ``ipv4-ifaddr``; a
    generic netlink family's own group names; ``all``).  `netns`: a network
    namespace by ``ip netns`` name, path or ``pid:N``.  `context`: the
    `NetlinkContext` packets are built and dissected through (a new one by
    default).  `record`: keep every buffer sent and received as a
    LINKTYPE_NETLINK frame in `recorded` (time, bytes).
    """

    desc = "AF_NETLINK socket with nlshark's netlink layers"
    nonblocking_socket = False

    def __init__(
        self,
        family: Any = "route",
        groups: Iterable[Any] | Any = (),
        netns: str | None = None,
        *,
        context: NetlinkContext | None = None,
        ext_ack: bool = True,
        strict: bool = False,
        rcvbuf: int | None = None,
        record: bool = False,
    ) -> None:
        # SuperSocket.__init__ would open an AF_INET socket: set up by hand.
        self.closed = True
        self.context = context or NetlinkContext(host=True, host_names=True)
        self.netns = netns
        self.genl_id: int | None = None
        self.genl_groups: dict[str, int] = {}
        self.protocol, self.family_name = self._resolve_family(family)
        try:
            self.raw = RawNetlinkSocket(self.protocol, netns=netns, rcvbuf=rcvbuf, ext_ack=ext_ack)
        except NetlinkSocketError as exc:
            raise OSError(exc.errno or errno_mod.EINVAL, str(exc)) from None
        self.ins = self.outs = self.raw.sock
        self.closed = False
        self.iface = "netlink"
        self.promisc = False
        self.seq = self.raw.seq
        self.queue: deque[Packet] = deque()
        self.dropped = 0
        self.overruns = 0
        self.joined: dict[str, int] = {}
        self.record = record
        self.recorded: list[tuple[float, bytes]] = []
        from ..core.netlink import Session

        self.session = Session(self.context.registry)
        self.sent: OrderedDict[int, bytes] = OrderedDict()
        if self.genl_id is not None:
            self.context.set_genl({self.family_name: self.genl_id})
        if self.protocol == C.NETLINK_GENERIC:
            # This kernel's own ids: the socket talks to no other.
            self.session.genl_fallback = dict(self.context.host_names())
        if strict:
            with contextlib.suppress(OSError):
                self.raw.sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        if groups is not None and not isinstance(groups, (list, tuple, set, frozenset)):
            groups = [groups]
        try:
            for g in groups or ():
                self.join(g)
        except BaseException:
            self.close()
            raise

    # -- family and groups ------------------------------------------------------
    def _resolve_family(self, family: Any) -> tuple[int, str]:
        from ..capture import mcast

        if isinstance(family, Family):
            family = family.spec.name
        if isinstance(family, int):
            if not 0 <= family < 32:
                raise ValueError(f"netlink protocol {family} is out of range (0-31)")
            return family, C.protocol_name(family).lower()
        name = str(family).strip()
        key = name.lower().replace("-", "_")
        classic = mcast.classic_family(name)
        if classic is not None:
            return classic.protocol, classic.name
        if key in C.PROTOCOL_NUMBERS:
            proto = C.PROTOCOL_NUMBERS[key]
            return proto, C.protocol_name(proto).lower()
        reg = self.context.registry
        for spec in reg.specs:
            if spec.name == name and not spec.is_genl and spec.protocol != "netlink-core":
                proto = int(spec.protonum or 0)
                fam = mcast.classic_by_protocol(proto)
                return proto, fam.name if fam is not None else spec.name
        try:
            found = mcast.find_genl(name, self.netns)
        except mcast.GroupError as exc:
            raise OSError(errno_mod.EPROTONOSUPPORT, str(exc)) from None
        if found is None:
            known = "a protocol number, " + ", ".join(
                sorted({f.name for f in mcast.CLASSIC_FAMILIES})
            )
            hint = (
                " (we have a spec for it: is its kernel module loaded?)"
                if reg.genl_spec(name) is not None
                else ""
            )
            raise ValueError(
                f"unknown netlink family {name!r}: not {known}, one of our specs, "
                f"nor a generic netlink family registered on this kernel{hint}"
            )
        self.genl_id = found.id
        self.genl_groups = dict(found.groups)
        return C.NETLINK_GENERIC, found.name

    def _group_number(self, group: Any) -> tuple[str, int]:
        from ..capture import mcast

        if isinstance(group, int):
            if group <= 0:
                raise ValueError(f"multicast group numbers start at 1, not {group}")
            return mcast.group_name(
                self.protocol, group, {v: k for k, v in self.genl_groups.items()}
            ), group
        word = str(group)
        if self.protocol == C.NETLINK_GENERIC:
            if self.genl_id is None:
                raise ValueError(
                    "join generic netlink groups on a socket opened for the family "
                    "(NetlinkSocket('nl80211', groups=...)), or give the group's number"
                )
            picked, _ = mcast.pick_groups(self.family_name, self.genl_groups, [word], "", False)
        else:
            fam = mcast.classic_by_protocol(self.protocol)
            if fam is None:
                if word.isdigit():
                    return word, int(word)
                raise ValueError(
                    f"no group names known for netlink protocol {self.protocol}: give numbers"
                )
            picked, _ = mcast.pick_groups(fam.name, fam.groups, [word], fam.prefix, True)
        if len(picked) != 1:  # "all"
            raise ValueError(f"{word!r} names {len(picked)} groups: join them one by one")
        name, number = next(iter(picked.items()))
        return name, number

    def join(self, group: Any) -> int:
        """Join a multicast group (name or number); returns its number.
        ``all`` joins every group the family has."""
        from ..capture import mcast

        if isinstance(group, str) and group.strip().lower() == "all":
            table = (
                self.genl_groups
                if self.protocol == C.NETLINK_GENERIC
                else getattr(mcast.classic_by_protocol(self.protocol), "groups", {})
            )
            for name, number in table.items():
                with contextlib.suppress(OSError):
                    self._add(name, number)
            return len(table)
        try:
            name, number = self._group_number(group)
        except mcast.GroupError as exc:
            raise ValueError(str(exc)) from None
        self._add(name, number)
        return number

    def _add(self, name: str, number: int) -> None:
        try:
            self.raw.add_membership(number)
        except NetlinkSocketError as exc:
            raise OSError(exc.errno or errno_mod.EINVAL, str(exc)) from None
        self.joined[name] = number

    def leave(self, group: Any) -> None:
        """Leave a multicast group joined before."""
        name, number = self._group_number(group)
        with contextlib.suppress(OSError):
            self.raw.sock.setsockopt(SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, number)
        self.joined.pop(name, None)

    @property
    def portid(self) -> int:
        return self.raw.portid

    # -- sending ----------------------------------------------------------------
    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFFFFFF or 1
        return self.seq

    def prepare(self, x: Any) -> tuple[Any, bytes]:
        """The packet as it will be sent and its bytes: a `Netlink` without
        an explicit ``nlmsg_seq`` gets the socket's next number; bytes and
        other packets are sent as they are.  Built through the socket's
        context, so generic netlink ids are this kernel's."""
        if isinstance(x, NetlinkCooked):
            x = x.payload
        if isinstance(x, (bytes, bytearray)):
            return bytes(x), bytes(x)
        if isinstance(x, Netlink) and "nlmsg_seq" not in x.fields:
            x = x.copy()
            x.nlmsg_seq = self._next_seq()
        elif isinstance(x, NetlinkBatch) and any(
            isinstance(m, Netlink) and "nlmsg_seq" not in m.fields for m in x.msgs or []
        ):
            x = x.copy()
            for m in x.msgs:
                if isinstance(m, Netlink) and "nlmsg_seq" not in m.fields:
                    m.nlmsg_seq = self._next_seq()
        with self.context:
            data = bytes(x)
        return x, data

    def send(self, x: Any) -> int:
        """Send one packet (a `Netlink`, a `NetlinkBatch`, or bytes) in one
        ``sendmsg``; returns the number of bytes sent."""
        pkt, data = self.prepare(x)
        return self._send_bytes(pkt, data)

    def _send_bytes(self, pkt: Any, data: bytes) -> int:
        now = time.time()
        with contextlib.suppress(AttributeError):
            pkt.sent_time = now
        self._remember(data, now)
        return self.raw.sock.send(data)

    def _remember(self, data: bytes, now: float) -> None:
        """Keep what was sent by sequence number: an error answering it is
        decoded after it (`_explain`), so the extended ACK's offset can be
        resolved even when the kernel echoes only the header."""
        frame = netlink_pseudo_header(self.protocol) + data
        if self.record:
            self.recorded.append((now, frame))
        for seq, _ in requests_in(data, HOST_BO):
            self.sent[seq] = frame
            self.sent.move_to_end(seq)
        while len(self.sent) > MAX_SENT:
            self.sent.popitem(last=False)

    # -- receiving --------------------------------------------------------------
    def _read(self, timeout: float | None) -> bool:
        """Read one buffer into the queue; False when nothing came in time."""
        if timeout is not None:
            ready, _, _ = select_mod.select([self.raw.sock], [], [], max(0.0, timeout))
            if not ready:
                return False
        try:
            data, portid, group = self.raw.recvfrom()
        except OSError as exc:
            if exc.errno == errno_mod.ENOBUFS:
                self.overruns += 1
                log_runtime.warning(
                    "netlink socket overrun (ENOBUFS): the kernel dropped messages for this socket"
                )
                return True
            if exc.errno in (errno_mod.EAGAIN, errno_mod.EINTR):
                return True
            raise
        now = time.time()
        if self.record:
            self.recorded.append((now, netlink_pseudo_header(self.protocol) + data))
        for pkt in self._split(data, now, portid, group):
            if len(self.queue) >= MAX_QUEUED:
                self.queue.popleft()
                self.dropped += 1
            self.queue.append(pkt)
        return True

    def _split(self, data: bytes, now: float, portid: int, group: int) -> list[Packet]:
        hdr = netlink_pseudo_header(self.protocol)
        if self.protocol == NETLINK_KOBJECT_UEVENT:
            # lib/kobject_uevent.c sends each event as bare text (udev's
            # re-broadcast as a "libudev" header and text): no nlmsghdr.
            return [self._packet(hdr + data, now, portid, group)]
        out: list[Packet] = []
        off = 0
        while off < len(data):
            length = _HDR.unpack_from(data, off)[0] if off + 16 <= len(data) else 0
            end = len(data) if length < 16 else min(len(data), off + ((length + 3) & ~3))
            out.append(self._packet(hdr + data[off:end], now, portid, group))
            off = end
        return out

    def _packet(self, frame: bytes, now: float, portid: int, group: int) -> Packet:
        with self.context:
            pkt = NetlinkCooked(frame)
        pkt.time, pkt.nl_portid, pkt.nl_group, pkt.nl_error = now, portid, group, None
        if _msg_type(pkt) in (C.NLMSG_ERROR, C.NLMSG_DONE):
            self._explain(pkt, frame)
        return pkt

    def _explain(self, pkt: Packet, frame: bytes) -> None:
        """Decode an ERROR or DONE with nlshark's dissector, after the
        request it answers, for the extended ACK's attribute path."""
        msg = pkt.payload
        request = self.sent.get(msg.nlmsg_seq) if isinstance(msg, Netlink) else None
        self.session.genl_overrides.update(self.context.user)
        self.session.genl_names.update(self.context.names)
        try:
            if request is not None:
                self.session.decode(request)
            msgs = self.session.decode(frame).messages
        except Exception:  # the decoder never raises; a bug must not lose the packet
            return
        if msgs and msgs[0].error:
            m = msgs[0]
            pkt.nl_error = (-(m.error or 0), m.ext_msg, m.ext_path)

    def recv(self, x: int = 0, **kwargs: Any) -> Packet | None:
        """The next message, waiting for the kernel if none is queued."""
        while not self.queue:
            if not self._read(None):
                return None
        return self.queue.popleft()

    @staticmethod
    def select(sockets: list[SuperSocket], remain: float | None = None) -> list[SuperSocket]:
        ready = [s for s in sockets if getattr(s, "queue", None)]
        if ready:
            return ready
        return SuperSocket.select(sockets, remain)

    # -- requests and answers --------------------------------------------------
    def sr(  # type: ignore[override]
        self,
        x: Any,
        timeout: float | None = 2.0,
        check: bool = False,
        verbose: Any = None,
        **_: Any,
    ) -> tuple[SndRcvList, PacketList]:
        """Send each request and read its whole answer.

        Returns Scapy's ``(answered, unanswered)``: one (request, message)
        pair per answer message, the NLMSG_DONE or ACK included, and the
        requests nothing answered within `timeout` seconds of silence.
        ``check=True`` raises `NetlinkError` for the first negative errno."""
        pairs: list[Any] = []
        unanswered: list[Packet] = []
        for q in self._queries(x):
            q, answers = self._exchange(q, timeout)
            if not answers:
                unanswered.append(q)
            for a in answers:
                pairs.append(QueryAnswer(q, a))
                if check:
                    err = error_of(a)
                    if err is not None:
                        raise err
        return SndRcvList(pairs), PacketList(unanswered, "Unanswered")

    def sr1(  # type: ignore[override]
        self, x: Any, timeout: float | None = 2.0, check: bool = False, **kw: Any
    ) -> Packet | None:
        """Send one request, read its whole answer, return the first message
        of it (a dump is still read to its end)."""
        ans, _ = self.sr(x, timeout=timeout, check=check)
        return ans[0][1] if ans else None

    def query(self, x: Any, timeout: float | None = 2.0) -> PacketList:
        """Send one request and return its answer's data messages (without
        the final NLMSG_DONE or ACK); a kernel error raises `NetlinkError`,
        no answer raises TimeoutError."""
        queries = self._queries(x)
        if len(queries) != 1:
            raise ValueError(f"query sends one request, not {len(queries)}: use sr")
        sent, answers = self._exchange(queries[0], timeout)
        if not answers:
            raise TimeoutError(f"no answer from the kernel within {timeout} s")
        out = []
        for a in answers:
            err = error_of(a)
            if err is not None:
                err.request = sent
                raise err
            if _msg_type(a) not in (C.NLMSG_ERROR, C.NLMSG_DONE):
                out.append(a)
        return PacketList(out, "Answer")

    def _queries(self, x: Any) -> list[Any]:
        if isinstance(x, (Packet, bytes, bytearray)):
            return [x]
        return list(x)

    def _exchange(self, q: Any, timeout: float | None) -> tuple[Any, list[Packet]]:
        """Send `q` and read its answer; returns the packet as sent (with
        its sequence number) and the answer's messages."""
        pkt, data = self.prepare(q)
        # Every message of the buffer is answered on its own (a batch of
        # requests); the exchange ends when each one's answer has.
        pending = dict(requests_in(data, getattr(pkt, "_nl_bo", HOST_BO)))
        kept: list[Packet] = []
        # Messages already queued (events) stay ahead of what we read now.
        before = list(self.queue)
        self.queue.clear()
        self._send_bytes(pkt, data)
        answers: list[Packet] = []
        while pending:
            if not self.queue and not self._read(timeout):
                break
            while self.queue and pending:
                m = self.queue.popleft()
                msg = m.payload
                seq = msg.nlmsg_seq if isinstance(msg, Netlink) else None
                if seq not in pending:
                    kept.append(m)
                    continue
                answers.append(m)
                mtype = msg.nlmsg_type
                mflags = msg.nlmsg_flags or 0
                if (
                    mtype in (C.NLMSG_ERROR, C.NLMSG_DONE)
                    or not mflags & C.NLM_F_MULTI
                    and not pending[seq] & C.NLM_F_ACK
                ):
                    del pending[seq]
        self.queue.extendleft(reversed(before + kept))
        if len(self.queue) > MAX_QUEUED:
            for _ in range(len(self.queue) - MAX_QUEUED):
                self.queue.popleft()
                self.dropped += 1
        return pkt, answers

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self.raw.close()

    def __repr__(self) -> str:
        groups = f" groups={sorted(self.joined)}" if self.joined else ""
        ns = f" netns={self.netns!r}" if self.netns else ""
        return f"<NetlinkSocket {self.family_name} port={self.portid if not self.closed else '-'}{groups}{ns}>"


def _msg_type(pkt: Packet) -> int | None:
    msg = pkt.payload if isinstance(pkt, NetlinkCooked) else pkt
    return msg.nlmsg_type if isinstance(msg, Netlink) else None


def requests_in(data: bytes, bo: str) -> list[tuple[int, int]]:
    """(seq, flags) of each message in a buffer that was sent."""
    out = []
    off = 0
    while off + 16 <= len(data):
        length, _, flags, seq, _ = struct.unpack_from(bo + "IHHII", data, off)
        out.append((seq, flags))
        if length < 16:
            break
        off += (length + 3) & ~3
    return out


def error_of(pkt: Packet) -> NetlinkError | None:
    """A `NetlinkError` for an NLMSG_ERROR or NLMSG_DONE with a negative
    errno, None for anything else (an ACK included)."""
    msg = pkt.payload if isinstance(pkt, NetlinkCooked) else pkt
    if not isinstance(msg, Netlink) or msg.nlmsg_type not in (C.NLMSG_ERROR, C.NLMSG_DONE):
        return None
    code = getattr(msg.payload, "error", None)
    if not isinstance(code, int) or code >= 0:
        return None
    info = getattr(pkt, "nl_error", None)
    message = attribute = None
    if info:
        _, message, attribute = info
    else:
        msgattr = [
            a
            for a in getattr(msg.payload, "ext_attrs", []) or []
            if getattr(a, "name", "").endswith("MSG")
        ]
        if msgattr:
            v = msgattr[0].value
            message = v.decode("utf-8", "replace").rstrip("\0") if isinstance(v, bytes) else str(v)
    return NetlinkError(-code, message, attribute, getattr(msg.payload, "request", None), pkt)


__all__ = ["MAX_QUEUED", "NetlinkError", "NetlinkSocket", "error_of", "requests_in"]
