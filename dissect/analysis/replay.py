"""Replay a capture's requests to the local kernel and compare the answers.

Theory of operation:

1. `load_requests` decodes the capture with one `Session` (generic netlink
   ids learned from the capture, prescan included).  Every user->kernel
   message with NLM_F_REQUEST (and, if a display filter is given, matching
   it) becomes a `Request`; the kernel's messages that the Session ties to
   that request (``msg.request``: same protocol and seq, of a type the
   request's operation answers with, ERROR/DONE included) become its
   original answers.  Notifications are not answers.  Link names and
   indexes seen in the capture are remembered for the ifindex mapping.
2. `Replayer.run` sends each request, in capture order, over one socket per
   netlink protocol opened inside the target namespace, with nlmsg_pid 0
   and the original seq.  Generic netlink family ids are rewritten from the
   capture's ids to the local kernel's (by name); ifindexes in well-known
   places (struct headers, RTA_OIF/IIF, IFLA_LINK/MASTER...) are rewritten
   when the capture and the replay namespace gave the same link name
   different indexes.  Answers are read until NLMSG_ERROR or NLMSG_DONE, or
   until a single non-multipart reply when no ACK was asked; a request that
   neither asked for an ACK nor was answered in the capture gets a short
   timeout.
3. `compare` reduces both answers to what must not depend on the machine:
   the errno, the reply message types (counted) and the attribute *names*
   of the replies (values are not compared).  Differences the environment
   explains by itself are classified benign (objects a dump finds, counters,
   addresses, timestamps, attributes only the replaying kernel knows) and
   leave the verdict at ``match``; the rest make a ``mismatch`` with an
   explanation, e.g. a link kind this kernel lacks, or a request depending
   on an earlier one that failed in the replay.
"""

from __future__ import annotations

import errno as errno_mod
import struct
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..capture.linktypes import netlink_pseudo_header
from ..capture.nlsocket import NLM_F_ACK, NLM_F_REQUEST, RawNetlinkSocket
from ..core.constants import GENL_ID_CTRL, NETLINK_GENERIC, protocol_name
from ..core.netlink import Message, Session

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_MULTI = 0x2
NLM_F_ECHO = 0x8
NLM_F_DUMP = 0x300
NETLINK_ROUTE = 0

# Attribute names whose presence follows the machine, not the request:
# counters, addresses, timestamps, per-device capabilities.
BENIGN_ATTRS = frozenset(
    {
        "IFLA_STATS",
        "IFLA_STATS64",
        "IFLA_ADDRESS",
        "IFLA_BROADCAST",
        "IFLA_PERM_ADDRESS",
        "IFLA_MAP",
        "IFLA_VFINFO_LIST",
        "IFLA_NUM_VF",
        "IFLA_PARENT_DEV_NAME",
        "IFLA_PARENT_DEV_BUS_NAME",
        "IFLA_PHYS_PORT_ID",
        "IFLA_PHYS_PORT_NAME",
        "IFLA_PHYS_SWITCH_ID",
        "IFLA_XDP",
        "IFLA_QDISC",
        "IFLA_LINKINFO",
        "IFLA_PROP_LIST",
        "IFLA_ALT_IFNAME",
        "IFLA_LINK",
        "IFLA_LINK_NETNSID",
        "IFLA_MASTER",
        "IFLA_CARRIER_CHANGES",
        "IFLA_CARRIER_UP_COUNT",
        "IFLA_CARRIER_DOWN_COUNT",
        "IFLA_STATS_LINK_XSTATS",
        "IFLA_STATS_LINK_XSTATS_SLAVE",
        "IFLA_STATS_LINK_OFFLOAD_XSTATS",
        "IFLA_STATS_AF_SPEC",
        "IFA_CACHEINFO",
        "IFA_LABEL",
        "IFA_BROADCAST",
        "RTA_CACHEINFO",
        "RTA_EXPIRES",
        "RTA_PREF",
        "RTA_PREFSRC",
        "RTA_GATEWAY",
        "RTA_MULTIPATH",
        "NDA_CACHEINFO",
        "NDA_PROBES",
        "NDA_LLADDR",
        "NDTA_STATS",
        "NDTA_CONFIG",
    }
)


@dataclass
class Reply:
    """One answer message reduced to what is compared."""

    kind: str  # message type name, "ACK", "ERROR" or "DONE"
    attrs: frozenset[str] = frozenset()
    errno: int = 0  # positive; ERROR and DONE only
    ext_msg: str | None = None
    names: dict[str, int] = field(default_factory=dict)  # link name -> ifindex (RTM_NEWLINK)


@dataclass
class Request:
    frame: int
    index: int
    protocol: int
    data: bytes  # the whole message as captured
    type: int
    flags: int
    seq: int
    type_name: str
    family: str
    genl_family: str | None
    info: str
    answers: list[Reply] = field(default_factory=list)
    # kernel messages with this request's seq that its operation does not
    # answer with (notifications of the same socket, another request's ACK)
    others: list[Reply] = field(default_factory=list)
    ifindex_refs: list[tuple[int, int]] = field(default_factory=list)  # (offset in data, ifindex)
    names: set[str] = field(default_factory=set)  # link names the request mentions
    rec: Any = None

    @property
    def label(self) -> str:
        return f"{self.frame}" if self.index <= 1 else f"{self.frame}.{self.index}"

    @property
    def is_dump(self) -> bool:
        """NLM_F_DUMP (ROOT|MATCH) means a dump only on get requests; on
        new requests the same bits are REPLACE|EXCL."""
        if self.flags & NLM_F_DUMP != NLM_F_DUMP:
            return False
        name = self.type_name.upper()
        return self.protocol == NETLINK_GENERIC or "GET" in name or "DIAG" in name


@dataclass
class Outcome:
    request: Request
    verdict: str  # match, mismatch, skipped
    reasons: list[str] = field(default_factory=list)
    benign: list[str] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    rewrites: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        r = self.request
        return {
            "frame": r.label,
            "protocol": protocol_name(r.protocol),
            "family": r.family,
            "type": r.type_name,
            "info": r.info,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "benign": self.benign,
            "rewrites": self.rewrites,
            "original": [_reply_text(a) for a in r.answers],
            "replay": [_reply_text(a) for a in self.replies],
        }


# Python names 95 ENOTSUP; the kernel (and iproute2, our dissector) EOPNOTSUPP.
_ERRNAMES = {**errno_mod.errorcode, errno_mod.EOPNOTSUPP: "EOPNOTSUPP"}


def _errname(n: int) -> str:
    return _ERRNAMES.get(n, f"errno {n}") if n else "ACK"


def _reply_text(a: Reply) -> str:
    if a.kind in ("ERROR", "ACK", "DONE"):
        text = a.kind if a.kind != "ERROR" else f"{_errname(a.errno)} (-{a.errno})"
        if a.kind == "DONE" and a.errno:
            text = f"DONE {_errname(a.errno)}"
        return text + (f' "{a.ext_msg}"' if a.ext_msg else "")
    return a.kind


# -- reading the capture ------------------------------------------------------


def _frame(protocol: int, data: bytes) -> bytes:
    """`data` as a LINKTYPE_NETLINK frame of `protocol`."""
    return netlink_pseudo_header(protocol) + data


_IFINDEX_SUFFIXES = (
    "ifinfomsg.ifi_index",
    "ifaddrmsg.ifa_index",
    "ndmsg.ndm_ifindex",
    ".oif",
    ".iif",
    "rtnl.link.link",
    "rtnl.link.master",
    "tcmsg.tcm_ifindex",
)


def summarize(msg: Message) -> Reply:
    """A kernel message as a `Reply`."""
    if msg.type == NLMSG_ERROR:
        code = -(msg.error or 0)
        return Reply("ACK" if code == 0 else "ERROR", errno=code, ext_msg=msg.ext_msg)
    if msg.type == NLMSG_DONE:
        code = msg.error or 0
        return Reply("DONE", errno=abs(code), ext_msg=msg.ext_msg)
    attrs = frozenset(
        c.name for c in msg.node.children or () if c.abbrev not in ("netlink.hdr", "genl.hdr")
    )
    names: dict[str, int] = {}
    if msg.protocol == NETLINK_ROUTE and msg.type_name == "RTM_NEWLINK":
        name = msg.node.find("rtnl.link.ifname")
        idx = msg.node.find("rtnl.ifinfomsg.ifi_index")
        if name is not None and idx is not None and isinstance(idx.value, int):
            names[str(name.value)] = idx.value
    return Reply(msg.type_name or f"type {msg.type}", attrs, names=names)


def _request_of(msg: Message) -> tuple[list[tuple[int, int]], set[str]]:
    """Where a request names links: ifindex fields (offset in the message,
    value) and link names."""
    refs: list[tuple[int, int]] = []
    names: set[str] = set()
    start = msg.node.offset
    for n in msg.node.walk():
        ab = n.abbrev
        value = n.value
        if ab.endswith(_IFINDEX_SUFFIXES) and isinstance(value, int) and value > 0:
            # a struct member (4 bytes) or an attribute (4-byte header + u32)
            if n.length == 4:
                refs.append((n.offset - start, value))
            elif n.length == 8:
                refs.append((n.offset + 4 - start, value))
        if ab.endswith(("ifname", "dev_name")) and isinstance(value, str) and value:
            names.add(value)
    return refs, names


@dataclass
class LoadedCapture:
    requests: list[Request]
    link_index: dict[str, int]  # link name -> ifindex in the capture (last seen)
    genl_ids: dict[int, str]


def _answers_request(reg: Any, req: Request, m: Message) -> bool:
    """Whether kernel message `m`, tied to `req` by seq, is its answer: an
    ACK only when NLM_F_ACK was asked (the kernel sends none otherwise, so
    it is another request's with the same seq); a message of a type the
    operation does not reply with (per the specs) is a notification."""
    if m.type == NLMSG_ERROR:
        return bool(req.flags & NLM_F_ACK) or (m.error or 0) != 0
    if m.type < 16:
        return True
    if req.protocol == NETLINK_GENERIC:
        asked = req.rec.cmd if req.rec is not None else None
        got = m.genl_cmd
        family = req.genl_family
    else:
        asked, got, family = req.type, m.type, None
    if asked is None or got is None:
        return True
    replies = reg.reply_types(req.protocol, family, asked)
    return not replies or got in replies


def load_requests(path: str, registry: Any = None, flt: Any = None) -> LoadedCapture:
    """The requests of a capture with their original answers (see module doc)."""
    from ..api import decode_capture, default_registry, prescan_genl

    reg = registry or default_registry()
    session = Session(reg)
    session.genl_names.update(prescan_genl(path, reg))
    by_rec: dict[int, Request] = {}
    requests: list[Request] = []
    link_index: dict[str, int] = {}
    for f in decode_capture(session, path):
        for m in f.messages:
            if m.direction == "user->kernel":
                if not m.flags & NLM_F_REQUEST or m.type < 16:
                    continue
                rec = session.request_for(m.protocol, m.seq)
                if flt is not None and not flt.match(m, f):
                    continue
                data = bytes(f.data[m.node.offset : m.node.offset + m.node.length])
                refs, names = _request_of(m)
                req = Request(
                    f.number,
                    m.index,
                    m.protocol,
                    data,
                    m.type,
                    m.flags,
                    m.seq,
                    m.type_name,
                    m.family,
                    (
                        m.family
                        if m.protocol == NETLINK_GENERIC and not m.family.startswith("genl id")
                        else None
                    ),
                    m.info,
                    ifindex_refs=refs,
                    names=names,
                    rec=rec,
                )
                requests.append(req)
                if rec is not None and rec.frame == f.number:
                    by_rec[id(rec)] = req
            else:
                rep = summarize(m)
                link_index.update(rep.names)
                if m.request is not None and id(m.request) in by_rec:
                    req = by_rec[id(m.request)]
                    if _answers_request(reg, req, m):
                        req.answers.append(rep)
                    else:
                        req.others.append(rep)
    return LoadedCapture(requests, link_index, dict(session.genl_names))


# -- replaying ------------------------------------------------------------------------


def _messages(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """(offset, length, type, flags, seq) of each message in a buffer."""
    off = 0
    while off + 16 <= len(data):
        length, mtype, flags, seq, _ = struct.unpack_from("=IHHII", data, off)
        if length < 16:
            return
        yield off, length, mtype, flags, seq
        off += (length + 3) & ~3


class Replayer:
    """Sends requests inside `netns` (None: the host's own namespace) and
    records what was sent and answered through `record(frame_bytes,
    comment)`."""

    def __init__(
        self,
        netns: str | None,
        capture: LoadedCapture,
        registry: Any = None,
        timeout: float = 2.0,
        record: Any = None,
        local_genl: dict[str, int] | None = None,
    ) -> None:
        from ..api import default_registry

        self.netns = netns
        self.capture = capture
        self.timeout = timeout
        self.record = record
        self.session = Session(registry or default_registry())
        self.sockets: dict[int, RawNetlinkSocket] = {}
        self.local_genl = local_genl
        self.link_index: dict[str, int] = {}  # name -> ifindex in the replay namespace
        self.failed: dict[str, Request] = {}  # link names whose creation failed in the replay
        self.failed_requests: list[Request] = []  # succeeded originally, failed here

    def close(self) -> None:
        for s in self.sockets.values():
            s.close()
        self.sockets.clear()

    def _socket(self, protocol: int) -> RawNetlinkSocket:
        s = self.sockets.get(protocol)
        if s is None:
            s = self.sockets[protocol] = RawNetlinkSocket(protocol, netns=self.netns)
        return s

    def _genl_ids(self) -> dict[str, int]:
        if self.local_genl is None:
            from ..capture.mcast import GroupError, genl_families

            try:
                self.local_genl = {n: f.id for n, f in genl_families(self.netns).items()}
            except GroupError:
                self.local_genl = {}
            self.local_genl.setdefault("nlctrl", GENL_ID_CTRL)
        return self.local_genl

    def prepare(self, req: Request) -> tuple[bytes | None, list[str], str | None]:
        """The bytes to send, the rewrites made, or a reason to skip."""
        data = bytearray(req.data)
        rewrites: list[str] = []
        if len(data) < 16:
            return None, rewrites, "the request is shorter than a netlink header"
        struct.pack_into("=I", data, 12, 0)  # nlmsg_pid: let the kernel fill in our port
        if req.protocol == NETLINK_GENERIC and req.type != GENL_ID_CTRL:
            if req.genl_family is None:
                return (
                    None,
                    rewrites,
                    (
                        f"generic netlink family id {req.type} is not named in the capture "
                        "(no controller exchange seen)"
                    ),
                )
            local = self._genl_ids().get(req.genl_family)
            if local is None:
                return (
                    None,
                    rewrites,
                    (
                        f"generic netlink family {req.genl_family!r} is not registered on this kernel"
                    ),
                )
            if local != req.type:
                struct.pack_into("=H", data, 4, local)
                rewrites.append(f"genl id {req.type} -> {local} ({req.genl_family})")
        by_index = {v: k for k, v in self.capture.link_index.items()}
        for off, idx in req.ifindex_refs:
            name = by_index.get(idx)
            new = self.link_index.get(name) if name is not None else None
            if new is not None and new != idx and off + 4 <= len(data):
                struct.pack_into("=i", data, off, new)
                rewrites.append(f"ifindex {idx} -> {new} ({name})")
        return bytes(data), rewrites, None

    def send(self, reqs: list[Request]) -> tuple[dict[int, list[Reply]], str | None]:
        """Send the requests one captured frame held, in one buffer (netfilter
        batches and iproute2 -batch rely on that), and read the answers of
        each; returns the replies per request (by position) and a problem."""
        parts: list[bytes] = []
        for r in reqs:
            data, _, _ = self.prepare(r)
            assert data is not None
            parts.append(data)
        buf_out = b"".join(_pad(p) for p in parts)
        protocol = reqs[0].protocol
        sock = self._socket(protocol)
        replies: dict[int, list[Reply]] = {i: [] for i in range(len(reqs))}
        # Which requests still wait: those that asked for an ACK, were
        # answered in the capture, or are gets (a reply always comes).
        waiting = {
            i
            for i, r in enumerate(reqs)
            if r.flags & NLM_F_ACK or r.answers or "GET" in r.type_name.upper()
        }
        quiet = len(waiting) < len(reqs)
        if self.record is not None:
            labels = ", ".join(r.label for r in reqs)
            self.record(_frame(protocol, buf_out), f"replay of frame {labels}")
        try:
            sock.sock.send(buf_out)
        except OSError as exc:
            return replies, f"send failed: {exc.strerror or exc}"
        by_seq: dict[int, list[int]] = {}
        for i, r in enumerate(reqs):
            by_seq.setdefault(r.seq, []).append(i)
        short = min(0.2, self.timeout)
        deadline = time.monotonic() + self.timeout
        problem = None
        while time.monotonic() < deadline:
            if not waiting:
                if not quiet:
                    break
                # Requests that asked for nothing: give errors a moment to come.
                sock.settimeout(short)
            else:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                buf = sock.recv()
            except TimeoutError:
                break
            except OSError as exc:
                problem = f"receive failed: {exc.strerror or exc}"
                break
            if self.record is not None:
                self.record(_frame(protocol, buf), "answer (replay)")
            frame = self.session.decode(_frame(protocol, buf))
            for m in frame.messages:
                owners = by_seq.get(m.seq)
                if not owners:
                    continue
                # Several requests may share a seq (seq 0 batches): the first
                # one still waiting takes the answer.
                i = next((k for k in owners if k in waiting), owners[-1])
                rep = summarize(m)
                replies[i].append(rep)
                self.link_index.update(rep.names)
                r = reqs[i]
                if m.type in (NLMSG_ERROR, NLMSG_DONE) or (
                    not m.flags & NLM_F_MULTI and not r.flags & NLM_F_ACK
                ):
                    waiting.discard(i)
            if not waiting and not quiet:
                break
        sock.settimeout(None)
        return replies, problem

    def run(self, requests: Iterable[Request] | None = None) -> Iterator[Outcome]:
        todo = list(requests if requests is not None else self.capture.requests)
        for group in _frame_groups(todo):
            sendable: list[Request] = []
            rewrites: dict[int, list[str]] = {}
            for req in group:
                _, rw, skip = self.prepare(req)
                if skip is not None:
                    yield Outcome(req, "skipped", [skip])
                    continue
                rewrites[id(req)] = rw
                sendable.append(req)
            if not sendable:
                continue
            replies, problem = self.send(sendable)
            for i, req in enumerate(sendable):
                out = compare(req, replies[i], self)
                out.rewrites = rewrites[id(req)]
                if problem is not None:
                    out.verdict = "mismatch"
                    out.reasons.insert(0, problem)
                if out.rewrites:
                    out.benign.append("rewritten for this kernel: " + ", ".join(out.rewrites))
                yield out


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) & 3)


def _frame_groups(reqs: list[Request]) -> Iterator[list[Request]]:
    """Consecutive requests of one captured frame (one sendmsg)."""
    group: list[Request] = []
    for r in reqs:
        if group and (r.frame != group[0].frame or r.protocol != group[0].protocol):
            yield group
            group = []
        group.append(r)
    if group:
        yield group


# -- comparing ----------------------------------------------------------------------


def _answer_text(answers: list[Reply]) -> str:
    kinds = sorted({a.kind for a in answers})
    return "replied " + "/".join(kinds) if kinds else "no answer"


def _notifications(req: Request) -> bool:
    """True when the non-control messages tied to `req` in the capture are
    multicast notifications rather than its answer: a classic (not generic)
    request that creates, changes or deletes without NLM_F_ECHO is answered
    by an ACK or error only, and the notification it causes carries its seq
    and port id.  The replay's socket joins no group, so it never sees them."""
    if req.flags & NLM_F_ECHO:
        return False
    if req.protocol == NETLINK_GENERIC:
        return any(a.kind.endswith("_NTF") for a in req.answers)
    name = req.type_name.upper()
    return any(w in name for w in ("NEW", "DEL", "SET")) and "GET" not in name


def _final_errno(answers: list[Reply]) -> tuple[int | None, str | None]:
    for a in reversed(answers):
        if a.kind in ("ACK", "ERROR"):
            return a.errno, a.ext_msg
        if a.kind == "DONE" and a.errno:
            return a.errno, a.ext_msg
    return None, None


def _attrs_by_kind(answers: list[Reply], dump: bool) -> dict[str, frozenset[str]]:
    """Per reply type, the attribute names: for dumps those every object has
    (objects differ between machines), otherwise all seen."""
    out: dict[str, frozenset[str]] = {}
    for a in answers:
        if a.kind in ("ACK", "ERROR", "DONE"):
            continue
        if a.kind in out:
            out[a.kind] = out[a.kind] & a.attrs if dump else out[a.kind] | a.attrs
        else:
            out[a.kind] = a.attrs
    return out


def _explain_errno(req: Request, new: int, ext: str | None, rep: Replayer | None) -> str:
    """Why the replay's errno may differ from the original's."""
    if rep is not None:
        for name in sorted(req.names):
            dep = rep.failed.get(name)
            if dep is not None and dep is not req:
                return f"depends on link {name!r}, whose creation (frame {dep.label}) failed in the replay"
        by_index = {v: k for k, v in rep.capture.link_index.items()}
        for _, idx in req.ifindex_refs:
            link = by_index.get(idx)
            if link is not None and link in rep.failed:
                return (
                    f"refers to ifindex {idx} ({link!r} in the capture), whose creation "
                    f"(frame {rep.failed[link].label}) failed in the replay"
                )
            if new in (errno_mod.ENODEV, errno_mod.ENOENT, errno_mod.EINVAL) and (
                link is None or link not in rep.link_index
            ):
                what = f" ({link!r} in the capture)" if link else ", which the capture never names"
                return f"refers to ifindex {idx}{what}: no such link in the replay namespace"
    kind = _link_kind(req)
    if kind and (new == errno_mod.EOPNOTSUPP or (ext and "Unknown device type" in ext)):
        return f"link kind {kind!r} is not available on this kernel (module missing)"
    if req.family == "nlctrl" and new == errno_mod.ENOENT:
        return (
            f"generic netlink family {req.info!r} is not registered on this kernel (module missing)"
        )
    if new in (errno_mod.EOPNOTSUPP, errno_mod.EPROTONOSUPPORT, errno_mod.EAFNOSUPPORT):
        return "this kernel does not support what the request uses (a module or build option is missing)"
    if new == errno_mod.ENOSYS:
        return "not implemented on this kernel (a module or algorithm is missing)"
    earlier = [r for r in rep.failed_requests if r is not req] if rep is not None else []
    if earlier and new in (
        errno_mod.EINVAL,
        errno_mod.ENETUNREACH,
        errno_mod.EHOSTUNREACH,
        errno_mod.EADDRNOTAVAIL,
        errno_mod.ENODEV,
        errno_mod.ENOENT,
        errno_mod.ESRCH,
    ):
        frames = ", ".join(r.label for r in earlier[-3:])
        return (
            f"probably depends on state that earlier requests set up originally but not in "
            f"the replay (frames {frames} failed here)"
        )
    if kind and (new == errno_mod.EOPNOTSUPP or (ext and "Unknown device type" in ext)):
        return f"link kind {kind!r} is not available on this kernel (module missing)"
    if new == errno_mod.EEXIST:
        return "the object already exists in the replay namespace (its state differs from the original host's)"
    if new in (errno_mod.EPERM, errno_mod.EACCES):
        return "not permitted here (privileges or a security module)"
    if new in (errno_mod.ENODEV, errno_mod.ENOENT, errno_mod.ESRCH, errno_mod.EADDRNOTAVAIL):
        return "the object it refers to does not exist in the replay namespace"
    if new == errno_mod.EAFNOSUPPORT or new == errno_mod.EPROTONOSUPPORT:
        return "address family or protocol not supported by this kernel (module missing)"
    return "this kernel answers differently (kernel version or configuration)"


def _link_kind(req: Request) -> str | None:
    # IFLA_INFO_KIND is a string inside IFLA_LINKINFO: find it in the request
    # bytes by decoding them again.
    from ..api import decode_frame

    if req.protocol != NETLINK_ROUTE:
        return None
    f = decode_frame(_frame(req.protocol, req.data))
    for m in f.messages:
        n = m.node.find("rtnl.link.linkinfo.kind")
        if n is not None and isinstance(n.value, str):
            return n.value
    return None


def compare(req: Request, new: list[Reply], rep: Replayer | None = None) -> Outcome:
    """Compare the original answers of `req` with `new` (see module doc)."""
    out = Outcome(req, "match", replies=new)
    old = req.answers
    if req.others:
        kinds = ", ".join(sorted({a.kind if a.kind != "ACK" else "an ACK" for a in req.others}))
        out.benign.append(
            f"the capture ties {len(req.others)} other message(s) to this request's seq ({kinds}): "
            "notifications or another request's answer, not compared"
        )
    if _notifications(req):
        seen = [
            a
            for a in old
            if a.kind not in ("ACK", "ERROR", "DONE")
            and (req.protocol != NETLINK_GENERIC or a.kind.endswith("_NTF"))
        ]
        if seen:
            out.benign.append(
                f"the capture shows {len(seen)} notification(s) carrying this request's seq "
                f"({', '.join(sorted({a.kind for a in seen}))}); the replay joins no multicast group"
            )
            old = [a for a in old if all(a is not b for b in seen)]
    o_err, o_ext = _final_errno(old)
    n_err, n_ext = _final_errno(new)
    failed_now = bool(n_err) and not o_err
    if o_err != n_err:
        if o_err is None and n_err == 0 and not req.flags & NLM_F_ACK:
            out.benign.append("the replay got an ACK the capture does not show")
        elif n_err is None and o_err is not None:
            out.reasons.append(
                f"no final answer in the replay (timeout); the original got {_errname(o_err)}"
            )
        else:
            o_txt = _answer_text(old) if o_err is None else _errname(o_err)
            n_txt = _answer_text(new) if n_err is None else _errname(n_err)
            o_txt += f' "{o_ext}"' if o_ext else ""
            n_txt += f' "{n_ext}"' if n_ext else ""
            why = _explain_errno(req, n_err or 0, n_ext, rep) if n_err else ""
            out.reasons.append(
                f"errno differs: original {o_txt}, replay {n_txt}" + (f": {why}" if why else "")
            )
    elif o_ext != n_ext and (o_ext or n_ext):
        out.benign.append(f"extack text differs: original {o_ext!r}, replay {n_ext!r}")
    if failed_now and rep is not None:
        rep.failed_requests.append(req)
        for name in req.names:
            if req.type_name == "RTM_NEWLINK":
                rep.failed.setdefault(name, req)
    if failed_now or (o_err and n_err):
        # An error answers instead of replies: the reply comparison says nothing more.
        out.verdict = "mismatch" if out.reasons else "match"
        return out
    dump = req.is_dump or (
        req.flags & NLM_F_DUMP == NLM_F_DUMP and any(a.kind == "DONE" for a in old + new)
    )
    o_types = Counter(a.kind for a in old if a.kind not in ("ACK", "ERROR", "DONE"))
    n_types = Counter(a.kind for a in new if a.kind not in ("ACK", "ERROR", "DONE"))
    missing = sorted(set(o_types) - set(n_types))
    extra = sorted(set(n_types) - set(o_types))
    if dump:
        for k in sorted(set(o_types) | set(n_types)):
            if o_types[k] != n_types[k]:
                out.benign.append(
                    f"dump found {n_types[k]} {k} here, {o_types[k]} in the capture "
                    "(the namespace holds other objects)"
                )
    else:
        if missing:
            out.reasons.append("reply types missing in the replay: " + ", ".join(missing))
        if extra and req.seq == 0 and req.type_name.startswith("type "):
            out.benign.append(
                "replies only in the replay: " + ", ".join(extra) + " (the capture could not tie "
                "seq-0 replies of an undescribed message type to their request)"
            )
        elif extra:
            out.reasons.append("reply types only in the replay: " + ", ".join(extra))
        for k in sorted(set(o_types) & set(n_types)):
            if o_types[k] != n_types[k]:
                out.reasons.append(f"{o_types[k]} {k} originally, {n_types[k]} in the replay")
    o_attrs = _attrs_by_kind(old, dump)
    n_attrs = _attrs_by_kind(new, dump)
    for k in sorted(set(o_attrs) & set(n_attrs)):
        gone = o_attrs[k] - n_attrs[k]
        added = n_attrs[k] - o_attrs[k]
        hard_gone = sorted(gone - BENIGN_ATTRS)
        soft = sorted((gone & BENIGN_ATTRS) | (added & BENIGN_ATTRS))
        if hard_gone:
            out.reasons.append(f"{k}: attributes missing in the replay: {', '.join(hard_gone)}")
        if soft:
            out.benign.append(
                f"{k}: machine-dependent attributes differ (addresses, counters, "
                f"timestamps, device properties): {', '.join(soft)}"
            )
        newer = sorted(added - BENIGN_ATTRS)
        if newer:
            out.benign.append(
                f"{k}: attributes only this kernel sends (newer kernel or other "
                f"configuration): {', '.join(newer)}"
            )
    out.verdict = "mismatch" if out.reasons else "match"
    return out


def summary_line(outcomes: list[Outcome]) -> str:
    c = Counter(o.verdict for o in outcomes)
    return (
        f"{len(outcomes)} requests, {c['match']} match, {c['mismatch']} mismatch, "
        f"{c['skipped']} skipped"
    )


def outcome_line(o: Outcome) -> str:
    r = o.request
    head = f"{r.label:>7} {r.family:<10} {r.info[:60]:<60} {o.verdict}"
    lines = [head]
    lines += [f"          ! {reason}" for reason in o.reasons]
    lines += [f"          ~ {b}" for b in o.benign]
    return "\n".join(lines)


__all__ = [
    "LoadedCapture",
    "Outcome",
    "Replayer",
    "Reply",
    "Request",
    "compare",
    "load_requests",
    "outcome_line",
    "summarize",
    "summary_line",
]
