"""Catalogues for ``nlshark -G``: the families and the field names.

Field names are generated from the same compiled schema the dissector uses,
so the list is exactly what filters and exports can meet.  Nested sets are
followed depth-first; a set already on the current path (a recursive set)
is not entered again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from .registry import Registry
from .spec import Spec, c_name, field_name

CORE_FIELDS = [
    ("netlink.len", "nlmsg_len", "u32"),
    ("netlink.type", "nlmsg_type", "u16"),
    ("netlink.flags", "nlmsg_flags", "u16"),
    ("netlink.seq", "nlmsg_seq", "u32"),
    ("netlink.pid", "nlmsg_pid", "u32"),
    ("netlink.error.code", "NLMSG_ERROR error", "s32"),
    ("netlink.done.error", "NLMSG_DONE error", "s32"),
    ("netlink.echo.type", "echoed nlmsg_type", "u16"),
    ("genl.cmd", "genlmsghdr cmd", "u8"),
    ("genl.version", "genlmsghdr version", "u8"),
    ("nlmon.protocol", "netlink protocol", "u16"),
]


def write_families(reg: Registry, out: IO[str]) -> None:
    """One line per family in use, then the specs other sources shadow."""
    out.write("family\tprotocol\tnumber\toperations\tattribute-sets\torigin\tsource\n")
    for s in reg.specs:
        if s.protocol == "netlink-core":
            continue
        out.write(
            f"{s.name}\t{s.protocol}\t{_number(s)}\t{len(s.operations)}\t{len(s.attr_sets)}\t{s.origin}\t{s.source}\n"
        )
    for s, winner in reg.shadowed:
        out.write(
            f"# shadowed: {s.name} from {s.origin} ({s.source}) is not used: {winner} defines it\n"
        )
    for err in reg.errors:
        out.write(f"# not loaded: {err}\n")


def _number(s: Spec) -> str:
    if s.protonum is not None:
        return str(s.protonum)
    return str(s.fixed_id) if s.fixed_id is not None else "dynamic"


def spec_fields(spec: Spec) -> Iterator[tuple[str, str, str]]:
    seen: set[str] = set()
    for sname, st in spec.structs.items():
        for m in st.members:
            if m.type != "pad":
                yield (
                    f"{spec.abbrev}.{field_name(sname)}.{field_name(m.name)}",
                    f"{sname}.{m.name}",
                    m.type,
                )
    roots = []
    for op in spec.operations:
        sets = [op.attribute_set]
        # a message-level sub-message: each format's set decodes the whole body
        sets += [f.attribute_set for f in spec.sub_messages.get(op.sub_message or "", {}).values()]
        for name in sets:
            if name and name not in roots:
                roots.append(name)
    for root in roots:
        aset = spec.attr_sets.get(root)
        if aset is None:
            continue
        yield from _set_fields(spec, root, f"{spec.abbrev}.{aset.abbrev}", (root,), seen)


def _set_fields(
    spec: Spec, set_name: str, prefix: str, path: tuple[str, ...], seen: set[str]
) -> Iterator[tuple[str, str, str]]:
    aset = spec.attr_sets[set_name]
    for a in aset.attrs.values():
        ab = f"{prefix}.{field_name(a.name)}"
        if ab in seen:
            continue
        seen.add(ab)
        yield ab, c_name(aset.name_prefix, a.name), a.type
        targets = []
        if a.type in ("nest", "indexed-array", "nest-type-value") and a.get("nested-attributes"):
            targets.append((a.get("nested-attributes"), ab))
        if a.type == "sub-message":
            for key, fmt in spec.sub_messages.get(a.get("sub-message") or "", {}).items():
                if fmt.attribute_set:
                    targets.append((fmt.attribute_set, f"{ab}.{field_name(fmt.abbrev or key)}"))
        for tname, tprefix in targets:
            if tname in spec.attr_sets and tname not in path and len(path) < 12:
                yield from _set_fields(spec, tname, tprefix, (*path, tname), seen)


def write_fields(reg: Registry, out: IO[str]) -> None:
    for ab, name, t in CORE_FIELDS:
        out.write(f"F\t{name}\t{ab}\t{t}\tnetlink\n")
    for s in reg.specs:
        for ab, name, t in spec_fields(s):
            out.write(f"F\t{name}\t{ab}\t{t}\t{s.name}\n")


def write_groups(reg: Registry, out: IO[str]) -> None:
    """Multicast groups per family: classic families have fixed numbers;
    generic netlink groups get their ids at run time (the controller's
    CTRL_ATTR_MCAST_GROUPS says them)."""
    out.write("family\tgroup\tnumber\n")
    for s in reg.specs:
        for name, num in s.mcast_groups.items():
            out.write(f"{s.name}\t{name}\t{num if num is not None else 'dynamic'}\n")
