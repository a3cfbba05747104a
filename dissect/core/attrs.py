"""The attribute (TLV) engine.

Netlink attributes are ``struct nlattr { u16 nla_len; u16 nla_type; }``
followed by the payload, each padded to 4 bytes (NLA_ALIGN).  Two bits of
``nla_type`` are flags: NLA_F_NESTED (0x8000) and NLA_F_NET_BYTEORDER
(0x4000); the rest is the type (include/uapi/linux/netlink.h).

`walk_attrs` walks one level of attributes with a table compiled from the
schema (`CompiledAttrSet.by_type`: type number -> decoder).  Each decoder
turns one attribute into a `Node`, recursing into nests through the same
walk.  Nothing here raises on bad input: a short header, a length that runs
past the parent, a payload of the wrong size, non-zero padding or an unknown
type become nodes with notes (groups ``malformed`` and ``undecoded``) and
the walk goes on with the next sibling where the lengths allow it.

Decoders are small classes with one `decode` method; the compiler creates
them once per (spec, byte order, field path) so the hot loop does only a
dict lookup, one `struct` call and one `Node` per attribute.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from .display import Formatter, hexbytes
from .tree import CHAT, ERROR, MALFORMED, NOTE, PROTOCOL, UNDECODED, WARN, LazyNode, LeafRow, Node

NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000
NLA_TYPE_MASK = 0x3FFF
MAX_DEPTH = 24
LAZY_MIN = 8  # structs with more members than this build their member nodes on first access

_ZERO4 = b"\0\0\0\0"


class DecodeContext:
    """Per-byte-order state shared by a walk (the nlattr header format)."""

    __slots__ = ("hdr", "max_depth", "bo")

    def __init__(self, bo: str = "<", max_depth: int = MAX_DEPTH) -> None:
        self.bo = bo
        self.hdr = struct.Struct(bo + "HH")
        self.max_depth = max_depth


# ---------------------------------------------------------------------------
# Structs (fixed headers and struct payloads)


class StructMember:
    __slots__ = ("abbrev", "name", "offset", "size", "kind", "st", "fmt", "sub")

    def __init__(
        self,
        abbrev: str,
        name: str,
        offset: int,
        size: int,
        kind: str,
        st: struct.Struct | None,
        fmt: Formatter | None,
        sub: StructLayout | None = None,
    ) -> None:
        self.abbrev = abbrev
        self.name = name
        self.offset = offset
        self.size = size
        self.kind = kind  # "int", "bytes", "string", "pad", "struct"
        self.st = st
        self.fmt = fmt
        self.sub = sub


class Trailer(NamedTuple):
    """Bytes that follow a struct, counted by one of its members (times
    `scale`); shown as one node, or split into `element_len`-byte elements."""

    abbrev: str
    name: str
    length: str  # the member's field name
    scale: int
    element_len: int | None
    fmt: Formatter
    # a Python hook that splits the bytes (``hook:`` in the spec): ND options
    hook: Hook | None = None
    hook_name: str | None = None
    problem: str | None = None


class StructLayout:
    """A C struct: members at fixed offsets, decoded into child nodes."""

    __slots__ = (
        "name",
        "abbrev",
        "size",
        "members",
        "whole",
        "int_members",
        "title",
        "keys",
        "trailer",
        "unions",
        "open_unions",
        "flex",
    )

    def __init__(self, name: str, abbrev: str, members: list[StructMember]) -> None:
        self.name = name
        self.abbrev = abbrev
        self.members = members
        # a trailing flexible array member (``keys[]``): the bytes after
        # `size`, as elements of `flex.sub` or as bytes
        self.flex: StructMember | None = None
        self.title = f"struct {name}"
        # member names as the spec writes them, for selectors (ifi-family)
        self.keys = frozenset(m.name.replace("_", "-") for m in members)
        self.size = max((m.offset + m.size for m in members), default=0)
        # bytes after the struct, as many as a member says (struct
        # nduseroptmsg's ND options, the segments of struct ipv6_sr_hdr)
        self.trailer: Trailer | None = None
        # (member abbrev, selecting member abbrev, {selector value: (bytes
        # used, formatter)}): a C union shown by another member's value
        # (br_mdb_entry.addr by its proto)
        # The selecting members are tried in order, the first whose value
        # names a format decides; they and the union may sit in nested
        # structs (``sa-id.family``, ``id.daddr``): all are found among the
        # descendants.
        self.unions: list[tuple[str, tuple[str, ...], dict[int, tuple[int, Formatter]]]] = []
        # unions an enclosing struct may (also) decide, by the selector's
        # spec name: (member abbrev, name, selectors so far, formats)
        self.open_unions: list[
            tuple[str, str, tuple[str, ...], dict[int, tuple[int, Formatter]]]
        ] = []
        # Fast path: one unpack for a struct made only of same-order integers.
        self.whole: struct.Struct | None = None
        self.int_members: list[StructMember] = []
        ints = [m for m in members if m.kind == "int"]
        orders = {m.st.format[0] for m in ints if m.st is not None}
        if ints and len(orders) == 1 and all(m.kind in ("int", "pad") for m in members):
            bo = orders.pop()
            fmt = bo
            pos = 0
            for m in ints:
                if m.offset > pos:
                    fmt += f"{m.offset - pos}x"
                assert m.st is not None
                fmt += m.st.format[1:]
                pos = m.offset + m.size
            self.whole = struct.Struct(fmt)
            self.int_members = ints

    def decode_into(
        self, parent: Node, buf: bytes, off: int, avail: int, depth: int = 0, short_ok: bool = False
    ) -> None:
        """Add one child per member to `parent`; `avail` bytes are present.
        With `short_ok` (an extensible struct sent by an older kernel) the
        members that fit are decoded and the rest left out without notes."""
        children = parent.children
        if children is None:
            children = parent.children = []
        whole = self.whole
        if whole is not None and avail >= whole.size:
            children.extend(
                [
                    Node(m.abbrev, m.name, off + m.offset, m.size, buf, v, m.fmt)
                    for m, v in zip(self.int_members, whole.unpack_from(buf, off))
                ]
            )
        else:
            for m in self.members:
                if m.kind == "pad":
                    continue
                start = off + m.offset
                if m.offset + m.size > avail:
                    if m.offset < avail and not short_ok:
                        n = Node(
                            m.abbrev,
                            m.name,
                            start,
                            avail - m.offset,
                            buf,
                            bytes(buf[start : off + avail]),
                            hexbytes,
                        )
                        n.note(
                            WARN,
                            MALFORMED,
                            f"{self.name}.{m.name} cut short: {avail - m.offset} of {m.size} bytes",
                        )
                        children.append(n)
                    break
                if m.kind == "int":
                    assert m.st is not None
                    v = m.st.unpack_from(buf, start)[0]
                    children.append(Node(m.abbrev, m.name, start, m.size, buf, v, m.fmt))
                elif m.kind == "string":
                    raw = bytes(buf[start : start + m.size])
                    s = raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
                    children.append(Node(m.abbrev, m.name, start, m.size, buf, s, m.fmt))
                elif m.kind == "struct" and m.sub is not None:
                    n = Node(m.abbrev, m.name, start, m.size, buf)
                    if depth < MAX_DEPTH:
                        m.sub.decode_into(n, buf, start, m.size, depth + 1)
                    children.append(n)
                else:
                    children.append(
                        Node(
                            m.abbrev,
                            m.name,
                            start,
                            m.size,
                            buf,
                            bytes(buf[start : start + m.size]),
                            m.fmt or hexbytes,
                        )
                    )
        if self.unions:
            self._show_unions(children)
        if avail < self.size and not short_ok:
            parent.note(
                WARN, MALFORMED, f"struct {self.name} needs {self.size} bytes, only {avail} present"
            )
        elif self.flex is not None and avail > self.size:
            self._decode_flex(parent, buf, off + self.size, avail - self.size, depth)

    def _decode_flex(self, parent: Node, buf: bytes, start: int, n: int, depth: int) -> None:
        fm = self.flex
        assert fm is not None
        el = fm.sub
        if el is None or not el.size:
            parent.add(
                Node(fm.abbrev, fm.name, start, n, buf, bytes(buf[start : start + n]), fm.fmt)
            )
            return
        node = Node(fm.abbrev, fm.name, start, n, buf)
        count = n // el.size
        for i in range(count):
            e = Node(fm.abbrev, f"[{i}]", start + i * el.size, el.size, buf)
            if depth < MAX_DEPTH:
                el.decode_into(e, buf, start + i * el.size, el.size, depth + 1)
            node.add(e)
        node._display = f"{count} x struct {el.name}"
        if n % el.size:
            node.note(
                WARN,
                MALFORMED,
                f"{n % el.size} bytes left over after {count} elements of struct {el.name}",
            )
        parent.add(node)

    def _show_unions(self, children: list[Node]) -> None:
        by_abbrev: dict[str, Node] = {}
        todo = list(children)
        while todo:
            c = todo.pop()
            by_abbrev.setdefault(c.abbrev, c)
            if c.children:
                todo.extend(c.children)
        for member, selectors, formats in self.unions:
            node = by_abbrev.get(member)
            if node is None or not isinstance(node.value, bytes):
                continue
            for selector in selectors:
                sel = by_abbrev.get(selector)
                hit = formats.get(sel.value) if sel is not None else None
                if hit is not None:
                    used, fmt = hit
                    node.value = node.value[:used]
                    node.fmt = fmt
                    break
            # no selector names a format: the bytes stay hex


# ---------------------------------------------------------------------------
# Attribute sets and the walk


class CompiledAttrSet:
    """One attribute set compiled for one field path and byte order."""

    __slots__ = ("name", "spec_name", "prefix", "cprefix", "by_type", "selectors", "by_name")

    def __init__(self, name: str, spec_name: str, prefix: str, cprefix: str) -> None:
        self.name = name
        self.spec_name = spec_name
        self.prefix = prefix  # field abbreviation prefix, e.g. "rtnl.link"
        self.cprefix = cprefix  # constant prefix, e.g. "IFLA_"
        self.by_type: dict[int, AttrDecoder] = {}
        self.by_name: dict[str, AttrDecoder] = {}
        # spec names of attributes other attributes select sub-messages by
        self.selectors: frozenset[str] = frozenset()


def unknown_attr(
    cset: CompiledAttrSet | None,
    buf: bytes,
    off: int,
    nla_len: int,
    t: int,
    nla_type: int,
    ctx: DecodeContext,
    depth: int,
) -> Node:
    prefix = cset.prefix if cset is not None else "netlink.attr"
    node = Node(
        f"{prefix}.unknown",
        f"attribute type {t}",
        off,
        nla_len,
        buf,
        bytes(buf[off + 4 : off + nla_len]),
        hexbytes,
    )
    where = (
        f"set '{cset.name}' of {cset.spec_name} (a kernel newer than the spec, or not described yet)"
        if cset is not None and cset.spec_name
        else "this message"
    )
    if nla_type & NLA_F_NESTED and nla_len > 4:
        if depth >= ctx.max_depth:
            node.note(
                WARN, MALFORMED, f"nesting deeper than {ctx.max_depth} levels; not decoded further"
            )
        else:
            node.value = None
            node.fmt = None
            node._display = "(nested)"
            walk_attrs(ctx, buf, off + 4, off + nla_len, None, node, depth + 1)
            node.note(
                NOTE,
                UNDECODED,
                f"attribute {t} is not known in {where}; NLA_F_NESTED is set, so its payload is shown as attributes",
            )
            return node
    node.note(
        NOTE,
        UNDECODED,
        f"attribute {t} is not known in {where}; {nla_len - 4} payload bytes shown raw",
    )
    return node


def _short_tail(buf: bytes, off: int, end: int) -> Node:
    left = end - off
    raw = bytes(buf[off:end])
    n = Node("netlink.attr.trailer", "trailing bytes", off, left, buf, raw, hexbytes)
    if raw.strip(b"\0"):
        n.note(WARN, MALFORMED, f"{left} trailing bytes, too short for an attribute header")
    else:
        n.note(NOTE, MALFORMED, f"{left} zero bytes after the last attribute")
    return n


def _bad_length(buf: bytes, off: int, end: int, nla_len: int) -> Node:
    left = end - off
    n = Node("netlink.attr.bad", "bad attribute", off, left, buf, bytes(buf[off:end]), hexbytes)
    n.note(
        ERROR,
        MALFORMED,
        f"nla_len {nla_len} is less than the 4-byte header; {left} bytes not decoded",
    )
    return n


# What walk_attrs must do besides decoding (AttrDecoder.role).
ROLE_SELECTOR = 1  # other attributes of the set are selected by this one's value
ROLE_SUBMSG = 2  # decoded by a sibling's value


def walk_attrs(
    ctx: DecodeContext,
    buf: bytes,
    off: int,
    end: int,
    cset: CompiledAttrSet | None,
    parent: Node,
    depth: int,
    known: dict[str, Any] | None = None,
) -> None:
    """Decode attributes in ``buf[off:end]`` as children of `parent`.

    `known` holds selector values from outside the set: fixed-header
    members, and the selector values of the enclosing nests (TCA_STATS_APP
    inside TCA_STATS2 is selected by the message's TCA_KIND).  An attribute
    of this set always decides over an inherited value of the same name.  A
    sub-message whose selector comes after it is decoded again once the walk
    has seen the selector.
    """
    children = parent.children
    if children is None:
        children = parent.children = []
    append = children.append
    unpack = ctx.hdr.unpack_from
    table = cset.by_type if cset is not None else {}
    siblings: dict[str, Any] | None = None
    if cset is not None and cset.selectors:
        if known:
            own = cset.by_name
            siblings = {k: v for k, v in known.items() if k not in own}
        else:
            siblings = {}
    deferred: list[tuple[int, AttrDecoder, int, int, int]] | None = None
    while off < end:
        left = end - off
        if left < 4:
            append(_short_tail(buf, off, end))
            break
        nla_len, nla_type = unpack(buf, off)
        if nla_len < 4:
            append(_bad_length(buf, off, end, nla_len))
            break
        cut = nla_len - left if nla_len > left else 0
        if cut:
            nla_len = left
        dec = table.get(nla_type & NLA_TYPE_MASK)
        if dec is None:
            node = unknown_attr(
                cset, buf, off, nla_len, nla_type & NLA_TYPE_MASK, nla_type, ctx, depth
            )
        else:
            node = dec.decode(ctx, buf, off, nla_len, nla_type, depth, siblings)
            role = dec.role
            if role and siblings is not None:
                if role == ROLE_SELECTOR:
                    siblings[dec.spec_name] = dec.selector_key(node.value)
                elif dec.selectors[0] not in siblings:  # type: ignore[attr-defined]
                    if deferred is None:
                        deferred = []
                    deferred.append((len(children), dec, off, nla_len, nla_type))
        append(node)
        if cut:
            node.note(
                ERROR,
                MALFORMED,
                f"nla_len {nla_len + cut} runs {cut} bytes past the end of its parent",
            )
            break
        if nla_len & 3:
            nxt = off + ((nla_len + 3) & ~3)
            if nxt > end:
                break  # the last attribute may lack its padding
            if buf[off + nla_len : nxt] != _ZERO4[: nxt - off - nla_len]:
                node.note(NOTE, MALFORMED, "non-zero padding after the attribute")
            off = nxt
        else:
            off += nla_len
    if deferred:
        for i, dec, aoff, alen, atype in deferred:
            if siblings and not siblings.keys().isdisjoint(dec.selectors):  # type: ignore[attr-defined]
                children[i] = dec.decode(ctx, buf, aoff, alen, atype, depth, siblings)


# ---------------------------------------------------------------------------
# Decoders


class AttrDecoder:
    """Base: an attribute shown as raw bytes with a display formatter."""

    __slots__ = ("abbrev", "name", "spec_name", "fmt", "enum_names", "role")

    def __init__(
        self, abbrev: str, name: str, spec_name: str, fmt: Formatter | None = None
    ) -> None:
        self.abbrev = abbrev
        self.name = name
        self.spec_name = spec_name
        self.fmt = fmt
        self.enum_names: dict[int, str] | None = None
        self.role = 0  # ROLE_* bits, set by the compiler for this set

    def selector_key(self, value: Any) -> str:
        if self.enum_names is not None and isinstance(value, int):
            return self.enum_names.get(value, str(value))
        return str(value)

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        return Node(
            self.abbrev,
            self.name,
            off,
            nla_len,
            buf,
            bytes(buf[off + 4 : off + nla_len]),
            self.fmt or hexbytes,
        )


class BinaryAttr(AttrDecoder):
    """Bytes, optionally with length checks (exact lengths or a range)."""

    __slots__ = ("lengths", "min_len", "max_len")

    def __init__(
        self,
        abbrev: str,
        name: str,
        spec_name: str,
        fmt: Formatter | None,
        *,
        lengths: tuple[int, ...] | None = None,
        min_len: int | None = None,
        max_len: int | None = None,
    ) -> None:
        super().__init__(abbrev, name, spec_name, fmt or hexbytes)
        self.lengths = lengths
        self.min_len = min_len
        self.max_len = max_len

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        node = Node(
            self.abbrev, self.name, off, nla_len, buf, bytes(buf[off + 4 : off + nla_len]), self.fmt
        )
        plen = nla_len - 4
        if self.lengths is not None and plen not in self.lengths:
            want = " or ".join(str(n) for n in self.lengths)
            node.note(WARN, MALFORMED, f"{self.name} has {plen} bytes, expected {want}")
        elif self.min_len is not None and plen < self.min_len:
            node.note(
                WARN, MALFORMED, f"{self.name} has {plen} bytes, expected at least {self.min_len}"
            )
        elif self.max_len is not None and plen > self.max_len:
            node.note(
                WARN, MALFORMED, f"{self.name} has {plen} bytes, expected at most {self.max_len}"
            )
        return node


Hook = Callable[[Node, bytes, int, int], None]


class HookAttr(BinaryAttr):
    """Bytes handed to a family's Python hook (``hook:`` in the spec), which
    adds child nodes and notes: used where data cannot describe a payload,
    such as 802.11 frames inside nl80211.  A missing or failing hook leaves
    the bytes with a note; it never stops the decode."""

    __slots__ = ("hook", "hook_name", "problem")

    def __init__(
        self,
        abbrev: str,
        name: str,
        spec_name: str,
        fmt: Formatter | None,
        hook: Hook | None,
        hook_name: str,
        problem: str | None = None,
    ) -> None:
        super().__init__(abbrev, name, spec_name, fmt)
        self.hook = hook
        self.hook_name = hook_name
        self.problem = problem

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        node = super().decode(ctx, buf, off, nla_len, nla_type, depth, siblings)
        if self.hook is None:
            node.note(NOTE, UNDECODED, f"hook {self.hook_name} not available: {self.problem}")
            return node
        try:
            self.hook(node, buf, off + 4, off + nla_len)
        except Exception as exc:  # a plugin's bug must not stop the dissector
            node.children = None
            node.note(WARN, UNDECODED, f"hook {self.hook_name} failed: {type(exc).__name__}: {exc}")
        return node


class PadAttr(AttrDecoder):
    __slots__ = ()


class ScalarAttr(AttrDecoder):
    """u8..u64 / s8..s64 with a fixed size."""

    __slots__ = ("size", "st", "st_net")

    def __init__(
        self, abbrev: str, name: str, spec_name: str, fmt: Formatter | None, st: struct.Struct
    ) -> None:
        super().__init__(abbrev, name, spec_name, fmt)
        self.st = st
        self.size = st.size
        self.st_net = struct.Struct(">" + st.format[1:])

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        plen = nla_len - 4
        size = self.size
        st = self.st_net if nla_type & NLA_F_NET_BYTEORDER else self.st
        if plen == size:
            return Node(
                self.abbrev, self.name, off, nla_len, buf, st.unpack_from(buf, off + 4)[0], self.fmt
            )
        if plen > size:
            node = Node(
                self.abbrev, self.name, off, nla_len, buf, st.unpack_from(buf, off + 4)[0], self.fmt
            )
            node.note(
                WARN,
                MALFORMED,
                f"{self.name} is {plen} bytes, expected {size}; the first {size} were decoded",
            )
            return node
        node = Node(
            self.abbrev, self.name, off, nla_len, buf, bytes(buf[off + 4 : off + nla_len]), hexbytes
        )
        node.note(
            WARN, MALFORMED, f"{self.name} is {plen} bytes, too short for a {size * 8}-bit value"
        )
        return node


class VarIntAttr(AttrDecoder):
    """YNL uint/sint: 4 or 8 bytes on the wire (nla_put_uint)."""

    __slots__ = ("signed", "bo")

    def __init__(
        self, abbrev: str, name: str, spec_name: str, fmt: Formatter | None, signed: bool, bo: str
    ) -> None:
        super().__init__(abbrev, name, spec_name, fmt)
        self.signed = signed
        self.bo: Literal["big", "little"] = "big" if bo == ">" else "little"

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        plen = nla_len - 4
        raw = bytes(buf[off + 4 : off + nla_len])
        bo: Literal["big", "little"] = "big" if nla_type & NLA_F_NET_BYTEORDER else self.bo
        if plen in (1, 2, 4, 8):
            node = Node(
                self.abbrev,
                self.name,
                off,
                nla_len,
                buf,
                int.from_bytes(raw, bo, signed=self.signed),
                self.fmt,
            )
            if plen not in (4, 8):
                node.note(
                    NOTE,
                    MALFORMED,
                    f"{self.name} is {plen} bytes; variable-width integers are 4 or 8",
                )
            return node
        node = Node(self.abbrev, self.name, off, nla_len, buf, raw, hexbytes)
        node.note(
            WARN, MALFORMED, f"{self.name} is {plen} bytes; a variable-width integer is 4 or 8"
        )
        return node


class FlagAttr(AttrDecoder):
    __slots__ = ()

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        if nla_len == 4:
            node = Node(self.abbrev, self.name, off, nla_len, buf, True, None)
            node._display = "(set)"
            return node
        payload = bytes(buf[off + 4 : off + nla_len])
        value = int.from_bytes(payload, "little") if len(payload) <= 8 else payload
        node = Node(self.abbrev, self.name, off, nla_len, buf, value, None)
        node.note(
            NOTE,
            PROTOCOL,
            f"{self.name} is declared a flag (no payload) but carries {len(payload)} bytes"
            f" ({payload.hex()}); shown as their value, the spec is probably wrong",
        )
        return node


class StringAttr(AttrDecoder):
    __slots__ = ("max_len",)

    def __init__(
        self,
        abbrev: str,
        name: str,
        spec_name: str,
        fmt: Formatter | None = None,
        max_len: int | None = None,
    ) -> None:
        super().__init__(abbrev, name, spec_name, fmt)
        self.max_len = max_len

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        raw = bytes(buf[off + 4 : off + nla_len])
        nul = raw.find(b"\0")
        if nul < 0:
            node = Node(
                self.abbrev,
                self.name,
                off,
                nla_len,
                buf,
                raw.decode("utf-8", "backslashreplace"),
                self.fmt,
            )
            if raw:
                node.note(CHAT, PROTOCOL, "string is not NUL-terminated")
            return node
        node = Node(
            self.abbrev,
            self.name,
            off,
            nla_len,
            buf,
            raw[:nul].decode("utf-8", "backslashreplace"),
            self.fmt,
        )
        if nul != len(raw) - 1:
            extra = raw[nul + 1 :]
            if extra.strip(b"\0"):
                node.note(
                    WARN, MALFORMED, f"{len(extra)} bytes after the terminating NUL, not all zero"
                )
            else:
                node.note(NOTE, PROTOCOL, f"{len(extra)} extra NUL bytes after the string")
        return node


class StructAttr(AttrDecoder):
    """A binary attribute that holds a C struct (or an array of them).

    An `extensible` struct grows with kernel versions (struct tcp_info): a
    shorter payload is an older kernel's version and a longer one a newer
    kernel's, both noted for information only; never an array.  An `array`
    attribute is a run of structs, which may be empty
    (PACKET_DIAG_MCLIST).
    """

    __slots__ = ("layout", "extensible", "array")

    def __init__(
        self,
        abbrev: str,
        name: str,
        spec_name: str,
        layout: StructLayout,
        extensible: bool = False,
        array: bool = False,
    ) -> None:
        super().__init__(abbrev, name, spec_name, None)
        self.layout = layout
        self.extensible = extensible
        self.array = array  # always an array of structs, possibly empty

    def _decode_extensible(self, node: Node, buf: bytes, off: int, plen: int, depth: int) -> Node:
        lay = self.layout
        size = lay.size
        lay.decode_into(node, buf, off + 4, min(plen, size), depth + 1, short_ok=True)
        node._display = lay.title
        if plen < size:
            node.note(
                CHAT,
                PROTOCOL,
                f"{plen} of the {size} bytes of struct {lay.name} this spec knows "
                "(an older kernel's version of the struct)",
            )
        elif plen > size:
            tail = off + 4 + size
            rest = Node(
                f"{self.abbrev}.newer",
                "newer fields",
                tail,
                plen - size,
                buf,
                bytes(buf[tail : off + 4 + plen]),
                hexbytes,
            )
            rest.note(
                CHAT,
                PROTOCOL,
                f"{plen - size} bytes of fields newer than the {size}-byte struct {lay.name} this spec knows",
            )
            node.add(rest)
        return node

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        node = Node(self.abbrev, self.name, off, nla_len, buf)
        plen = nla_len - 4
        if self.extensible:
            return self._decode_extensible(node, buf, off, plen, depth)
        lay = self.layout
        size = lay.size
        if lay.trailer is not None and plen >= size:
            lay.decode_into(node, buf, off + 4, plen, depth + 1)
            node._display = lay.title
            after = decode_trailer(lay.trailer, node, buf, off + 4 + size, off + nla_len, node)
            if after < off + nla_len:
                node.note(
                    NOTE,
                    MALFORMED,
                    f"{off + nla_len - after} bytes after struct {lay.name} and its {lay.trailer.name} not decoded",
                )
            return node
        if lay.flex is not None:
            lay.decode_into(node, buf, off + 4, plen, depth + 1)
            node._display = lay.title
            return node
        if size and (plen > size or self.array) and plen % size == 0:
            node.children = []
            for i in range(plen // size):
                el = Node(self.abbrev, f"[{i}]", off + 4 + i * size, size, buf)
                lay.decode_into(el, buf, off + 4 + i * size, size, depth + 1)
                node.children.append(el)
            node._display = f"{plen // size} x struct {lay.name}"
            return node
        if plen == size and len(lay.members) > LAZY_MIN:
            lazy = LazyNode(
                self.abbrev,
                self.name,
                off,
                nla_len,
                buf,
                lambda n: lay.decode_into(n, buf, off + 4, plen, depth + 1),
            )
            lazy._display = lay.title
            return lazy
        lay.decode_into(node, buf, off + 4, plen, depth + 1)
        node._display = lay.title
        if plen > size:
            node.note(
                NOTE,
                MALFORMED,
                f"{plen - size} bytes after struct {lay.name} ({size} bytes) not decoded",
            )
        return node


class ArrayAttr(AttrDecoder):
    """A binary attribute holding an array of integers (``sub-type``)."""

    __slots__ = ("st", "elem_fmt", "index_names", "index_base", "labels")

    def __init__(
        self,
        abbrev: str,
        name: str,
        spec_name: str,
        st: struct.Struct,
        elem_fmt: Formatter | None,
        index_names: dict[int, str] | None,
        index_base: int = 0,
    ) -> None:
        super().__init__(abbrev, name, spec_name, None)
        self.st = st
        self.elem_fmt = elem_fmt
        self.index_names = index_names
        self.index_base = index_base
        self.labels: list[str] = []
        self._grow_labels(64)

    def _grow_labels(self, n: int) -> list[str]:
        """Element names by position: from `index_names`, else ``[i]``."""
        names = self.index_names or {}
        base = self.index_base
        self.labels = [names.get(i + base) or f"[{i + base}]" for i in range(max(n, 64))]
        return self.labels

    def _rows(self, buf: bytes, start: int, n: int) -> list[LeafRow]:
        labels = self.labels
        if len(labels) < n:
            labels = self._grow_labels(n)
        abbrev = self.abbrev
        fmt = self.elem_fmt
        size = self.st.size
        return [
            (abbrev, label, start + i * size, size, v, fmt)
            for i, ((v,), label) in enumerate(
                zip(self.st.iter_unpack(buf[start : start + n * size]), labels)
            )
        ]

    def _elements(self, node: Node, buf: bytes, start: int, n: int) -> None:
        node.children.extend(  # type: ignore[union-attr]
            [
                Node(ab, label, o, size, buf, v, fmt)
                for ab, label, o, size, v, fmt in self._rows(buf, start, n)
            ]
        )

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        size = self.st.size
        plen = nla_len - 4
        n = plen // size
        node = LazyNode(
            self.abbrev,
            self.name,
            off,
            nla_len,
            buf,
            lambda node: self._elements(node, buf, off + 4, n),
            lambda: self._rows(buf, off + 4, n),
        )
        node._display = f"{n} x {size * 8}-bit"
        if plen % size:
            node.note(
                WARN, MALFORMED, f"{plen % size} bytes left over after {n} elements of {size} bytes"
            )
        return node


class NestAttr(AttrDecoder):
    """A nested attribute set, compiled on first use (sets may recurse)."""

    __slots__ = ("_target", "_resolve", "header")

    def __init__(
        self,
        abbrev: str,
        name: str,
        spec_name: str,
        resolve: Callable[[], CompiledAttrSet | None],
        header: StructLayout | None = None,
    ) -> None:
        super().__init__(abbrev, name, spec_name, None)
        self._target: CompiledAttrSet | None = None
        self._resolve: Callable[[], CompiledAttrSet | None] | None = resolve
        self.header = header

    @property
    def target(self) -> CompiledAttrSet | None:
        if self._resolve is not None:
            self._target = self._resolve()
            self._resolve = None
        return self._target

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        node = Node(self.abbrev, self.name, off, nla_len, buf)
        if depth >= ctx.max_depth:
            node.value = bytes(buf[off + 4 : off + nla_len])
            node.fmt = hexbytes
            node.note(
                WARN, MALFORMED, f"nesting deeper than {ctx.max_depth} levels; not decoded further"
            )
            return node
        node._display = ""
        if self.header is None:
            walk_attrs(ctx, buf, off + 4, off + nla_len, self.target, node, depth + 1, siblings)
        else:
            decode_struct_and_attrs(
                ctx,
                buf,
                off + 4,
                off + nla_len,
                self.header,
                self.target,
                node,
                depth + 1,
                siblings,
            )
        return node


def decode_struct_and_attrs(
    ctx: DecodeContext,
    buf: bytes,
    start: int,
    end: int,
    header: StructLayout | None,
    cset: CompiledAttrSet | None,
    parent: Node,
    depth: int,
    inherited: dict[str, Any] | None = None,
) -> None:
    """A fixed header (C struct, padded to 4 bytes) followed by attributes.

    Header members are offered to the attribute walk as selector values, so
    a sub-message can be chosen by a header field (IFLA_AF_SPEC by
    ifi_family); `inherited` are the enclosing levels' selector values.
    """
    known: dict[str, Any] | None = inherited
    if header is not None:
        size = header.size
        hn = Node(
            header.abbrev, header.title, start, size if end - start >= size else end - start, buf
        )
        header.decode_into(hn, buf, start, end - start, depth)
        parent.add(hn)
        if cset is not None and cset.selectors and not header.keys.isdisjoint(cset.selectors):
            known = dict(inherited) if inherited else {}
            for m in hn.children or ():
                key = m.name.replace("_", "-")
                if key in cset.selectors:
                    short = getattr(m.fmt, "short", None)
                    known[key] = short(m.value) if short is not None else str(m.value)
        start += min((header.size + 3) & ~3, end - start)
        if header.trailer is not None:
            start = decode_trailer(header.trailer, hn, buf, start, end, parent)
    if cset is not None:
        walk_attrs(ctx, buf, start, end, cset, parent, depth, known)
    elif start < end:
        rest = Node(
            f"{parent.abbrev}.data",
            "data",
            start,
            end - start,
            buf,
            bytes(buf[start:end]),
            hexbytes,
        )
        rest.note(
            NOTE,
            UNDECODED,
            f"{end - start} bytes after the fixed header not described by the schema",
        )
        parent.add(rest)


def decode_trailer(
    trailer: Trailer, hn: Node, buf: bytes, start: int, end: int, parent: Node
) -> int:
    """The bytes a member of the struct in `hn` counts, from `start`; adds
    their node to `parent` and returns where they end (padded to 4 bytes)."""
    count = next((m.value for m in hn.children or () if m.name == trailer.length), None)
    if not isinstance(count, int) or count <= 0:
        return start
    count *= trailer.scale
    avail = end - start
    have = min(count, avail)
    node = Node(
        trailer.abbrev, trailer.name, start, have, buf, bytes(buf[start : start + have]), hexbytes
    )
    if count > avail:
        node.note(
            ERROR,
            MALFORMED,
            f"{trailer.length} says {count} bytes but only {avail} follow the struct",
        )
    step = trailer.element_len
    if trailer.hook_name is not None:
        if trailer.hook is None:
            node.note(NOTE, UNDECODED, f"hook {trailer.hook_name} not available: {trailer.problem}")
        else:
            try:
                trailer.hook(node, buf, start, start + have)
            except Exception as exc:  # a plugin's bug must not stop the dissector
                node.children = None
                node.note(NOTE, UNDECODED, f"hook {trailer.hook_name} failed: {exc!r}")
    elif step:
        node.children = []
        n = have // step
        for i in range(n):
            p = start + i * step
            node.children.append(
                Node(trailer.abbrev, f"[{i}]", p, step, buf, bytes(buf[p : p + step]), trailer.fmt)
            )
        node._display = f"{n} x {step} bytes"
        if have % step:
            rest = Node(
                f"{trailer.abbrev}.rest",
                "rest",
                start + n * step,
                have % step,
                buf,
                bytes(buf[start + n * step : start + have]),
                hexbytes,
            )
            rest.note(NOTE, UNDECODED, f"{have % step} bytes after the {trailer.name} not decoded")
            node.children.append(rest)
    else:
        node.fmt = trailer.fmt
    parent.add(node)
    return start + min((count + 3) & ~3, avail)


class _AnyKey(dict):  # type: ignore[type-arg]
    """A lookup table that answers every key with one decoder."""

    def __init__(self, dec: AttrDecoder) -> None:
        super().__init__()
        self.dec = dec

    def get(self, key: Any, default: Any = None) -> Any:
        return self.dec


def _index_set(name: str, abbrev: str, element: AttrDecoder) -> CompiledAttrSet:
    cset = CompiledAttrSet(name, "", abbrev, "")
    cset.by_type = _AnyKey(element)
    return cset


class _IndexedElement(AttrDecoder):
    """One element of an indexed array: named by its index, decoded by `inner`."""

    __slots__ = ("inner",)

    def __init__(self, inner: AttrDecoder) -> None:
        super().__init__(inner.abbrev, inner.name, inner.spec_name, inner.fmt)
        self.inner = inner

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        node = self.inner.decode(ctx, buf, off, nla_len, nla_type, depth, siblings)
        node.name = f"[{nla_type & NLA_TYPE_MASK}]"
        return node


class IndexedArrayAttr(AttrDecoder):
    """Attributes whose types are array indexes; each holds `element`."""

    __slots__ = ("items",)

    def __init__(self, abbrev: str, name: str, spec_name: str, element: AttrDecoder) -> None:
        super().__init__(abbrev, name, spec_name, None)
        self.items = _index_set(name, abbrev, _IndexedElement(element))

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        node = Node(self.abbrev, self.name, off, nla_len, buf)
        node._display = ""
        if depth >= ctx.max_depth:
            node.note(
                WARN, MALFORMED, f"nesting deeper than {ctx.max_depth} levels; not decoded further"
            )
            return node
        walk_attrs(ctx, buf, off + 4, off + nla_len, self.items, node, depth + 1)
        kids = node.children
        if kids and len(kids) > 1 and all(k.name == "[0]" for k in kids):
            # Some families give every element type 0 (WireGuard's peers and
            # allowed IPs): then the position is what tells them apart.
            for i, k in enumerate(kids):
                k.name = f"[{i}]"
        return node


class _TypeValueLevel(AttrDecoder):
    """One level of a nest-type-value: the attribute type is a key."""

    __slots__ = ("label", "below")

    def __init__(
        self, abbrev: str, label: str, below: Callable[[], CompiledAttrSet | None]
    ) -> None:
        super().__init__(abbrev, label, label, None)
        self.label = label
        self.below = below

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        t = nla_type & NLA_TYPE_MASK
        node = Node(self.abbrev, f"{self.label} {t}", off, nla_len, buf, t, None)
        if depth >= ctx.max_depth:
            node.note(
                WARN, MALFORMED, f"nesting deeper than {ctx.max_depth} levels; not decoded further"
            )
            return node
        walk_attrs(ctx, buf, off + 4, off + nla_len, self.below(), node, depth + 1)
        return node


class NestTypeValueAttr(AttrDecoder):
    """YNL nest-type-value: levels of key attributes around a set."""

    __slots__ = ("top",)

    def __init__(
        self, abbrev: str, name: str, spec_name: str, levels: list[str], inner: NestAttr
    ) -> None:
        super().__init__(abbrev, name, spec_name, None)
        below: Callable[[], CompiledAttrSet | None] = lambda: inner.target  # noqa: E731
        for label in reversed(levels):
            lvl = _TypeValueLevel(f"{abbrev}.{label.replace('-', '_')}", label, below)
            cset = _index_set(name, abbrev, lvl)
            below = (lambda c: lambda: c)(cset)
        self.top = below

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        node = Node(self.abbrev, self.name, off, nla_len, buf)
        node._display = ""
        if depth >= ctx.max_depth:
            node.note(
                WARN, MALFORMED, f"nesting deeper than {ctx.max_depth} levels; not decoded further"
            )
            return node
        walk_attrs(ctx, buf, off + 4, off + nla_len, self.top(), node, depth + 1)
        return node


class SubMessageAttr(AttrDecoder):
    """Payload whose layout is chosen by a sibling (IFLA_INFO_DATA by IFLA_INFO_KIND)."""

    __slots__ = ("selectors", "formats", "resolve")

    def __init__(
        self,
        abbrev: str,
        name: str,
        spec_name: str,
        selectors: tuple[str, ...],
        formats: set[str],
        resolve: Callable[[str], tuple[StructLayout | None, CompiledAttrSet | None]],
    ) -> None:
        super().__init__(abbrev, name, spec_name, None)
        # sibling names, in order of preference: the first one present selects
        self.selectors = selectors
        self.formats = formats
        self.resolve = resolve

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        node = Node(self.abbrev, self.name, off, nla_len, buf)
        key = None
        selector = self.selectors[0]
        if siblings is not None:
            for selector in self.selectors:
                key = siblings.get(selector)
                if key is not None:
                    break
        if key is None:
            node.value = bytes(buf[off + 4 : off + nla_len])
            node.fmt = hexbytes
            names = " or ".join(f"'{s}'" for s in self.selectors)
            node.note(
                NOTE,
                UNDECODED,
                f"{self.name} not decoded: its selector {names} is not in the message",
            )
            return node
        if key not in self.formats and "*" in self.formats:
            key = "*"
        if key not in self.formats:
            node.value = bytes(buf[off + 4 : off + nla_len])
            node.fmt = hexbytes
            node.note(
                NOTE,
                UNDECODED,
                f"{self.name} for '{selector}' = {key!r} is not known to the schema; {nla_len - 4} bytes shown raw",
            )
            return node
        header, cset = self.resolve(key)
        node._display = f"({key})"
        if depth >= ctx.max_depth:
            node.note(
                WARN, MALFORMED, f"nesting deeper than {ctx.max_depth} levels; not decoded further"
            )
            return node
        decode_struct_and_attrs(
            ctx, buf, off + 4, off + nla_len, header, cset, node, depth + 1, siblings
        )
        return node


class RecordsAttr(AttrDecoder):
    """A run of records, each a struct whose first field is the record's
    length, followed by attributes (RTA_MULTIPATH: struct rtnexthop + RTA_*)."""

    __slots__ = ("layout", "len_st", "len_off", "resolve")

    def __init__(
        self,
        abbrev: str,
        name: str,
        spec_name: str,
        layout: StructLayout,
        len_st: struct.Struct,
        len_off: int,
        resolve: Callable[[], CompiledAttrSet | None],
    ) -> None:
        super().__init__(abbrev, name, spec_name, None)
        self.layout = layout
        self.len_st = len_st
        self.len_off = len_off
        self.resolve = resolve

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        node = Node(self.abbrev, self.name, off, nla_len, buf)
        end = off + nla_len
        p = off + 4
        lay = self.layout
        need = max(lay.size, self.len_off + self.len_st.size)
        cset = self.resolve()
        i = 0
        while p < end:
            if end - p < need:
                rest = Node(
                    f"{self.abbrev}.trailer",
                    "trailing bytes",
                    p,
                    end - p,
                    buf,
                    bytes(buf[p:end]),
                    hexbytes,
                )
                rest.note(
                    WARN,
                    MALFORMED,
                    f"{end - p} bytes left, too short for a {lay.name} of {lay.size} bytes",
                )
                node.add(rest)
                break
            rlen = self.len_st.unpack_from(buf, p + self.len_off)[0]
            rec_end = p + rlen
            el = Node(self.abbrev, f"[{i}]", p, min(rlen, end - p), buf)
            node.add(el)
            if rlen < lay.size:
                el.length = min(lay.size, end - p)
                lay.decode_into(el, buf, p, el.length, depth + 1)
                el.note(ERROR, MALFORMED, f"record length {rlen} is shorter than struct {lay.name}")
                break
            if rec_end > end:
                el.note(
                    ERROR,
                    MALFORMED,
                    f"record length {rlen} runs {rec_end - end} bytes past the attribute",
                )
                rec_end = end
            if depth >= ctx.max_depth:
                el.note(
                    WARN,
                    MALFORMED,
                    f"nesting deeper than {ctx.max_depth} levels; not decoded further",
                )
                break
            decode_struct_and_attrs(ctx, buf, p, rec_end, lay, cset, el, depth + 1)
            i += 1
            p += (rlen + 3) & ~3
        node._display = f"{i} records"
        return node


class Bitfield32Attr(AttrDecoder):
    """struct nla_bitfield32 { u32 value; u32 selector; }."""

    __slots__ = ("st", "bits_fmt")

    def __init__(
        self, abbrev: str, name: str, spec_name: str, bo: str, bits_fmt: Formatter | None
    ) -> None:
        super().__init__(abbrev, name, spec_name, None)
        self.st = struct.Struct(bo + "II")
        self.bits_fmt = bits_fmt

    def decode(
        self,
        ctx: DecodeContext,
        buf: bytes,
        off: int,
        nla_len: int,
        nla_type: int,
        depth: int,
        siblings: dict[str, Any] | None,
    ) -> Node:
        if nla_len - 4 != 8:
            node = Node(
                self.abbrev,
                self.name,
                off,
                nla_len,
                buf,
                bytes(buf[off + 4 : off + nla_len]),
                hexbytes,
            )
            node.note(WARN, MALFORMED, f"{self.name} is {nla_len - 4} bytes, a bitfield32 is 8")
            return node
        value, selector = self.st.unpack_from(buf, off + 4)
        node = Node(self.abbrev, self.name, off, nla_len, buf)
        fmt = self.bits_fmt
        node.children = [
            Node(self.abbrev + ".value", "value", off + 4, 4, buf, value, fmt),
            Node(self.abbrev + ".selector", "selector", off + 8, 4, buf, selector, fmt),
        ]
        node._display = f"value 0x{value:x} selector 0x{selector:x}"
        return node
