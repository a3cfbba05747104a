"""Scapy layers for the bodies Python hooks decode, from their declared layouts.

A hook module (plugins/audit.py, connector.py, uevent.py) declares the
layout of what its hooks decode (``BODIES``, in the vocabulary of
`dissect.schema.bodies`).  Here each layout becomes a layer class whose
fields are the layout's items, read and written by one small codec:

- integers (arrays padded with zeros to their count when built), fixed
  strings, constant marks;
- text up to a NUL (``<name>_nul`` holds the NUL when there is one);
- ``KEY=VALUE\\0`` properties, held as the list of the strings between the
  NULs so every byte rebuilds (built from a dict or ``(key, value)`` pairs);
- strings counted by an array member, bytes up to the end;
- a part whose layout the values before it select (`Choice`): a nested
  layer of the selected case, or bytes when no case fits.

Members that hold a length or an offset (``length_of``/``offset_of``) are
computed when built unless given; a case's ``implies`` fills the members
that select it.  Whatever dissection does not explain is ``extra``, so a
dissected layer rebuilds to its bytes, cut or malformed alike.

Message bodies (`NlHookBody`) are `NlBody` classes like the generated ones;
a protocol whose frames a ``frame-hook`` decodes (NETLINK_KOBJECT_UEVENT)
gets a frame layer (`NlHookFrame`) chosen by `frame_class`.  ``decoded()``
runs our own hook on a layer's bytes: the parsed view (audit's key=value
pairs, a uevent's properties) is the dissector's, not a second parser.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from scapy.fields import Field
from scapy.packet import Packet
from scapy.volatile import VolatileValue

from ..core import constants as C
from ..core.tree import Node
from ..schema import bodies as B
from ..schema.compile import load_hook
from ..schema.spec import Spec
from .fields import NlArrayField, NlBytesField, NlIntField, NlPadField
from .layers import HOST_BO, NlBody, _class_name, _NlPacket, registry


def _fix(v: Any) -> Any:
    return v._fix() if isinstance(v, VolatileValue) else v


def _bytes(v: Any) -> bytes:
    v = _fix(v)
    if v is None:
        return b""
    if isinstance(v, str):
        return v.encode()
    return bytes(v)


class NlPropsField(Field[Any, Any]):
    """``KEY=VALUE\\0`` properties: the strings between NULs (a final empty
    one when the last is NUL-terminated).  Takes a dict, ``(key, value)``
    pairs or ``KEY=VALUE`` strings."""

    islist = 1  # one value that is a list, not the values of several packets

    def __init__(self, name: str) -> None:
        Field.__init__(self, name, None)

    def any2i(self, pkt: Any, x: Any) -> Any:
        if x is None or isinstance(x, VolatileValue):
            return x
        if isinstance(x, Mapping):
            x = list(x.items())
        x = list(x)
        if all(isinstance(one, bytes) for one in x):
            return x  # the strings between the NULs, as dissected
        out = [f"{o[0]}={o[1]}".encode() if isinstance(o, tuple) else _bytes(o) for o in x]
        return [*out, b""]  # built from values: each one NUL-terminated

    def i2repr(self, pkt: Any, x: Any) -> str:
        if not isinstance(x, list):
            return repr(x)
        return "[" + ", ".join(repr(p.decode("utf-8", "backslashreplace")) for p in x if p) + "]"

    def randval(self) -> Any:
        return None


class NlStringsField(Field[Any, Any]):
    """Strings back to back (their lengths in another member)."""

    islist = 1  # one value that is a list, not the values of several packets

    def __init__(self, name: str) -> None:
        Field.__init__(self, name, None)

    def any2i(self, pkt: Any, x: Any) -> Any:
        if x is None or isinstance(x, VolatileValue):
            return x
        return [_bytes(one) for one in x]

    def randval(self) -> Any:
        return None


class NlPartField(Field[Any, Any]):
    """A part whose layout is selected: a layer of the case, or bytes."""

    holds_packets = 1

    def __init__(self, name: str) -> None:
        Field.__init__(self, name, None)

    def any2i(self, pkt: Any, x: Any) -> Any:
        return x.encode() if isinstance(x, str) else x

    def i2repr(self, pkt: Any, x: Any) -> str:
        if isinstance(x, Packet):
            return f"<{x.name}: {x.mysummary()}>"
        return repr(x)

    def randval(self) -> Any:
        return None


# ---------------------------------------------------------------------------
# the codec


def _int_fmt(item: B.Int, bo: str) -> str:
    return item.code if item.code[0] in "<>" else bo + item.code


def _item_fields(items: tuple[B.Item, ...], bo: str) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, B.Int):
            fmt = _int_fmt(item, bo)
            computed = item.length_of is not None or item.offset_of is not None
            if item.count > 1:
                arr = NlArrayField(item.name, fmt)
                if computed:
                    arr.default = None  # computed unless given
                out.append(arr)
            else:
                show = (lambda v: f"0x{v:x}") if item.hex and not item.names else None
                default = None if computed else item.default
                out.append(NlIntField(item.name, default, fmt, dict(item.names or {}), show))
        elif isinstance(item, B.Const):
            out.append(NlBytesField(item.name, item.value))
        elif isinstance(item, (B.Chars, B.Rest)):
            out.append(NlBytesField(item.name, b""))
        elif isinstance(item, B.Text):
            out.append(NlBytesField(item.name, b""))
            out.append(NlBytesField(item.name + "_nul", b"\0" if item.terminated else b""))
        elif isinstance(item, B.Properties):
            out.append(NlPropsField(item.name))
        elif isinstance(item, B.Strings):
            out.append(NlStringsField(item.name))
        elif isinstance(item, B.Choice):
            out.append(NlPartField(item.name))
    return out


class _HookCodec(Packet):
    """Reads and writes the items of a declared layout (`_nl_hook`)."""

    _nl_hook: B.Layout = B.Layout("", ())
    _nl_hook_fn: Any = None  # the dissector's hook, for decoded()
    _nl_to_kernel = False
    _nl_bo = HOST_BO
    _nl_nitems = 0  # fields of the items; then extra (and nlmsg_pad)
    _nl_case: Any = None  # the key of this layout in its Choice

    def _read(self, s: bytes) -> bytes:
        f = self.fields
        vals: dict[str, Any] = {}
        pos, n = 0, len(s)
        cut = None
        for index, item in enumerate(self._nl_hook.items):
            if cut is not None:
                f[item.name] = None
                if isinstance(item, B.Text):
                    f[item.name + "_nul"] = None
                continue
            if isinstance(item, (B.Int, B.Const, B.Chars)):
                size = (
                    item.size
                    if isinstance(item, B.Int)
                    else len(item.value)
                    if isinstance(item, B.Const)
                    else item.size
                )
                if n - pos < size:
                    cut = index
                    f[item.name] = None
                    continue
                chunk = s[pos : pos + size]
                if isinstance(item, B.Int):
                    fmt = _int_fmt(item, self._nl_bo)
                    if item.count > 1:
                        fmt = fmt[0] + str(item.count) + fmt[1:]
                        f[item.name] = list(struct.unpack(fmt, chunk))
                    else:
                        f[item.name] = struct.unpack(fmt, chunk)[0]
                else:
                    f[item.name] = chunk
                pos += size
            elif isinstance(item, B.Text):
                nul = s.find(b"\0", pos)
                stop = n if nul < 0 else nul
                f[item.name] = s[pos:stop]
                f[item.name + "_nul"] = b"\0" if nul >= 0 else b""
                pos = n if nul < 0 else nul + 1
            elif isinstance(item, B.Strings):
                parts = []
                for ln in vals.get(item.lengths) or []:
                    if pos + ln > n:
                        break
                    parts.append(s[pos : pos + ln])
                    pos += ln
                f[item.name] = parts
            else:  # Properties, Rest, Choice: counted or up to the end
                length = getattr(item, "length", None)
                count = vals.get(length) if length else None
                end = n if count is None else min(n, pos + int(count))
                data = s[pos:end]
                if isinstance(item, B.Properties):
                    f[item.name] = data.split(b"\0") if data else []
                elif isinstance(item, B.Choice):
                    key = item.select(vals, self._nl_to_kernel, data)
                    case = item.cases.get(key) if key is not None else None
                    if case is not None and data:
                        f[item.name] = part_class(case, key, self._nl_bo, self._nl_to_kernel)(data)
                    else:
                        f[item.name] = data
                else:
                    f[item.name] = data
                pos = end
            vals[item.name] = f[item.name]
        object.__setattr__(self, "_nl_cut_at", cut)
        return s[pos:]

    def _write(self) -> bytes:
        return b"".join(self._write_parts())

    def _write_parts(self) -> list[bytes]:
        """The bytes of each item, as built (a text's with its NUL)."""
        items = self._nl_hook.items
        cut = getattr(self, "_nl_cut_at", None)
        values = {item.name: _fix(self.getfieldval(item.name)) for item in items}
        for item in items:  # a selected case fills the members that select it
            v = values[item.name]
            if isinstance(item, B.Choice) and isinstance(v, _HookCodec):
                for member, implied in v._nl_hook.implies.items():
                    if member in values and member not in self.fields:
                        values[member] = implied
        parts: list[bytes] = []
        computed: list[tuple[int, B.Int]] = []
        for index, item in enumerate(items):
            v = values[item.name]
            if cut is not None and index >= cut and v is None:
                parts.append(b"")
                continue
            if isinstance(item, B.Int):
                fmt = _int_fmt(item, self._nl_bo)
                if v is None and (item.length_of or item.offset_of):
                    computed.append((index, item))
                    parts.append(b"\0" * item.size)  # patched below
                elif v is None:
                    parts.append(b"")
                elif item.count > 1:
                    elems = [int(_fix(x)) for x in v] + [0] * (item.count - len(v))
                    parts.append(b"".join(struct.pack(fmt, x & _mask(fmt)) for x in elems))
                else:
                    parts.append(struct.pack(fmt, _in_range(int(v), fmt)))
            elif isinstance(item, B.Chars):
                raw = _bytes(v)
                parts.append(raw + b"\0" * (item.size - len(raw)))
            elif isinstance(item, B.Text):
                parts.append(_bytes(v) + _bytes(self.getfieldval(item.name + "_nul")))
            elif isinstance(item, B.Properties):
                parts.append(b"\0".join(_bytes(p) for p in v or []))
            elif isinstance(item, B.Strings):
                parts.append(b"".join(_bytes(p) for p in v or []))
            else:
                parts.append(_bytes(v))
        names = [item.name for item in items]
        for index, item in computed:
            target = item.length_of or item.offset_of or ""
            if target not in names:
                continue
            j = names.index(target)
            fmt = _int_fmt(item, self._nl_bo)
            if item.offset_of:
                nums = [sum(len(p) for p in parts[:j])]
            elif item.count > 1:
                nums = [len(_bytes(p)) for p in values[target] or []]
                nums += [0] * (item.count - len(nums))
            else:
                nums = [len(parts[j])]
            parts[index] = b"".join(struct.pack(fmt, x & _mask(fmt)) for x in nums)
        return parts

    def do_dissect(self, s: bytes) -> bytes:
        self.fields["extra"] = self._read(s)
        return b""

    @classmethod
    def part(cls, name: str, key: Any) -> type[NlHookPart]:
        """The layer of case `key` of part `name` (a `Choice`): by its key
        (``"event"``, ``0x1``) or its title (``"fork"``)."""
        item = next(
            (i for i in cls._nl_hook.items if isinstance(i, B.Choice) and i.name == name), None
        )
        if item is None:
            raise KeyError(f"{cls.name} has no part {name!r}")
        if key not in item.cases:
            key = next((k for k, c in item.cases.items() if c.title == key), key)
        if key not in item.cases:
            known = ", ".join(str(c.title) for c in item.cases.values())
            raise KeyError(f"{cls.name}.{name}: no case {key!r}; known: {known}")
        return part_class(item.cases[key], key, cls._nl_bo, cls._nl_to_kernel)

    def self_build(self) -> bytes:
        s = self._write()
        for f in self.fields_desc[self._nl_nitems :]:
            s = f.addfield(self, s, self.getfieldval(f.name))
        return s

    def values(self) -> list[tuple[int, str, Any]]:
        """(offset in this layer, node name, value) of the plain values as
        built: what our dissector's hook shows at those places."""
        out: list[tuple[int, str, Any]] = []
        pos = 0
        for item, part in zip(self._nl_hook.items, self._write_parts()):
            v = _fix(self.getfieldval(item.name))
            label = B.label_of(item)
            if isinstance(item, B.Int) and item.count == 1 and part:
                out.append((pos, label, struct.unpack(_int_fmt(item, self._nl_bo), part)[0]))
            elif isinstance(item, B.Chars) and part:
                out.append(
                    (pos, label, part.split(b"\0", 1)[0].decode("utf-8", "backslashreplace"))
                )
            elif isinstance(item, B.Text) and v is not None:
                out.append((pos, label, _bytes(v).decode("utf-8", "backslashreplace")))
            elif isinstance(item, B.Properties):
                p = pos
                for prop in v or []:
                    key, eq, val = _bytes(prop).partition(b"=")
                    if key and eq:
                        out.append(
                            (
                                p,
                                key.decode("utf-8", "backslashreplace"),
                                val.decode("utf-8", "backslashreplace"),
                            )
                        )
                    p += len(prop) + 1
            elif isinstance(item, B.Strings):
                p = pos
                for i, one in enumerate(v or []):
                    out.append(
                        (p, f"{label}[{i}]", _bytes(one).decode("utf-8", "backslashreplace"))
                    )
                    p += len(one)
            elif isinstance(item, B.Choice) and isinstance(v, _HookCodec):
                out += [(pos + o, name, val) for o, name, val in v.values()]
            elif isinstance(item, B.Choice) and part:
                out.append((pos, label, part))
            pos += len(part)
        return out

    def decoded(self) -> Node:
        """Our dissector's hook run on this layer's bytes: its node tree,
        the parsed view of the body (audit key=value pairs as children)."""
        data = bytes(self)
        fn = self._nl_hook_fn
        if fn is None:
            raise TypeError(f"{self.name}: no hook to decode with")
        if getattr(self, "_nl_frame", False):
            node = fn(data, 0, len(data), self._nl_bo)[0][0]
            return node  # type: ignore[no-any-return]
        msg = SimpleNamespace(
            node=Node("netlink", "message", 0, len(data), data),
            type=getattr(self, "_nl_type", None) or 0,
            direction="user->kernel" if self._nl_to_kernel else "kernel->user",
        )
        fn(msg, data, 0, len(data), self._nl_bo)
        return msg.node.children[0] if msg.node.children else msg.node

    def pairs(self) -> list[tuple[str, Any]]:
        """``(key, value)`` of the body as our dissector reads it: an audit
        record's fields, a uevent's properties."""
        out = []
        for n in self.decoded().walk():
            if n.abbrev.endswith(".field") or n.abbrev.startswith("uevent.property"):
                out.append((n.name, n.value))
        return out


def _mask(fmt: str) -> int:
    return (1 << (8 * struct.calcsize(fmt))) - 1


def _in_range(v: int, fmt: str) -> int:
    bits = 8 * struct.calcsize(fmt)
    if fmt[-1].isupper():
        return v & ((1 << bits) - 1)
    return v - (1 << bits) if v >= (1 << (bits - 1)) else v


class NlHookPart(_HookCodec, _NlPacket):
    """A part of a hook-decoded body (a `Choice` case: struct proc_event)."""

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes | None]:
        return b"", None


class NlHookBody(_HookCodec, NlBody):
    """A message body a Python hook decodes, from the hook's declared layout."""

    def __init__(self, _pkt: Any = b"", *args: Any, **kw: Any) -> None:
        text = next(
            (i for i in self._nl_hook.items if isinstance(i, B.Text) and i.style == "audit"), None
        )
        if text is not None and ("fields" in kw or "stamp" in kw):
            kw[text.name] = audit_text(kw.pop("fields", ()), kw.pop("stamp", None))
        Packet.__init__(self, _pkt, *args, **kw)

    def do_dissect(self, s: bytes) -> bytes:
        return _HookCodec.do_dissect(self, s)

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        return NlBody.post_build(self, p, pay)

    def mysummary(self) -> str:
        return str(self.name)


def audit_text(fields: Any, stamp: Any = None) -> bytes:
    """An audit record's text: ``audit(SECONDS.MILLIS:SERIAL): `` when
    `stamp` is ``(seconds, millis, serial)``, then ``key=value`` words;
    a value with a blank or a quote is written in double quotes."""
    if isinstance(fields, Mapping):
        fields = list(fields.items())
    words = []
    for k, v in fields:
        v = str(v)
        if not v or any(c in v for c in " \"'\n"):
            v = '"' + v.replace('"', "'") + '"'
        words.append(f"{k}={v}")
    head = ""
    if stamp is not None:
        secs, millis, serial = stamp
        head = f"audit({int(secs)}.{int(millis):03d}:{int(serial)}): "
    return (head + " ".join(words)).encode()


_PARTS: dict[tuple[int, Any, str, bool], type[NlHookPart]] = {}


def part_class(layout: B.Layout, key: Any, bo: str, to_kernel: bool) -> type[NlHookPart]:
    """The layer of a `Choice` case."""
    ck = (id(layout), key, bo, to_kernel)
    cls = _PARTS.get(ck)
    if cls is None:
        fields = _item_fields(layout.items, bo)
        cls = _PARTS[ck] = type(  # type: ignore[assignment]
            _class_name(
                "part", layout.title.replace(" ", "_"), str(key), "be" if bo == ">" else ""
            ),
            (NlHookPart,),
            {
                "name": layout.title,
                "fields_desc": [*fields, NlBytesField("extra", b"")],
                "_nl_hook": layout,
                "_nl_nitems": len(fields),
                "_nl_bo": bo,
                "_nl_to_kernel": to_kernel,
                "_nl_case": key,
                "__module__": __name__,
            },
        )
    return cls


def hook_body_class(
    spec: Spec, op: Any, role: str, bo: str, title: str, number: int | None
) -> type[NlBody] | None:
    """The body layer of a hook-decoded operation, or None when the hook
    module declares no layout for it."""
    fn, _problem = load_hook(spec.source, op.hook)
    layout = B.declared(fn)
    if layout is None:
        return None
    fields = _item_fields(layout.items, bo)
    return type(  # type: ignore[no-any-return]
        _class_name(spec.name, op.name, role, "be" if bo == ">" else ""),
        (NlHookBody,),
        {
            "name": title,
            "fields_desc": [*fields, NlBytesField("extra", b""), NlPadField("nlmsg_pad", None)],
            "_nl_spec": spec,
            "_nl_op": op,
            "_nl_role": role,
            "_nl_type": number,
            "_nl_protocol": spec.protonum,
            "_nl_genl": False,
            "_nl_header_fields": [],
            "_nl_bo": bo,
            "_nl_hook": layout,
            "_nl_hook_fn": staticmethod(fn),  # type: ignore[arg-type]
            "_nl_nitems": len(fields),
            "_nl_to_kernel": role == "request",
            "__module__": __name__,
        },
    )


# ---------------------------------------------------------------------------
# frames a frame-hook decodes (no struct nlmsghdr)


class NlHookFrame(_HookCodec, _NlPacket):
    """A datagram of a protocol whose frames are not netlink messages
    (NETLINK_KOBJECT_UEVENT), in one of the forms its hook declares.
    ``NlHookFrame`` classes of one protocol dispatch on dissection to the
    form the bytes have."""

    _nl_frame = True
    _nl_protocol = 0
    _nl_forms: dict[Any, Any] = {}
    _nl_choice: Any = None

    @classmethod
    def dispatch_hook(cls, _pkt: Any = None, *args: Any, **kargs: Any) -> Any:
        if _pkt and cls._nl_choice is not None:
            data = bytes(_pkt)
            key = cls._nl_choice.select({}, False, data)
            if key in cls._nl_forms:
                return form_class(cls._nl_protocol, key, cls._nl_bo)
        return cls

    @classmethod
    def kind(cls, key: Any) -> type[NlHookFrame]:
        """The layer of form `key` (``"kernel"``, ``"udev"``)."""
        found = form_class(cls._nl_protocol, key, cls._nl_bo)
        assert found is not None
        return found

    @property
    def protocol(self) -> int:
        return int(self._nl_protocol)

    @property
    def context(self) -> Any:
        from .layers import current_context

        return current_context()

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes | None]:
        return b"", None

    def mysummary(self) -> str:
        return str(self.name)


_FRAMES: dict[tuple[int, Any, str], type[NlHookFrame] | None] = {}


def _frame_layout(protocol: int) -> tuple[Any, B.Layout] | None:
    hit = registry().frame_hook(protocol)
    if hit is None or hit[0] is None:
        return None
    layout = B.declared(hit[0])
    if layout is None:
        return None
    return hit[0], layout


def form_class(protocol: int, key: Any = None, bo: str = HOST_BO) -> type[NlHookFrame] | None:
    """The frame layer of `protocol` (one with a ``frame-hook`` that declares
    its layout), or of its form `key` (``"kernel"``, ``"udev"``); None
    when the protocol has none."""
    ck = (protocol, key, bo)
    if ck in _FRAMES:
        return _FRAMES[ck]
    found = _frame_layout(protocol)
    cls: type[NlHookFrame] | None = None
    if found is not None:
        fn, layout = found
        choice = layout.items[0] if len(layout.items) == 1 else None
        forms = choice.cases if isinstance(choice, B.Choice) else {}
        if key is not None and key not in forms:
            raise KeyError(f"no form {key!r}; known: {', '.join(map(str, forms))}")
        this = forms[key] if key is not None else layout
        fields = _item_fields(this.items, bo)
        attrs: dict[str, Any] = {
            "name": this.title if key is not None else C.protocol_name(protocol),
            "fields_desc": [*fields, NlBytesField("extra", b"")],
            "_nl_hook": this,
            "_nl_hook_fn": staticmethod(fn),  # type: ignore[arg-type]
            "_nl_nitems": len(fields),
            "_nl_bo": bo,
            "_nl_protocol": protocol,
            "_nl_forms": forms,
            "_nl_choice": choice if isinstance(choice, B.Choice) else None,
            "_nl_case": key,
            "__module__": __name__,
        }
        if key is None:
            attrs["dispatch_hook"] = NlHookFrame.__dict__["dispatch_hook"]
        cls = type(  # type: ignore[assignment]
            _class_name(
                "frame", C.protocol_name(protocol), str(key or ""), "be" if bo == ">" else ""
            ),
            (NlHookFrame,),
            attrs,
        )
    _FRAMES[ck] = cls
    return cls
