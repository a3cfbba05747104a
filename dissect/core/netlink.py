"""Frames into netlink messages, messages into trees.

A captured frame is a link-layer pseudo-header (which says the netlink
protocol, e.g. NETLINK_ROUTE) followed by one socket buffer of netlink data:
one or more messages, each ``struct nlmsghdr`` (len u32, type u16, flags
u16, seq u32, pid u32, host byte order) plus a body, each padded to 4 bytes
(NLMSG_ALIGN).

`decode_frame` splits the buffer, decodes each header, then the body:
control messages (NOOP, ERROR with the echoed request and extended ACK,
DONE, OVERRUN) here; family messages through the schema registry (fixed
header + attributes), generic netlink after its 4-byte genlmsghdr with the
family named by the session.

Capture-wide knowledge lives in a `Session`, never in globals: the byte
order (guessed from the first frame, or forced), generic netlink family ids
learned from controller messages, and a bounded table of recent requests by
(protocol, seq) so replies, ACKs and errors can be tied to the request they
answer — which is also how a capped error's extended-ACK offset is resolved
against the original request.

Direction comes from the message, not from nlmsg_pid: the kernel never sets
NLM_F_REQUEST and never sends a request, and control messages only flow
from the kernel.

This module is sans-IO: bytes in, `Frame` objects out.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import Any

from . import constants as C
from .attrs import (
    NLA_TYPE_MASK,
    CompiledAttrSet,
    DecodeContext,
    decode_struct_and_attrs,
    walk_attrs,
)
from .display import enum_fmt, errno_fmt, errno_name, flags_fmt, hexbytes
from .linklayer import decode_link_header
from .tree import (
    CHAT,
    ERROR,
    MALFORMED,
    NOTE,
    NOTES_MADE,
    PROTOCOL,
    SEQUENCE,
    UNDECODED,
    WARN,
    LazyNode,
    Node,
)

TO_KERNEL = "user->kernel"
TO_USER = "kernel->user"

_AF_FMT = enum_fmt(
    {
        0: "unspec",
        1: "unix",
        2: "inet",
        7: "bridge",
        10: "inet6",
        16: "netlink",
        17: "packet",
        28: "mpls",
        45: "mctp",
    }
)
_ERR_ST = struct.Struct("<i")
_ERR_ST_BE = struct.Struct(">i")

MAX_REQUESTS = 4096


def _flag_table(kind: str | None, control: int | None) -> dict[int, str]:
    table = dict(C.COMMON_FLAGS)
    if control == C.NLMSG_ERROR or control == C.NLMSG_DONE:
        table.update(C.ACK_FLAGS)
    elif kind == "get":
        table.update(C.GET_FLAGS)
    elif kind in ("new", "set"):
        table.update(C.NEW_FLAGS)
    elif kind == "del":
        table.update(C.DEL_FLAGS)
    return table


_FLAG_FMTS: dict[tuple[str | None, int | None], Any] = {}


def flags_formatter(kind: str | None, control: int | None = None) -> Any:
    key = (kind, control)
    f = _FLAG_FMTS.get(key)
    if f is None:
        table = _flag_table(kind, control)
        base = flags_fmt(table, 4)

        def fmt(v: Any, base: Any = base) -> str:
            if isinstance(v, int) and kind == "get" and v & C.NLM_F_DUMP == C.NLM_F_DUMP:
                return base(v).replace("ROOT|MATCH", "DUMP")
            return base(v)

        fmt.short = base.short  # type: ignore[attr-defined]
        f = _FLAG_FMTS[key] = fmt
    return f


class RequestRecord:
    __slots__ = ("frame", "type", "type_name", "data", "family", "cmd", "family_name")

    def __init__(
        self,
        frame: int,
        type_: int,
        type_name: str,
        data: bytes,
        family: str | None,
        cmd: int | None,
        family_name: str = "",
    ) -> None:
        self.frame = frame
        self.type = type_
        self.type_name = type_name
        self.data = data
        self.family = family  # generic netlink family, if any
        self.cmd = cmd
        self.family_name = family_name  # what the summary's family column shows


class Message:
    """One netlink message of a frame, with its tree and what we know of it."""

    __slots__ = (
        "frame", "index", "node", "protocol", "direction", "len", "type", "flags", "seq", "pid",
        "family", "type_name", "role", "layout", "error", "ext_msg", "ext_path", "request",
        "_info", "genl_cmd", "answers", "noted", "frame_hint", "hook_info",
    )  # fmt: skip

    def __init__(self, frame: int, index: int, node: Node, protocol: int, direction: str) -> None:
        self.frame = frame
        self.index = index
        self.node = node
        self.protocol = protocol
        self.direction = direction
        self.len = self.type = self.flags = self.seq = self.pid = 0
        self.family = C.protocol_name(protocol).lower()
        self.type_name = ""
        self.role = "request" if direction == TO_KERNEL else "reply"
        self.layout: Any = None
        self.error: int | None = None
        self.ext_msg: str | None = None
        self.ext_path: str | None = None
        self.request: RequestRecord | None = None
        self._info: str | None = None
        self.genl_cmd: int | None = None
        self.answers: str | None = None  # for ERROR/DONE: the request's type name
        self.noted = False  # True when the message's tree holds notes
        self.frame_hint: RequestRecord | None = (
            None  # a request another message of the frame answers
        )
        self.hook_info: str | None = None  # summary text a decoding hook returned

    @property
    def info(self) -> str:
        if self._info is None:
            self._info = _info_text(self)
        return self._info

    def notes(self) -> list[tuple[Node, Any]]:
        return list(self.node.all_notes())


class Frame:
    __slots__ = (
        "number",
        "ts_ns",
        "linktype",
        "data",
        "protocol",
        "direction",
        "root",
        "messages",
        "comment",
        "orig_len",
        "process",
    )

    def __init__(self, number: int, ts_ns: int, linktype: int, data: bytes, root: Node) -> None:
        self.number = number
        self.ts_ns = ts_ns
        self.linktype = linktype
        self.data = data
        self.root = root
        self.protocol: int | None = None
        self.direction: str | None = None
        self.messages: list[Message] = []
        self.comment: str | None = None
        self.orig_len = len(data)
        # (pid, comm) of the owning process, set by live sources that know it.
        self.process: tuple[int, str] | None = None


class Session:
    """Capture-wide state: byte order, generic netlink ids, open requests."""

    def __init__(self, registry: Any = None, byte_order: str | None = None) -> None:
        if registry is None:
            from ..schema import Registry

            registry = Registry.default()
        self.registry = registry
        self.forced_bo = {"little": "<", "big": ">", "<": "<", ">": ">"}.get(byte_order or "")
        self.bo: str | None = self.forced_bo
        self.genl_names: dict[int, str] = registry.fixed_genl_ids()
        self.genl_overrides: dict[int, str] = {}  # --genl NAME=ID
        self.genl_fallback: dict[int, str] = {}  # --genl-from-host
        self.requests: OrderedDict[tuple[int, int], RequestRecord] = OrderedDict()
        self._ctx: dict[str, DecodeContext] = {}
        self._hdr: dict[str, struct.Struct] = {}
        self._extack: dict[str, CompiledAttrSet | None] = {}

    # -- byte order ---------------------------------------------------------------
    def ctx(self, bo: str) -> DecodeContext:
        c = self._ctx.get(bo)
        if c is None:
            c = self._ctx[bo] = DecodeContext(bo)
            self._hdr[bo] = struct.Struct(bo + "IHHII")
        return c

    def guess_byte_order(self, data: bytes, off: int) -> str | None:
        if len(data) - off < 16:
            return None
        le = struct.unpack_from("<I", data, off)[0]
        be = struct.unpack_from(">I", data, off)[0]
        avail = len(data) - off
        le_ok = 16 <= le <= avail
        be_ok = 16 <= be <= avail
        if le_ok and not be_ok:
            return "<"
        if be_ok and not le_ok:
            return ">"
        if le_ok and be_ok:
            return "<" if abs(avail - le) <= abs(avail - be) else ">"
        return None

    # -- generic netlink ids -------------------------------------------------------
    def genl_family(self, family_id: int) -> str | None:
        """The family name for an id: ``--genl`` first, then what the capture
        said, then the local kernel's table if asked for."""
        return (
            self.genl_overrides.get(family_id)
            or self.genl_names.get(family_id)
            or self.genl_fallback.get(family_id)
        )

    def learn_genl(self, family_id: int, name: str) -> None:
        if family_id and name:
            self.genl_names[family_id] = name

    def forget_genl(self, family_id: int) -> None:
        self.genl_names.pop(family_id, None)

    # -- requests -------------------------------------------------------------------
    def remember(self, protocol: int, seq: int, rec: RequestRecord) -> None:
        key = (protocol, seq)
        self.requests[key] = rec
        self.requests.move_to_end(key)
        if len(self.requests) > MAX_REQUESTS:
            self.requests.popitem(last=False)

    def request_for(self, protocol: int, seq: int) -> RequestRecord | None:
        return self.requests.get((protocol, seq))

    def extack_set(self, bo: str) -> CompiledAttrSet | None:
        if bo not in self._extack:
            self._extack[bo] = self.registry.core_set(
                "nlmsgerr", "nlmsgerr-attrs", "netlink.extack", bo
            )
        return self._extack[bo]

    # -- decoding ---------------------------------------------------------------------
    def decode(
        self,
        data: bytes,
        linktype: int = 253,
        number: int = 1,
        ts_ns: int = 0,
        orig_len: int | None = None,
    ) -> Frame:
        return decode_frame(self, data, linktype, number, ts_ns, orig_len)


# ---------------------------------------------------------------------------


def decode_frame(
    session: Session,
    data: bytes,
    linktype: int = 253,
    number: int = 1,
    ts_ns: int = 0,
    orig_len: int | None = None,
) -> Frame:
    """Decode one captured frame.  Never raises on the frame's content."""
    data = bytes(data)
    root = Node("frame", f"Frame {number}", 0, len(data), data)
    frame = Frame(number, ts_ns, linktype, data, root)
    if orig_len is not None:
        frame.orig_len = orig_len
    cut = orig_len is not None and orig_len > len(data)
    if cut:
        root.note(
            WARN,
            MALFORMED,
            f"frame cut by the capture's snaplen: {len(data)} of {orig_len} bytes captured; decoded as far as they go",
        )
    hdr_node, protocol, off = decode_link_header(linktype, data)
    if hdr_node is not None:
        root.add(hdr_node)
    if protocol is None:
        if off < len(data):
            rest = Node("data", "undecoded data", off, len(data) - off, data, data[off:], hexbytes)
            rest.note(
                WARN, UNDECODED, "payload not decoded: the link-layer header does not carry netlink"
            )
            root.add(rest)
        return frame
    frame.protocol = protocol
    fhook = session.registry.frame_hook(protocol)
    if fhook is not None:
        # not nlmsghdr-framed, so no nlmsg_len to guess the byte order from
        decode_by_frame_hook(frame, data, off, len(data), protocol, session.bo or "<", fhook)
        return frame
    bo = session.bo
    if bo is None:
        bo = session.guess_byte_order(data, off)
        if bo is not None:
            session.bo = bo
        else:
            bo = "<"
    decode_messages(session, frame, data, off, len(data), protocol, bo, cut)
    return frame


def decode_by_frame_hook(
    frame: Frame,
    data: bytes,
    off: int,
    end: int,
    protocol: int,
    bo: str,
    fhook: tuple[Any, str, str | None],
) -> None:
    """A protocol whose frames are not nlmsghdr-framed (a spec's
    ``frame-hook``: NETLINK_KOBJECT_UEVENT): the hook turns the payload into
    message nodes, ``hook(buf, start, end, bo) -> [(node, type_name, summary)]``.
    Such messages are multicast events, sent to user space."""
    hook, name, problem = fhook
    frame.direction = TO_USER
    items: list[tuple[Node, str, str]] = []
    if hook is None:
        problem_text = f"hook {name} not available: {problem}"
    else:
        try:
            items = list(hook(data, off, end, bo))
            problem_text = ""
        except Exception as exc:  # a hook bug must not stop decoding
            items = []
            problem_text = f"hook {name} failed: {type(exc).__name__}: {exc}"
    if problem_text:
        node = Node("netlink.payload", "payload", off, end - off, data, data[off:end], hexbytes)
        node.note(WARN, UNDECODED, problem_text)
        items = [(node, f"{C.protocol_name(protocol)} message", "")]
    for index, (node, type_name, info) in enumerate(items, 1):
        msg = Message(frame.number, index, node, protocol, TO_USER)
        msg.len = node.length
        msg.type_name = type_name
        msg.role = "notification"
        msg._info = info
        node._display = type_name
        msg.noted = any(True for _ in node.all_notes())
        frame.root.add(node)
        frame.messages.append(msg)


def decode_messages(
    session: Session,
    frame: Frame,
    data: bytes,
    off: int,
    end: int,
    protocol: int,
    bo: str,
    cut: bool,
) -> None:
    root = frame.root
    session.ctx(bo)
    hdr = session._hdr[bo]
    unpack_len = _LEN_LE.unpack_from if bo == "<" else _LEN_BE.unpack_from
    direction: str | None = None
    by_pid = protocol not in _CONTROL_ONLY and session.registry.direction_by_pid(protocol)
    index = 0
    hint = _frame_request(session, data, off, end, protocol, hdr) if end - off > 32 else None
    while off < end:
        left = end - off
        if left < 16 or (unpack_len(data, off)[0] == 0 and not data[off:end].strip(b"\0")):
            root.add(_trailer(data, off, end))
            break
        nlmsg_len, nlmsg_type, flags, seq, pid = hdr.unpack_from(data, off)
        if nlmsg_len < 16:
            n = Node("netlink.bad", "bad netlink message", off, left, data, data[off:end], hexbytes)
            n.note(
                ERROR,
                MALFORMED,
                f"nlmsg_len {nlmsg_len} is less than the 16-byte header; {left} bytes not decoded",
            )
            root.add(n)
            break
        if direction is None:
            if by_pid:
                # the kernel sends these with port id 0 and user space does
                # not set NLM_F_REQUEST (spec key `direction: pid`)
                direction = TO_KERNEL if pid or flags & C.NLM_F_REQUEST else TO_USER
            else:
                direction = (
                    TO_USER
                    if (nlmsg_type in C.CONTROL_TYPES or not flags & C.NLM_F_REQUEST)
                    else TO_KERNEL
                )
            frame.direction = direction
        index += 1
        msg_end = off + nlmsg_len
        short = msg_end > end
        if short:
            msg_end = end
        node = Node("netlink", "Netlink message", off, msg_end - off, data)
        msg = Message(frame.number, index, node, protocol, direction)
        msg.len, msg.type, msg.flags, msg.seq, msg.pid = nlmsg_len, nlmsg_type, flags, seq, pid
        msg.frame_hint = hint
        noted = NOTES_MADE[0]
        decode_message(session, msg, data, off, msg_end, bo, frame.number)
        if short:
            if cut:
                node.note(
                    WARN,
                    MALFORMED,
                    f"message cut by snaplen: {msg_end - off} of {nlmsg_len} bytes captured",
                )
            else:
                node.note(
                    ERROR,
                    MALFORMED,
                    f"nlmsg_len {nlmsg_len} runs {nlmsg_len - (msg_end - off)} bytes past the end of the frame",
                )
        msg.noted = NOTES_MADE[0] != noted
        root.add(node)
        frame.messages.append(msg)
        if short:
            break
        nxt = off + ((nlmsg_len + 3) & ~3)
        if nxt > end:
            break
        if nxt > msg_end:
            # NLMSG_ALIGN padding after a message whose nlmsg_len is not a
            # multiple of 4 (libaudit's and the kernel's audit rule replies)
            pad = Node(
                "netlink.padding", "padding", msg_end, nxt - msg_end, data,
                data[msg_end:nxt], hexbytes,
            )  # fmt: skip
            if data[msg_end:nxt].strip(b"\0"):
                pad.note(NOTE, PROTOCOL, "non-zero NLMSG_ALIGN padding after the message")
            root.add(pad)
        off = nxt


_LEN_LE = struct.Struct("<I")
_LEN_BE = struct.Struct(">I")


def _frame_request(
    session: Session, data: bytes, off: int, end: int, protocol: int, hdr: struct.Struct
) -> RequestRecord | None:
    """The request that some message of a kernel frame answers (by seq and
    port id), when the frame holds several messages; else None."""
    first = hdr.unpack_from(data, off)
    if first[0] >= end - off or first[2] & C.NLM_F_REQUEST:
        return None
    while end - off >= 16:
        ln, _, _, seq, pid = hdr.unpack_from(data, off)
        if ln < 16:
            return None
        if seq and pid:
            rec = session.request_for(protocol, seq)
            if rec is not None:
                return rec
        off += (ln + 3) & ~3
    return None


def _trailer(data: bytes, off: int, end: int) -> Node:
    """Bytes after the last message: zeros some tools send past nlmsg_len
    (iproute2 sends its whole request buffer), or a malformed tail."""
    left = end - off
    n = Node("netlink.trailer", "trailing bytes", off, left, data, data[off:end], hexbytes)
    if data[off:end].strip(b"\0"):
        n.note(
            WARN, MALFORMED, f"{left} bytes after the last message, too short for a netlink header"
        )
    else:
        n.note(
            CHAT,
            PROTOCOL,
            f"{left} zero bytes after the last message (sent beyond nlmsg_len; the kernel ignores them)",
        )
    return n


def _header_nodes(
    prefix: str,
    data: bytes,
    off: int,
    vals: tuple[int, int, int, int, int],
    type_fmt: Any,
    flag_fmt: Any,
) -> Node:
    """struct nlmsghdr; its five field nodes are made on first access (the
    values are already on the Message, which is what summaries read)."""

    def fields(h: Node) -> None:
        ln, ty, fl, seq, pid = vals
        h.children = [
            Node(f"{prefix}.len", "nlmsg_len", off, 4, data, ln, None),
            Node(f"{prefix}.type", "nlmsg_type", off + 4, 2, data, ty, type_fmt),
            Node(f"{prefix}.flags", "nlmsg_flags", off + 6, 2, data, fl, flag_fmt),
            Node(f"{prefix}.seq", "nlmsg_seq", off + 8, 4, data, seq, None),
            Node(f"{prefix}.pid", "nlmsg_pid", off + 12, 4, data, pid, None),
        ]

    return LazyNode(f"{prefix}.hdr", "struct nlmsghdr", off, 16, data, fields)


_NAMED_FMTS: dict[str, Any] = {}


def _named_fmt(name: str) -> Any:
    f = _NAMED_FMTS.get(name)
    if f is None:
        f = _NAMED_FMTS[name] = _make_named_fmt(name)
    return f


def _make_named_fmt(name: str) -> Any:
    def fmt(v: Any) -> str:
        return f"{name} ({v})"

    fmt.short = lambda v: name  # type: ignore[attr-defined]
    return fmt


# Protocols whose specs never claim the control message numbers.
_CONTROL_ONLY = frozenset({C.NETLINK_ROUTE, C.NETLINK_GENERIC})


def decode_message(
    session: Session,
    msg: Message,
    data: bytes,
    off: int,
    end: int,
    bo: str,
    frame_no: int,
    echo: bool = False,
) -> None:
    """Decode header and body of one message into `msg.node`."""
    node = msg.node
    t = msg.type
    to_kernel = msg.direction == TO_KERNEL
    layout = None
    control = t if t < C.NLMSG_MIN_TYPE else None
    if (
        control is not None
        and msg.protocol not in _CONTROL_ONLY
        and session.registry.raw_layout(msg.protocol, t, to_kernel, bo) is not None
    ):
        # A family whose spec claims a control number as its own message
        # type: NETLINK_CONNECTOR's cn_msg travels as NLMSG_DONE.
        control = None
    body = off + 16
    genl_family: str | None = None
    rec: RequestRecord | None = None
    if control is not None:
        msg.type_name = C.CONTROL_TYPES.get(t, f"NLMSG_{t}")
        msg.family = C.protocol_name(msg.protocol).lower()
    elif msg.protocol == C.NETLINK_GENERIC:
        genl_family = session.genl_family(t)
        msg.family = genl_family or f"genl id {t}"
        if end - body >= 4:
            msg.genl_cmd = data[body]
        rec = _answered_request(session, msg, to_kernel, echo, genl_family)
        if msg.genl_cmd is not None and genl_family is not None:
            layout = session.registry.genl_layout(
                genl_family, msg.genl_cmd, to_kernel, bo, event=rec is None
            )
    else:
        names = C.TYPE_NAMES_BY_PROTOCOL.get(msg.protocol)
        rec = _answered_request(session, msg, to_kernel, echo, None)
        layout = session.registry.raw_layout(
            msg.protocol,
            t,
            to_kernel,
            bo,
            names,
            event=rec is None,
            dump=to_kernel and bool(msg.flags & C.NLM_F_DUMP),
        )
        if layout is not None:
            msg.family = layout.spec.name
    msg.layout = layout
    if layout is not None:
        msg.type_name = layout.type_name
    elif not msg.type_name:
        if genl_family is not None or msg.protocol == C.NETLINK_GENERIC:
            msg.type_name = (
                f"{genl_family or 'genl'} cmd {msg.genl_cmd}"
                if msg.genl_cmd is not None
                else f"{genl_family or 'genl'}"
            )
        else:
            msg.type_name = C.TYPE_NAMES_BY_PROTOCOL.get(msg.protocol, {}).get(t) or f"type {t}"
    kind = layout.kind if layout is not None else C.type_kind(msg.type_name)
    prefix = "netlink.echo" if echo else "netlink"
    if msg.protocol == C.NETLINK_GENERIC and control is None:
        # a generic netlink message's type is its family id
        type_fmt = _named_fmt(genl_family or "unnamed family")
    else:
        type_fmt = _named_fmt(msg.type_name) if control is None or t in C.CONTROL_TYPES else None
    node.add(
        _header_nodes(
            prefix,
            data,
            off,
            (msg.len, t, msg.flags, msg.seq, msg.pid),
            type_fmt,
            flags_formatter(kind, control),
        )
    )
    if echo:
        return
    node._display = msg.type_name
    if control is not None:
        if not to_kernel:
            msg.role = "control"
        if t == C.NLMSG_ERROR:
            _decode_error(session, msg, data, body, end, bo, frame_no)
        elif t == C.NLMSG_DONE:
            _decode_done(session, msg, data, body, end, bo)
        elif body < end:
            rest = Node(
                "netlink.payload", "payload", body, end - body, data, data[body:end], hexbytes
            )
            if t != C.NLMSG_OVERRUN:
                rest.note(NOTE, PROTOCOL, f"{end - body} bytes of payload on {msg.type_name}")
            node.add(rest)
        return
    if genl_family is not None or msg.protocol == C.NETLINK_GENERIC:
        body = _decode_genl_header(msg, data, body, end, layout)
        if genl_family is None:
            node.note(
                NOTE,
                UNDECODED,
                f"generic netlink family id {t} is not named in this capture (no controller reply seen); "
                f"name it with --genl NAME={t}",
            )
    # Tie replies to requests (and requests to later replies).
    if to_kernel:
        session.remember(
            msg.protocol,
            msg.seq,
            RequestRecord(
                frame_no,
                t,
                msg.type_name,
                bytes(data[off:end]),
                genl_family,
                msg.genl_cmd,
                msg.family,
            ),
        )
    else:
        msg.request = rec
        msg.role = "reply" if rec is not None else "notification"
    if layout is None:
        if body < end:
            if msg.protocol == C.NETLINK_GENERIC:
                # Generic netlink bodies are attributes whatever the family:
                # show them as such, each with its type number and bytes.
                reason = (
                    f"no spec for generic netlink family {genl_family}"
                    if genl_family is not None and session.registry.genl_spec(genl_family) is None
                    else f"no decoder for command {msg.genl_cmd} of generic netlink family {genl_family}"
                    if genl_family is not None
                    else "family not named"
                )
                attrs = Node("genl.attrs", "attributes", body, end - body, data)
                attrs.display = "(not described)"
                attrs.note(
                    NOTE, UNDECODED, f"{reason}; attributes shown with their types and bytes"
                )
                walk_attrs(session.ctx(bo), data, body, end, None, attrs, 1)
                node.add(attrs)
            else:
                rest = Node(
                    "netlink.payload", "payload", body, end - body, data, data[body:end], hexbytes
                )
                reason = (
                    f"no decoder for message type {t} of NETLINK_{C.protocol_name(msg.protocol)}"
                )
                rest.note(NOTE, UNDECODED, f"{reason}; {end - body} bytes shown raw")
                node.add(rest)
        return
    body = _decode_body(session, msg, layout, data, body, end, bo)
    if msg.genl_cmd is not None and layout.spec.name == "nlctrl" and not to_kernel:
        _learn_from_ctrl(session, msg)


def _answered_request(
    session: Session, msg: Message, to_kernel: bool, echo: bool, genl_family: str | None
) -> RequestRecord | None:
    """The request a kernel message answers, if it is a reply.

    A reply carries its request's sequence number and the requester's port
    id; a multicast notification has port id 0 and usually seq 0, so
    (seq 0, pid 0) never matches by itself.  A generic netlink reply must be
    of the request's family, and a seq-0 match must be a message type the
    request's operation answers with (notifications carry the port id of the
    socket that caused them).  Failing that, a message sharing its frame
    (socket buffer) with another message that answers a request belongs to
    the same answer: some families send dump parts with seq 0 and port id 0
    (thermal), and multicast never shares a buffer with a dump.
    """
    if to_kernel or echo:
        return None
    rec = None
    if msg.seq or msg.pid:
        rec = session.request_for(msg.protocol, msg.seq)
        if rec is not None and genl_family is not None and rec.family != genl_family:
            rec = None
        if rec is not None and msg.seq == 0 and not _answers(session, msg, rec, genl_family):
            rec = None
    hint = msg.frame_hint
    if (
        rec is None
        and hint is not None
        and (genl_family is None or hint.family == genl_family)
        and _answers(session, msg, hint, genl_family)
    ):
        rec = hint
    return rec


def _answers(session: Session, msg: Message, rec: RequestRecord, genl_family: str | None) -> bool:
    answer = msg.genl_cmd if genl_family is not None else msg.type
    asked = rec.cmd if genl_family is not None else rec.type
    return (
        answer is not None
        and asked is not None
        and answer in session.registry.reply_types(msg.protocol, genl_family, asked)
    )


def _decode_genl_header(msg: Message, data: bytes, body: int, end: int, layout: Any) -> int:
    if end - body < 4:
        n = Node("genl.hdr", "struct genlmsghdr", body, end - body, data, data[body:end], hexbytes)
        n.note(
            ERROR,
            MALFORMED,
            f"generic netlink message too short for genlmsghdr: {end - body} of 4 bytes",
        )
        msg.node.add(n)
        return end
    cmd, version, reserved = (
        data[body],
        data[body + 1],
        int.from_bytes(data[body + 2 : body + 4], "little"),
    )
    h = Node("genl.hdr", "struct genlmsghdr", body, 4, data)
    cmd_fmt = _named_fmt(msg.type_name) if layout is not None else None
    h.children = [
        Node("genl.cmd", "cmd", body, 1, data, cmd, cmd_fmt),
        Node("genl.version", "version", body + 1, 1, data, version, None),
        Node("genl.reserved", "reserved", body + 2, 2, data, reserved, None),
    ]
    if reserved:
        h.children[2].note(NOTE, PROTOCOL, "reserved field is not zero")
    msg.node.add(h)
    return body + 4


def _decode_body(
    session: Session, msg: Message, layout: Any, data: bytes, body: int, end: int, bo: str
) -> int:
    if layout.selector is not None:
        return _decode_selected(session, msg, layout, data, body, end, bo)
    if layout.hook_name:
        return _decode_by_hook(msg, layout, data, body, end, bo)
    if layout.attrs is None and layout.header is None and body < end:
        rest = Node("netlink.payload", "payload", body, end - body, data, data[body:end], hexbytes)
        rest.note(
            NOTE, UNDECODED, f"no attribute set for {msg.type_name}; {end - body} bytes shown raw"
        )
        msg.node.add(rest)
        return end
    header = layout.header
    if (
        msg.protocol == C.NETLINK_ROUTE
        and msg.direction == TO_KERNEL
        and msg.flags & C.NLM_F_DUMP
        and header is not None
        and 0 < end - body <= 4 < header.size
    ):
        # Legacy dump requests carry only struct rtgenmsg { u8 rtgen_family; }
        # (include/uapi/linux/rtnetlink.h); the kernel accepts them.
        h = Node("rtnl.rtgenmsg", "struct rtgenmsg", body, end - body, data)
        h.add(
            Node("rtnl.rtgenmsg.rtgen_family", "rtgen_family", body, 1, data, data[body], _AF_FMT)
        )
        h.note(
            CHAT, PROTOCOL, f"legacy dump request: struct rtgenmsg instead of struct {header.name}"
        )
        msg.node.add(h)
        return end
    decode_struct_and_attrs(session.ctx(bo), data, body, end, header, layout.attrs, msg.node, 1)
    return end


def _decode_selected(
    session: Session, msg: Message, layout: Any, data: bytes, body: int, end: int, bo: str
) -> int:
    """A body whose layout a fixed-header member picks (``sub-message`` +
    ``selector`` on the operation): SOCK_DIAG_BY_FAMILY by sdiag_family."""
    sel = layout.selector
    key = sel.key(data, body, end)
    chosen = sel.layout(key) if key is not None else None
    if chosen is None:
        prefix = sel.prefix
        decode_struct_and_attrs(session.ctx(bo), data, body, end, prefix, None, msg.node, 1)
        why = (
            f"{prefix.name}.{sel.member.name} = {key!r} is not known to the schema"
            if key is not None
            else f"too short for {prefix.name}.{sel.member.name}"
        )
        msg.node.note(NOTE, UNDECODED, f"{msg.type_name} body not decoded: {why}")
        return end
    msg.layout = chosen
    return _decode_body(session, msg, chosen, data, body, end, bo)


def _decode_by_hook(msg: Message, layout: Any, data: bytes, body: int, end: int, bo: str) -> int:
    """A body decoded by the operation's Python ``hook``:
    ``hook(msg, buf, start, end, bo)`` adds nodes to ``msg.node`` and may
    return the summary text."""
    if layout.hook is None:
        rest = Node("netlink.payload", "payload", body, end - body, data, data[body:end], hexbytes)
        rest.note(NOTE, UNDECODED, f"hook {layout.hook_name} not available: {layout.hook_problem}")
        msg.node.add(rest)
        return end
    mark = len(msg.node.children or ())
    try:
        text = layout.hook(msg, data, body, end, bo)
    except Exception as exc:  # a hook bug must not stop decoding
        if msg.node.children is not None:
            del msg.node.children[mark:]
        rest = Node("netlink.payload", "payload", body, end - body, data, data[body:end], hexbytes)
        rest.note(WARN, UNDECODED, f"hook {layout.hook_name} failed: {type(exc).__name__}: {exc}")
        msg.node.add(rest)
        return end
    if isinstance(text, str):
        msg.hook_info = text
    return end


def _top_attr(msg: Message, name: str) -> Node | None:
    attrs = msg.layout.attrs if msg.layout is not None else None
    dec = attrs.by_name.get(name) if attrs is not None else None
    return msg.node.child(dec.abbrev) if dec is not None else None


def _learn_from_ctrl(session: Session, msg: Message) -> None:
    fid = _top_attr(msg, "family-id")
    fname = _top_attr(msg, "family-name")
    if (
        fid is None
        or fname is None
        or not isinstance(fid.value, int)
        or not isinstance(fname.value, str)
    ):
        return
    if msg.type_name.endswith("DELFAMILY"):
        session.forget_genl(fid.value)
    else:
        session.learn_genl(fid.value, fname.value)


# ---------------------------------------------------------------------------
# NLMSG_ERROR and NLMSG_DONE


def _decode_error(
    session: Session, msg: Message, data: bytes, body: int, end: int, bo: str, frame_no: int
) -> None:
    node = msg.node
    if end - body < 4:
        n = Node(
            "netlink.error.bad", "truncated error", body, end - body, data, data[body:end], hexbytes
        )
        n.note(ERROR, MALFORMED, f"NLMSG_ERROR needs at least 4 bytes of payload, has {end - body}")
        node.add(n)
        return
    code = (_ERR_ST if bo == "<" else _ERR_ST_BE).unpack_from(data, body)[0]
    msg.error = code
    msg.role = "ack" if code == 0 else "error"
    node.add(Node("netlink.error.code", "error", body, 4, data, code, errno_fmt))
    p = body + 4
    if end - p < 16:
        if p < end:
            n = Node(
                "netlink.error.bad",
                "truncated echoed header",
                p,
                end - p,
                data,
                data[p:end],
                hexbytes,
            )
            n.note(ERROR, MALFORMED, f"echoed request header cut short: {end - p} of 16 bytes")
            node.add(n)
        else:
            node.note(WARN, MALFORMED, "NLMSG_ERROR without the echoed request header")
        return
    hdr = session._hdr[bo]
    e_len, e_type, e_flags, e_seq, e_pid = hdr.unpack_from(data, p)
    rec = session.request_for(msg.protocol, e_seq)
    msg.request = rec
    capped = bool(msg.flags & C.NLM_F_CAPPED)
    echo_node = Node("netlink.echo", "echoed request", p, 16, data)
    echo = Message(frame_no, 0, echo_node, msg.protocol, TO_KERNEL)
    echo.len, echo.type, echo.flags, echo.seq, echo.pid = e_len, e_type, e_flags, e_seq, e_pid
    if rec is not None and rec.type == e_type:
        echo.genl_cmd = rec.cmd
    body_end = p + 16
    if not capped and e_len > 16:
        body_end = min(p + e_len, end)
        echo_node.length = body_end - p
        if body_end - p < e_len:
            echo_node.note(
                WARN, MALFORMED, f"echoed request cut short: {body_end - p} of {e_len} bytes"
            )
    # Decode the echoed request with its own family's schema.
    decode_message(session, echo, data, p, p + 16, bo, frame_no, echo=True)
    if body_end > p + 16:
        _decode_echo_body(session, echo, data, p, body_end, bo)
    node.add(echo_node)
    msg.type_name = "NLMSG_ERROR"
    msg.family = echo.family
    # stash the request's name for the info line
    msg.ext_path = None
    tlv = min(p + ((echo_node.length + 3) & ~3), end)
    if msg.flags & C.NLM_F_ACK_TLVS:
        _decode_extack(session, msg, data, tlv, end, bo, echo_node, p, echo)
    elif tlv < end:
        n = Node(
            "netlink.error.trailer", "trailing bytes", tlv, end - tlv, data, data[tlv:end], hexbytes
        )
        n.note(
            WARN, MALFORMED, f"{end - tlv} bytes after the echoed request without NLM_F_ACK_TLVS"
        )
        node.add(n)
    msg.layout = echo.layout
    msg.genl_cmd = echo.genl_cmd
    msg.answers = echo.type_name
    if echo.layout is None and rec is not None and rec.type == e_type:
        msg.answers = rec.type_name


def _decode_echo_body(
    session: Session, echo: Message, data: bytes, p: int, end: int, bo: str
) -> None:
    """The body of an echoed request: same decoding as a request, no side effects."""
    layout = None
    body = p + 16
    if echo.protocol == C.NETLINK_GENERIC:
        fam = session.genl_family(echo.type)
        if end - body >= 4:
            echo.genl_cmd = data[body]
            if fam is not None:
                layout = session.registry.genl_layout(fam, echo.genl_cmd, True, bo)
                if layout is not None:
                    echo.type_name = layout.type_name
        body = _decode_genl_header(echo, data, body, end, layout)
    else:
        layout = session.registry.raw_layout(
            echo.protocol,
            echo.type,
            True,
            bo,
            C.TYPE_NAMES_BY_PROTOCOL.get(echo.protocol),
            dump=bool(echo.flags & C.NLM_F_DUMP),
        )
    echo.layout = layout
    if layout is None:
        if body < end:
            rest = Node(
                "netlink.echo.payload", "payload", body, end - body, data, data[body:end], hexbytes
            )
            rest.note(
                NOTE,
                UNDECODED,
                f"no decoder for the echoed request type {echo.type}; {end - body} bytes shown raw",
            )
            echo.node.add(rest)
        return
    _decode_body(session, echo, layout, data, body, end, bo)


def _node_path(root: Node, target: int) -> list[Node]:
    """Nodes from `root` down to the deepest one containing byte `target`."""
    path: list[Node] = []
    node = root
    while True:
        nxt = None
        for c in node.children or ():
            if c.offset <= target < c.offset + c.length:
                nxt = c
                break
        if nxt is None:
            return path
        path.append(nxt)
        node = nxt


def _path_text(nodes: list[Node], target: int | None = None) -> str:
    parts = [n.name for n in nodes if n.abbrev not in ("netlink.hdr", "netlink.echo.hdr")]
    last = nodes[-1] if nodes else None
    if last is not None and target is not None and last.abbrev.endswith(".payload"):
        parts[-1] = f"byte {target - last.offset} of the undecoded payload"
    return " > ".join(parts)


def _decode_extack(
    session: Session,
    msg: Message,
    data: bytes,
    off: int,
    end: int,
    bo: str,
    echo_node: Node,
    echo_off: int,
    echo: Message,
) -> None:
    node = msg.node
    cset = session.extack_set(bo)
    holder = Node("netlink.extack", "extended ACK", off, max(0, end - off), data)
    holder.display = ""
    if off < end:
        walk_attrs(session.ctx(bo), data, off, end, cset, holder, 1)
    node.add(holder)
    offs_node = None
    miss_type = None
    miss_nest = None
    for c in holder.children or ():
        if c.abbrev == "netlink.extack.msg" and isinstance(c.value, str):
            msg.ext_msg = c.value
        elif c.abbrev == "netlink.extack.offs" and isinstance(c.value, int):
            offs_node = c
        elif c.abbrev == "netlink.extack.miss_type" and isinstance(c.value, int):
            miss_type = c
        elif c.abbrev == "netlink.extack.miss_nest" and isinstance(c.value, int):
            miss_nest = c
    req_root, req_base, req_layout = _request_tree(session, msg, echo_node, echo_off, echo, bo)
    if offs_node is not None:
        where = None
        if req_root is not None:
            nodes = _node_path(req_root, req_base + offs_node.value)
            if nodes:
                where = _path_text(nodes, req_base + offs_node.value)
        if where:
            msg.ext_path = where
            offs_node.display = f"{offs_node.value} (at {where})"
        else:
            offs_node.display = (
                f"{offs_node.value} (not inside the request)"
                if req_root is not None
                else f"{offs_node.value}"
            )
            if req_root is None:
                offs_node.note(
                    NOTE,
                    SEQUENCE,
                    "the request is capped and was not seen earlier in the capture; offset not resolved",
                )
    if miss_type is not None:
        cset_for = req_layout.attrs if req_layout is not None else None
        nest_name = None
        if miss_nest is not None and req_root is not None:
            nodes = _node_path(req_root, req_base + miss_nest.value)
            if nodes:
                nest_name = _path_text(nodes)
                cset_for = session.registry.set_by_prefix(nodes[-1].abbrev, bo)
                miss_nest.display = f"{miss_nest.value} (at {nest_name})"
        dec = cset_for.by_type.get(miss_type.value) if cset_for is not None else None
        if dec is not None:
            miss_type.display = f"{miss_type.value} ({dec.name})"
            msg.ext_path = (f"{nest_name} > " if nest_name else "") + f"missing {dec.name}"
        else:
            msg.ext_path = (
                f"{nest_name} > " if nest_name else ""
            ) + f"missing attribute {miss_type.value}"


def _request_tree(
    session: Session, msg: Message, echo_node: Node, echo_off: int, echo: Message, bo: str
) -> tuple[Node | None, int, Any]:
    """The tree to resolve an extack offset in: the echo, or the remembered request."""
    if echo_node.length > 16:
        return echo_node, echo_off, echo.layout
    rec = msg.request
    if rec is None or rec.type != echo.type or len(rec.data) < 16:
        return None, 0, None
    rdata = rec.data
    rnode = Node("netlink.echo", "original request", 0, len(rdata), rdata)
    rmsg = Message(rec.frame, 0, rnode, msg.protocol, TO_KERNEL)
    rmsg.len, rmsg.type, rmsg.flags, rmsg.seq, rmsg.pid = session._hdr[bo].unpack_from(rdata, 0)
    decode_message(session, rmsg, rdata, 0, 16, bo, rec.frame, echo=True)
    _decode_echo_body(session, rmsg, rdata, 0, len(rdata), bo)
    return rnode, 0, rmsg.layout


def _decode_done(session: Session, msg: Message, data: bytes, body: int, end: int, bo: str) -> None:
    node = msg.node
    msg.role = "done"
    if end - body >= 4:
        code = (_ERR_ST if bo == "<" else _ERR_ST_BE).unpack_from(data, body)[0]
        msg.error = code
        node.add(Node("netlink.done.error", "error", body, 4, data, code, errno_fmt))
        p = body + 4
        if msg.flags & C.NLM_F_ACK_TLVS and p < end:
            holder = Node("netlink.extack", "extended ACK", p, end - p, data)
            holder.display = ""
            walk_attrs(session.ctx(bo), data, p, end, session.extack_set(bo), holder, 1)
            node.add(holder)
            for c in holder.children or ():
                if c.abbrev == "netlink.extack.msg" and isinstance(c.value, str):
                    msg.ext_msg = c.value
        elif p < end:
            rest = Node(
                "netlink.done.trailer", "trailing bytes", p, end - p, data, data[p:end], hexbytes
            )
            rest.note(NOTE, PROTOCOL, f"{end - p} bytes after the NLMSG_DONE error code")
            node.add(rest)
    elif body < end:
        n = Node("netlink.done.bad", "truncated", body, end - body, data, data[body:end], hexbytes)
        n.note(
            WARN,
            MALFORMED,
            f"NLMSG_DONE payload of {end - body} bytes, expected a 4-byte error code",
        )
        node.add(n)
    rec = session.request_for(msg.protocol, msg.seq) if msg.seq else None
    msg.request = rec
    if rec is not None:
        msg.family = rec.family_name
        msg.answers = rec.type_name


# ---------------------------------------------------------------------------
# Info text


def _info_text(msg: Message) -> str:
    t = msg.type
    if t == C.NLMSG_ERROR:
        echo_name = msg.answers or ""
        if msg.error is None:
            return "malformed error message"
        if msg.error == 0:
            return f"ACK for {echo_name} seq {msg.seq}"
        s = f"{errno_name(msg.error)} ({msg.error})"
        if msg.ext_msg:
            s += f": {msg.ext_msg}"
        if msg.ext_path:
            s += f" [at {msg.ext_path}]"
        return f"{s} for {echo_name} seq {msg.seq}"
    if t == C.NLMSG_DONE and msg.role == "done":
        s = "end of dump"
        if msg.request is not None:
            s += f" ({msg.request.type_name})"
        if msg.error:
            s += f": {errno_name(msg.error)} ({msg.error})"
            if msg.ext_msg:
                s += f": {msg.ext_msg}"
        return s
    if t in C.CONTROL_TYPES and msg.layout is None:
        return ""
    parts = []
    lay = msg.layout
    if msg.hook_info:
        parts.append(msg.hook_info)
    elif lay is not None and lay.summary_hook is not None:
        try:
            text = lay.summary_hook(msg)
        except Exception as exc:  # the tree is complete; say why the summary is not
            text = f"(summary hook failed: {type(exc).__name__}: {exc})"
        if text:
            parts.append(text)
    elif lay is not None and lay.summary is not None:
        text = lay.summary.render(msg.node)
        if text:
            parts.append(text)
    if msg.direction == TO_USER and msg.role == "notification":
        parts.append("(notification)")
    if (
        msg.flags & C.NLM_F_REQUEST
        and msg.flags & C.NLM_F_DUMP == C.NLM_F_DUMP
        and (lay is None or lay.kind == "get")
    ):
        parts.append("dump")
    return " ".join(parts)


def attr_name(cset: CompiledAttrSet | None, nla_type: int) -> str:
    if cset is None:
        return f"attribute {nla_type}"
    dec = cset.by_type.get(nla_type & NLA_TYPE_MASK)
    return dec.name if dec is not None else f"attribute {nla_type & NLA_TYPE_MASK}"
