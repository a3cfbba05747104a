"""Hypothesis strategies for netlink messages of every family we know.

Strategies are derived from the same compiled schema as the dissector and
the Scapy layers (`dissect.scapy`), so a new spec in ``plugins/`` gets
strategies with no code:

    from hypothesis import given
    from dissect import strategies as nst

    @given(nst.messages(family="rt-link"))
    def test_my_parser(msg):          # a dissect.scapy.Netlink layer
        my_parser(bytes(msg))

`message_types()` lists every (family, operation, direction) the registry
defines; `messages()` draws well-formed messages (every attribute valid for
its type, lengths and padding computed, sub-messages consistent with their
selector); `malformed_messages()` draws a well-formed message and breaks it
the ways a fuzzer would: a wrong ``nla_len`` or ``nlmsg_len``, bad padding,
a truncated or oversized attribute, an unknown attribute type.

Generic netlink messages need a family id: strategies build them through a
`NetlinkContext` that names every generic netlink family with a made-up id
(`GENL_TEST_IDS`), which the caller passes on to the dissector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from .core import attrs as A

GENL_BASE_ID = 0x100


@dataclass(frozen=True)
class MessageType:
    """One message type: family, operation and direction."""

    family: str
    op: str
    role: str  # "request", "reply" or "event"
    protocol: int
    number: int  # nlmsg_type (netlink-raw) or genl command

    def __str__(self) -> str:
        return f"{self.family}:{self.op}:{self.role}"


def _registry(registry: Any = None) -> Any:
    if registry is not None:
        return registry
    from .api import default_registry

    return default_registry()


def message_types(registry: Any = None) -> list[MessageType]:
    """Every message type of every family in the registry: operations
    (a body a header member selects draws one of its formats; a body a
    Python hook decodes, its hook module's declared layout), and the forms
    of frames a ``frame-hook`` decodes (uevents: op ``kernel``/``udev``).
    Hooks that declare no layout (a user's plugin) are left out.

    A number that two operations claim in the same direction (rt-neigh's
    delneigh request and a notification declared with the same number)
    reads as the first one on the wire, as in the registry; the later ones
    are left out, since no dissector can tell them apart."""
    from .scapy.hookbodies import form_class
    from .scapy.layers import owned_number
    from .schema.bodies import declared
    from .schema.compile import load_hook

    reg = _registry(registry)
    out = []
    seen: set[tuple[Any, ...]] = set()
    for spec in reg.specs:
        if spec.protocol == "netlink-core":
            continue
        proto = 16 if spec.is_genl else int(spec.protonum or 0)
        if spec.frame_hook and registry is None:
            frame = form_class(proto)
            for key in frame._nl_forms if frame is not None else ():
                out.append(MessageType(spec.name, str(key), "event", proto, 0))
        for op in spec.operations:
            if op.hook and declared(load_hook(spec.source, op.hook)[0]) is None:
                continue
            for role, values in (
                ("request", op.requests),
                ("reply", op.replies),
                ("event", op.events),
            ):
                if not values:
                    continue
                number = owned_number(spec, op, role)
                if number is None:
                    continue
                key = (proto, spec.name if spec.is_genl else None, role, number)
                if key in seen:
                    continue
                seen.add(key)
                out.append(MessageType(spec.name, op.name, role, proto, number))
    return out


def genl_test_ids(registry: Any = None) -> dict[str, int]:
    """A made-up id for every generic netlink family (fixed ids kept)."""
    reg = _registry(registry)
    ids: dict[str, int] = {}
    nxt = GENL_BASE_ID
    for spec in sorted((s for s in reg.specs if s.is_genl), key=lambda s: s.name):
        if spec.fixed_id is not None:
            ids[spec.name] = int(spec.fixed_id)
        else:
            ids[spec.name] = nxt
            nxt += 1
    return ids


# ---------------------------------------------------------------------------
# Values


_INT_RANGES = {
    "B": (0, 0xFF),
    "H": (0, 0xFFFF),
    "I": (0, 0xFFFFFFFF),
    "Q": (0, 0xFFFFFFFFFFFFFFFF),
    "b": (-0x80, 0x7F),
    "h": (-0x8000, 0x7FFF),
    "i": (-0x80000000, 0x7FFFFFFF),
    "q": (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF),
}
_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    max_size=12,
)


def _int(fmt: str) -> st.SearchStrategy[int]:
    lo, hi = _INT_RANGES[fmt[-1]]
    return st.integers(lo, hi)


def struct_values(layout: A.StructLayout, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Values for a struct's members (pad members stay zero)."""
    from .scapy.layers import pyname

    parts: dict[str, st.SearchStrategy[Any]] = {}
    # A member that counts trailing bytes (nduseropt_opts_len) stays 0: the
    # layers build the struct alone, so a count would promise missing bytes.
    counter = layout.trailer.length if layout.trailer is not None else None
    for m in layout.members:
        if m.name == counter:
            parts[pyname(m.name)] = st.just(0)
        elif m.kind == "int" and m.st is not None:
            parts[pyname(m.name)] = _int(m.st.format)
        elif m.kind == "string":
            parts[pyname(m.name)] = st.text(
                alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                max_size=max(0, m.size - 1),
            ).map(str.encode)
        elif m.kind == "bytes":
            parts[pyname(m.name)] = st.binary(min_size=m.size, max_size=m.size)
        elif m.kind == "struct" and m.sub is not None and depth < 3:
            parts[pyname(m.name)] = struct_values(m.sub, depth + 1)
    return st.fixed_dictionaries(parts)


def _binary(dec: Any) -> st.SearchStrategy[bytes]:
    lengths = getattr(dec, "lengths", None)
    if lengths:
        return st.sampled_from(sorted(lengths)).flatmap(lambda n: st.binary(min_size=n, max_size=n))
    lo = getattr(dec, "min_len", None) or 0
    hi = getattr(dec, "max_len", None)
    hi = max(lo, min(hi, lo + 24)) if hi is not None else lo + 24
    return st.binary(min_size=lo, max_size=hi)


def attr_value(
    dec: Any, depth: int, known: dict[str, str] | None = None
) -> st.SearchStrategy[Any] | None:
    """A valid value for one attribute decoder, or None when the type is
    not generated (hooks, records, nest-type-value, pad)."""
    if isinstance(dec, A.ScalarAttr):
        return _int(dec.st.format)
    if isinstance(dec, A.VarIntAttr):
        return _int("q" if dec.signed else "Q")
    if isinstance(dec, A.FlagAttr):
        return st.just(True)
    if isinstance(dec, A.StringAttr):
        return _TEXT
    if isinstance(dec, A.StructAttr):
        return struct_values(dec.layout)
    if isinstance(dec, A.ArrayAttr):
        return st.lists(_int(dec.st.format), max_size=4)
    if isinstance(dec, A.Bitfield32Attr):
        return st.tuples(_int("I"), _int("I"))
    if isinstance(dec, A.NestAttr):
        if depth >= 3:
            return None
        target = dec.target
        attrs = set_values(target, depth + 1, known) if target is not None else st.just([])
        if dec.header is not None:
            return st.fixed_dictionaries({"header": struct_values(dec.header), "attrs": attrs})
        return attrs
    if isinstance(dec, A.IndexedArrayAttr):
        from .scapy.layers import indexed_element

        inner = indexed_element(dec)
        if depth >= 3:
            return None
        elem = attr_value(inner, depth + 1)
        return st.lists(elem, max_size=3) if elem is not None else None
    if isinstance(dec, A.RecordsAttr):
        return _records(dec, depth)
    if isinstance(dec, (A.HookAttr, A.NestTypeValueAttr, A.PadAttr, A.SubMessageAttr)):
        return None
    if isinstance(dec, A.BinaryAttr):
        return _binary(dec)
    return None


def _records(dec: A.RecordsAttr, depth: int) -> st.SearchStrategy[Any] | None:
    """Records (RTA_MULTIPATH): the struct without its length member (the
    layer computes it) and attributes."""
    from .scapy.layers import pyname

    if depth >= 3:
        return None
    length = next((pyname(m.name) for m in dec.layout.members if m.offset == dec.len_off), None)
    target = dec.resolve()
    record = st.fixed_dictionaries(
        {
            "header": struct_values(dec.layout).map(
                lambda d: {k: v for k, v in d.items() if k != length}
            ),
            "attrs": set_values(target, depth + 1) if target is not None else st.just([]),
        }
    )
    return st.lists(record, max_size=3)


def _selector_value(sel: Any, key: str) -> Any:
    """The value of selector attribute `sel` that selects format `key`."""
    if isinstance(sel, A.StringAttr):
        return key
    names = sel.enum_names or {}
    for num, name in names.items():
        if name == key:
            return num
    try:
        return int(key, 0)
    except ValueError:
        return None


@st.composite
def _set_values(
    draw: Any, cset: Any, depth: int, known: dict[str, str] | None
) -> list[tuple[str, Any]]:
    decs = sorted(cset.by_type.items())
    chosen = (
        draw(st.lists(st.sampled_from(decs), max_size=6, unique_by=lambda x: x[0])) if decs else []
    )
    # selector values from outside this set (a fixed header's members, the
    # enclosing levels'); an attribute of this set decides over them
    outer = {k: v for k, v in (known or {}).items() if k not in cset.by_name}
    forced: dict[str, Any] = {}  # selector attribute -> its value
    keys = dict(outer)  # selector -> format key, for this set and below
    subs: list[tuple[Any, str]] = []
    for _, dec in chosen:  # first the sub-messages: they fix their selectors
        if not isinstance(dec, A.SubMessageAttr) or depth >= 3:
            continue
        selector = dec.selectors[0]
        sel = cset.by_name.get(selector)
        if sel is not None:
            if selector in forced:
                key = keys[selector]
            else:
                options = sorted(k for k in dec.formats if k != "*")
                if not options:
                    continue
                key = draw(st.sampled_from(options))
                sval = _selector_value(sel, key)
                if sval is None:
                    continue
                forced[selector] = sval
                keys[selector] = key
        elif selector in outer:
            key = outer[selector]
        else:
            continue
        if key not in dec.formats:
            if "*" not in dec.formats:
                continue
            key = "*"
        subs.append((dec, key))
    out: list[tuple[str, Any]] = [(name, sval) for name, sval in forced.items()]
    for dec, key in subs:
        header, target = dec.resolve(key)
        attrs = draw(set_values(target, depth + 1, keys)) if target is not None else []
        value: Any = attrs
        if header is not None:
            value = {"header": draw(struct_values(header)), "attrs": attrs}
        out.append((dec.spec_name, value))
    for _, dec in chosen:
        if isinstance(dec, A.SubMessageAttr) or dec.spec_name in forced:
            continue
        if dec.spec_name in cset.selectors and any(
            isinstance(d, A.SubMessageAttr) and dec.spec_name in d.selectors
            for d in cset.by_type.values()
        ):
            continue  # it would select a format no sub-message here follows
        # as the dissector's walk: a set without selectors hands none down
        strat = attr_value(dec, depth, keys if cset.selectors else None)
        if strat is None:
            continue
        out.append((dec.spec_name, draw(strat)))
    return out


def set_values(
    cset: Any, depth: int = 0, known: dict[str, str] | None = None
) -> st.SearchStrategy[list[tuple[str, Any]]]:
    """``(name, value)`` pairs for some attributes of a set; `known` are
    selector values (format keys) from outside it."""
    return _set_values(cset, depth, known)


# ---------------------------------------------------------------------------
# Bodies a Python hook decodes (declared layouts, dissect.schema.bodies)

_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8)
_VALUE = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\"'="),
    min_size=1,
    max_size=12,
)
_PROP_KEY = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=10).filter(
    lambda k: k not in ("ACTION", "DEVPATH")  # they would contradict a kernel header
)
_DEVPATH = st.lists(_WORD, min_size=1, max_size=3).map(lambda p: "/devices/" + "/".join(p))
_ACTIONS = ("add", "remove", "change", "move", "online", "offline", "bind", "unbind")


def _text(item: Any) -> st.SearchStrategy[bytes]:
    from .scapy.hookbodies import audit_text

    if item.style == "audit":
        stamp = st.none() | st.tuples(
            st.integers(0, 2**32), st.integers(0, 999), st.integers(0, 2**32)
        )
        pairs = st.lists(st.tuples(_WORD, _VALUE | _TEXT), min_size=1, max_size=5)
        return st.builds(lambda p, s: audit_text(p, s), pairs, stamp)
    if (item.label or item.name) == "ACTION@DEVPATH":
        return st.builds(lambda a, d: f"{a}@{d}".encode(), st.sampled_from(_ACTIONS), _DEVPATH)
    return _TEXT.map(str.encode)


def _layout_int(item: Any) -> st.SearchStrategy[int]:
    if item.choices:
        return st.sampled_from(sorted(item.choices))
    if item.limit is not None:
        return st.integers(0, item.limit)
    return _int(item.code)


@st.composite
def _layout_values(draw: Any, layout: Any, bo: str, to_kernel: bool, depth: int) -> dict[str, Any]:
    from .scapy.hookbodies import part_class
    from .schema import bodies as B

    out: dict[str, Any] = {}
    for item in layout.items:
        if isinstance(item, B.Int):
            if item.length_of or item.offset_of:
                continue  # computed
            if item.count > 1:
                out[item.name] = draw(st.lists(_layout_int(item), max_size=min(item.count, 4)))
            else:
                out[item.name] = draw(_layout_int(item))
        elif isinstance(item, B.Chars):
            out[item.name] = draw(_TEXT).encode()[: item.size - 1]
        elif isinstance(item, B.Text):
            out[item.name] = draw(_text(item))
        elif isinstance(item, B.Properties):
            out[item.name] = draw(st.lists(st.tuples(_PROP_KEY, _TEXT), max_size=5))
        elif isinstance(item, B.Strings):
            n = next(
                (i.count for i in layout.items if isinstance(i, B.Int) and i.name == item.lengths),
                1,
            )
            out[item.name] = draw(st.lists(_TEXT.map(str.encode), min_size=n, max_size=n))
        elif isinstance(item, B.Rest) and item.pad:
            out[item.name] = bytes(draw(st.integers(0, item.pad)))
        elif isinstance(item, B.Rest):
            out[item.name] = draw(st.binary(max_size=16))
        elif isinstance(item, B.Choice):
            implied = {**out}
            key = item.select(implied, to_kernel, b"")
            case = item.cases.get(key) if key is not None else None
            if case is None or depth >= 3:
                out[item.name] = draw(st.binary(max_size=16))
                continue
            cls = part_class(case, key, bo, to_kernel)
            out[item.name] = cls(**draw(_layout_values(case, bo, to_kernel, depth + 1)))
    return out


def layout_values(layout: Any, bo: str, to_kernel: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword values for a layer of a declared hook layout: well-formed
    (lengths and offsets left to the layer, a selected part consistent
    with what selects it)."""
    return _layout_values(layout, bo, to_kernel, 0)


# ---------------------------------------------------------------------------
# Messages


@st.composite
def _message(draw: Any, mtype: MessageType, bo: str, registry: Any) -> Any:
    from .scapy.hookbodies import NlHookBody, form_class
    from .scapy.layers import (
        _ROLE_VALUES,
        HOST_BO,
        Netlink,
        NetlinkContext,
        NlSelectedBody,
        body_class,
        netlink_class,
    )

    reg = _registry(registry)
    spec = next(s for s in reg.specs if s.name == mtype.family and s.protocol != "netlink-core")
    if spec.frame_hook:  # a datagram without nlmsghdr (a uevent), in one form
        frame = form_class(mtype.protocol, mtype.op, bo or HOST_BO)
        assert frame is not None
        return frame(**draw(layout_values(frame._nl_hook, frame._nl_bo, False)))
    op = next(
        o for o in spec.operations if o.name == mtype.op and getattr(o, _ROLE_VALUES[mtype.role])
    )
    cls = body_class(spec, op, mtype.role, bo or HOST_BO)
    if isinstance(cls, type) and issubclass(cls, NlSelectedBody):
        # a format the selector member names (SOCK_DIAG_BY_FAMILY: inet, unix...)
        cls = cls.kind(draw(st.sampled_from([k for k in cls.format_keys() if k != "*"])))
    kw: dict[str, Any] = {}
    layout_fields = [
        f for f in cls._nl_header_fields if f.name not in ("cmd", "version", "reserved")
    ]
    header = cls._nl_layout
    if isinstance(cls, type) and issubclass(cls, NlHookBody):
        kw.update(draw(layout_values(cls._nl_hook, cls._nl_bo, cls._nl_to_kernel)))
    elif header is not None and layout_fields:
        kw.update(draw(struct_values(header)))
        if cls._nl_selector_field is not None:  # the value naming the format
            sel = next(f for f in cls.fields_desc if f.name == cls._nl_selector_field)
            kw[sel.name] = sel.default
    cset = cls._nl_cset
    if cset is not None and cset.selectors:
        # a header member that selects sub-messages (ifi-family for
        # IFLA_AF_SPEC) mostly takes a value some format is named after
        wanted = {
            k for d in cset.by_type.values() if isinstance(d, A.SubMessageAttr) for k in d.formats
        }
        for f in layout_fields:
            if f.name.replace("_", "-") not in cset.selectors:
                continue
            short = getattr(f.fmt_value, "short", None) or str
            options = sorted(v for v in f.names if short(v) in wanted)
            if options and draw(st.integers(0, 3)):
                kw[f.name] = draw(st.sampled_from(options))
    attrs = []
    if cset is not None:
        attrs = draw(set_values(cset, 0, cls._known_kw(kw)))
    body = cls(attrs=attrs, **kw) if cset is not None else cls(**kw)
    request_flags = [0x1, 0x5, 0x301, 0x405]
    if mtype.role == "request" and not spec.is_genl:
        dump_op = reg.dump_request_op(mtype.protocol, cls._nl_type)
        if dump_op is not None and dump_op is not op:
            # NLM_F_DUMP would make it the dump request of another layout
            # (XFRM_MSG_GETSA without its struct xfrm_usersa_id)
            request_flags = [0x1, 0x5, 0x405]
    flags = (
        draw(st.sampled_from(request_flags))
        if mtype.role == "request"
        else draw(st.sampled_from([0x0, 0x2]))
    )
    ctx = NetlinkContext(genl_test_ids(reg), registry_=reg, host=False)
    hdr_cls = netlink_class(bo) if bo else Netlink
    seq = draw(st.integers(1, 0xFFFFFFFF)) if mtype.role != "event" else 0
    pid = 0 if mtype.role != "reply" else draw(st.integers(1, 0xFFFFFFFF))
    if reg.direction_by_pid(mtype.protocol):
        # a port id marks messages to the kernel here (NETLINK_CONNECTOR)
        pid = draw(st.integers(1, 0xFFFFFFFF)) if mtype.role == "request" else 0
    return hdr_cls(nlmsg_flags=flags, nlmsg_seq=seq, nlmsg_pid=pid, context=ctx) / body


def messages(
    family: str | None = None,
    op: str | None = None,
    role: str | None = None,
    bo: str | None = None,
    registry: Any = None,
) -> st.SearchStrategy[Any]:
    """Well-formed messages (`dissect.scapy.Netlink` layers with a body) of
    the matching message types: any family, operation and direction by
    default."""
    types = [
        t
        for t in message_types(registry)
        if (family is None or t.family == family)
        and (op is None or t.op == op)
        and (role is None or t.role == role)
    ]
    if not types:
        raise ValueError(f"no message type matches family={family} op={op} role={role}")
    return st.sampled_from(types).flatmap(lambda t: message_of(t, bo, registry))


def message_of(
    mtype: MessageType, bo: str | None = None, registry: Any = None
) -> st.SearchStrategy[Any]:
    """Well-formed messages of one message type."""
    return _message(mtype, bo or "", registry)


MUTATIONS = ("nla_len", "nlmsg_len", "pad", "truncate", "oversize", "unknown_type", "length", "cut")
# attribute kinds whose payload has a fixed size, so extra bytes are a defect
_FIXED_KINDS = ("int", "flag", "struct", "bitfield32")


@st.composite
def _malformed(draw: Any, base: st.SearchStrategy[Any]) -> tuple[Any, str]:
    from .scapy.hookbodies import NlHookBody, NlHookFrame
    from .scapy.layers import NlAttr, unknown_attr

    msg = draw(base)
    if isinstance(msg, NlHookFrame) or isinstance(msg.payload, NlHookBody):
        return _malformed_declared(draw, msg)
    body = msg.payload
    has_attrs = "attrs" in body.fieldtype
    attrs = list(body.getfieldval("attrs") or []) if has_attrs else []
    fixed = [i for i, a in enumerate(attrs) if a._nl_kind in _FIXED_KINDS]
    unaligned = [i for i, a in enumerate(attrs) if _length(a) % 4]
    # "length" and "cut" are defects of declared hook layouts only
    kinds = [k for k in MUTATIONS if k not in ("length", "cut")]
    kinds = [k for k in kinds if k not in ("nla_len", "truncate") or attrs]
    kinds = [k for k in kinds if k != "oversize" or fixed]
    kinds = [k for k in kinds if k != "pad" or unaligned]
    kinds = [k for k in kinds if k != "unknown_type" or has_attrs]
    kind = draw(st.sampled_from(kinds))
    if kind == "nlmsg_len":
        right = _built_len(msg)
        size = len(bytes(msg))
        msg.nlmsg_len = draw(
            st.integers(0, 0xFFFFFFFF).filter(lambda n: n != right and not _fits_swapped(n, size))
        )
    elif kind == "unknown_type":
        cset = body._nl_cset
        known = set(cset.by_type) if cset is not None else set()
        if body._nl_genl and body._nl_spec is None:
            known = set()
        nla_type = draw(st.integers(1, 0x3FFF).filter(lambda t: t not in known))
        attrs.append(unknown_attr(nla_type, draw(st.binary(max_size=12)), bo=body._nl_bo))
    elif kind == "pad":  # as many padding bytes as NLA_ALIGN wants, not all zero
        a = attrs[draw(st.sampled_from(unaligned))]
        n = -_length(a) % 4
        a.pad = draw(st.binary(min_size=n, max_size=n).filter(lambda b: b.strip(b"\0")))
    elif kind == "oversize":
        big: NlAttr = attrs[draw(st.sampled_from(fixed))]
        big.extra = draw(st.binary(min_size=1, max_size=16))
    else:
        i = draw(st.integers(0, len(attrs) - 1))
        a = attrs[i]
        if kind == "nla_len":
            # Shorter than the header, or past the end of the body: a length
            # that ends on an attribute boundary inside the body can make
            # another valid message (a nest cut to nothing, its children
            # read as the parent's), which no dissector can call wrong.
            left = sum(len(bytes(x)) for x in attrs[i:])
            wrong = st.integers(0, 3)
            if left < 0xFFFF:
                wrong = wrong | st.integers(left + 1, 0xFFFF)
            a.nla_len = draw(wrong)

        elif kind == "truncate":
            raw = bytes(a)
            attrs[i] = _raw_attr(raw[: draw(st.integers(1, max(1, min(3, len(raw) - 1))))])
            del attrs[i + 1 :]  # a cut attribute is the last one
    if has_attrs:
        body.attrs = attrs
    return msg, kind


def _malformed_declared(draw: Any, msg: Any) -> tuple[Any, str]:
    """A body or frame of a declared hook layout with one defect: a length
    member larger than what follows (``length``), the datagram's last byte
    cut (``cut``, frames), or a wrong ``nlmsg_len``."""
    import struct

    from .scapy.hookbodies import NlHookFrame, _int_fmt
    from .schema import bodies as B

    frame = isinstance(msg, NlHookFrame)
    target = msg if frame else msg.payload
    items = target._nl_hook.items
    lengths = [
        (i, it) for i, it in enumerate(items) if isinstance(it, B.Int) and it.length_of is not None
    ]
    kinds = (["cut"] if frame else ["nlmsg_len"]) + (["length"] if lengths else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "nlmsg_len":
        # Text and free-form bodies end where nlmsg_len says: a length a few
        # bytes off is another, valid message.  Wrong for sure: shorter than
        # the header, or past the end of the buffer.
        size = len(bytes(msg))
        msg.nlmsg_len = draw(
            (st.integers(0, 15) | st.integers(size + 1, 0xFFFFFFFF)).filter(
                lambda n: not _fits_swapped(n, size)
            )
        )
    elif kind == "cut":
        data = bytes(msg)
        msg = type(msg)(data[:-1])
    else:
        index, item = draw(st.sampled_from(lengths))
        fmt = _int_fmt(item, target._nl_bo)
        built = target._write_parts()[index]
        now = list(struct.unpack(fmt[0] + str(item.count) + fmt[1:], built))
        top = (1 << (8 * struct.calcsize(fmt))) - 1
        # at least 4 more: alignment padding (up to 3 zero bytes) may legally
        # be counted in a length (libaudit counts it in buflen)
        now[0] = min(top, now[0] + draw(st.integers(4, 64)))
        if now[0] == struct.unpack_from(fmt, built)[0]:
            now[0] = 0  # at its largest already: 0 promises less
        setattr(target, item.name, now if item.count > 1 else now[0])
    return msg, kind


def _fits_swapped(n: int, size: int) -> bool:
    """Would `n`, read in the other byte order, be a length that fits the
    message?  Then the dissector rightly reads the header that way (it
    guesses the byte order from the first nlmsg_len), and there is no
    defect to report."""
    return 16 <= int.from_bytes(n.to_bytes(4, "little"), "big") <= size


def _built_len(msg: Any) -> int:
    """The nlmsg_len a message builds with (without the padding after an
    unaligned body, which bytes() includes)."""
    return int.from_bytes(bytes(msg)[:4], "big" if msg._nl_bo == ">" else "little")


def _length(attr: Any) -> int:
    """The nla_len an attribute builds with."""
    return int.from_bytes(bytes(attr)[:2], "big" if attr._nl_bo == ">" else "little")


def _raw_attr(data: bytes) -> Any:
    from .scapy.layers import NlAttrTail

    return NlAttrTail(data=data)


def malformed_messages(**kw: Any) -> st.SearchStrategy[tuple[Any, str]]:
    """(message, mutation) pairs: a well-formed message (as `messages`,
    same arguments) with one deliberate defect named by the mutation."""
    return _malformed(messages(**kw))
