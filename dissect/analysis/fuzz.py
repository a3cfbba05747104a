"""Structure-aware netlink fuzzing: mutate one template message, send each case
to the kernel inside a throwaway network namespace, and report what is new.

Theory of operation:

* A `Template` is one netlink message (header included) and its protocol.
  Its structure comes from our own dissector: the message is decoded, the
  first attribute's offset gives the length of the fixed headers (struct
  ifinfomsg, genlmsghdr ...), and attributes whose tree node holds further
  attributes are nests (with the bytes before their first child kept as a
  head, as in VETH_INFO_PEER's struct ifinfomsg).  The bytes are then
  walked as netlink attributes into a small model (`Msg`, `Attr`) that the
  mutators edit and `Msg.serialize` turns back into bytes, recomputing
  every length a mutation did not set on purpose.  So the mutators know the
  structure of any family our specs describe.
* Case ``k`` of seed ``s`` draws everything from ``random.Random(f"{s}:{k}")``
  and from nothing else, so a case is reproducible from (seed, k) alone and
  a run resumes at any k.  Case 0 is the template itself (the baseline
  answer: its errno and extack message are not findings).  NLM_F_ACK is
  always set, so every message the kernel accepts for parsing is answered;
  nlmsg_seq is the case number.
* `Fuzzer.run` sends the cases one at a time over a socket opened inside a
  `ScratchNetns`, which is deleted and made again every ``recreate_every``
  cases and after any case the kernel accepted (an ACK to a request that
  creates, changes or deletes), so each case meets a fresh namespace state
  and the host's namespace is never touched.  The socket has
  NETLINK_CAP_ACK set, so error answers do not echo the (malformed)
  request and the dissector's notes on an answer are about the kernel's
  bytes.
* Findings: the first time an errno or an extack message is seen in the run;
  no answer within the case timeout (unless the kernel drops the message by
  design: nlmsg_len below 16 or beyond the buffer); answers our dissector
  flags as malformed (warn or error); a change of /proc/sys/kernel/tainted;
  a send that fails.  Each finding carries its reproducer: the case's
  bytes, a command line sending them, and a Python snippet.
"""

from __future__ import annotations

import contextlib
import copy
import errno as errno_mod
import json
import os
import random
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..capture.linktypes import netlink_pseudo_header
from ..core.tree import ERROR, MALFORMED, WARN

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000
NLA_TYPE_MASK = 0x3FFF
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
TAINTED = "/proc/sys/kernel/tainted"

_ERRNAMES = {**errno_mod.errorcode, errno_mod.EOPNOTSUPP: "EOPNOTSUPP"}


def errname(n: int) -> str:
    return "ACK" if n == 0 else _ERRNAMES.get(n, f"errno {n}")


# -- the message model ---------------------------------------------------------------


@dataclass
class Attr:
    type: int  # the whole nla_type field, flags included
    head: bytes  # a leaf's payload; a nest's bytes before its first child
    children: list[Attr] | None = None  # None for a leaf
    len_override: int | None = None  # nla_len to write instead of the true length
    tail: bytes = b""  # a nest's bytes after its last child that are no attribute

    def payload(self) -> bytes:
        if self.children is None:
            return self.head
        return self.head + b"".join(c.serialize() for c in self.children) + self.tail

    def serialize(self) -> bytes:
        p = self.payload()
        n = 4 + len(p)
        length = n if self.len_override is None else self.len_override
        return struct.pack("=HH", length & 0xFFFF, self.type & 0xFFFF) + p + bytes(-n & 3)


@dataclass
class Msg:
    type: int
    flags: int
    seq: int
    pid: int
    fixed: bytes  # struct headers between nlmsghdr and the attributes
    attrs: list[Attr]
    trailer: bytes = b""  # bytes after the last attribute that did not parse as one
    len_override: int | None = None
    cut: int | None = None  # send only this many bytes

    def serialize(self) -> bytes:
        body = self.fixed + b"".join(a.serialize() for a in self.attrs) + self.trailer
        n = 16 + len(body)
        length = n if self.len_override is None else self.len_override
        data = struct.pack("=IHHII", length & 0xFFFFFFFF, self.type, self.flags, self.seq, self.pid)
        data += body
        return data if self.cut is None else data[: self.cut]

    def all_attrs(self) -> list[tuple[list[Attr], int, int]]:
        """(sibling list, index, depth) of every attribute, depth first."""
        out: list[tuple[list[Attr], int, int]] = []

        def walk(lst: list[Attr], depth: int) -> None:
            for i, a in enumerate(lst):
                out.append((lst, i, depth))
                if a.children is not None:
                    walk(a.children, depth + 1)

        walk(self.attrs, 0)
        return out


def _parse_attrs(
    data: bytes, start: int, end: int, heads: dict[int, int]
) -> tuple[list[Attr], bytes]:
    """Attributes of data[start:end]; `heads` maps the offset of each nest
    (as the dissector found them) to the offset of its first child."""
    out: list[Attr] = []
    off = start
    while off + 4 <= end:
        nla_len, nla_type = struct.unpack_from("=HH", data, off)
        if nla_len < 4 or off + nla_len > end:
            break
        stop = off + nla_len
        first = heads.get(off)
        if first is not None and off + 4 <= first <= stop:
            kids, rest = _parse_attrs(data, first, stop, heads)
            # what does not parse as attributes stays, as opaque bytes
            a = Attr(nla_type, bytes(data[off + 4 : first]), kids, tail=rest)
        else:
            a = Attr(nla_type, bytes(data[off + 4 : stop]))
        out.append(a)
        off = (stop + 3) & ~3
    return out, bytes(data[off:end]) if off < end else b""


def _is_attr_node(node: Any, data: bytes, base: int) -> bool:
    """An attribute node: named like a kernel constant and starting with an
    nla header whose length is the node's."""
    off = node.offset - base
    if not node.name[:1].isupper() or node.length < 4 or off < 0 or off + 4 > len(data):
        return False
    return bool(struct.unpack_from("=H", data, off)[0] == node.length)


def _attr_nodes(node: Any, data: bytes, base: int) -> Iterator[Any]:
    """The outermost attribute nodes below `node` (looking through wrappers)."""
    for c in node.children or ():
        if _is_attr_node(c, data, base):
            yield c
        elif c.children and c.abbrev not in ("netlink.hdr",):
            yield from _attr_nodes(c, data, base)


@dataclass
class Template:
    protocol: int
    data: bytes
    msg: Msg
    type_name: str = ""

    @classmethod
    def from_bytes(cls, protocol: int, data: bytes, session: Any = None) -> Template:
        """Model a message (header included); its structure from our dissector.
        This is the hook for every template source: a capture's message, hex
        bytes, or a crafted message built elsewhere."""
        from ..core.netlink import Session

        if len(data) < 16:
            raise ValueError(f"a netlink message needs 16 header bytes, got {len(data)}")
        raw = bytes(data)
        _, mtype, flags, seq, pid = struct.unpack_from("=IHHII", raw, 0)
        # The structure is read with nlmsg_len set to the bytes there are, so a
        # template whose length field is itself broken (a reproducer) still
        # decodes; case 0 sends the bytes as given.
        data = struct.pack("=I", len(raw)) + raw[4:]
        s = session or Session()
        frame = s.decode(netlink_pseudo_header(protocol) + data)
        if not frame.messages:
            return cls(protocol, raw, Msg(mtype, flags, seq, pid, data[16:], []), "")
        m = frame.messages[0]
        base = m.node.offset
        tops = list(_attr_nodes(m.node, data, base))
        heads: dict[int, int] = {}
        for n in m.node.walk():
            if _is_attr_node(n, data, base):
                kids = list(_attr_nodes(n, data, base))
                if kids:
                    heads[n.offset - base] = kids[0].offset - base
        first = tops[0].offset - base if tops else len(data)
        attrs, trailer = _parse_attrs(data, first, len(data), heads)
        msg = Msg(mtype, flags, seq, pid, bytes(data[16:first]), attrs, trailer)
        return cls(protocol, raw, msg, m.type_name)


# -- mutators ------------------------------------------------------------------------------


Mutator = Callable[[random.Random, Msg], str | None]


def _pick(
    rng: random.Random, msg: Msg, leaf: bool | None = None
) -> tuple[list[Attr], int, int] | None:
    items = msg.all_attrs()
    if leaf is not None:
        items = [t for t in items if (t[0][t[1]].children is None) == leaf]
    return rng.choice(items) if items else None


def _path(msg: Msg, lst: list[Attr], i: int) -> str:
    """A readable position: attribute types from the top, e.g. 18/2/1."""

    def find(cur: list[Attr], trail: list[int]) -> list[int] | None:
        for k, a in enumerate(cur):
            if cur is lst and k == i:
                return [*trail, a.type & NLA_TYPE_MASK]
            if a.children is not None:
                got = find(a.children, [*trail, a.type & NLA_TYPE_MASK])
                if got is not None:
                    return got
        return None

    p = find(msg.attrs, [])
    return "attr " + "/".join(str(t) for t in p) if p else "attr ?"


def m_nlmsg_len(rng: random.Random, msg: Msg) -> str:
    true = len(msg.serialize())
    choice = rng.choice(["off", "zero", "huge", "small"])
    if choice == "off":
        d = rng.choice([-4, -3, -2, -1, 1, 2, 3, 4])
        msg.len_override = max(0, true + d)
    elif choice == "zero":
        msg.len_override = 0
    elif choice == "huge":
        msg.len_override = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x10000, true + 4096])
    else:
        msg.len_override = rng.randint(1, 15)
    return f"nlmsg_len {true} -> {msg.len_override}"


def m_nlmsg_type(rng: random.Random, msg: Msg) -> str:
    old = msg.type
    choice = rng.choice(["near", "random", "control"])
    if choice == "near":
        new = (old + rng.choice([-3, -2, -1, 1, 2, 3])) & 0xFFFF
    elif choice == "control":
        new = rng.randint(0, 15)
    else:
        new = rng.randint(16, 0xFFFF)
    if new == old:
        new = (old + 1) & 0xFFFF
    msg.type = new
    return f"nlmsg_type {old} -> {new}"


def m_flags(rng: random.Random, msg: Msg) -> str:
    old = msg.flags
    new = old
    while new == old:
        new = (
            (rng.getrandbits(16) | NLM_F_ACK)
            if rng.random() < 0.5
            else (old ^ (1 << rng.randint(0, 15)))
        )
        new |= NLM_F_ACK
    msg.flags = new
    return f"nlmsg_flags 0x{old:04x} -> 0x{new:04x}"


def m_nla_len(rng: random.Random, msg: Msg) -> str | None:
    t = _pick(rng, msg)
    if t is None:
        return None
    lst, i, _ = t
    a = lst[i]
    true = 4 + len(a.payload())
    choice = rng.choice(["shrink", "grow", "0", "1", "3", "odd", "huge"])
    new = {
        "shrink": max(0, true - rng.randint(1, 4)),
        "grow": true + rng.randint(1, 8),
        "0": 0,
        "1": 1,
        "3": 3,
        "odd": true | 1 if true % 2 == 0 else true + 2,
        "huge": 0xFFFF,
    }[choice]
    if new == true:
        new = true + 1
    a.len_override = new
    return f"{_path(msg, lst, i)} nla_len {true} -> {new}"


def m_nla_type(rng: random.Random, msg: Msg) -> str | None:
    t = _pick(rng, msg)
    if t is None:
        return None
    lst, i, _ = t
    a = lst[i]
    where = _path(msg, lst, i)
    old = a.type
    choice = rng.choice(["random", "nested", "byteorder", "near"])
    if choice == "random":
        a.type = (a.type & ~NLA_TYPE_MASK) | rng.randint(0, 80)
    elif choice == "nested":
        a.type ^= NLA_F_NESTED
    elif choice == "byteorder":
        a.type ^= NLA_F_NET_BYTEORDER
    else:
        a.type = (a.type & ~NLA_TYPE_MASK) | (
            ((a.type & NLA_TYPE_MASK) + rng.choice([-1, 1, 2])) & NLA_TYPE_MASK
        )
    if a.type == old:
        a.type ^= NLA_F_NESTED
    return f"{where} nla_type 0x{old:04x} -> 0x{a.type:04x}"


def m_duplicate(rng: random.Random, msg: Msg) -> str | None:
    t = _pick(rng, msg)
    if t is None:
        return None
    lst, i, _ = t
    where = _path(msg, lst, i)
    times = rng.choice([1, 1, 2, 16])
    for _ in range(times):
        lst.insert(i + 1, copy.deepcopy(lst[i]))
    return f"{where} duplicated {times}x"


def m_delete(rng: random.Random, msg: Msg) -> str | None:
    t = _pick(rng, msg)
    if t is None:
        return None
    lst, i, _ = t
    where = _path(msg, lst, i)
    del lst[i]
    return f"{where} deleted"


def m_deep_nest(rng: random.Random, msg: Msg) -> str | None:
    t = _pick(rng, msg)
    if t is None:
        return None
    lst, i, _ = t
    where = _path(msg, lst, i)
    depth = rng.choice(
        [2, 4, 8, 16, 32, 64, 128]
    )  # the kernel allows 16 (MAX_POLICY_RECURSION_DEPTH)
    inner = lst[i]
    for _ in range(depth):
        inner = Attr(lst[i].type | NLA_F_NESTED, b"", [inner])
    lst[i] = inner
    return f"{where} nested in itself {depth}x"


def m_truncate(rng: random.Random, msg: Msg) -> str | None:
    data = msg.serialize()
    bounds: list[int] = []
    off = 16 + len(msg.fixed)
    for a in msg.attrs:
        bounds.append(off)
        off += (4 + len(a.payload()) + 3) & ~3
    choice = rng.choice(["boundary", "mid", "boundary-short-len"])
    if choice != "mid" and bounds:
        cut = rng.choice(bounds[1:] or bounds)
    else:
        cut = rng.randint(16, max(16, len(data) - 1))
    if cut >= len(data):
        cut = len(data) - 1
    if choice == "boundary-short-len":
        # the buffer keeps its bytes, nlmsg_len claims fewer
        msg.len_override = cut
        return f"nlmsg_len cut to {cut} of {len(data)} (at an attribute boundary)"
    # cut the buffer and nlmsg_len together: the message ends mid-structure
    msg.cut = cut
    msg.len_override = cut
    return f"message truncated to {cut} of {len(data)} bytes ({choice})"


def m_random_payload(rng: random.Random, msg: Msg) -> str | None:
    t = _pick(rng, msg, leaf=True)
    if t is None:
        return None
    lst, i, _ = t
    a = lst[i]
    n = len(a.head) if rng.random() < 0.5 else rng.choice([0, 1, 2, 3, 5, 7, 16, 64, 300])
    a.head = bytes(rng.getrandbits(8) for _ in range(n))
    return f"{_path(msg, lst, i)} payload -> {n} random bytes"


def m_int_boundary(rng: random.Random, msg: Msg) -> str | None:
    items = [
        t
        for t in msg.all_attrs()
        if t[0][t[1]].children is None and len(t[0][t[1]].head) in (1, 2, 4, 8)
    ]
    if not items:
        return None
    lst, i, _ = rng.choice(items)
    a = lst[i]
    n = len(a.head)
    values = {
        "0": 0,
        "1": 1,
        "-1": (1 << (8 * n)) - 1,
        "max signed": (1 << (8 * n - 1)) - 1,
        "min signed": 1 << (8 * n - 1),
    }
    name = rng.choice(sorted(values))
    new = values[name].to_bytes(n, "little")
    if new == a.head:
        name, new = (
            "-1" if name != "-1" else "0",
            (values["-1"] if name != "-1" else 0).to_bytes(n, "little"),
        )
    a.head = new
    return f"{_path(msg, lst, i)} u{8 * n} -> {name}"


def m_string(rng: random.Random, msg: Msg) -> str | None:
    items = [
        t
        for t in msg.all_attrs()
        if t[0][t[1]].children is None and len(t[0][t[1]].head) >= 1 and _stringish(t[0][t[1]].head)
    ]
    if not items:
        return None
    lst, i, _ = rng.choice(items)
    a = lst[i]
    text = a.head.rstrip(b"\0")
    choice = rng.choice(["no-nul", "overlong", "empty", "embedded-nul"])
    if choice == "no-nul" or (choice == "no-nul" and not a.head.endswith(b"\0")):
        a.head = text + b"x" if not a.head.endswith(b"\0") else text
    elif choice == "overlong":
        n = rng.choice([16, 17, 64, 256, 4096])
        a.head = (text * (n // max(1, len(text)) + 1))[:n] + b"\0"
    elif choice == "empty":
        a.head = b"" if a.head != b"" else b"\0"
    else:
        a.head = text[:1] + b"\0" + text[1:] + b"\0"
    return f"{_path(msg, lst, i)} string {choice}"


def _stringish(b: bytes) -> bool:
    t = b.rstrip(b"\0")
    return bool(t) and all(32 <= c < 127 for c in t)


MUTATORS: dict[str, Mutator] = {
    "nlmsg_len": m_nlmsg_len,
    "nlmsg_type": m_nlmsg_type,
    "flags": m_flags,
    "nla_len": m_nla_len,
    "nla_type": m_nla_type,
    "duplicate": m_duplicate,
    "delete": m_delete,
    "deep_nest": m_deep_nest,
    "truncate": m_truncate,
    "random_payload": m_random_payload,
    "int_boundary": m_int_boundary,
    "string": m_string,
}


@dataclass
class Case:
    index: int
    mutator: str  # "template" for case 0
    description: str
    data: bytes
    # the mutated model (lengths it broke on purpose included), for minimizing
    model: Msg | None = field(default=None, compare=False, repr=False)


def make_case(
    template: Template, seed: int | str, k: int, mutators: list[str] | None = None
) -> Case:
    """Case `k` of `seed`: a function of (template, seed, k, mutators) only."""
    msg = copy.deepcopy(template.msg)
    msg.seq = k & 0xFFFFFFFF
    msg.pid = 0
    msg.flags |= NLM_F_ACK
    if k == 0:
        # The template's own bytes, only NLM_F_ACK, seq (0) and pid (0) changed.
        raw = bytearray(template.data)
        flags = struct.unpack_from("=H", raw, 6)[0] | NLM_F_ACK
        struct.pack_into("=HII", raw, 6, flags, 0, 0)
        return Case(0, "template", "the template as is (ACK requested)", bytes(raw))
    rng = random.Random(f"{seed}:{k}")
    names = list(mutators or MUTATORS)
    base = msg.serialize()
    for _ in range(8):
        name = rng.choice(names)
        trial = copy.deepcopy(msg)
        desc = MUTATORS[name](rng, trial)
        if desc is None:
            continue
        data = trial.serialize()
        if data != base:
            return Case(k, name, desc, data, trial)
    # Nothing applied (no attributes and only attribute mutators): flip a flag bit.
    trial = copy.deepcopy(msg)
    desc = m_flags(rng, trial)
    return Case(k, "flags", desc, trial.serialize(), trial)


# -- running -----------------------------------------------------------------------------------


@dataclass
class Finding:
    case: int
    kind: str  # new-errno, new-extack, timeout, malformed-answer, taint, send-error
    detail: str
    mutator: str
    description: str
    hex: str
    minimal_hex: str | None = None  # the same answer with fewer attributes

    def as_dict(self, protocol: int, seed: int | str, template: str = "") -> dict[str, Any]:
        return {
            "case": self.case,
            "kind": self.kind,
            "detail": self.detail,
            "mutator": self.mutator,
            "mutation": self.description,
            "hex": self.hex,
            "minimal_hex": self.minimal_hex,
            "reproduce": (
                f"nlshark fuzz --hex {self.minimal_hex or self.hex} --protocol {protocol} -n 1"
            ),
            "reproduce_case": (
                f"nlshark fuzz --hex {template} --protocol {protocol} --seed {seed} --case {self.case}"
            ),
            "python": (
                "from dissect.capture.nlsocket import RawNetlinkSocket\n"
                f"s = RawNetlinkSocket({protocol}, netns='SOME-NETNS')\n"
                f"s.sock.send(bytes.fromhex('{self.minimal_hex or self.hex}'))\n"
                "print(s.recv().hex())"
            ),
        }


@dataclass
class RunState:
    """What a run has seen: enough to resume it."""

    seed: int | str
    protocol: int
    template: str  # hex
    next_case: int = 0
    cases_done: int = 0
    errnos: dict[str, int] = field(default_factory=dict)  # name -> count
    extacks: dict[str, int] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    taint: str = ""

    def save(self, path: str) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.__dict__, f, indent=1)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> RunState:
        with open(path) as f:
            doc = json.load(f)
        return cls(**doc)


def read_taint() -> str:
    try:
        with open(TAINTED) as f:
            return f.read().strip()
    except OSError:
        return ""


def _messages(data: bytes) -> Iterator[tuple[int, int, int]]:
    off = 0
    while off + 16 <= len(data):
        length, mtype, _, seq, _ = struct.unpack_from("=IHHII", data, off)
        if length < 16:
            return
        yield off, mtype, seq
        off += (length + 3) & ~3


class Fuzzer:
    """Runs cases in throwaway namespaces; see the module doc."""

    def __init__(
        self,
        template: Template,
        seed: int | str,
        *,
        state: RunState | None = None,
        mutators: list[str] | None = None,
        case_timeout: float = 1.0,
        recreate_every: int = 1000,
        record: Callable[[bytes, str], None] | None = None,
        registry: Any = None,
        minimize: bool = True,
    ) -> None:
        from ..core.netlink import Session

        self.template = template
        self.seed = seed
        self.mutators = mutators
        self.case_timeout = case_timeout
        self.recreate_every = recreate_every
        self.record = record
        self.session = Session(registry) if registry is not None else Session()
        self.state = state or RunState(seed, template.protocol, template.data.hex())
        self.ns: Any = None
        self.sock: Any = None
        self.cases_in_ns = 0
        self.namespaces = 0
        self.timeouts = 0
        self.resets = 0
        self.minimize = minimize

    # -- namespace ---------------------------------------------------------------------------
    def _fresh(self) -> None:
        from ..analysis.netns import ScratchNetns
        from ..capture.nlsocket import RawNetlinkSocket

        self.close()
        self.ns = ScratchNetns("fuzz")
        self.namespaces += 1
        self.sock = RawNetlinkSocket(self.template.protocol, netns=self.ns.name, rcvbuf=1 << 20)
        with contextlib.suppress(OSError):
            self.sock.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.cases_in_ns = 0

    def _remove_links(self) -> bool:
        """Delete every link but lo in the namespace (RTM_GETLINK dump, then
        RTM_DELLINK by ifindex; linux/rtnetlink.h).  False when that is not
        possible (not rtnetlink, or the kernel refused), so the caller makes
        a new namespace instead."""
        from ..capture.nlsocket import NLM_F_DUMP, RawNetlinkSocket, error_of

        if self.template.protocol != 0 or self.ns is None:
            return False
        try:
            with RawNetlinkSocket(0, netns=self.ns.name) as rt:
                rt.settimeout(2.0)
                indexes = []
                for buf in rt.transact(RTM_GETLINK, NLM_F_DUMP, bytes(16)):
                    for off, mtype, _ in _messages(buf):
                        if mtype == RTM_NEWLINK and off + 24 <= len(buf):
                            indexes.append(struct.unpack_from("=i", buf, off + 20)[0])
                for idx in indexes:
                    if idx == 1:
                        continue
                    body = struct.pack("=BxHiII", 0, 0, idx, 0, 0)
                    for buf in rt.transact(RTM_DELLINK, NLM_F_ACK, body):
                        err = error_of(buf)
                        if err and err != errno_mod.ENODEV:  # a veth peer goes with its twin
                            return False
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.ns is not None:
            self.ns.close()
            self.ns = None

    # -- one case ------------------------------------------------------------------------------
    def send_case(self, case: Case) -> tuple[list[bytes], int | None, str | None, str | None]:
        """Send a case; the answer buffers, the errno (None: no answer), the
        extack message, and a send error."""
        assert self.sock is not None
        sock = self.sock
        frame = netlink_pseudo_header(self.template.protocol) + case.data
        if self.record is not None:
            self.record(
                frame,
                f"case {case.index} seed {self.seed} mutator {case.mutator}: {case.description}",
            )
        try:
            sock.sock.send(case.data)
        except OSError as exc:
            return [], None, None, f"{errname(exc.errno or 0)}: {exc.strerror}"
        buffers: list[bytes] = []
        code: int | None = None
        # A message the kernel drops by design gets a short wait: long
        # enough to catch an answer that should not come.
        wait = min(0.05, self.case_timeout) if _dropped_by_design(case.data) else self.case_timeout
        deadline = time.monotonic() + wait
        seq = case.index & 0xFFFFFFFF
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.sock.settimeout(left)
            try:
                buf = sock.sock.recv(1 << 20)
            except TimeoutError:
                break
            except OSError as exc:
                return buffers, code, None, f"receive: {errname(exc.errno or 0)}"
            buffers.append(buf)
            if self.record is not None:
                self.record(
                    netlink_pseudo_header(self.template.protocol) + buf, f"case {case.index} answer"
                )
            done = False
            for off, mtype, mseq in _messages(buf):
                if mseq != seq:
                    continue
                if mtype == NLMSG_ERROR and off + 20 <= len(buf):
                    code = -struct.unpack_from("=i", buf, off + 16)[0]
                    done = True
                elif mtype == NLMSG_DONE:
                    code = 0 if code is None else code
                    done = True
            if done:
                break
        ext = None
        for buf in buffers:
            f = self.session.decode(netlink_pseudo_header(self.template.protocol) + buf)
            for m in f.messages:
                if m.ext_msg:
                    ext = m.ext_msg
        return buffers, code, ext, None

    def _malformed(self, buffers: list[bytes]) -> list[str]:
        notes = []
        for buf in buffers:
            f = self.session.decode(netlink_pseudo_header(self.template.protocol) + buf)
            for m in f.messages:
                for node, note in m.node.all_notes():
                    if note.group == MALFORMED and note.severity in (WARN, ERROR):
                        notes.append(f"{node.name}: {note.text}")
        return notes

    # -- the run ---------------------------------------------------------------------------------
    def run(
        self,
        count: int,
        time_limit: float | None = None,
        progress: Callable[[str], None] | None = None,
        only: int | None = None,
    ) -> Iterator[Finding]:
        """Cases state.next_case .. count-1 (or case `only`), until `time_limit` seconds."""
        st = self.state
        start = time.monotonic()
        last_progress = start
        ks = [only] if only is not None else range(st.next_case, count)
        if not st.taint:
            st.taint = read_taint()
        try:
            for k in ks:
                if time_limit is not None and time.monotonic() - start >= time_limit:
                    break
                if self.sock is None or self.cases_in_ns >= self.recreate_every:
                    self._fresh()
                case = make_case(self.template, self.seed, k, self.mutators)
                buffers, code, ext, send_error = self.send_case(case)
                self.cases_in_ns += 1
                st.cases_done += 1
                st.next_case = k + 1
                yield from self._judge(case, buffers, code, ext, send_error)
                # A request the kernel accepted may have changed the namespace:
                # links are removed at once (cheap), anything else gets a new
                # namespace.
                if code == 0 and not _is_get(self.template.type_name):
                    self.resets += 1
                    if not self._remove_links():
                        self.close()
                now = time.monotonic()
                if progress is not None and now - last_progress >= 1.0:
                    last_progress = now
                    rate = st.cases_done / max(1e-9, now - start)
                    progress(
                        f"case {k + 1}/{count}  {rate:.0f} cases/s  {len(st.findings)} findings"
                    )
        finally:
            self.close()

    def _minimize(self, case: Case, outcome: tuple[int | None, str | None]) -> bytes | None:
        """Delete attributes of the case, one at a time and at any depth,
        while the kernel still answers with the same errno and extack
        message; the smallest such message, or None when none is smaller.
        The probes are not cases: they are not recorded and count nowhere."""
        if case.model is None or not case.model.attrs:
            return None
        model = case.model
        best: bytes | None = None
        record, self.record = self.record, None
        try:
            changed = True
            while changed:
                changed = False
                for path in _attr_paths(model.attrs):
                    trial = copy.deepcopy(model)
                    _delete_path(trial.attrs, path)
                    data = trial.serialize()
                    if len(data) >= len(best or case.data) or _dropped_by_design(
                        data
                    ) != _dropped_by_design(case.data):
                        continue
                    probe = Case(case.index, "minimize", "", data)
                    _, code, ext, err = self.send_case(probe)
                    if code == 0 and not _is_get(self.template.type_name):
                        self._remove_links()
                    if err is None and (code, ext) == outcome:
                        model, best, changed = trial, data, True
                        break
        finally:
            self.record = record
        return best

    def _judge(
        self,
        case: Case,
        buffers: list[bytes],
        code: int | None,
        ext: str | None,
        send_error: str | None,
    ) -> Iterator[Finding]:
        st = self.state
        found: list[Finding] = []

        def add(kind: str, detail: str) -> None:
            found.append(
                Finding(case.index, kind, detail, case.mutator, case.description, case.data.hex())
            )

        outcome = (code, ext)

        taint = read_taint()
        if taint != st.taint:
            add("taint", f"/proc/sys/kernel/tainted {st.taint} -> {taint}")
            st.taint = taint
        if send_error is not None:
            add("send-error", send_error)
        elif code is None:
            self.timeouts += 1
            if not _dropped_by_design(case.data):
                add("timeout", f"no answer within {self.case_timeout:g} s")
        else:
            name = errname(code)
            if name not in st.errnos and case.index != 0:
                add("new-errno", f"{name} (-{code})" if code else "ACK")
            st.errnos[name] = st.errnos.get(name, 0) + 1
            if ext:
                if ext not in st.extacks and case.index != 0:
                    add("new-extack", f'{name}: "{ext}"')
                st.extacks[ext] = st.extacks.get(ext, 0) + 1
        bad = self._malformed(buffers)
        if bad:
            add("malformed-answer", "; ".join(bad[:3]))
        if found and code is not None and self.minimize:
            small = self._minimize(case, outcome)
            if small is not None:
                for f in found:
                    f.minimal_hex = small.hex()
        for f in found:
            st.findings.append(f.as_dict(self.template.protocol, self.seed, st.template))
        yield from found


def _attr_paths(attrs: list[Attr], prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Index paths of every attribute, outermost first."""
    out: list[tuple[int, ...]] = []
    out += [(*prefix, i) for i in range(len(attrs))]
    for i, a in enumerate(attrs):
        if a.children:
            out += _attr_paths(a.children, (*prefix, i))
    return out


def _delete_path(attrs: list[Attr], path: tuple[int, ...]) -> None:
    lst = attrs
    for i in path[:-1]:
        children = lst[i].children
        assert children is not None
        lst = children
    del lst[path[-1]]


def _is_get(type_name: str) -> bool:
    return "GET" in type_name.upper()


def _dropped_by_design(data: bytes) -> bool:
    """netlink_rcv_skb (net/netlink/af_netlink.c) drops, unanswered, a
    message whose nlmsg_len is below the header or beyond the buffer."""
    if len(data) < 16:
        return True
    length = struct.unpack_from("=I", data, 0)[0]
    return length < 16 or length > len(data)


__all__ = [
    "MUTATORS",
    "Attr",
    "Case",
    "Finding",
    "Fuzzer",
    "Msg",
    "RunState",
    "Template",
    "errname",
    "make_case",
    "read_taint",
]
