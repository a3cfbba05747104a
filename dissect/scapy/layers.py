"""Scapy layers generated from the compiled schemas.

Nothing here is written per family.  Each layer class is made on first use
from the tables `dissect.schema` compiles for our own dissector (attribute
decoders, struct layouts, message layouts), and cached:

- `NetlinkCooked`: the 16-byte LINKTYPE_NETLINK pseudo-header (big-endian;
  include/uapi/linux/if_packet.h sll fields as nlmon fills them).
- `Netlink`: ``struct nlmsghdr`` (include/uapi/linux/netlink.h) in host
  byte order; `NetlinkLE`/`NetlinkBE` force one.  Its payload is the body
  chosen by protocol, type and direction.  A buffer of several messages
  (a dump's frame) is a `NetlinkBatch` whose ``msgs`` list holds them: a
  list, not a chain of payloads, so hundreds of messages neither recurse
  deeply nor rebuild slowly.
- message bodies, one class per (family, operation, direction): the
  generic netlink header where the family has one, the fixed header's
  members as fields (``ifi_index``), then ``attrs``.
- attributes, one class per (attribute set, attribute): ``nla_len``,
  ``nla_type``, the typed value (``value``; a nest or sub-message holds a
  list of attribute layers, with ``header`` for a fixed header first),
  ``extra`` (bytes the type does not explain) and ``pad``.  Record lists
  (RTA_MULTIPATH) hold `NlRecord` layers.

Building computes ``nla_len``, ``nlmsg_len``, padding, ``nlmsg_type`` (from
the operation and direction, or the generic netlink family id) and
``nlmsg_flags`` (NLM_F_REQUEST for requests) unless they are given; given
values, however wrong, are written as they are.  Dissection keeps every
byte: a dissected packet rebuilds to the bytes it came from.

Direction: a message with NLM_F_REQUEST is read as a request, otherwise as
the reply to a request seen earlier in the same `NetlinkContext` (same
protocol and sequence number), else as an event first, like our Session.
Generic netlink family ids come from the context: ids given by the user,
learned from controller messages while dissecting (and from a first pass
by `dissect.scapy.rdpcap`), fixed ids (nlctrl), and the local kernel.
"""

from __future__ import annotations

import struct
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from scapy.config import conf
from scapy.fields import StrLenField
from scapy.layers.l2 import CookedLinux, CookedLinuxV2
from scapy.packet import NoPayload, Packet

from ..core import attrs as A
from ..core import constants as C
from ..core.display import errno_fmt, errno_name, hexbytes
from ..core.linklayer import PKTTYPES
from ..schema.spec import Spec, c_name, field_name
from .fields import (
    NlArrayField,
    NlAttrListField,
    NlAttrTypeField,
    NlBytesField,
    NlChunksField,
    NlIntField,
    NlNulField,
    NlPacketField,
    NlPadField,
    NlStringField,
    NlVarIntField,
)

HOST_BO = "<" if sys.byteorder == "little" else ">"
ADDR_HINTS = {"ipv4", "ipv6", "ipv4-or-ipv6", "addr", "mac"}
ALL_FLAG_NAMES: dict[int, str] = {}
for _table in (C.COMMON_FLAGS, C.GET_FLAGS, C.NEW_FLAGS, C.DEL_FLAGS, C.ACK_FLAGS):
    ALL_FLAG_NAMES.update(_table)
_FLAG_ALIASES = {
    n: v
    for t in (C.COMMON_FLAGS, C.GET_FLAGS, C.NEW_FLAGS, C.DEL_FLAGS, C.ACK_FLAGS)
    for v, n in t.items()
}
_FLAG_ALIASES["DUMP"] = C.NLM_F_DUMP


def _align(n: int) -> int:
    return (n + 3) & ~3


def registry() -> Any:
    from ..api import default_registry

    return default_registry()


# ---------------------------------------------------------------------------
# Context: generic netlink ids and requests seen


class GenlIdError(ValueError):
    """A generic netlink family's id is not known (not given, not learned,
    not registered on the local kernel); `family` is its name."""

    def __init__(self, family: str, text: str) -> None:
        super().__init__(text)
        self.family = family


class NetlinkContext:
    """What dissection and building need beyond one message's bytes.

    `genl` maps family names to ids (or ids to names); ids learned from
    controller messages are added as packets are dissected (`learn`).
    With `host=True` a family the context does not know is looked up on
    the local kernel when a message for it is built; with
    `host_names=True` dissection names unknown ids from the local kernel
    too (right for live traffic, wrong for captures from other machines,
    like ``nlshark --genl-from-host``).  Requests dissected through the
    context are remembered so that replies are told from events.  A socket
    fills the same tables: `set_genl` with its controller answers,
    `remember` for the requests it sends.
    """

    def __init__(
        self,
        genl: dict[Any, Any] | None = None,
        registry_: Any = None,
        host: bool = True,
        max_requests: int = 4096,
        host_names: bool = False,
    ) -> None:
        self.registry = registry_ or registry()
        self.names: dict[int, str] = dict(self.registry.fixed_genl_ids())
        self.user: dict[int, str] = {}
        self.host = host
        self.host_for_names = host_names
        self._host_names: dict[int, str] | None = None
        self.requests: OrderedDict[tuple[int, int], tuple[int, int | None]] = OrderedDict()
        self.max_requests = max_requests
        if genl:
            self.set_genl(genl)

    def __enter__(self) -> NetlinkContext:
        """``with ctx:`` dissects (``Netlink(...)``, ``rdpcap``) through `ctx`."""
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.remove(self)

    def set_genl(self, genl: dict[Any, Any]) -> None:
        """Name generic netlink ids: ``{"nl80211": 28}`` or ``{28: "nl80211"}``."""
        for k, v in genl.items():
            if isinstance(k, int):
                self.user[k] = str(v)
            else:
                self.user[int(v)] = str(k)

    def learn(self, family_id: int, name: str) -> None:
        if family_id and name:
            self.names[family_id] = name

    def genl_name(self, family_id: int) -> str | None:
        name = self.user.get(family_id) or self.names.get(family_id)
        if name is None and self.host_for_names:
            name = self.host_names().get(family_id)
        return name

    def genl_id(self, name: str) -> int:
        for table in (self.user, self.names):
            for k, v in table.items():
                if v == name:
                    return k
        spec = self.registry.genl_spec(name)
        if spec is not None and spec.fixed_id is not None:
            return int(spec.fixed_id)
        if self.host:
            for k, v in self.host_names().items():
                if v == name:
                    return k
        raise GenlIdError(
            name,
            f"generic netlink family {name!r} has no id here: give one with "
            f"NetlinkContext(genl={{{name!r}: ID}}), Netlink(genl={{{name!r}: ID}}) or nlmsg_type=ID",
        )

    def host_names(self) -> dict[int, str]:
        if self._host_names is None:
            try:
                from ..capture.host import HostQueryError, host_genl_families

                try:
                    self._host_names = host_genl_families()
                except HostQueryError:
                    self._host_names = {}
            except Exception:  # no AF_NETLINK on this system
                self._host_names = {}
        return self._host_names

    def remember(self, protocol: int, seq: int, msg_type: int, cmd: int | None) -> None:
        key = (protocol, seq)
        self.requests[key] = (msg_type, cmd)
        self.requests.move_to_end(key)
        if len(self.requests) > self.max_requests:
            self.requests.popitem(last=False)

    def answered(self, protocol: int, seq: int, pid: int) -> bool:
        return bool(seq or pid) and (protocol, seq) in self.requests


_DEFAULT_CONTEXT: NetlinkContext | None = None
_ACTIVE: list[NetlinkContext] = []


def default_context() -> NetlinkContext:
    global _DEFAULT_CONTEXT
    if _DEFAULT_CONTEXT is None:
        _DEFAULT_CONTEXT = NetlinkContext()
    return _DEFAULT_CONTEXT


def current_context() -> NetlinkContext:
    return _ACTIVE[-1] if _ACTIVE else default_context()


# ---------------------------------------------------------------------------
# Base classes


class _NlPacket(Packet):
    """Common to every generated layer: no payload guessing (a layer's bytes
    are consumed by its own fields; what is left is kept in `extra`)."""

    def guess_payload_class(self, payload: bytes) -> Any:
        return conf.raw_layer

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes | None]:
        return b"", s if s else None


class NlFixedBytesField(NlBytesField):
    """Bytes of a fixed size inside a struct (zero-padded, cut to size)."""

    __slots__ = ["size"]

    def __init__(self, name: str, size: int, fmt_value: Any = None, addr: bool = False) -> None:
        NlBytesField.__init__(self, name, b"\0" * size, fmt_value, addr, size)
        self.size = size

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        if val is None:
            return s
        return s + self.i2m(pkt, val)[: self.size].ljust(self.size, b"\0")

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, Any]:
        return s[self.size :], s[: self.size]

    def randval(self) -> Any:
        from scapy.volatile import RandBin

        return RandBin(self.size)


def pyname(name: str) -> str:
    """A struct member's field name: Python keywords get a trailing ``_``
    (``from_``), as Scapy's fields become keyword arguments."""
    import keyword

    name = field_name(name)
    if keyword.iskeyword(name) or not name.isidentifier():
        name = name + "_" if name.isidentifier() or name[:1].isalpha() else "m_" + name
    return name


def _member_fields(spec: Spec | None, layout: A.StructLayout) -> list[Any]:
    """Scapy fields for the members of a struct, in order (gaps as pad)."""
    enums = _member_enums(spec, layout)
    out: list[Any] = []
    pos = 0
    for m in layout.members:
        if m.offset > pos:
            out.append(NlFixedBytesField(f"_gap{pos}", m.offset - pos))
        if m.kind == "int" and m.st is not None:
            names, is_flags = enums.get(m.name, (None, False))
            out.append(NlIntField(pyname(m.name), 0, m.st.format, names, m.fmt, is_flags))
        elif m.kind == "struct" and m.sub is not None:
            out.append(
                NlPacketField(
                    pyname(m.name), (lambda sub=m.sub: struct_class(spec, sub)), member=True
                )
            )
        else:
            out.append(NlFixedBytesField(pyname(m.name), m.size, m.fmt))
        pos = m.offset + m.size
    return out


def _member_enums(spec: Spec | None, layout: A.StructLayout) -> dict[str, tuple[Any, bool]]:
    out: dict[str, tuple[Any, bool]] = {}
    if spec is None:
        return out
    sdef = next((s for k, s in spec.structs.items() if field_name(k) == layout.name), None)
    if sdef is None:
        return out
    for m in sdef.members:
        edef = spec.enums.get(m.enum or "")
        if edef is not None:
            flags = edef.is_flags or m.enum_as_flags
            names = (
                edef.entries
                if edef.is_flags or not m.enum_as_flags
                else {1 << v: n for v, n in edef.entries.items() if 0 <= v < 64}
            )
            out[field_name(m.name)] = (names, flags)
    return out


def _field_size(f: Any) -> int:
    if isinstance(f, NlFixedBytesField):
        return f.size
    if isinstance(f, NlIntField):
        return int(f.sz)
    if isinstance(f, NlPacketField):
        return int(f.cls._nl_size)
    return 0


def _dissect_members(pkt: Packet, fields: list[Any], s: bytes) -> tuple[bytes, bool]:
    """Read fixed-size member fields from `s`; returns (rest, complete).
    Members the bytes do not reach are set to None (absent)."""
    off = 0
    complete = True
    for f in fields:
        size = _field_size(f)
        if not complete or len(s) - off < size:
            complete = False
            pkt.fields[f.name] = None
            continue
        chunk = s[off : off + size]
        if isinstance(f, NlIntField):
            pkt.fields[f.name] = f.struct.unpack(chunk)[0]
        elif isinstance(f, NlPacketField):
            pkt.fields[f.name] = f.cls(chunk)
        else:
            pkt.fields[f.name] = chunk
        off += size
    return s[off:], complete


class NlStruct(_NlPacket):
    """A C struct (fixed header, struct payload); class per layout.  A
    trailing flexible array member (``keys[]``) is the field ``flex``: a
    list of element structs, or bytes."""

    _nl_size = 0
    _nl_layout: A.StructLayout | None = None
    _nl_members: list[Any] = []
    _nl_flex_cls: Any = None  # element class of the flexible array
    _nl_has_flex = False
    _nl_trailer_def: Any = None  # bytes after the struct a member counts

    def do_dissect(self, s: bytes) -> bytes:
        rest, complete = _dissect_members(self, self._nl_members, s)
        tr = self._nl_trailer_def
        if tr is not None:
            name = pyname(tr.name)
            count = self.fields.get(pyname(tr.length)) if complete else None
            if not isinstance(count, int) or count <= 0:
                self.fields[name] = None
            else:
                have = rest[: count * tr.scale]
                rest = rest[len(have) :]
                if tr.element_len:
                    step = tr.element_len
                    whole = len(have) - len(have) % step
                    self.fields[name] = [have[i : i + step] for i in range(0, whole, step)]
                    rest = have[whole:] + rest  # a part element is left as it is
                else:
                    self.fields[name] = have
            self.fields["cut"] = rest if rest else None
            return b""
        if self._nl_has_flex:
            el = self._nl_flex_cls
            if not complete:
                self.fields["flex"] = None
            elif el is not None:
                n = len(rest) // el._nl_size
                self.fields["flex"] = [
                    el(rest[i * el._nl_size : (i + 1) * el._nl_size]) for i in range(n)
                ]
                rest = rest[n * el._nl_size :]
            else:
                self.fields["flex"], rest = rest, b""
        self.fields["cut"] = rest if rest else None
        return b""

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes | None]:
        return b"", None


_STRUCTS: dict[tuple[int, str], type[NlStruct]] = {}


def struct_class(spec: Spec | None, layout: A.StructLayout) -> type[NlStruct]:
    key = (id(layout), layout.abbrev)
    cls = _STRUCTS.get(key)
    if cls is None:
        members = _member_fields(spec, layout)
        fields = list(members)
        flex = getattr(layout, "flex", None)
        flex_cls = None
        if flex is not None:
            if flex.sub is not None and flex.sub.size:
                flex_cls = struct_class(spec, flex.sub)
                fields.append(NlAttrListField("flex"))
            else:
                fields.append(NlBytesField("flex", b"", flex.fmt))
        trailer = getattr(layout, "trailer", None)
        if trailer is not None:
            # bytes one member counts (an SRH's segments), inside an attribute
            fields.append(
                NlChunksField(pyname(trailer.name), trailer.element_len, trailer.fmt)
                if trailer.element_len
                else NlBytesField(pyname(trailer.name), None, trailer.fmt)
            )
        fields.append(NlBytesField("cut", None))
        cls = _STRUCTS[key] = type(  # type: ignore[assignment]
            _class_name("struct", layout.abbrev),
            (NlStruct,),
            {
                "name": layout.title,
                "fields_desc": fields,
                "_nl_size": layout.size,
                "_nl_layout": layout,
                "_nl_members": members,
                "_nl_flex_cls": flex_cls,
                "_nl_has_flex": flex is not None,
                "_nl_trailer_def": trailer,
                "__module__": __name__,
            },
        )
    return cls  # type: ignore[return-value]


def _class_name(*parts: str) -> str:
    return "_".join(p.replace(".", "_").replace("-", "_") for p in parts if p)


# ---------------------------------------------------------------------------
# Attributes


class NlAttr(_NlPacket):
    """One netlink attribute (struct nlattr + payload + padding)."""

    name = "nlattr"
    _nl_kind = "bytes"
    _nl_dec: Any = None
    _nl_bo = HOST_BO
    _nl_cset: Any = None  # a nest's or sub-message's attribute set
    _nl_header: Any = None  # a fixed header's struct class
    _nl_pick: Any = None  # element picker for indexed arrays
    _nl_formats: dict[str, type[NlAttr]] | None = None
    _nl_index = False  # an element of an indexed array (named by its index)
    _nl_record: Any = None  # the record class of a record list (RTA_MULTIPATH)
    _nl_set: Any = None  # the attribute set this attribute belongs to
    _nl_spec: Spec | None = None
    fields_desc = [
        NlIntField("nla_len", None, "<H"),
        NlIntField("nla_type", 0, "<H"),
        NlBytesField("value", b""),
        NlBytesField("extra", b""),
        NlPadField("pad", None),
    ]

    def __init__(self, _pkt: Any = b"", *args: Any, **kw: Any) -> None:
        if not isinstance(_pkt, (bytes, bytearray, memoryview)):
            kw["value"] = _pkt
            _pkt = b""
        if "value" in kw:
            kw["value"] = self._convert(kw["value"])
        super().__init__(_pkt, *args, **kw)

    @classmethod
    def _convert(cls, value: Any) -> Any:
        kind = cls._nl_kind
        if kind in ("nest", "submsg", "unknown-nest"):
            return to_attrs(cls._nl_cset, value, cls._nl_bo, _inherited())
        if kind == "indexed":
            return _indexed_items(cls, value)
        if kind == "records":
            rec = cls._nl_record
            return [
                r if isinstance(r, Packet) else rec(attrs=r.get("attrs"), **r.get("header", {}))
                for r in value or []
            ]
        if kind == "struct" and isinstance(value, dict):
            return cls.fields_desc[2].cls(**value)  # type: ignore[union-attr]
        if kind == "struct" and isinstance(value, list):
            ecls = cls.fields_desc[2].cls  # type: ignore[union-attr]
            return [ecls(**e) if isinstance(e, dict) else e for e in value]
        if kind == "int" and isinstance(value, str):
            return cls.fields_desc[2].any2i(None, value)
        return value

    # -- dissection ------------------------------------------------------------
    def do_dissect(self, s: bytes) -> bytes:
        ln, ty = struct.unpack_from(self._nl_bo + "HH", s)
        self.fields["nla_len"] = ln
        self.fields["nla_type"] = ty
        end = min(max(ln, 4), len(s))
        self.fields["pad"] = s[end:]
        self._dissect_value(s[4:end], ty)
        return b""

    def _dissect_value(self, p: bytes, nla_type: int) -> None:
        kind = self._nl_kind
        f = self.fields
        extra = b""
        if kind == "int":
            fld = self.fields_desc[2]
            if len(p) >= fld.sz:
                f["value"] = fld.struct.unpack(p[: fld.sz])[0]
                extra = p[fld.sz :]
            else:
                f["value"], extra = None, p
        elif kind == "varint":
            width = next((w for w in (8, 4, 2, 1) if len(p) == w), 0)
            if width:
                f["value"] = self.fields_desc[2].getfield(self, p)[1]
            else:
                f["value"], extra = None, p
        elif kind == "flag":
            extra = p
        elif kind == "string":
            if p.endswith(b"\0"):
                f["value"], f["nul"] = p[:-1], 1
            else:
                f["value"], f["nul"] = p, 0
        elif kind == "struct":
            cls = self.fields_desc[2].cls  # type: ignore[union-attr]
            size = cls._nl_size
            dec = self._nl_dec
            if cls._nl_has_flex and len(p) >= size:
                f["value"] = cls(p)  # the flexible array takes the rest
            elif cls._nl_trailer_def is not None and len(p) >= size:
                f["value"] = v = cls(p)  # the counted trailer follows
                extra, v.cut = v.cut or b"", None
            elif (
                size
                and not getattr(dec, "extensible", False)
                and (len(p) > size or getattr(dec, "array", False))
                and len(p) % size == 0
            ):
                # a run of structs (NHA_GROUP), as the dissector reads it
                f["value"] = [cls(p[i : i + size]) for i in range(0, len(p), size)]
            elif len(p) >= size:
                f["value"] = cls(p[: cls._nl_size])
                extra = p[cls._nl_size :]
            else:
                f["value"], extra = None, p
        elif kind == "array":
            fld = self.fields_desc[2].field  # type: ignore[union-attr]
            n = len(p) // fld.sz
            f["value"] = [fld.struct.unpack_from(p, i * fld.sz)[0] for i in range(n)]
            extra = p[n * fld.sz :]
        elif kind == "bitfield32":
            if len(p) >= 8:
                f["value"], f["selector"] = struct.unpack_from(self._nl_bo + "II", p)
                extra = p[8:]
            else:
                f["value"] = f["selector"] = None
                extra = p
        elif kind in ("nest", "submsg", "unknown-nest"):
            hcls = self._nl_header
            known: dict[str, Any] | None = _inherited()
            if hcls is not None:
                size = hcls._nl_size
                if len(p) < size:
                    f["header"], f["hpad"], f["value"] = None, b"", []
                    f["extra"] = p
                    return
                f["header"] = hdr = hcls(p[:size])
                end = min(_align(size), len(p))
                f["hpad"] = p[size:end]
                from_header = _header_selectors(hcls, hdr, self._nl_cset)
                if from_header:
                    known = {**(known or {}), **from_header}
                p = p[end:]
            f["value"] = parse_attrs(p, self._nl_cset, self._nl_bo, known)
        elif kind == "indexed":
            f["value"] = parse_attrs(p, None, self._nl_bo, None, self._nl_pick)
        elif kind == "records":
            f["value"] = parse_records(p, self._nl_record)
        else:
            f["value"] = p
        f["extra"] = extra

    # -- building -------------------------------------------------------------
    def post_build(self, p: bytes, pay: bytes) -> bytes:
        length = len(p) - getattr(self, "_nl_padded", 0)
        if self.getfieldval("nla_len") is None:
            if length > 0xFFFF:
                raise ValueError(
                    f"{self.name}: {length} bytes do not fit nla_len (at most 65535);"
                    " give nla_len to build it anyway"
                )
            p = struct.pack(self._nl_bo + "H", length) + p[2:]
        return p + pay

    def mysummary(self) -> str:
        v = self.getfieldval("value") if "value" in self.fieldtype else None
        if isinstance(v, list):
            return f"{self.name} [{len(v)}]"
        return f"{self.name}={self.fieldtype['value'].i2repr(self, v)}" if v is not None else ""

    # convenience
    @classmethod
    def net_byteorder(cls) -> type[NlAttr]:
        """This attribute with NLA_F_NET_BYTEORDER set and its integer
        value big-endian (include/uapi/linux/netlink.h)."""
        if cls._nl_dec is None or cls._nl_kind not in ("int", "varint", "array"):
            raise TypeError(f"{cls._name}: only integer attributes have a network byte order")
        return attr_class(cls._nl_spec, cls._nl_set, cls._nl_dec, cls._nl_bo, netbo=True)

    @classmethod
    def kind(cls, key: str) -> type[NlAttr]:
        """A sub-message attribute's class for selector value `key`
        (``IFLA_INFO_DATA`` for ``"vlan"``)."""
        fmts = cls._nl_formats or {}
        if key in fmts:
            return fmts[key]
        if "*" in fmts:
            return fmts["*"]
        raise KeyError(f"{cls.name}: no format {key!r}; known: {', '.join(sorted(fmts))}")


class NlAttrTail(_NlPacket):
    """Bytes at the end of an attribute list too short for an attribute
    header, or an attribute whose nla_len is below 4: kept as they are."""

    name = "nlattr tail"
    fields_desc = [NlBytesField("data", b"")]

    def do_dissect(self, s: bytes) -> bytes:
        self.fields["data"] = s
        return b""


_ATTRS: dict[tuple[Any, ...], type[NlAttr]] = {}


def _type_names(cset: Any) -> tuple[dict[int, str], dict[str, int]]:
    if cset is None:
        return {}, {}
    names = {t: d.name for t, d in cset.by_type.items()}
    return names, {d.spec_name: t for t, d in cset.by_type.items()}


def _type_field(default: int, bo: str, cset: Any) -> NlIntField:
    names, aliases = _type_names(cset)
    f = NlAttrTypeField("nla_type", default, bo + "H", names)
    for n, v in aliases.items():
        for key in (n, n.replace("-", "_"), n.upper()):
            f.by_name.setdefault(key, v)
    f.by_name.update({"NESTED": A.NLA_F_NESTED, "NET_BYTEORDER": A.NLA_F_NET_BYTEORDER})
    return f


def _value_fields(
    dec: Any, bo: str, spec: Spec | None, netbo: bool
) -> tuple[str, list[Any], dict[str, Any]]:
    """The kind, value fields and class attributes for one decoder."""
    extra: dict[str, Any] = {}
    if isinstance(dec, A.ScalarAttr):
        fmt = (">" if netbo else dec.st.format[0]) + dec.st.format[1:]
        names = dict(dec.enum_names) if dec.enum_names else None
        is_flags = bool(names) and _is_flags(dec)
        return "int", [NlIntField("value", 0, fmt, names, dec.fmt, is_flags)], extra
    if isinstance(dec, A.VarIntAttr):
        vbo = ">" if netbo or dec.bo == "big" else "<"
        return "varint", [NlVarIntField("value", 0, dec.signed, vbo, dec.fmt)], extra
    if isinstance(dec, A.FlagAttr):
        return "flag", [], extra
    if isinstance(dec, A.StringAttr):
        return "string", [NlStringField("value", b""), NlNulField("nul", 1)], extra
    if isinstance(dec, A.StructAttr):
        lay = dec.layout
        return "struct", [NlPacketField("value", lambda: struct_class(spec, lay))], extra
    if isinstance(dec, A.ArrayAttr):
        fmt = (">" if netbo else dec.st.format[0]) + dec.st.format[1:]
        return "array", [NlArrayField("value", fmt, dec.elem_fmt)], extra
    if isinstance(dec, A.Bitfield32Attr):
        return (
            "bitfield32",
            [
                NlIntField("value", 0, dec.st.format[0] + "I", None, dec.bits_fmt),
                NlIntField("selector", 0, dec.st.format[0] + "I", None, dec.bits_fmt),
            ],
            extra,
        )
    if isinstance(dec, A.NestAttr):
        fields: list[Any] = []
        if dec.header is not None:
            lay = dec.header
            hcls = struct_class(spec, lay)
            extra["_nl_header"] = hcls
            fields += [NlPacketField("header", lambda: hcls), NlPadField("hpad", None)]
        extra["_nl_cset"] = dec.target
        return "nest", [*fields, NlAttrListField("value")], extra
    if isinstance(dec, A.NestTypeValueAttr):
        extra["_nl_cset"] = dec.top()
        return "nest", [NlAttrListField("value")], extra
    if isinstance(dec, A._TypeValueLevel):
        extra["_nl_cset"] = dec.below()
        return "nest", [NlAttrListField("value")], extra
    if isinstance(dec, A.RecordsAttr):
        extra["_nl_record"] = record_class(spec, dec, bo)
        return "records", [NlAttrListField("value")], extra
    if isinstance(dec, A.IndexedArrayAttr):
        inner = indexed_element(dec)
        extra["_nl_pick"] = staticmethod(
            lambda t, bo=bo, inner=inner, spec=spec: attr_class(spec, None, inner, bo, index=True)
        )
        return "indexed", [NlAttrListField("value")], extra
    fmt_value = getattr(dec, "fmt", None) or hexbytes
    addr = fmt_value in _addr_formatters()
    return "bytes", [NlBytesField("value", b"", fmt_value, addr, _rand_len(dec))], extra


def indexed_element(dec: A.IndexedArrayAttr) -> A.AttrDecoder:
    """The decoder of an indexed array's elements (any index)."""
    return dec.items.by_type.get(0).inner  # type: ignore[union-attr, no-any-return]


def _rand_len(dec: Any) -> int:
    lengths = getattr(dec, "lengths", None)
    return max(lengths) if lengths else 32


_ADDR_FMTS: set[Any] = set()


def _addr_formatters() -> set[Any]:
    if not _ADDR_FMTS:
        from ..core.display import HINTS

        _ADDR_FMTS.update(HINTS[h] for h in ADDR_HINTS if h in HINTS)
    return _ADDR_FMTS


def _is_flags(dec: Any) -> bool:
    names = dec.enum_names or {}
    return (
        bool(names)
        and all(v and not v & (v - 1) for v in names)
        and len(names) > 1
        and ("|" in (dec.fmt(3) if dec.fmt else ""))
    )


def _selected(dec: A.SubMessageAttr, siblings: dict[str, Any]) -> Any:
    """The selector value that picks `dec`'s format: the first of its
    selectors present, as the dissector decides."""
    return next((siblings[s] for s in dec.selectors if s in siblings), None)


_NESTED_KINDS = frozenset({"nest", "submsg", "indexed"})


def attr_class(
    spec: Spec | None,
    cset: Any,
    dec: Any,
    bo: str,
    netbo: bool = False,
    fmt_key: str | None = None,
    index: bool = False,
) -> type[NlAttr]:
    """The layer class for one attribute (decoder `dec` of set `cset`)."""
    key = (id(dec), bo, netbo, fmt_key, index, id(cset))
    cls = _ATTRS.get(key)
    if cls is not None:
        return cls
    type_value = 0
    if cset is not None and not index:
        type_value = next((t for t, d in cset.by_type.items() if d is dec), 0)
    extra: dict[str, Any] = {}
    vfields: list[Any]
    if isinstance(dec, A.SubMessageAttr):
        if fmt_key is None:
            kind, vfields = "submsg", [NlAttrListField("value")]
            extra["_nl_cset"] = None
            extra["_nl_formats"] = _LazyFormats(spec, cset, dec, bo)
        else:
            header, target = dec.resolve(fmt_key)
            vfields = []
            if header is not None:
                hcls = struct_class(spec, header)
                extra["_nl_header"] = hcls
                vfields += [NlPacketField("header", lambda: hcls), NlPadField("hpad", None)]
            vfields.append(NlAttrListField("value"))
            kind = "submsg"
            extra["_nl_cset"] = target
    else:
        kind, vfields, extra = _value_fields(dec, bo, spec, netbo)
    title = dec.name if not index else f"{dec.name} element"
    if fmt_key is not None:
        title = f"{dec.name} ({fmt_key})"
    fields = [
        NlIntField("nla_len", None, bo + "H"),
        _type_field(
            type_value
            | (A.NLA_F_NET_BYTEORDER if netbo else 0)
            # Nests carry NLA_F_NESTED, as libmnl and YNL send them: families
            # with strict policies (ethtool, most generic netlink) refuse a
            # nest without it, and the rest ignore the bit.
            | (A.NLA_F_NESTED if kind in _NESTED_KINDS and not index else 0),
            bo,
            cset if not index else None,
        ),
        *vfields,
        NlBytesField("extra", b""),
        NlPadField("pad", None),
    ]
    cls = type(
        _class_name(
            "nla",
            dec.abbrev,
            fmt_key or "",
            "net" if netbo else "",
            "elem" if index else "",
            "be" if bo == ">" else "",
        ),
        (NlAttr,),
        {
            "name": title,
            "fields_desc": fields,
            "_nl_kind": kind,
            "_nl_dec": dec,
            "_nl_bo": bo,
            "_nl_spec": spec,
            "_nl_set": cset,
            "_nl_index": index,
            "__module__": __name__,
            **extra,
        },
    )
    _ATTRS[key] = cls
    return cls


class NlRecord(_NlPacket):
    """One record of a record list: a struct whose member `_nl_len_field`
    is the record's length, then attributes (include/uapi/linux/rtnetlink.h:
    struct rtnexthop followed by RTA_* for RTA_MULTIPATH)."""

    _nl_header_fields: list[Any] = []
    _nl_len_field = ""
    _nl_len_off = 0
    _nl_len_fmt = "<H"
    _nl_size = 0
    _nl_cset: Any = None
    _nl_bo = HOST_BO

    def __init__(self, _pkt: Any = b"", *args: Any, **kw: Any) -> None:
        if "attrs" in kw and not _pkt:
            kw["attrs"] = to_attrs(self._nl_cset, kw["attrs"], self._nl_bo, None)
        super().__init__(_pkt, *args, **kw)

    def do_dissect(self, s: bytes) -> bytes:
        f = self.fields
        rest, complete = _dissect_members(self, self._nl_header_fields, s)
        rlen = f.get(self._nl_len_field) or 0
        if not complete or rlen < self._nl_size:
            f["hpad"], f["attrs"], f["extra"], f["rpad"] = b"", [], rest, b""
            return b""
        size = self._nl_size
        end = min(rlen, len(s))
        start = min(_align(size), end)
        f["hpad"] = s[size:start]
        f["attrs"] = parse_attrs(s[start:end], self._nl_cset, self._nl_bo)
        f["extra"] = b""
        f["rpad"] = s[end:]
        return b""

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        if self.getfieldval(self._nl_len_field) is None:
            length = len(p) - getattr(self, "_nl_padded", 0)
            off = self._nl_len_off
            st = struct.Struct(self._nl_len_fmt)
            p = p[:off] + st.pack(length) + p[off + st.size :]
        return p + pay


_RECORDS: dict[tuple[int, str], type[NlRecord]] = {}


def record_class(spec: Spec | None, dec: A.RecordsAttr, bo: str) -> type[NlRecord]:
    key = (id(dec), bo)
    cls = _RECORDS.get(key)
    if cls is None:
        hfields = _member_fields(spec, dec.layout)
        len_name = next(
            f.name
            for f, m in zip(
                [f for f in hfields if not f.name.startswith("_gap")],
                dec.layout.members,
            )
            if m.offset == dec.len_off
        )
        for i, f in enumerate(hfields):
            if f.name == len_name:
                hfields[i] = NlIntField(f.name, None, f.fmt, None, f.fmt_value)
        fields = [
            *hfields,
            NlPadField("hpad", None),
            NlAttrListField("attrs"),
            NlBytesField("extra", b""),
            NlPadField("rpad", None),
        ]
        cls = _RECORDS[key] = type(  # type: ignore[assignment]
            _class_name("record", dec.abbrev, "be" if bo == ">" else ""),
            (NlRecord,),
            {
                "name": f"{dec.name} record ({dec.layout.title})",
                "fields_desc": fields,
                "_nl_header_fields": hfields,
                "_nl_len_field": len_name,
                "_nl_len_off": dec.len_off,
                "_nl_len_fmt": dec.len_st.format,
                "_nl_size": dec.layout.size,
                "_nl_cset": dec.resolve(),
                "_nl_bo": bo,
                "__module__": __name__,
            },
        )
    return cls  # type: ignore[return-value]


def parse_records(buf: bytes, rec: type[NlRecord]) -> list[Packet]:
    """A record list into record layers (an `NlAttrTail` for what is too
    short for a record, or follows a record shorter than its struct)."""
    out: list[Packet] = []
    st = struct.Struct(rec._nl_len_fmt)
    need = max(rec._nl_size, rec._nl_len_off + st.size)
    off, n = 0, len(buf)
    while off < n:
        if n - off < need:
            out.append(NlAttrTail(buf[off:]))
            break
        rlen = st.unpack_from(buf, off + rec._nl_len_off)[0]
        if rlen < rec._nl_size:
            out.append(NlAttrTail(buf[off:]))
            break
        nxt = min(off + _align(rlen), n)
        out.append(rec(buf[off:nxt]))
        off = nxt
    return out


class _LazyFormats(dict):  # type: ignore[type-arg]
    """Sub-message format classes by selector value, made on first use."""

    def __init__(self, spec: Spec | None, cset: Any, dec: Any, bo: str) -> None:
        super().__init__()
        self.args = (spec, cset, dec, bo)
        self.keys_ = set(dec.formats)

    def __contains__(self, key: object) -> bool:
        return key in self.keys_

    def __getitem__(self, key: str) -> type[NlAttr]:
        if key not in self.keys_:
            raise KeyError(key)
        spec, cset, dec, bo = self.args
        return attr_class(spec, cset, dec, bo, fmt_key=key)

    def __iter__(self) -> Any:
        return iter(sorted(self.keys_))

    def __len__(self) -> int:
        return len(self.keys_)


def _unknown_class(bo: str, nested: bool) -> type[NlAttr]:
    key = ("unknown", bo, nested)
    cls = _ATTRS.get(key)
    if cls is None:
        vf: Any = NlAttrListField("value") if nested else NlBytesField("value", b"")
        cls = _ATTRS[key] = type(  # type: ignore[assignment]
            _class_name("NlAttrUnknown", "nested" if nested else "", "be" if bo == ">" else ""),
            (NlAttr,),
            {
                "name": "unknown attribute",
                "fields_desc": [
                    NlIntField("nla_len", None, bo + "H"),
                    NlIntField("nla_type", 0, bo + "H"),
                    vf,
                    NlBytesField("extra", b""),
                    NlPadField("pad", None),
                ],
                "_nl_kind": "unknown-nest" if nested else "bytes",
                "_nl_bo": bo,
                "_nl_cset": None,
                "__module__": __name__,
            },
        )
    return cls  # type: ignore[return-value]


def unknown_attr(nla_type: int, data: bytes = b"", bo: str = HOST_BO, **kw: Any) -> NlAttr:
    """An attribute of any type with raw bytes: ``unknown_attr(999, b"\\x01")``."""
    return _unknown_class(bo, False)(nla_type=nla_type, value=data, **kw)


def _selector_value(dec: Any, payload: bytes) -> str | None:
    """A selector attribute's key, read the way our dissector reads it."""
    if isinstance(dec, A.StringAttr):
        return payload.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
    if isinstance(dec, A.ScalarAttr):
        if len(payload) < dec.size:
            return None
        return dec.selector_key(dec.st.unpack_from(payload)[0])
    if isinstance(dec, A.VarIntAttr) and len(payload) in (1, 2, 4, 8):
        return dec.selector_key(int.from_bytes(payload, dec.bo, signed=dec.signed))
    return dec.selector_key(payload)


def _header_selectors(hcls: Any, hdr: Packet, cset: Any) -> dict[str, Any]:
    known: dict[str, Any] = {}
    if cset is None or not cset.selectors or hcls._nl_layout is None:
        return known
    for m in hcls._nl_layout.members:
        key = m.name.replace("_", "-")
        if key in cset.selectors:
            v = hdr.fields.get(pyname(m.name))
            if v is None:
                continue
            short = getattr(m.fmt, "short", None)
            known[key] = short(v) if short is not None else str(v)
    return known


def parse_attrs(
    buf: bytes,
    cset: Any,
    bo: str,
    known: dict[str, Any] | None = None,
    pick: Callable[[int], type[NlAttr]] | None = None,
) -> list[Packet]:
    """Dissect an attribute list into layers; never raises, keeps every byte.

    `known` are selector values from outside the list: the fixed header's
    members and the enclosing levels' selectors (TCA_STATS_APP inside
    TCA_STATS2 is selected by the message's TCA_KIND), as our dissector's
    walk has them: an attribute of this set always decides over an
    inherited value of the same name."""
    spec = _spec_of(cset)
    table = cset.by_type if cset is not None else {}
    hdr = struct.Struct(bo + "HH")
    siblings: dict[str, Any] = {}
    inherit: dict[str, Any] | None = None  # what nests below see
    if cset is not None and cset.selectors:
        siblings = {k: v for k, v in (known or {}).items() if k not in cset.by_name}
        own: set[str] = set()
        off = 0
        while len(buf) - off >= 4:  # selectors first: they may follow what they select
            ln, ty = hdr.unpack_from(buf, off)
            if ln < 4:
                break
            dec = table.get(ty & A.NLA_TYPE_MASK)
            if dec is not None and dec.spec_name in cset.selectors and dec.spec_name not in own:
                key = _selector_value(dec, buf[off + 4 : off + ln])
                if key is not None:
                    siblings[dec.spec_name] = key
                    own.add(dec.spec_name)
            off += _align(ln)
        inherit = siblings
    out: list[Packet] = []
    off = 0
    n = len(buf)
    while off < n:
        if n - off < 4:
            out.append(NlAttrTail(buf[off:]))
            break
        ln, ty = hdr.unpack_from(buf, off)
        if ln < 4:
            out.append(NlAttrTail(buf[off:]))
            break
        nxt = min(off + _align(ln), n)
        if pick is not None:
            cls = pick(ty)
        else:
            dec = table.get(ty & A.NLA_TYPE_MASK)
            netbo = bool(ty & A.NLA_F_NET_BYTEORDER)
            if dec is None:
                cls = _unknown_class(bo, bool(ty & A.NLA_F_NESTED) and ln > 4)
            elif isinstance(dec, A.SubMessageAttr):
                key = _selected(dec, siblings)
                if key is not None and key not in dec.formats and "*" in dec.formats:
                    key = "*"
                if key is not None and key in dec.formats:
                    cls = attr_class(spec, cset, dec, bo, fmt_key=key)
                else:
                    cls = _unknown_class(bo, False)
            else:
                cls = attr_class(
                    spec,
                    cset,
                    dec,
                    bo,
                    netbo=netbo and isinstance(dec, (A.ScalarAttr, A.VarIntAttr, A.ArrayAttr)),
                )
        _INHERITED.append(inherit)
        try:
            out.append(cls(buf[off:nxt]))
        finally:
            _INHERITED.pop()
        off = nxt
    return out


# Selector values the attribute list being dissected (or built) hands down
# to its nests: set around each child's construction, read by the child.
_INHERITED: list[dict[str, Any] | None] = []


def _inherited() -> dict[str, Any] | None:
    return _INHERITED[-1] if _INHERITED else None


_SPECS_BY_NAME: dict[str, Spec] = {}


def _spec_of(cset: Any) -> Spec | None:
    if cset is None:
        return None
    spec = _SPECS_BY_NAME.get(cset.spec_name)
    if spec is None:
        reg = registry()
        spec = next((s for s in reg.specs if s.name == cset.spec_name), None)
        if spec is not None:
            _SPECS_BY_NAME[cset.spec_name] = spec
    return spec


def _lookup(cset: Any, name: str) -> Any:
    if cset is None:
        raise KeyError(f"no attribute set to look {name!r} up in")
    dec = cset.by_name.get(name) or cset.by_name.get(name.replace("_", "-"))
    if dec is None:
        up = name.upper()
        dec = next((d for d in cset.by_type.values() if d.name == up), None)
    if dec is None:
        known = ", ".join(sorted(cset.by_name))
        raise KeyError(f"{cset.name} has no attribute {name!r}; it has: {known}")
    return dec


def to_attrs(cset: Any, value: Any, bo: str, known: dict[str, Any] | None) -> list[Packet]:
    """Attribute layers from a convenient Python value: a list of layers, a
    dict ``{name: value}`` or a list of ``(name, value)`` pairs.  A list of
    values for a non-list attribute gives the attribute several times."""
    if value is None:
        return []
    if isinstance(value, Packet):
        return [value]
    items = list(value.items()) if isinstance(value, dict) else list(value)
    if cset is None:  # no attribute set: only layers can be given
        layers = [it for it in items if isinstance(it, Packet)]
        if len(layers) != len(items):
            raise ValueError(f"no attribute set to look {items!r} up in; give layers")
        return layers
    spec = _spec_of(cset)
    siblings = {k: v for k, v in (known or {}).items() if k not in cset.by_name}
    pairs = [it for it in items if not isinstance(it, Packet)]
    for name, v in pairs:
        dec = _lookup(cset, name)
        if dec.spec_name in cset.selectors and not isinstance(v, (list, Packet)):
            siblings[dec.spec_name] = _python_selector(dec, v)
    out: list[Packet] = []
    for it in items:
        if isinstance(it, Packet):
            out.append(it)
            continue
        name, v = it
        dec = _lookup(cset, name)
        cls: type[NlAttr]
        if isinstance(dec, A.SubMessageAttr):
            key = _selected(dec, siblings)
            if key is not None and key not in dec.formats and "*" in dec.formats:
                key = "*"
            if key is None or key not in dec.formats:
                raise ValueError(
                    f"{dec.name}: cannot choose its format: selector {' or '.join(dec.selectors)} is "
                    f"{key!r}; give it, or build the attribute with {dec.name}.kind(...)"
                )
            cls = attr_class(spec, cset, dec, bo, fmt_key=key)
        else:
            cls = attr_class(spec, cset, dec, bo)
        # A list is the attribute repeated, except for kinds whose value is a
        # list, and struct attributes the spec calls arrays (a struct's run
        # the spec does not mark is given as a list inside the list).
        multi = isinstance(v, list) and (
            cls._nl_kind not in ("nest", "indexed", "array", "submsg", "records")
            or (v and all(isinstance(x, dict) for x in v) and cls._nl_kind == "nest")
        )
        if multi and cls._nl_kind == "struct" and getattr(dec, "array", False):
            multi = False
        _INHERITED.append(siblings)  # nests below choose formats by these too
        try:
            for one in v if multi else [v]:
                out.append(_attr_from_value(cls, one))
        finally:
            _INHERITED.pop()
    return out


def _attr_from_value(cls: type[NlAttr], one: Any) -> NlAttr:
    if cls._nl_kind == "flag":
        return cls()
    if cls._nl_kind == "bitfield32" and isinstance(one, (tuple, dict)):
        val, sel = one if isinstance(one, tuple) else (one["value"], one["selector"])
        return cls(value=val, selector=sel)
    if cls._nl_header is not None and isinstance(one, dict) and "header" in one:
        return cls(header=one["header"], value=one.get("attrs", []))
    return cls(value=one)


def _python_selector(dec: Any, v: Any) -> str:
    if isinstance(v, bytes):
        v = v.decode("utf-8", "backslashreplace")
    if isinstance(v, str):
        names = dec.enum_names or {}
        if v in names.values():
            return v
        for n in names.values():
            if c_name("", n) == v.upper().replace("-", "_") or v.upper().endswith(
                "_" + c_name("", n)
            ):
                return n
        return v
    return dec.selector_key(int(v))


def _indexed_items(cls: type[NlAttr], value: Any) -> list[Packet]:
    if value is None:
        return []
    out: list[Packet] = []
    for i, v in enumerate(value):
        if isinstance(v, Packet):
            out.append(v)
            continue
        index = i
        if isinstance(v, tuple) and len(v) == 2:  # (index, value)
            index, v = v
        ecls = cls._nl_pick(index)
        out.append(ecls(nla_type=index, value=v))
    return out


# ---------------------------------------------------------------------------
# Message bodies


class NlBody(_NlPacket):
    """The body of one netlink message (after struct nlmsghdr)."""

    name = "netlink body"
    _nl_spec: Spec | None = None
    _nl_op: Any = None
    _nl_role = "request"
    _nl_type: int | None = None  # nlmsg_type (netlink-raw) or genl command
    _nl_protocol: int | None = None
    _nl_genl = False
    _nl_header_fields: list[Any] = []
    _nl_layout: A.StructLayout | None = None  # the fixed header
    _nl_selector_alias: tuple[str, str] | None = None
    _nl_format: str | None = None  # the sub-message format of this layer
    _nl_selector_field: str | None = None  # its field that names the format
    _nl_cset: Any = None
    _nl_trailer: Any = None  # a StrLenField for bytes counted by a header member
    _nl_bo = HOST_BO
    _nl_blen: int | None = None
    fields_desc = [NlBytesField("data", b""), NlPadField("nlmsg_pad", None)]

    def __init__(self, _pkt: Any = b"", *args: Any, **kw: Any) -> None:
        alias = self._nl_selector_alias
        if alias is not None and alias[0] in kw:
            kw.setdefault(alias[1], kw.pop(alias[0]))
        attrs_kw: list[tuple[str, Any]] = []
        if self._nl_cset is not None:
            for k in list(kw):
                if not k.startswith("_") and k not in self.fieldtype_names():
                    attrs_kw.append((k, kw.pop(k)))
        if "attrs" in kw and self._nl_cset is not None:
            kw["attrs"] = to_attrs(self._nl_cset, kw["attrs"], self._nl_bo, self._known_kw(kw))
        super().__init__(_pkt, *args, **kw)
        if attrs_kw:
            known = self._known_kw({f: self.getfieldval(f) for f in self.fieldtype_names()})
            self.attrs = list(self.getfieldval("attrs") or []) + to_attrs(
                self._nl_cset, attrs_kw, self._nl_bo, known
            )

    @classmethod
    def fieldtype_names(cls) -> set[str]:
        return {f.name for f in cls.fields_desc}

    @classmethod
    def _known_kw(cls, values: dict[str, Any]) -> dict[str, Any]:
        cset = cls._nl_cset
        out: dict[str, Any] = {}
        if cset is None or not cset.selectors:
            return out
        for f in cls._nl_header_fields:
            key = f.name.replace("_", "-")
            if key in cset.selectors and values.get(f.name) is not None:
                v = values[f.name]
                if isinstance(v, str):
                    v = f.any2i(None, v)
                short = getattr(f.fmt_value, "short", None)
                out[key] = short(v) if short is not None else str(v)
        return out

    def do_dissect(self, s: bytes) -> bytes:
        f = self.fields
        fields = self._nl_header_fields
        rest, complete = _dissect_members(self, fields, s)
        hsize = sum(_field_size(x) for x in fields) - (4 if self._nl_genl else 0)
        if not complete:
            f["extra"] = rest
            if "attrs" in self.fieldtype:
                f["attrs"] = []
            if "hpad" in self.fieldtype:
                f["hpad"] = b""
            return b""
        if "hpad" in self.fieldtype:
            gap = min(_align(hsize) - hsize, len(rest))
            f["hpad"], rest = rest[:gap], rest[gap:]
        trailer = self._nl_trailer
        if trailer is not None:
            rest, f[trailer.name] = trailer.getfield(self, rest)
        if "attrs" in self.fieldtype:
            known = self._known_kw(f)
            f["attrs"] = parse_attrs(rest, self._nl_cset, self._nl_bo, known)
            f["extra"] = b""
        else:
            f["extra"] = rest
        return b""

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        object.__setattr__(self, "_nl_blen", len(p) - getattr(self, "_nl_padded", 0))
        return p + pay

    def mysummary(self) -> str:
        """The message type and its first few plain attributes."""
        parts = [str(self.name)]
        for a in (self.getfieldval("attrs") if "attrs" in self.fieldtype else None) or []:
            if len(parts) > 4:
                break
            kind = getattr(a, "_nl_kind", None)
            if a._nl_dec is not None and kind in ("int", "varint", "string"):
                v = a.getfieldval("value")
                shown = a.fieldtype["value"].i2repr(a, v)
                parts.append(f"{a._nl_dec.spec_name}={shown}")
        return " ".join(parts)

    def attr(self, name: str) -> Any:
        """The first attribute named `name` (spec or constant name), or None."""
        return find_attr(self.getfieldval("attrs") or [], name)


def find_attr(attrs: list[Packet], name: str) -> Any:
    up = name.upper().replace("-", "_")
    for a in attrs:
        dec = getattr(a, "_nl_dec", None)
        if dec is not None and (
            dec.spec_name == name or dec.spec_name == name.replace("_", "-") or dec.name == up
        ):
            return a
    return None


_BODIES: dict[tuple[Any, ...], type[NlBody]] = {}


def body_class(
    spec: Spec, op: Any, role: str, bo: str = HOST_BO, fmt: str | None = None
) -> type[NlBody]:
    """The body layer of operation `op` of `spec` in direction `role`
    (``request``, ``reply`` or ``event``).

    An operation whose body a fixed-header member selects (``sub-message``
    + ``selector``: SOCK_DIAG_BY_FAMILY by sdiag_family) gives an
    `NlSelectedBody` that becomes the layer of format `fmt` (``inet``) on
    dissection and building; ``fmt`` names that format's layer directly.
    A body a Python hook decodes is made from the hook module's declared
    layout (`dissect.scapy.hookbodies`)."""
    key = (id(spec), id(op), role, bo, fmt)
    cls = _BODIES.get(key)
    if cls is not None:
        return cls
    reg = registry()
    comp = reg.compiler(spec, bo)
    header = comp.struct_layout(op.fixed_header) if op.fixed_header else None
    cset = comp.attr_set(op.attribute_set) if op.attribute_set else None
    formats = spec.sub_messages.get(op.sub_message or "") if op.selector else None
    selected: dict[str, Any] = {}
    if formats and header is not None and fmt is None:
        member = next((m for m in header.members if m.name == field_name(op.selector)), None)
        if member is not None and member.kind == "int":
            selected = {"_nl_formats": formats, "_nl_selector": member}
    elif formats and fmt is not None:
        chosen = formats[fmt]
        prefix = header
        header = comp.struct_layout(chosen.fixed_header) if chosen.fixed_header else None
        cset = comp.attr_set(chosen.attribute_set) if chosen.attribute_set else None
        selected = {"_nl_format": fmt, "_nl_prefix": prefix}
    number = owned_number(spec, op, role)
    values: set[int] = getattr(op, _ROLE_VALUES[role])
    if number is None and values:
        number = min(values)  # shared with an earlier operation, which it reads as
    hfields: list[Any] = []
    if spec.is_genl:
        cmd_names: dict[int, str] = {}
        for o in spec.operations:
            for r, vals in (("request", o.requests), ("reply", o.replies), ("event", o.events)):
                if (
                    r == role
                    or (r == "event" and role == "reply")
                    or (r == "reply" and role == "event")
                ):
                    for v in vals:
                        cmd_names.setdefault(v, _op_const(spec, o, r))
        hfields += [
            NlIntField("cmd", number or 0, "B", cmd_names),
            NlIntField("version", 1, "B"),
            NlIntField("reserved", 0, bo + "H"),
        ]
    if header is not None:
        hfields += _member_fields(spec, header)
    fields = list(hfields)
    hsize = header.size if header is not None else 0
    if hsize % 4:
        fields.append(NlPadField("hpad", None))
    trailer = None
    if header is not None and header.trailer is not None:
        # bytes after the header counted by one of its members (struct
        # nduseroptmsg's options), as the dissector reads them
        t = header.trailer
        count, scale = pyname(t.length), t.scale
        trailer = StrLenField(
            pyname(t.name),
            b"",
            length_from=lambda pkt: min(int(pkt.getfieldval(count) or 0) * scale, 1 << 20),
        )
        fields.append(trailer)
    if cset is not None:
        fields.append(NlAttrListField("attrs"))
    fields += [NlBytesField("extra", b""), NlPadField("nlmsg_pad", None)]
    if spec.is_genl:
        from ..schema.registry import _genl_name

        title = _genl_name(spec, op, role, number or 0)
    else:
        # as the registry names them: by the protocol's type names, else
        # after the operation whose request (else notification) has this number
        names = C.TYPE_NAMES_BY_PROTOCOL.get(spec.protonum or 0, {})
        owner = next(
            (o for o in spec.operations if number in o.requests),
            next((o for o in spec.operations if number in o.events), op),
        )
        title = names.get(number or 0) or _op_const(spec, owner, "request")
        if owner.ranged and (number or 0) not in names:
            title = f"{title} {number}"  # AUDIT_USER_MSG 1100, as the registry names it
    if op.hook:
        from .hookbodies import hook_body_class

        hooked = hook_body_class(spec, op, role, bo, title, number)
        if hooked is not None:
            _BODIES[key] = hooked
            return hooked
    if selected.get("_nl_format") is not None:
        _select_default(spec, hfields, selected, op)
    base: type[NlBody] = NlSelectedBody if "_nl_formats" in selected else NlBody
    cls = type(
        _class_name(spec.name, op.name, role, fmt or "", "be" if bo == ">" else ""),
        (base,),
        {
            "name": title,
            "fields_desc": fields,
            "_nl_spec": spec,
            "_nl_op": op,
            "_nl_role": role,
            "_nl_type": number,
            "_nl_protocol": C.NETLINK_GENERIC if spec.is_genl else spec.protonum,
            "_nl_genl": spec.is_genl,
            "_nl_header_fields": hfields,
            "_nl_layout": header,
            "_nl_trailer": trailer,
            "_nl_cset": cset,
            "_nl_bo": bo,
            "__module__": __name__,
            **selected,
        },
    )
    if base is NlSelectedBody:
        # Scapy only consults a dispatch_hook in the class's own dict
        cls.dispatch_hook = NlSelectedBody.__dict__["dispatch_hook"]  # type: ignore[attr-defined]
    _BODIES[key] = cls
    return cls


def _select_default(spec: Spec, hfields: list[Any], selected: dict[str, Any], op: Any) -> None:
    """In the layer of one format, nested structs default to zeros, the
    member at the selector's place defaults to the value naming the format (``sdiag_family`` = AF_INET for
    ``inet``), and a keyword named after the operation's selector member
    sets it where the format calls it otherwise (``idiag_family``)."""
    for f in hfields:
        if isinstance(f, NlPacketField):
            f.default = f.cls()  # a whole header by default: struct inet_diag_sockid
    prefix = selected["_nl_prefix"]
    sel = next((m for m in prefix.members if m.name == field_name(op.selector)), None)
    if sel is None:
        return
    pos = 0
    for f in hfields:
        if pos == sel.offset and isinstance(f, NlIntField):
            value = _format_number(f, selected["_nl_format"])
            if value is not None:
                f.default = value
            selected["_nl_selector_field"] = f.name
            if f.name != pyname(sel.name):
                selected["_nl_selector_alias"] = (pyname(sel.name), f.name)
            return
        pos += _field_size(f)


def _format_number(f: NlIntField, key: str) -> int | None:
    """The value of selector field `f` whose name is format `key`."""
    short = getattr(f.fmt_value, "short", None)
    for v, n in f.names.items():
        if n == key or (short is not None and short(v) == key):
            return v
    try:
        return int(key, 0)
    except ValueError:
        return None


class NlSelectedBody(NlBody):
    """A body whose layout a fixed-header member selects (message-level
    sub-message).  The class itself holds the shared prefix; dissecting
    bytes or building with the selector member given (``sdiag_family=
    "inet"``, or its number) gives the layer of the selected format, as
    ``kind(key)`` does explicitly.  A value no format names stays this
    class: the prefix, then the rest as ``extra`` (our dissector notes it
    as undecoded too)."""

    _nl_formats: dict[str, Any] = {}
    _nl_selector: Any = None  # the StructMember of the prefix that selects

    @classmethod
    def dispatch_hook(cls, _pkt: Any = None, *args: Any, **kargs: Any) -> Any:
        m = cls._nl_selector
        key: str | None = None
        if _pkt:
            data = bytes(_pkt)
            if m.st is not None and len(data) >= m.offset + m.size:
                key = cls._key_of(m.st.unpack_from(data, m.offset)[0])
        else:
            v = kargs.get(pyname(m.name))
            if v is not None:
                f = next(x for x in cls._nl_header_fields if x.name == pyname(m.name))
                key = cls._key_of(f.any2i(None, v))
        if key is None:
            return cls
        if key not in cls._nl_formats:
            if "*" not in cls._nl_formats:
                return cls
            key = "*"
        return cls.kind(key)

    @classmethod
    def _key_of(cls, value: Any) -> str | None:
        if not isinstance(value, int):
            return None
        short = getattr(cls._nl_selector.fmt, "short", None)
        return str(short(value)) if short is not None else str(value)

    @classmethod
    def kind(cls, key: str) -> type[NlBody]:
        """The layer of format `key` (``"inet"``)."""
        if key not in cls._nl_formats:
            raise KeyError(
                f"{cls.name}: no format {key!r}; known: {', '.join(sorted(cls._nl_formats))}"
            )
        return body_class(cls._nl_spec, cls._nl_op, cls._nl_role, cls._nl_bo, key)  # type: ignore[arg-type]

    @classmethod
    def format_keys(cls) -> list[str]:
        return sorted(cls._nl_formats)


_ROLE_VALUES = {"request": "requests", "reply": "replies", "event": "events"}


def owned_number(spec: Spec, op: Any, role: str) -> int | None:
    """The message type (or command) that builds `op` in direction `role`:
    the lowest of its numbers no earlier operation of the spec claims in
    that direction (the registry gives a shared number to the first one:
    devlink's port-new and port-get replies).  None if it has none of its
    own."""
    values: set[int] = getattr(op, _ROLE_VALUES[role])
    claimed: set[int] = set()
    for o in spec.operations:
        if o is op:
            break
        claimed |= getattr(o, _ROLE_VALUES[role])
    own = sorted(values - claimed)
    return own[0] if own else None


def _op_const(spec: Spec, op: Any, role: str) -> str:
    name = c_name(op.name_prefix or spec.op_prefix, op.name)
    if spec.is_genl and role == "reply" and spec.directional:
        return name + "_REPLY"
    return name


def _simple_body(name: str, fields: list[Any], bo: str, base: type = NlBody, **attrs: Any) -> type:
    return type(
        _class_name(name, "be" if bo == ">" else ""),
        (base,),
        {"name": name, "fields_desc": fields, "_nl_bo": bo, "__module__": __name__, **attrs},
    )


class NlRawBody(NlBody):
    """A body no schema describes: its bytes."""

    def do_dissect(self, s: bytes) -> bytes:
        self.fields["data"] = s
        return b""


_CACHE: dict[Any, Any] = {}


def raw_body_class(bo: str = HOST_BO) -> type[NlBody]:
    key = ("raw", bo)
    if key not in _CACHE:
        _CACHE[key] = _simple_body(
            "netlink data",
            [NlBytesField("data", b""), NlPadField("nlmsg_pad", None)],
            bo,
            NlRawBody,
        )
    return _CACHE[key]  # type: ignore[no-any-return]


class NlGenlUnknown(NlBody):
    """A generic netlink message of a family we cannot name: genlmsghdr and
    attributes of unknown types."""

    def do_dissect(self, s: bytes) -> bytes:
        rest, complete = _dissect_members(self, self._nl_header_fields, s)
        self.fields["attrs"] = parse_attrs(rest, None, self._nl_bo) if complete else []
        self.fields["extra"] = b"" if complete else rest
        return b""


def genl_unknown_class(bo: str = HOST_BO) -> type[NlBody]:
    key = ("genl?", bo)
    if key not in _CACHE:
        hf = [
            NlIntField("cmd", 0, "B"),
            NlIntField("version", 1, "B"),
            NlIntField("reserved", 0, bo + "H"),
        ]
        _CACHE[key] = _simple_body(
            "generic netlink (unnamed family)",
            [
                *hf,
                NlAttrListField("attrs"),
                NlBytesField("extra", b""),
                NlPadField("nlmsg_pad", None),
            ],
            bo,
            NlGenlUnknown,
            _nl_header_fields=hf,
            _nl_genl=True,
            _nl_protocol=C.NETLINK_GENERIC,
        )
    return _CACHE[key]  # type: ignore[no-any-return]


class NlMsgErr(NlBody):
    """NLMSG_ERROR (struct nlmsgerr): errno, the echoed request (its header
    only with NLM_F_CAPPED) and extended-ACK attributes (NLM_F_ACK_TLVS)."""

    _nl_type = C.NLMSG_ERROR
    _nl_role = "reply"

    def do_dissect(self, s: bytes) -> bytes:
        f = self.fields
        bo = self._nl_bo
        for k in ("request", "echo_pad"):
            f[k] = None
        f["ext_attrs"] = []
        if len(s) < 4:
            f["error"], f["extra"] = None, s
            return b""
        f["error"] = struct.unpack_from(bo + "i", s)[0]
        rest = s[4:]
        if len(rest) < 16:
            f["extra"] = rest
            return b""
        outer = self.underlayer
        capped = bool(
            outer is not None and (outer.getfieldval("nlmsg_flags") or 0) & C.NLM_F_CAPPED
        )
        ln = struct.unpack_from(bo + "I", rest)[0]
        echo_len = 16 if capped else max(16, min(ln, len(rest)))
        f["request"] = netlink_class(bo)(
            rest[:echo_len], protocol=_protocol_of(outer), context=_context_of(outer), echo=True
        )
        end = min(_align(echo_len), len(rest))
        f["echo_pad"] = rest[echo_len:end]
        tail = rest[end:]
        cset = registry().core_set("nlmsgerr", "nlmsgerr-attrs", "netlink.extack", bo)
        f["ext_attrs"] = parse_attrs(tail, cset, bo) if tail else []
        f["extra"] = b""
        return b""

    def mysummary(self) -> str:
        return _status_summary(self, "ACK")


def _error_fields(bo: str, echo: bool) -> list[Any]:
    fields: list[Any] = [NlIntField("error", 0, bo + "i", None, errno_fmt)]
    if echo:
        fields += [
            NlPacketField("request", lambda: netlink_class(bo)),
            NlPadField("echo_pad", None),
        ]
    return [
        *fields,
        NlAttrListField("ext_attrs"),
        NlBytesField("extra", b""),
        NlPadField("nlmsg_pad", None),
    ]


class NlMsgDone(NlBody):
    """NLMSG_DONE: the dump's status (an int) and extended-ACK attributes."""

    _nl_type = C.NLMSG_DONE
    _nl_role = "reply"

    def do_dissect(self, s: bytes) -> bytes:
        f = self.fields
        f["ext_attrs"] = []
        if len(s) < 4:
            f["error"], f["extra"] = None, s
            return b""
        f["error"] = struct.unpack_from(self._nl_bo + "i", s)[0]
        cset = registry().core_set("nlmsgerr", "nlmsgerr-attrs", "netlink.extack", self._nl_bo)
        f["ext_attrs"] = parse_attrs(s[4:], cset, self._nl_bo)
        f["extra"] = b""
        return b""

    def mysummary(self) -> str:
        return _status_summary(self, "NLMSG_DONE")


def _status_summary(body: Packet, ok: str) -> str:
    """``NLMSG_ERROR -22 EINVAL "message"``, or `ok` for a zero status."""
    code = body.getfieldval("error")
    if not isinstance(code, int):
        return str(body.name)
    if code == 0 and ok == "ACK":
        text = f"{body.name} ACK"
    else:
        text = f"{body.name} {code}" + (f" {errno_name(code)}" if code < 0 else "")
    for a in body.getfieldval("ext_attrs") or []:
        if getattr(a._nl_dec, "spec_name", None) == "msg":
            text += f" {a.fieldtype['value'].i2repr(a, a.getfieldval('value'))}"
    return text


def error_class(bo: str = HOST_BO) -> type[NlBody]:
    key = ("error", bo)
    if key not in _CACHE:
        _CACHE[key] = _simple_body("NLMSG_ERROR", _error_fields(bo, True), bo, NlMsgErr)
    return _CACHE[key]  # type: ignore[no-any-return]


def done_class(bo: str = HOST_BO) -> type[NlBody]:
    key = ("done", bo)
    if key not in _CACHE:
        _CACHE[key] = _simple_body("NLMSG_DONE", _error_fields(bo, False), bo, NlMsgDone)
    return _CACHE[key]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# struct nlmsghdr


def _protocol_of(pkt: Any) -> int:
    p = pkt
    while p is not None:
        proto = getattr(p, "_nl_proto_value", None)
        if proto is not None:
            return int(proto)
        if isinstance(p, (CookedLinux, NetlinkCooked)):
            v = p.getfieldval("proto" if isinstance(p, CookedLinux) else "protocol")
            return int(v or 0)
        p = p.underlayer
    return 0


def _context_of(pkt: Any) -> NetlinkContext:
    p = pkt
    while p is not None:
        ctx = getattr(p, "_nl_ctx", None)
        if ctx is not None:
            return ctx  # type: ignore[no-any-return]
        p = p.underlayer
    return current_context()


def _type_name(pkt: Any, x: int) -> str | None:
    """The name of message type `x` of header `pkt`: from its body, else
    from the protocol's type names or the generic netlink family."""
    if x in C.CONTROL_TYPES:
        return C.CONTROL_TYPES[x]
    body = pkt.payload if pkt is not None else None
    if isinstance(body, NlBody) and body._nl_spec is not None:
        return body._nl_spec.name if body._nl_genl else str(body.name)
    if pkt is None:
        return None
    proto = pkt.protocol
    if proto == C.NETLINK_GENERIC:
        return pkt.context.genl_name(x)
    return C.TYPE_NAMES_BY_PROTOCOL.get(proto, {}).get(x)


class NlFlagsField(NlIntField):
    """nlmsg_flags: names for the upper bits depend on the kind of request
    (include/uapi/linux/netlink.h: NLM_F_ROOT vs NLM_F_REPLACE ...)."""

    def __init__(self, name: str, fmt: str) -> None:
        NlIntField.__init__(self, name, None, fmt, ALL_FLAG_NAMES, None, True)
        self.by_name.update(_FLAG_ALIASES)
        self.by_name.update({k.lower(): v for k, v in _FLAG_ALIASES.items()})

    def i2repr(self, pkt: Any, x: Any) -> str:
        if not isinstance(x, int):
            return repr(x)
        from ..core.netlink import flags_formatter

        t = pkt.getfieldval("nlmsg_type") if pkt is not None else None
        control = t if isinstance(t, int) and t < C.NLMSG_MIN_TYPE else None
        body = pkt.payload if pkt is not None else None
        kind = None
        if isinstance(body, NlBody) and body._nl_op is not None:
            kind = C.type_kind(body.name)
        elif isinstance(t, int) and control is None:
            kind = C.type_kind(_type_name(pkt, t) or "")
        return str(flags_formatter(kind, control)(x))


class NlTypeField(NlIntField):
    """nlmsg_type, shown by the name of the message type (or genl family)."""

    def __init__(self, name: str, fmt: str) -> None:
        names = dict(C.CONTROL_TYPES)
        for table in C.TYPE_NAMES_BY_PROTOCOL.values():
            names.update(table)
        NlIntField.__init__(self, name, None, fmt, names)

    def any2i(self, pkt: Any, x: Any) -> Any:
        """A type by name (``RTM_GETLINK``) or a generic netlink family
        by name (``"nl80211"``, its id from the packet's context)."""
        if isinstance(x, str) and x not in self.by_name and pkt is not None:
            try:
                return pkt.context.genl_id(x)
            except ValueError:
                pass
        return super().any2i(pkt, x)

    def i2repr(self, pkt: Any, x: Any) -> str:
        if not isinstance(x, int):
            return repr(x)
        name = _type_name(pkt, x)
        return f"{name} ({x})" if name else repr(x)


class Netlink(Packet):
    """struct nlmsghdr (include/uapi/linux/netlink.h), host byte order.

    ``Netlink(data, protocol=0)`` dissects `data` as messages of that
    netlink protocol; ``Netlink(...) / body`` builds one.
    """

    name = "Netlink"
    _nl_bo = HOST_BO
    fields_desc = [
        NlIntField("nlmsg_len", None, HOST_BO + "I"),
        NlTypeField("nlmsg_type", HOST_BO + "H"),
        NlFlagsField("nlmsg_flags", HOST_BO + "H"),
        NlIntField("nlmsg_seq", 0, HOST_BO + "I"),
        NlIntField("nlmsg_pid", 0, HOST_BO + "I"),
    ]

    def __init__(
        self,
        _pkt: Any = b"",
        *args: Any,
        protocol: int | None = None,
        context: NetlinkContext | None = None,
        genl: dict[Any, Any] | None = None,
        echo: bool = False,
        **kw: Any,
    ) -> None:
        under = kw.get("_underlayer")
        if protocol is None and under is not None:
            protocol = _protocol_of(under)
        if context is None and under is not None:
            context = _context_of(under)
        if genl:
            context = NetlinkContext(genl, host=(context or current_context()).host)
            base = context or current_context()
            context.names.update(base.names)
        object.__setattr__(self, "_nl_proto_value", protocol)
        object.__setattr__(self, "_nl_ctx", context)
        object.__setattr__(self, "_nl_echo", echo)
        super().__init__(_pkt, *args, **kw)

    @classmethod
    def dispatch_hook(cls, _pkt: Any = None, *args: Any, **kargs: Any) -> Any:
        if _pkt and len(_pkt) < 16:
            return NlTrailer  # too short for a header: kept as bytes
        if cls is Netlink and _pkt:
            under = kargs.get("_underlayer")
            if not isinstance(under, NlBody):  # later messages of a frame keep the first's order
                return netlink_class(_guess_bo(bytes(_pkt)))
        return cls

    @property
    def context(self) -> NetlinkContext:
        return self._nl_ctx or current_context()

    def _keep_state(self, other: Any) -> Any:
        for k in ("_nl_proto_value", "_nl_ctx", "_nl_echo"):
            object.__setattr__(other, k, getattr(self, k, None))
        return other

    def copy(self) -> Any:
        return self._keep_state(super().copy())

    def clone_with(self, payload: Any = None, **kargs: Any) -> Any:
        return self._keep_state(super().clone_with(payload, **kargs))

    @property
    def protocol(self) -> int:
        if self._nl_proto_value is not None:
            return int(self._nl_proto_value)
        body = self.payload
        if isinstance(body, NlBody) and body._nl_protocol is not None:
            return int(body._nl_protocol)
        return _protocol_of(self.underlayer)

    # -- dissection -----------------------------------------------------------
    def do_dissect(self, s: bytes) -> bytes:
        if len(s) < 16:
            for f in self.fields_desc:
                self.fields[f.name] = None
            self.fields["nlmsg_len"] = 0
            return s
        vals = struct.unpack_from(self._nl_bo + "IHHII", s)
        for f, v in zip(self.fields_desc, vals):
            self.fields[f.name] = v
        return s[16:]

    def do_dissect_payload(self, s: bytes) -> None:
        ln = self.fields.get("nlmsg_len") or 0
        if not s:
            if ln == 16 and (self.fields.get("nlmsg_type") or 0) >= C.NLMSG_MIN_TYPE:
                # a body of attributes only, none given (XFRM_MSG_FLUSHPOLICY,
                # a GETPOLICY dump request): still the operation's layer
                cls = self.body_class_for(s)
                if (
                    isinstance(cls, type)
                    and issubclass(cls, NlBody)
                    and cls._nl_layout is None
                    and cls._nl_cset is not None
                    and not cls._nl_genl
                ):
                    self.add_payload(cls(s, _underlayer=self))
            return
        if ln < 16:
            body: Packet = raw_body_class(self._nl_bo)(s)
            self.add_payload(body)
            return
        blen = min(ln - 16, len(s))
        end = min(_align(16 + blen) - 16, len(s))
        cls = self.body_class_for(s[:blen])
        try:
            body = cls(s[:blen], _underlayer=self)
        except Exception:  # a bug in a generated layer must not lose the bytes
            if conf.debug_dissector:
                raise
            body = raw_body_class(self._nl_bo)(s[:blen])
        body.fields["nlmsg_pad"] = s[blen:end]
        self.add_payload(body)
        self._after_body(body)
        rest = s[end:]
        if rest:  # more messages: a batch after this one's body
            body.add_payload(
                NetlinkBatch(rest, protocol=self.protocol, context=self.context, bo=self._nl_bo)
            )

    def body_class_for(self, body: bytes) -> type[Packet]:
        bo = self._nl_bo
        t = self.fields.get("nlmsg_type") or 0
        flags = self.fields.get("nlmsg_flags") or 0
        seq = self.fields.get("nlmsg_seq") or 0
        pid = self.fields.get("nlmsg_pid") or 0
        ctx = self.context
        reg = ctx.registry
        proto = self.protocol
        to_kernel = bool(flags & C.NLM_F_REQUEST)
        if proto not in (C.NETLINK_ROUTE, C.NETLINK_GENERIC) and reg.direction_by_pid(proto):
            # user space sets no NLM_F_REQUEST here, the kernel sends with
            # port id 0 (spec key `direction: pid`, as our Session reads it)
            to_kernel = to_kernel or pid != 0
        claimed = (
            t < C.NLMSG_MIN_TYPE
            and proto not in (C.NETLINK_ROUTE, C.NETLINK_GENERIC)
            and reg.raw_layout(proto, t, to_kernel, bo) is not None
        )  # a family whose spec claims a control number (connector's cn_msg)
        if t == C.NLMSG_ERROR and not claimed:
            return error_class(bo)
        if t == C.NLMSG_DONE and not claimed:
            return done_class(bo)
        if t < C.NLMSG_MIN_TYPE and not claimed:
            return raw_body_class(bo)
        event = not to_kernel and not ctx.answered(proto, seq, pid)
        if proto == C.NETLINK_GENERIC:
            fam = ctx.genl_name(t)
            if fam is None or not body:
                return genl_unknown_class(bo)
            lay = reg.genl_layout(fam, body[0], to_kernel, bo, event=event)
            if to_kernel and not self._nl_echo:
                ctx.remember(proto, seq, t, body[0])
        else:
            lay = reg.raw_layout(
                proto,
                t,
                to_kernel,
                bo,
                C.TYPE_NAMES_BY_PROTOCOL.get(proto),
                event,
                dump=to_kernel and bool(flags & C.NLM_F_DUMP),
            )
            if to_kernel and not self._nl_echo:
                ctx.remember(proto, seq, t, None)
        if lay is None or lay.op is None:
            return genl_unknown_class(bo) if proto == C.NETLINK_GENERIC else raw_body_class(bo)
        return body_class(lay.spec, lay.op, lay.role, bo)

    def _after_body(self, body: Packet) -> None:
        """Learn generic netlink ids from controller messages (like Session)."""
        spec = getattr(body, "_nl_spec", None)
        if spec is None or spec.name != "nlctrl" or body._nl_role == "request":
            return
        fid = body.attr("family-id")
        fname = body.attr("family-name")
        if fid is not None and fname is not None and fid.value is not None:
            name = (
                fname.value.decode("utf-8", "replace")
                if isinstance(fname.value, bytes)
                else str(fname.value)
            )
            self.context.learn(int(fid.value), name)

    # -- building -------------------------------------------------------------
    def post_build(self, p: bytes, pay: bytes) -> bytes:
        bo = self._nl_bo
        body = self.payload
        if self.getfieldval("nlmsg_len") is None:
            blen = getattr(body, "_nl_blen", None)
            if blen is None or not isinstance(body, NlBody):
                blen = len(pay)
            p = struct.pack(bo + "I", (16 + blen) & 0xFFFFFFFF) + p[4:]
        if self.getfieldval("nlmsg_type") is None:
            p = p[:4] + struct.pack(bo + "H", self._type_for(body)) + p[6:]
        if self.getfieldval("nlmsg_flags") is None:
            role = getattr(body, "_nl_role", "reply")
            flags = C.NLM_F_REQUEST if role == "request" and isinstance(body, NlBody) else 0
            p = p[:6] + struct.pack(bo + "H", flags) + p[8:]
        return p + pay

    def _type_for(self, body: Any) -> int:
        if not isinstance(body, NlBody) or (body._nl_type is None and body._nl_spec is None):
            return 0
        if body._nl_genl and body._nl_spec is not None:
            return self.context.genl_id(body._nl_spec.name)
        return int(body._nl_type or 0)

    def mysummary(self) -> str:
        t = self.getfieldval("nlmsg_type")
        flags = self.fieldtype["nlmsg_flags"].i2repr(self, self.getfieldval("nlmsg_flags"))
        return (
            f"Netlink seq={self.getfieldval('nlmsg_seq')} {flags}" if t is not None else "Netlink"
        )


class NlTrailer(_NlPacket):
    """Bytes after a frame's last message: too short for a header, or zeros
    some tools send past nlmsg_len (iproute2 sends its whole buffer)."""

    name = "netlink trailer"
    fields_desc = [NlBytesField("data", b"")]

    def __init__(self, _pkt: Any = b"", *args: Any, **kw: Any) -> None:
        for k in ("protocol", "context", "genl", "echo", "bo"):
            kw.pop(k, None)  # what Netlink would have taken
        super().__init__(_pkt, *args, **kw)

    def do_dissect(self, s: bytes) -> bytes:
        self.fields["data"] = s
        return b""


class NlMsgListField(NlAttrListField):
    """The messages of a batch (several netlink messages in one buffer)."""


class NetlinkBatch(Packet):
    """Several netlink messages in one buffer (a dump's frame, a batch).

    Each element of `msgs` is a complete `Netlink` layer with its body;
    bytes after the last message are an `NlTrailer`.  Kept as a list, not
    as a chain of payloads, so a frame of hundreds of messages neither
    recurses deeply nor rebuilds slowly.
    """

    name = "Netlink messages"
    fields_desc = [NlMsgListField("msgs")]

    def __init__(
        self,
        _pkt: Any = b"",
        *args: Any,
        protocol: int | None = None,
        context: NetlinkContext | None = None,
        bo: str | None = None,
        **kw: Any,
    ) -> None:
        under = kw.get("_underlayer")
        if protocol is None and under is not None:
            protocol = _protocol_of(under)
        object.__setattr__(self, "_nl_proto_value", protocol)
        object.__setattr__(
            self, "_nl_ctx", context or (_context_of(under) if under is not None else None)
        )
        object.__setattr__(self, "_nl_bo_value", bo)
        super().__init__(_pkt, *args, **kw)

    def do_dissect(self, s: bytes) -> bytes:
        self.fields["msgs"] = split_messages(
            s, self._nl_proto_value or 0, self._nl_ctx or current_context(), self._nl_bo_value
        )
        return b""

    def guess_payload_class(self, payload: bytes) -> Any:
        return conf.raw_layer

    def mysummary(self) -> str:
        return f"{len(self.msgs or [])} netlink messages"


def split_messages(
    data: bytes, protocol: int = 0, context: NetlinkContext | None = None, bo: str | None = None
) -> list[Packet]:
    """Dissect a buffer of netlink messages into `Netlink` layers (and an
    `NlTrailer` for bytes after the last one).  Never raises."""
    out: list[Packet] = []
    if not data:
        return out
    bo = bo or _guess_bo(data) if len(data) >= 16 else (bo or HOST_BO)
    cls = netlink_class(bo)
    ctx = context or current_context()
    off = 0
    n = len(data)
    while off < n:
        rest = data[off:]
        if len(rest) < 16 or (rest[:4] == b"\0\0\0\0" and not rest.strip(b"\0")):
            out.append(NlTrailer(rest))
            break
        ln = struct.unpack_from(bo + "I", rest)[0]
        end = n if ln < 16 else min(n, off + _align(ln))
        out.append(cls(data[off:end], protocol=protocol, context=ctx))
        off = end
    return out


class NetlinkFrame(Packet):
    """What follows a link-layer header: one `Netlink` message, or a
    `NetlinkBatch` when the buffer holds several (chosen on dissection)."""

    @classmethod
    def dispatch_hook(cls, _pkt: Any = None, *args: Any, **kargs: Any) -> Any:
        under = kargs.get("_underlayer")
        if under is not None:
            from .hookbodies import form_class

            # frames a spec's frame-hook decodes carry no nlmsghdr (uevents)
            frame = form_class(_protocol_of(under))
            if frame is not None:
                return frame.dispatch_hook(_pkt)  # the form the bytes have
        if not _pkt or len(_pkt) < 16:
            return NlTrailer
        data = bytes(_pkt)
        bo = _guess_bo(data)
        ln = struct.unpack_from(bo + "I", data)[0]
        if ln >= 16 and _align(ln) < len(data):
            return NetlinkBatch
        return netlink_class(bo)


_NETLINK: dict[str, type[Netlink]] = {HOST_BO: Netlink}


def netlink_class(bo: str = HOST_BO) -> type[Netlink]:
    """`Netlink` with the headers in byte order `bo` (``<`` or ``>``)."""
    cls = _NETLINK.get(bo)
    if cls is None:
        cls = _NETLINK[bo] = type(  # type: ignore[assignment]
            "NetlinkBE" if bo == ">" else "NetlinkLE",
            (Netlink,),
            {
                "_nl_bo": bo,
                "fields_desc": [
                    NlIntField("nlmsg_len", None, bo + "I"),
                    NlTypeField("nlmsg_type", bo + "H"),
                    NlFlagsField("nlmsg_flags", bo + "H"),
                    NlIntField("nlmsg_seq", 0, bo + "I"),
                    NlIntField("nlmsg_pid", 0, bo + "I"),
                ],
                "__module__": __name__,
            },
        )
    return cls  # type: ignore[return-value]


def _guess_bo(data: bytes) -> str:
    """The byte order that makes the first nlmsg_len fit (as our Session)."""
    le = struct.unpack_from("<I", data)[0]
    be = struct.unpack_from(">I", data)[0]
    avail = len(data)
    le_ok, be_ok = 16 <= le <= avail, 16 <= be <= avail
    if le_ok != be_ok:
        return "<" if le_ok else ">"
    if le_ok and be_ok:
        return "<" if abs(avail - le) <= abs(avail - be) else ">"
    return HOST_BO


# ---------------------------------------------------------------------------
# Link-layer header


class NetlinkCooked(Packet):
    """LINKTYPE_NETLINK (253) pseudo-header, big-endian; nlmon fills
    pkttype 4 (PACKET_OUTGOING) for both directions, ARPHRD_NETLINK (824)
    and the netlink protocol number."""

    name = "Netlink cooked header"
    fields_desc = [
        NlIntField("pkttype", 4, ">H", PKTTYPES),
        NlIntField("arphrd", 824, ">H"),
        NlIntField("addr_len", 0, ">H"),
        NlFixedBytesField("addr", 8),
        NlIntField("protocol", None, ">H", {k: f"NETLINK_{v}" for k, v in C.PROTOCOLS.items()}),
    ]

    def guess_payload_class(self, payload: bytes) -> Any:
        return NetlinkFrame

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        if self.getfieldval("protocol") is None:
            proto = 0
            msg = self.payload
            if isinstance(msg, NetlinkBatch) and msg.msgs:
                msg = msg.msgs[0]
            if isinstance(msg, Netlink) or hasattr(msg, "_nl_frame"):
                proto = msg.protocol
            p = p[:14] + struct.pack(">H", proto)
        return p + pay


def _register() -> None:
    """LINKTYPE_NETLINK (253) and Linux cooked captures (113, 276) carrying
    ARPHRD_NETLINK (824) dissect as netlink."""
    conf.l2types.register(253, NetlinkCooked)
    for lower in (CookedLinux, CookedLinuxV2):
        entry = ({"lladdrtype": 824}, NetlinkFrame)
        if entry not in lower.payload_guess:
            lower.payload_guess.insert(0, entry)


_register()


# ---------------------------------------------------------------------------
# Families: the user-facing namespaces


class SetNamespace:
    """The attributes of one attribute set: ``ns.ifname`` is a layer class."""

    def __init__(self, spec: Spec, cset: Any, bo: str) -> None:
        self._spec = spec
        self._cset = cset
        self._bo = bo

    def __getattr__(self, name: str) -> type[NlAttr]:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            dec = _lookup(self._cset, name)
        except KeyError as exc:
            raise AttributeError(str(exc)) from None
        return attr_class(self._spec, self._cset, dec, self._bo)

    def __call__(self, name: str, value: Any = None) -> list[Packet]:
        return to_attrs(self._cset, [(name, value)], self._bo, None)

    def __dir__(self) -> list[str]:
        return sorted(field_name(n) for n in self._cset.by_name)

    def __repr__(self) -> str:
        return f"<attribute set {self._cset.name} of {self._spec.name}>"


class OpNamespace:
    """One operation: ``op.request``/``op.reply``/``op.event`` are the body
    classes; calling the namespace builds a request (or the only role).

    A spec may declare one name twice with different roles (rt-mdb's newmdb
    request carries other attributes than its notification); each role is
    taken from the declaration that has it."""

    def __init__(self, spec: Spec, op: Any, bo: str, *more: Any) -> None:
        self._spec = spec
        self._op = op
        self._ops = (op, *more)
        self._bo = bo

    def _owner(self, role: str) -> Any:
        return next((o for o in self._ops if getattr(o, _ROLE_VALUES[role])), None)

    def _role(self, role: str) -> type[NlBody]:
        op = self._owner(role)
        if op is None:
            raise AttributeError(f"{self._op.name} has no {role}")
        return body_class(self._spec, op, role, self._bo)

    @property
    def request(self) -> type[NlBody]:
        return self._role("request")

    @property
    def reply(self) -> type[NlBody]:
        return self._role("reply")

    @property
    def event(self) -> type[NlBody]:
        return self._role("event")

    def roles(self) -> list[str]:
        return [r for r in ("request", "reply", "event") if self._owner(r) is not None]

    def __call__(self, *args: Any, **kw: Any) -> NlBody:
        roles = self.roles()
        if not roles:
            raise TypeError(f"{self._op.name} has no message type")
        return self._role(roles[0])(*args, **kw)

    def __repr__(self) -> str:
        return f"<operation {self._op.name} of {self._spec.name}: {', '.join(self.roles())}>"


class Family:
    """The layers of one family: ``rt = family("rt-link")``;
    ``rt.newlink(...)`` (an operation), ``rt.link_attrs.ifname`` (an
    attribute class), ``rt.struct("ifinfomsg")`` (a struct class)."""

    def __init__(self, spec: Spec, bo: str = HOST_BO) -> None:
        self.spec = spec
        self.bo = bo

    @property
    def protocol(self) -> int:
        return C.NETLINK_GENERIC if self.spec.is_genl else int(self.spec.protonum or 0)

    def op(self, name: str) -> OpNamespace:
        want = name.replace("_", "-")
        ops = [
            o
            for o in self.spec.operations
            if o.name == name or o.name == want or o.name.replace("-", "") == name.replace("_", "")
        ]
        if ops:
            return OpNamespace(self.spec, ops[0], self.bo, *ops[1:])
        raise AttributeError(f"{self.spec.name} has no operation {name!r}")

    def attrs(self, name: str) -> SetNamespace:
        want = name.replace("_", "-")
        for n in (name, want):
            if n in self.spec.attr_sets:
                cset = registry().compiler(self.spec, self.bo).attr_set(n)
                return SetNamespace(self.spec, cset, self.bo)
        raise AttributeError(f"{self.spec.name} has no attribute set {name!r}")

    @property
    def frame(self) -> Any:
        """The frame layer of a family whose frames are not netlink
        messages (``frame-hook``: kobject-uevent); ``frame.form("udev")``
        is the layer of one form."""
        from .hookbodies import form_class

        cls = form_class(self.protocol, None, self.bo)
        if cls is None:
            raise AttributeError(f"{self.spec.name} has no frame layer")
        return cls

    def struct(self, name: str) -> type[NlStruct]:
        lay = registry().compiler(self.spec, self.bo).struct_layout(name.replace("_", "-"))
        if lay is None:
            lay = registry().compiler(self.spec, self.bo).struct_layout(name)
        if lay is None:
            raise AttributeError(f"{self.spec.name} has no struct {name!r}")
        return struct_class(self.spec, lay)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.op(name)
        except AttributeError:
            return self.attrs(name)

    def __dir__(self) -> list[str]:
        return sorted(
            {field_name(o.name) for o in self.spec.operations}
            | {field_name(s) for s in self.spec.attr_sets}
            | {"op", "attrs", "struct", "spec", "protocol"}
        )

    def __repr__(self) -> str:
        return f"<family {self.spec.name}>"


_FAMILIES: dict[tuple[str, str], Family] = {}


def family(name: str, bo: str = HOST_BO) -> Family:
    """The generated layers of family `name` (``rt-link``, ``nl80211``)."""
    key = (name, bo)
    fam = _FAMILIES.get(key)
    if fam is None:
        reg = registry()
        spec = reg.genl_spec(name)
        if spec is None:
            spec = next(
                (s for s in reg.specs if s.name == name and s.protocol != "netlink-core"), None
            )
        if spec is None:
            known = ", ".join(sorted(s.name for s in reg.specs if s.protocol != "netlink-core"))
            raise KeyError(f"no family {name!r}; known: {known}")
        fam = _FAMILIES[key] = Family(spec, bo)
    return fam


def families() -> list[str]:
    """Names of every family in the registry."""
    return sorted(s.name for s in registry().specs if s.protocol != "netlink-core")


def iter_layers(pkt: Any) -> Any:
    """Every layer of a packet: payloads, batch messages, attributes,
    structs and echoed requests, depth first."""
    stack = [pkt]
    while stack:
        p = stack.pop()
        if p is None or isinstance(p, NoPayload) or not isinstance(p, Packet):
            continue
        yield p
        kids: list[Any] = [p.payload]
        for f in p.fields_desc:
            v = p.fields.get(f.name)
            if isinstance(v, Packet):
                kids.append(v)
            elif isinstance(v, list):
                kids.extend(x for x in v if isinstance(x, Packet))
        stack.extend(reversed(kids))
