"""Build messages from a spec, for round-trip tests.

`MessageBuilder(spec)` makes well-formed messages for an operation: every
attribute of its set gets a sample value chosen from its type (nests,
indexed arrays, sub-messages and structs included, to a bounded depth), and
each encoded leaf is recorded as (frame offset, abbreviation, value) so the
test can find the decoded node and compare.  Byte order is little-endian
unless an attribute or member says big-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from dissect.schema.spec import AttrSpec, Spec, field_name

FMT = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "s8": "b", "s16": "h", "s32": "i", "s64": "q"}
PSEUDO = 16  # nlmon pseudo-header in front of the message


@dataclass
class Built:
    data: bytes
    expect: list[tuple[int, str, Any]] = field(default_factory=list)


def _int_sample(t: str, seed: int) -> int:
    bits = int(t[1:])
    v = (seed * 2654435761 + 7) % (1 << (bits - 1))
    return v if t.startswith("u") else v - (1 << (bits - 2))


class MessageBuilder:
    def __init__(self, spec: Spec, max_depth: int = 3) -> None:
        self.spec = spec
        self.max_depth = max_depth
        self.seed = 1

    def _next(self) -> int:
        self.seed += 1
        return self.seed

    # -- structs ---------------------------------------------------------------
    def struct_bytes(
        self, name: str, prefix: str, base: int, expect: list[tuple[int, str, Any]] | None
    ) -> bytes:
        sdef = self.spec.structs[name]
        out = b""
        trailer = b""
        if sdef.trailer is not None:
            trailer = bytes((i * 5 + 3) & 0xFF for i in range(16))
            if sdef.trailer.get("hook"):
                # bytes a hook splits into type-length records (ND options,
                # their length in 8-byte units): one record of all 16 bytes
                trailer = bytes([1, 2]) + trailer[2:]
        for m in sdef.members:
            ab = f"{prefix}.{field_name(m.name)}"
            if m.type in FMT:
                bo = ">" if m.byte_order == "big-endian" else "<"
                v = _int_sample(m.type, self._next())
                if sdef.trailer is not None and m.name == sdef.trailer["length"]:
                    v = len(trailer) // sdef.trailer["scale"]
                raw = struct.pack(bo + FMT[m.type], v)
                if expect is not None:
                    expect.append((base + len(out), ab, struct.unpack(bo + FMT[m.type], raw)[0]))
                out += raw
            elif m.type == "pad":
                out += b"\0" * (m.len or 0)
            elif m.type == "string":
                out += b"s".ljust(m.len or 0, b"\0")
            elif m.struct and m.struct in self.spec.structs:
                out += self.struct_bytes(m.struct, ab, base + len(out), None)
            else:
                out += bytes((i * 7 + 1) & 0xFF for i in range(m.len or 0))
        if sdef.trailer is not None:
            # the trailer follows the struct padded to 4 bytes
            out += b"\0" * ((4 - len(out) % 4) % 4)
            if expect is not None:
                expect.append(
                    (base + len(out), f"{prefix}.{field_name(sdef.trailer['name'])}", trailer)
                )
            out += trailer
        return out

    # -- attributes --------------------------------------------------------------
    def attrs(self, set_name: str, prefix: str, base: int, depth: int, built: Built) -> bytes:
        aset = self.spec.attr_sets[set_name]
        out = b""
        selectors: dict[str, tuple[AttrSpec, str]] = {}
        # sub-messages need their selector first: choose a format for each
        for a in aset.attrs.values():
            if a.type == "sub-message":
                fmts = self.spec.sub_messages.get(a.get("sub-message") or "", {})
                sel_spec = a.get("selector")
                sel_name = sel_spec[0] if isinstance(sel_spec, list) and sel_spec else sel_spec
                sel = aset.by_name.get(sel_name or "")
                keys = [k for k in fmts if k != "*"]
                if sel is not None and keys:
                    selectors[sel.name] = (a, keys[self._next() % len(keys)])
        order = sorted(aset.attrs.values(), key=lambda a: (a.name not in selectors, a.value))
        for a in order:
            enc = self.attr(
                a, aset.name_prefix, prefix, base + len(out), depth, built, selectors, aset
            )
            if enc is not None:
                out += enc + b"\0" * ((4 - len(enc) % 4) % 4)
        return out

    def attr(
        self,
        a: AttrSpec,
        cprefix: str,
        prefix: str,
        off: int,
        depth: int,
        built: Built,
        selectors: dict[str, tuple[AttrSpec, str]],
        aset: Any,
    ) -> bytes | None:
        ab = f"{prefix}.{field_name(a.name)}"
        t = a.type
        bo = ">" if a.get("byte-order") == "big-endian" else "<"
        payload: bytes
        if a.name in selectors:
            key = selectors[a.name][1]
            if t == "string":
                payload = key.encode() + b"\0"
                built.expect.append((off, ab, key))
            elif t in FMT and a.get("enum") in self.spec.enums:
                edef = self.spec.enums[a.get("enum")]
                num = next((v for v, n in edef.entries.items() if n == key), None)
                if num is None:
                    return None
                payload = struct.pack(bo + FMT[t], num)
                built.expect.append((off, ab, num))
            else:
                return None
        elif t in FMT:
            v = _int_sample(t, self._next())
            payload = struct.pack(bo + FMT[t], v)
            built.expect.append((off, ab, v))
        elif t in ("uint", "sint"):
            v = _int_sample("u64" if t == "uint" else "s64", self._next())
            payload = struct.pack(bo + ("Q" if t == "uint" else "q"), v)
            built.expect.append((off, ab, v))
        elif t == "flag":
            payload = b""
            built.expect.append((off, ab, True))
        elif t == "string":
            v = f"{a.name[:10]}{self._next()}"
            payload = v.encode() + b"\0"
            built.expect.append((off, ab, v))
        elif t == "binary" and a.get("hook"):
            return None  # hooked payloads (802.11 frames) are tested in test_hooks
        elif t == "binary" and (a.get("records") or a.get("decoder")):
            return None  # record lists (RTA_MULTIPATH) are built by hand in test_core
        elif t == "binary":
            payload = self.binary(a, ab, off + 4, built)
        elif t == "nest":
            target = a.get("nested-attributes")
            if (
                depth >= self.max_depth
                or target not in self.spec.attr_sets
                or a.get("fixed-header")
            ):
                return None
            payload = self.attrs(target, ab, off + 4, depth + 1, built)
        elif t == "indexed-array":
            sub = a.get("sub-type", "nest")
            target = a.get("nested-attributes")
            items = b""
            for i in range(2):
                start = off + 4 + len(items)
                if sub == "nest" and target in self.spec.attr_sets and depth < self.max_depth:
                    inner = self.attrs(target, ab, start + 4, depth + 1, built)
                elif sub in FMT:
                    v = _int_sample(sub, self._next())
                    inner = struct.pack(bo + FMT[sub], v)
                    built.expect.append((start, ab, v))
                else:
                    return None
                items += (
                    struct.pack("<HH", 4 + len(inner), i)
                    + inner
                    + b"\0" * ((4 - len(inner) % 4) % 4)
                )
            payload = items
        elif t == "sub-message":
            sel = a.get("selector")
            if isinstance(sel, list) and sel:
                sel = sel[0]
            chosen = next((k for s, (attr, k) in selectors.items() if attr is a and s == sel), None)
            fmts = self.spec.sub_messages.get(a.get("sub-message") or "", {})
            if chosen is None or chosen not in fmts or depth >= self.max_depth:
                return None
            f = fmts[chosen]
            sub = f.abbrev if f.abbrev is not None else chosen
            sub_prefix = f"{ab}.{field_name(sub)}" if sub and sub != "*" else ab
            payload = b""
            if f.fixed_header:
                hdr = self.struct_bytes(
                    f.fixed_header, f"{ab}.{field_name(f.fixed_header)}", off + 4, built.expect
                )
                payload = hdr + b"\0" * ((4 - len(hdr) % 4) % 4)
            if f.attribute_set:
                payload += self.attrs(
                    f.attribute_set, sub_prefix, off + 4 + len(payload), depth + 1, built
                )
        elif t == "bitfield32":
            payload = struct.pack("<II", 5, 7)
        else:  # pad, unused, nest-type-value: left out
            return None
        if len(payload) + 4 > 0xFFFF:
            return None
        return struct.pack("<HH", 4 + len(payload), a.value) + payload

    def binary(self, a: AttrSpec, ab: str, off: int, built: Built) -> bytes:
        sname = a.get("struct")
        if sname in self.spec.structs:
            return self.struct_bytes(
                sname, f"{self.spec.abbrev}.{field_name(sname)}", off, built.expect
            )
        hint = a.get("display-hint")
        n = {"ipv4": 4, "ipv6": 16, "mac": 6, "uuid": 16, "ipv4-or-ipv6": 4}.get(hint or "", 5)
        checks = a.get("checks") or {}
        if isinstance(checks, dict):
            consts = self.spec.consts
            exact, mn, mx = (
                consts.get(checks.get(k), checks.get(k))
                for k in ("exact-len", "min-len", "max-len")
            )
            if isinstance(exact, int):
                n = exact
            elif isinstance(mn, int) and n < mn:
                n = mn
            elif isinstance(mx, int) and n > mx:
                n = mx
        sub = a.get("sub-type")
        if sub in FMT:
            n = struct.calcsize(FMT[sub]) * 3
        v = bytes((i * 31 + 3) & 0xFF for i in range(n))
        if sub not in FMT:
            built.expect.append((off - 4, ab, v))
        return v

    # -- messages ------------------------------------------------------------------
    def message(
        self,
        msg_type: int,
        flags: int,
        set_name: str | None,
        header: str | None,
        genl_cmd: int | None,
        seq: int = 1,
        pid: int = 0,
    ) -> Built:
        built = Built(b"")
        body = b""
        base = PSEUDO + 16
        if genl_cmd is not None:
            body += struct.pack("<BBH", genl_cmd, 1, 0)
        if header:
            h = self.struct_bytes(
                header, f"{self.spec.abbrev}.{field_name(header)}", base + len(body), built.expect
            )
            body += h + b"\0" * ((4 - len(h) % 4) % 4)
        if set_name:
            aset = self.spec.attr_sets[set_name]
            body += self.attrs(
                set_name, f"{self.spec.abbrev}.{aset.abbrev}", base + len(body), 0, built
            )
        built.data = struct.pack("<IHHII", 16 + len(body), msg_type, flags, seq, pid) + body
        return built
