"""Scapy fields for netlink layers generated from the schemas.

Every field here follows one rule that Scapy's stock fields do not: a value
of ``None`` means "not on the wire" (the message or attribute was cut short
before it), so a truncated dissection rebuilds to exactly the bytes it came
from.  Length and padding fields are the exception: their ``None`` means
"compute me", which the owning layer's ``post_build`` does.

Integer fields carry an explicit byte order (``<`` or ``>``, never ``=``:
Scapy's `fuzz` picks a random class from the last format character and
knows ``I`` but not ``L``).  Displays reuse the formatters our dissector
compiled for the same field, so ``show()`` and ``nlshark -V`` agree.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from scapy.fields import Field, FieldListField, PacketListField, StrField
from scapy.volatile import RandBin, RandNum, RandSInt, RandString, VolatileValue

_RAND_BITS = {"B": 8, "H": 16, "I": 32, "Q": 64}


def _int_rand(fmt: str) -> VolatileValue[Any]:
    c = fmt[-1]
    bits = _RAND_BITS.get(c.upper(), 32)
    if c.islower():
        return RandNum(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return RandNum(0, (1 << bits) - 1)


class NlIntField(Field[Any, Any]):
    """A fixed-size integer.  `names` maps values to names (an enum) and
    `fmt_value` is the dissector's display formatter for the value."""

    __slots__ = ["names", "by_name", "fmt_value", "is_flags"]

    def __init__(
        self,
        name: str,
        default: Any,
        fmt: str,
        names: dict[int, str] | None = None,
        fmt_value: Any = None,
        is_flags: bool = False,
    ) -> None:
        Field.__init__(self, name, default, fmt)
        self.names = names or {}
        self.is_flags = is_flags
        self.by_name: dict[str, int] = {}
        for v, n in self.names.items():
            for key in (n, n.upper(), n.replace("-", "_").upper(), n.lower()):
                self.by_name.setdefault(key, v)
        self.fmt_value = fmt_value

    def any2i(self, pkt: Any, x: Any) -> Any:
        if isinstance(x, str):
            if self.is_flags:
                total = 0
                for part in x.replace(",", "|").replace("+", "|").split("|"):
                    part = part.strip()
                    if part:
                        total |= self._one(part)
                return total
            return self._one(x)
        return x

    def _one(self, text: str) -> int:
        for key in (text, text.upper(), text.lower(), text.replace("-", "_").upper()):
            if key in self.by_name:
                return self.by_name[key]
            # constant names with their prefix: IFLA_... / NLM_F_...
            for n, v in self.by_name.items():
                if key.endswith("_" + n.upper().replace("-", "_")):
                    return v
        try:
            return int(text, 0)
        except ValueError:
            raise ValueError(f"{self.name}: unknown name {text!r}") from None

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        if val is None and self.default is not None:
            return s  # absent: the message was cut before this field
        return s + self.struct.pack(self.i2m(pkt, val))

    def i2m(self, pkt: Any, x: Any) -> Any:
        if x is None:
            return 0
        if isinstance(x, VolatileValue):
            x = x._fix()
        x = int(x)
        bits = 8 * self.sz
        if not -(1 << (bits - 1)) <= x < (1 << bits):
            raise ValueError(f"{self.name}: {x} does not fit in {bits} bits")
        if self.fmt[-1].isupper():
            return x & ((1 << bits) - 1)  # -1 is all ones
        return x - (1 << bits) if x >= (1 << (bits - 1)) else x

    def i2repr(self, pkt: Any, x: Any) -> str:
        if x is None:
            return "(absent)" if self.default is not None else "None"
        if isinstance(x, VolatileValue):
            return repr(x)
        if self.fmt_value is not None:
            try:
                return str(self.fmt_value(x))
            except Exception:  # a display must never break show()
                pass
        name = self.names.get(x)
        return f"{name} ({x})" if name else repr(x)

    def randval(self) -> VolatileValue[Any]:
        return _int_rand(self.fmt)


# include/uapi/linux/netlink.h: the two flag bits on top of nla_type
NLA_TYPE_FLAGS = ((0x8000, "NESTED"), (0x4000, "NET_BYTEORDER"))


class NlAttrTypeField(NlIntField):
    """``nla_type``: the attribute's name, with NLA_F_NESTED and
    NLA_F_NET_BYTEORDER shown as flags rather than hiding the name."""

    def i2repr(self, pkt: Any, x: Any) -> str:
        if not isinstance(x, int) or isinstance(x, bool):
            return super().i2repr(pkt, x)
        base = x & 0x3FFF
        name = self.names.get(base)
        flags = [n for bit, n in NLA_TYPE_FLAGS if x & bit]
        if name is None:
            return f"{base}|{'|'.join(flags)} ({x:#x})" if flags else repr(x)
        return f"{'|'.join([name, *flags])} ({x if not flags else hex(x)})"


class SizedInt(int):
    """An integer that remembers how many bytes it was read from."""

    width: int

    def __new__(cls, value: int, width: int) -> SizedInt:
        obj = super().__new__(cls, value)
        obj.width = width
        return obj


_ByteOrder = Literal["little", "big"]


class NlVarIntField(Field[Any, Any]):
    """YNL ``uint``/``sint``: 4 bytes when the value fits, else 8 (the
    kernel's nla_put_uint); a dissected value keeps the width it had."""

    __slots__ = ["signed", "bo", "fmt_value"]

    def __init__(self, name: str, default: Any, signed: bool, bo: str, fmt_value: Any = None):
        Field.__init__(self, name, default, "B")
        self.signed = signed
        self.bo: _ByteOrder = "big" if bo == ">" else "little"
        self.fmt_value = fmt_value

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        if val is None:
            return s
        if isinstance(val, VolatileValue):
            val = val._fix()
        width = getattr(val, "width", None)
        v = int(val)
        if width is None:
            fits = -(1 << 31) <= v < (1 << 31) if self.signed else 0 <= v < (1 << 32)
            width = 4 if fits else 8
        if not self.signed:
            v &= (1 << (8 * width)) - 1
        return s + v.to_bytes(width, self.bo, signed=self.signed and v < 0)

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, Any]:
        return b"", SizedInt(int.from_bytes(s, self.bo, signed=self.signed), len(s))

    def i2len(self, pkt: Any, x: Any) -> int:
        return len(self.addfield(pkt, b"", x))

    def i2repr(self, pkt: Any, x: Any) -> str:
        if x is not None and self.fmt_value is not None and not isinstance(x, VolatileValue):
            try:
                return str(self.fmt_value(int(x)))
            except Exception:
                pass
        return repr(x)

    def randval(self) -> VolatileValue[Any]:
        return RandSInt() if self.signed else RandNum(0, (1 << 64) - 1)


def _parse_addr(text: str) -> bytes:
    """``10.0.0.1``, ``2001:db8::1`` or ``02:00:00:00:00:01`` as bytes."""
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        pass
    parts = text.split(":")
    if len(parts) == 6 and all(len(p) <= 2 for p in parts):
        return bytes(int(p, 16) for p in parts)
    raise ValueError(f"not an address: {text!r}")


class NlBytesField(StrField):
    """Bytes; `fmt_value` shows them the dissector's way (addresses by hint).
    A string is read as an address where the hint says the bytes are one,
    else encoded as UTF-8."""

    __slots__ = ["fmt_value", "addr", "rand_len"]

    def __init__(
        self, name: str, default: Any, fmt_value: Any = None, addr: bool = False, rand_len: int = 16
    ) -> None:
        StrField.__init__(self, name, default)
        self.fmt_value = fmt_value
        self.addr = addr
        self.rand_len = rand_len

    def any2i(self, pkt: Any, x: Any) -> Any:
        if isinstance(x, str) and self.addr:
            return _parse_addr(x)
        return super().any2i(pkt, x)

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        if val is None:
            return s
        return s + self.i2m(pkt, val)

    def i2repr(self, pkt: Any, x: Any) -> str:
        if isinstance(x, bytes) and self.fmt_value is not None:
            try:
                return str(self.fmt_value(x))
            except Exception:
                pass
        return repr(x)

    def randval(self) -> RandBin:
        return RandBin(RandNum(0, self.rand_len))


class NlStringField(NlBytesField):
    """A string attribute's text, without its terminating NUL (the `nul`
    field says whether one follows).  Kept as bytes so any content, valid
    UTF-8 or not, rebuilds exactly; a `str` is encoded as UTF-8."""

    def i2repr(self, pkt: Any, x: Any) -> str:
        if isinstance(x, bytes):
            return repr(x.decode("utf-8", "backslashreplace"))
        return repr(x)

    def randval(self) -> RandBin:
        return RandString(RandNum(0, 32))  # type: ignore[return-value]


class NlNulField(Field[Any, Any]):
    """Whether a string is NUL-terminated: 1 writes one NUL byte, 0 none."""

    def __init__(self, name: str, default: int = 1) -> None:
        Field.__init__(self, name, default, "B")

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        if isinstance(val, VolatileValue):
            val = val._fix()
        return s + (b"\0" if val else b"")

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, Any]:
        return s, 1

    def randval(self) -> VolatileValue[Any]:
        return RandNum(0, 1)


class NlPadField(StrField):
    """Alignment padding: ``None`` writes zeros up to the next 4-byte
    boundary of the layer built so far (NLMSG_ALIGN, NLA_ALIGN; the layers
    start aligned); explicit bytes are written as they are, so bad padding
    survives building.  The owning layer reads how many bytes were padded
    from ``_nl_padded`` when it computes its length."""

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        if val is None:
            n = (-len(s)) % 4
            object.__setattr__(pkt, "_nl_padded", n)
            return s + b"\0" * n
        val = self.i2m(pkt, val)
        object.__setattr__(pkt, "_nl_padded", len(val))
        return s + val

    def randval(self) -> None:  # type: ignore[override]
        return None


class NlArrayField(FieldListField):  # type: ignore[misc]
    """A binary attribute holding integers back to back (``sub-type``)."""

    __slots__ = ["fmt_value"]

    def __init__(self, name: str, fmt: str, fmt_value: Any = None) -> None:
        self.fmt_value = fmt_value
        FieldListField.__init__(self, name, [], NlIntField("element", 0, fmt, None, fmt_value))

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        if val is None:
            return s
        return FieldListField.addfield(self, pkt, s, val)

    def randval(self) -> Any:
        return None


class NlPacketField(Field[Any, Any]):
    """One struct (a fixed-size layer) inside a layer; ``None`` if absent.
    A `member` of a struct cannot be absent in C: not given, it is built as
    zeros (an SA's lifetimes, its selector)."""

    __slots__ = ["cls_ref", "member"]
    holds_packets = 1
    islist = 1  # a list value is an array of structs, not packets to generate

    def __init__(self, name: str, cls_ref: Any, member: bool = False) -> None:
        Field.__init__(self, name, None, "B")
        self.cls_ref = cls_ref  # a callable returning the class (lazy)
        self.member = member

    @property
    def cls(self) -> Any:
        return self.cls_ref()

    def any2i(self, pkt: Any, x: Any) -> Any:
        if isinstance(x, dict):
            return self.cls(**x)
        if isinstance(x, list):  # an array of structs (NHA_GROUP)
            return [self.cls(**e) if isinstance(e, dict) else e for e in x]
        return x

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        if val is None:
            return s + bytes(self.cls()) if self.member else s
        if isinstance(val, VolatileValue):
            val = val._fix()
        if isinstance(val, list):
            return s + b"".join(bytes(e) for e in val)
        return s + bytes(val)

    def i2repr(self, pkt: Any, x: Any) -> str:
        return repr(x)

    def i2h(self, pkt: Any, x: Any) -> Any:
        return x

    def do_copy(self, x: Any) -> Any:
        if isinstance(x, list):
            return [e.copy() for e in x]
        return None if x is None else x.copy()

    def randval(self) -> Any:
        from scapy.packet import fuzz

        return fuzz(self.cls())


class NlAttrListField(PacketListField):  # type: ignore[misc]
    """A list of attribute layers (a nest, or a message's attributes).

    Dissection is done by the owning layer, which knows the attribute set
    and the selector values; this field only builds, shows and copies the
    list.  Being a `PacketListField`, Scapy's `fuzz` fuzzes each attribute.
    """

    def __init__(self, name: str) -> None:
        PacketListField.__init__(self, name, [], None)

    def any2i(self, pkt: Any, x: Any) -> Any:
        if x is None:
            return None
        if not isinstance(x, list):
            x = [x]
        return x

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        if val is None:
            return s
        return s + b"".join(bytes(p) for p in val)

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, Any]:
        return s, []

    def randval(self) -> Any:
        return None


class NlChunksField(Field[Any, Any]):
    """Bytes counted by another member, in elements of `step` bytes (an
    SRH's segments); each element shown with the dissector's formatter."""

    __slots__ = ["step", "fmt_value"]
    islist = 1

    def __init__(self, name: str, step: int, fmt_value: Any = None) -> None:
        Field.__init__(self, name, None, "B")
        self.step = step
        self.fmt_value = fmt_value

    def any2i(self, pkt: Any, x: Any) -> Any:
        return list(x) if isinstance(x, tuple) else x

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        if val is None:
            return s
        if isinstance(val, (bytes, bytearray)):
            return s + bytes(val)
        return s + b"".join(bytes(e) for e in val)

    def i2repr(self, pkt: Any, x: Any) -> str:
        if not isinstance(x, list) or self.fmt_value is None:
            return repr(x)
        shown = []
        for e in x:
            try:
                shown.append(str(self.fmt_value(e)))
            except Exception:  # a display must never break show()
                shown.append(repr(e))
        return "[" + ", ".join(shown) + "]"

    def i2h(self, pkt: Any, x: Any) -> Any:
        return x

    def randval(self) -> Any:
        from scapy.volatile import RandBin

        return [RandBin(self.step)._fix() for _ in range(2)]
