"""Compile specs into decode tables.

A `Compiler` belongs to one spec and one byte order.  It turns attribute
sets into `CompiledAttrSet`s (type number -> decoder object), structs into
`StructLayout`s with precompiled `struct.Struct` formats, and picks each
field's display formatter (hint, enum, flags, units) once.

Field abbreviations depend on where a set is used (a nest takes its parent
attribute's path), so sets are compiled per (set, path) and cached; nested
sets compile on first use, which keeps start-up cheap and makes recursive
sets (a set that nests itself) finite — the decoder's depth bound stops the
recursion on the wire.
"""

from __future__ import annotations

import importlib.util
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core import display as disp
from ..core.attrs import (
    ROLE_SELECTOR,
    ROLE_SUBMSG,
    ArrayAttr,
    AttrDecoder,
    BinaryAttr,
    Bitfield32Attr,
    CompiledAttrSet,
    FlagAttr,
    Hook,
    HookAttr,
    IndexedArrayAttr,
    NestAttr,
    NestTypeValueAttr,
    PadAttr,
    RecordsAttr,
    ScalarAttr,
    StringAttr,
    StructAttr,
    StructLayout,
    StructMember,
    SubMessageAttr,
    Trailer,
    VarIntAttr,
)
from .spec import SCALAR_SIZES, AttrSpec, Spec, c_name, field_name

_FMT_CHARS = {
    "u8": "B",
    "u16": "H",
    "u32": "I",
    "u64": "Q",
    "s8": "b",
    "s16": "h",
    "s32": "i",
    "s64": "q",
}
_INT_TYPES = set(_FMT_CHARS)
# Display hints that also fix the payload length.
_HINT_LENGTHS = {"ipv4": (4,), "ipv6": (16,), "ipv4-or-ipv6": (4, 16), "uuid": (16,)}


_HOOK_MODULES: dict[Path, Any] = {}


def selector_names(sel: Any) -> tuple[str, ...]:
    """A sub-message ``selector``: one sibling name, or (nlshark) a list of
    names of which the first one present in the message selects."""
    if isinstance(sel, str):
        return (sel,)
    if isinstance(sel, list) and sel and all(isinstance(x, str) for x in sel):
        return tuple(sel)
    return ()


def load_hook(spec_source: str, hook_name: str) -> tuple[Hook | None, str | None]:
    """``module.function`` from ``module.py`` beside the spec file."""
    module_name, _, func = hook_name.rpartition(".")
    if not module_name or not func:
        return None, "hooks are named module.function"
    path = Path(spec_source).resolve().parent / f"{module_name}.py"
    mod = _HOOK_MODULES.get(path)
    if mod is None:
        if not path.is_file():
            return None, f"no {path.name} beside the spec"
        try:
            loader_spec = importlib.util.spec_from_file_location(
                f"nlshark_hooks_{module_name}_{abs(hash(path))}", path
            )
            assert loader_spec is not None and loader_spec.loader is not None
            mod = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(mod)
        except Exception as exc:
            return None, f"{path.name} failed to load: {type(exc).__name__}: {exc}"
        _HOOK_MODULES[path] = mod
    fn = getattr(mod, func, None)
    if not callable(fn):
        return None, f"{path.name} has no function {func}"
    return fn, None


class Compiler:
    def __init__(self, spec: Spec, bo: str = "<") -> None:
        self.spec = spec
        self.bo = bo
        self._sets: dict[tuple[str, str], CompiledAttrSet] = {}
        self._structs: dict[tuple[str, str], StructLayout] = {}
        self._fmts: dict[tuple[Any, ...], disp.Formatter | None] = {}
        self._spec_selectors: frozenset[str] | None = None

    # -- formatters ----------------------------------------------------------
    def formatter(
        self, type_: str, hint: str | None, enum: str | None, as_flags: bool, units: str | None
    ) -> disp.Formatter | None:
        key = (type_, hint, enum, as_flags, units)
        if key in self._fmts:
            return self._fmts[key]
        fmt: disp.Formatter | None = None
        edef = self.spec.enums.get(enum) if enum else None
        if edef is not None:
            names = {v: n for v, n in edef.entries.items()}
            if edef.is_flags or as_flags:
                bits = (
                    names if edef.is_flags else {1 << v: n for v, n in names.items() if 0 <= v < 64}
                )
                fmt = disp.flags_fmt(
                    {m: n.upper().replace("-", "_") for m, n in bits.items()},
                    SCALAR_SIZES.get(type_, 4) * 2,
                )
            else:
                fmt = disp.enum_fmt(names, hex_values=hint == "hex")
        elif hint:
            fmt = disp.HINTS.get(hint)
        if units:
            fmt = disp.with_units(fmt, units)
        self._fmts[key] = fmt
        return fmt

    def _int_struct(self, type_: str, byte_order: str | None) -> struct.Struct:
        bo = (
            ">"
            if byte_order == "big-endian"
            else ("<" if byte_order == "little-endian" else self.bo)
        )
        return struct.Struct(bo + _FMT_CHARS[type_])

    # -- structs -------------------------------------------------------------
    def struct_layout(
        self, name: str, abbrev: str | None = None, depth: int = 0
    ) -> StructLayout | None:
        sdef = self.spec.structs.get(name)
        if sdef is None:
            return None
        ab = abbrev or f"{self.spec.abbrev}.{field_name(name)}"
        sdisplay = field_name(name)
        key = (name, ab)
        lay = self._structs.get(key)
        if lay is not None:
            return lay
        members: list[StructMember] = []
        flex: StructMember | None = None
        off = 0
        for m in sdef.members:
            mab = f"{ab}.{field_name(m.name)}"
            mname = field_name(m.name)
            if m.flexible:
                # C flexible array member: the rest of the payload, as
                # elements of `struct` or as bytes; it ends the struct.
                elem = (
                    self.struct_layout(m.struct, mab, depth + 1) if m.struct and depth < 8 else None
                )
                flex_fmt = (
                    self.formatter("binary", m.display_hint, None, False, m.units) or disp.hexbytes
                )
                flex = StructMember(mab, mname, off, 0, "flex", None, flex_fmt, elem)
                break
            if m.type in _INT_TYPES:
                st = self._int_struct(m.type, m.byte_order)
                fmt = self.formatter(m.type, m.display_hint, m.enum, m.enum_as_flags, m.units)
                members.append(StructMember(mab, mname, off, st.size, "int", st, fmt))
                off += st.size
            elif m.type == "pad":
                members.append(StructMember(mab, mname, off, m.len or 0, "pad", None, None))
                off += m.len or 0
            elif m.type == "string":
                members.append(StructMember(mab, mname, off, m.len or 0, "string", None, None))
                off += m.len or 0
            else:
                sub = (
                    self.struct_layout(m.struct, mab, depth + 1) if m.struct and depth < 8 else None
                )
                size = m.len if m.len is not None else (sub.size if sub is not None else 0)
                if sub is not None:
                    members.append(StructMember(mab, mname, off, size, "struct", None, None, sub))
                else:
                    fmt = (
                        self.formatter("binary", m.display_hint, None, False, m.units)
                        or disp.hexbytes
                    )
                    members.append(StructMember(mab, mname, off, size, "bytes", None, fmt))
                off += size
        lay = StructLayout(sdisplay, ab, members)
        names = {m.name for m in sdef.members}
        # Unions: (member abbrev, selector name, selector abbrevs found so
        # far, formats).  A selector that is no member here (struct
        # xfrm_id's daddr by `family`) is looked up in the struct around
        # this one; a plain name found here also falls back to the
        # enclosing struct's member of that name when its own value names
        # no format (a selector's AF_UNSPEC: the SA's family decides, as
        # `ip xfrm` shows it).
        wanted: list[tuple[str, str, tuple[str, ...], dict[int, tuple[int, disp.Formatter]]]] = [
            (
                f"{ab}.{field_name(m.name)}",
                m.union_by[0],
                (),
                {
                    v: (n, self.formatter("binary", h, None, False, None) or disp.hexbytes)
                    for v, n, h in m.union_by[1]
                },
            )
            for m in sdef.members
            if m.union_by is not None
        ]
        wanted += [u for sm in members if sm.sub is not None for u in sm.sub.open_unions]
        for member_ab, sel, chain, fmts in wanted:
            if sel.split(".", 1)[0] in names:
                sel_ab = ".".join([ab, *(field_name(p) for p in sel.split("."))])
                chain = (*chain, sel_ab)
                lay.unions.append((member_ab, chain, fmts))
                if "." not in sel:
                    lay.open_unions.append((member_ab, sel, chain, fmts))
            else:
                lay.open_unions.append((member_ab, sel, chain, fmts))
        if sdef.trailer is not None:
            t = sdef.trailer
            hook_name = t.get("hook")
            hook, problem = load_hook(self.spec.source, hook_name) if hook_name else (None, None)
            lay.trailer = Trailer(
                f"{ab}.{field_name(t['name'])}",
                field_name(t["name"]),
                field_name(t["length"]),
                t["scale"],
                t["element-len"],
                self.formatter("binary", t["display-hint"], None, False, None) or disp.hexbytes,
                hook,
                hook_name,
                problem,
            )
        lay.flex = flex
        self._structs[key] = lay
        return lay

    def spec_selectors(self) -> frozenset[str]:
        """The selector names of every sub-message attribute of the spec."""
        if self._spec_selectors is None:
            self._spec_selectors = frozenset(
                name
                for aset in self.spec.attr_sets.values()
                for a in aset.attrs.values()
                if a.type == "sub-message"
                for name in selector_names(a.get("selector"))
            )
        return self._spec_selectors

    def _nested(self, set_name: str | None, prefix: str) -> Callable[[], CompiledAttrSet | None]:
        """A resolver that compiles a nested set on first use."""
        return lambda: self.attr_set(set_name, prefix) if set_name else None

    # -- attribute sets --------------------------------------------------------
    def attr_set(self, name: str, prefix: str | None = None) -> CompiledAttrSet | None:
        aset = self.spec.attr_sets.get(name)
        if aset is None:
            return None
        pfx = prefix if prefix is not None else f"{self.spec.abbrev}.{aset.abbrev}"
        key = (name, pfx)
        cset = self._sets.get(key)
        if cset is not None:
            return cset
        cset = CompiledAttrSet(name, self.spec.name, pfx, c_name(aset.name_prefix, ""))
        self._sets[key] = cset  # before compiling members: sets may recurse
        selectors: set[str] = set()
        for value, a in aset.attrs.items():
            dec = self.attr(a, pfx, c_name(aset.name_prefix, a.name))
            if dec is None:
                continue
            cset.by_type[value] = dec
            cset.by_name[a.name] = dec
            if a.type == "sub-message":
                selectors.update(selector_names(a.get("selector")))
        # An attribute that selects a sub-message of a nested set (TCA_KIND for
        # TCA_STATS2/TCA_STATS_APP) is a selector here too, so the walk keeps
        # its value and hands it down to the nests.
        selectors.update(n for n in cset.by_name if n in self.spec_selectors())
        cset.selectors = frozenset(selectors)
        if selectors:
            for dec in cset.by_type.values():
                if dec.spec_name in selectors:
                    dec.role = ROLE_SELECTOR
                elif isinstance(dec, SubMessageAttr):
                    dec.role = ROLE_SUBMSG
        return cset

    def attr(self, a: AttrSpec, prefix: str, cname: str) -> AttrDecoder | None:
        ab = f"{prefix}.{field_name(a.name)}"
        t = a.type
        hint = a.get("display-hint")
        units = a.get("units")
        enum = a.get("enum")
        as_flags = bool(a.get("enum-as-flags", False))
        bo_prop = a.get("byte-order")
        if t in _INT_TYPES:
            dec: AttrDecoder = ScalarAttr(
                ab,
                cname,
                a.name,
                self.formatter(t, hint, enum, as_flags, units),
                self._int_struct(t, bo_prop),
            )
        elif t in ("uint", "sint"):
            bo = ">" if bo_prop == "big-endian" else self.bo
            dec = VarIntAttr(
                ab,
                cname,
                a.name,
                self.formatter("u64", hint, enum, as_flags, units),
                t == "sint",
                bo,
            )
        elif t == "flag":
            dec = FlagAttr(ab, cname, a.name)
        elif t == "string":
            dec = StringAttr(ab, cname, a.name, None)
        elif t == "pad":
            dec = PadAttr(ab, cname, a.name, disp.hexbytes)
        elif t == "binary":
            dec = self._binary(a, ab, cname, hint, units)
        elif t == "nest":
            target = a.get("nested-attributes")
            fh = a.get("fixed-header")
            dec = NestAttr(
                ab,
                cname,
                a.name,
                self._nested(target, ab),
                self.struct_layout(fh, f"{ab}.{field_name(fh)}") if fh else None,
            )
        elif t == "indexed-array":
            dec = IndexedArrayAttr(ab, cname, a.name, self._element(a, ab, cname))
        elif t == "nest-type-value":
            inner = NestAttr(
                ab,
                cname,
                a.name,
                self._nested(a.get("nested-attributes"), ab),
            )
            levels = a.get("type-value") or ["key"]
            dec = NestTypeValueAttr(ab, cname, a.name, [str(x) for x in levels], inner)
        elif t == "sub-message":
            dec = self._sub_message(a, ab, cname)
        elif t == "bitfield32":
            dec = Bitfield32Attr(
                ab,
                cname,
                a.name,
                self.bo,
                self.formatter("u32", hint, enum, True, None) if enum else disp.as_hex,
            )
        else:  # "unused" and anything unknown: show the bytes
            dec = BinaryAttr(ab, cname, a.name, self.formatter("binary", hint, None, False, units))
        if enum and enum in self.spec.enums:
            dec.enum_names = dict(self.spec.enums[enum].entries)
        return dec

    def _records(self, a: AttrSpec, ab: str, cname: str) -> AttrDecoder | None:
        spec = a.get("records")
        if a.get("decoder") == "rtnexthop-list":  # older spelling of the same thing
            spec = {
                "struct": "rtnexthop",
                "length": "rtnh-len",
                "attributes": a.get("nested-attributes"),
            }
        if not isinstance(spec, dict):
            return None
        sdef = self.spec.structs.get(spec.get("struct", ""))
        lay = self.struct_layout(
            spec.get("struct", ""), f"{ab}.{field_name(spec.get('struct', ''))}"
        )
        if sdef is None or lay is None:
            return None
        member = next(
            (m for m in lay.members if m.name == field_name(spec.get("length", ""))), None
        )
        if member is None or member.st is None:
            return None
        target = spec.get("attributes")
        return RecordsAttr(
            ab,
            cname,
            a.name,
            lay,
            member.st,
            member.offset,
            self._nested(target, ab),
        )

    def _binary(
        self, a: AttrSpec, ab: str, cname: str, hint: str | None, units: str | None
    ) -> AttrDecoder:
        rec = self._records(a, ab, cname)
        if rec is not None:
            return rec
        if isinstance(a.get("hook"), str):
            hook_name = a.get("hook")
            hook, problem = load_hook(self.spec.source, hook_name)
            return HookAttr(
                ab,
                cname,
                a.name,
                self.formatter("binary", hint, None, False, units),
                hook,
                hook_name,
                problem,
            )
        sname = a.get("struct")
        if sname:
            lay = self.struct_layout(sname)
            if lay is not None:
                return StructAttr(
                    ab,
                    cname,
                    a.name,
                    lay,
                    bool(a.get("extensible", False)),
                    bool(a.get("struct-array", False)),
                )
        sub = a.get("sub-type")
        if sub in _INT_TYPES:
            st = self._int_struct(sub, a.get("byte-order"))
            idx = a.get("index-enum")
            names = None
            base = 0
            if idx and idx in self.spec.enums:
                edef = self.spec.enums[idx]
                names = {v: c_name(edef.name_prefix, n) for v, n in edef.entries.items()}
                base = int(a.get("index-base", 0))
            fmt = self.formatter(sub, hint, a.get("enum"), bool(a.get("enum-as-flags")), units)
            return ArrayAttr(ab, cname, a.name, st, fmt, names, base)
        checks = a.get("checks") or {}
        if not isinstance(checks, dict):
            checks = {}

        def num(v: Any) -> int | None:
            if isinstance(v, int) and not isinstance(v, bool):
                return v
            if isinstance(v, str) and isinstance(self.spec.consts.get(v), int):
                return self.spec.consts[v]
            return None

        exact = num(checks.get("exact-len"))
        lengths = (exact,) if exact is not None else _HINT_LENGTHS.get(hint or "")
        return BinaryAttr(
            ab,
            cname,
            a.name,
            self.formatter("binary", hint, None, False, units),
            lengths=lengths,
            min_len=num(checks.get("min-len")),
            max_len=num(checks.get("max-len")),
        )

    def _element(self, a: AttrSpec, ab: str, cname: str) -> AttrDecoder:
        sub = a.get("sub-type", "nest")
        hint = a.get("display-hint")
        if sub == "nest":
            target = a.get("nested-attributes")
            return NestAttr(ab, cname, a.name, self._nested(target, ab))
        if sub in _INT_TYPES:
            return ScalarAttr(
                ab,
                cname,
                a.name,
                self.formatter(
                    sub, hint, a.get("enum"), bool(a.get("enum-as-flags")), a.get("units")
                ),
                self._int_struct(sub, a.get("byte-order")),
            )
        if sub == "string":
            return StringAttr(ab, cname, a.name)
        if sub == "binary" and a.get("struct"):
            lay = self.struct_layout(a.get("struct"))
            if lay is not None:
                return StructAttr(ab, cname, a.name, lay)
        return BinaryAttr(ab, cname, a.name, self.formatter("binary", hint, None, False, None))

    def _sub_message(self, a: AttrSpec, ab: str, cname: str) -> AttrDecoder:
        smname = a.get("sub-message")
        formats = self.spec.sub_messages.get(smname or "", {})
        selector = selector_names(a.get("selector"))
        if not selector or not formats:
            return BinaryAttr(ab, cname, a.name, disp.hexbytes)
        cache: dict[str, tuple[StructLayout | None, CompiledAttrSet | None]] = {}

        def resolve(key: str) -> tuple[StructLayout | None, CompiledAttrSet | None]:
            hit = cache.get(key)
            if hit is None:
                f = formats[key]
                header = (
                    self.struct_layout(f.fixed_header, f"{ab}.{field_name(f.fixed_header)}")
                    if f.fixed_header
                    else None
                )
                sub = f.abbrev if f.abbrev is not None else key
                cset = (
                    self.attr_set(
                        f.attribute_set, f"{ab}.{field_name(sub)}" if sub and sub != "*" else ab
                    )
                    if f.attribute_set
                    else None
                )
                hit = cache[key] = (header, cset)
            return hit

        return SubMessageAttr(ab, cname, a.name, selector, set(formats), resolve)
