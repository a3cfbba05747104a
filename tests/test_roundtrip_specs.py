"""Round trips through every kernel YNL spec (and ours): messages built from
each operation's fixed header and attribute set (for a message-level
sub-message, each format's) decode back to the same values, with no
`malformed` or `undecoded` note."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from specbuild import PSEUDO, MessageBuilder

from dissect.capture import netlink_pseudo_header
from dissect.core.netlink import Session
from dissect.schema import Registry, builtin_plugin_dir, load_spec
from dissect.schema.spec import SCALAR_SIZES

ROOT = Path(__file__).resolve().parents[1]
KERNEL_SPECS = ROOT.parent / "shared" / "ynl-specs" / "specs"
GENL_TEST_ID = 0x123

SPECS = sorted(builtin_plugin_dir().glob("*.yaml"))
if KERNEL_SPECS.is_dir():
    SPECS += sorted(KERNEL_SPECS.glob("*.yaml"))


def _layouts(spec, op):
    """(attribute set, fixed header, selector patch) for each body layout of
    an operation: its own, or each format of a message-level sub-message
    (docs/schema.md), whose selector member must hold the format's value."""
    formats = spec.sub_messages.get(op.sub_message or "")
    if formats and op.selector and op.fixed_header in spec.structs:
        off = 0
        for m in spec.structs[op.fixed_header].members:
            if m.name == op.selector:
                break
            off += SCALAR_SIZES.get(m.type, m.len or 0)
        enum = spec.enums.get(m.enum or "")
        for key, fmt in formats.items():
            num = next((v for v, n in enum.entries.items() if n == key), None) if enum else None
            if num is not None and fmt.fixed_header:
                yield fmt.attribute_set, fmt.fixed_header, (off, m.type, num)
        return
    if op.hook:
        return  # decoded by Python; covered by the family's own tests
    if (op.attribute_set and op.attribute_set in spec.attr_sets) or (
        op.fixed_header in spec.structs and not spec.is_genl
    ):
        yield op.attribute_set, op.fixed_header, None


def _cases(spec):
    for op in spec.operations:
        for set_name, header, patch in _layouts(spec, op):
            for role, values, flags in (
                ("request", op.requests, 0x5),
                ("reply", op.replies, 0x2),
                ("event", op.events, 0x0),
            ):
                for v in sorted(values):
                    yield op, role, v, flags, set_name, header, patch


def _patch(built, patch):
    """Write the selector value into the built header (and what to expect)."""
    off, mtype, num = patch
    raw = struct.pack("<" + {"u8": "B", "u16": "H", "u32": "I"}[mtype], num)
    at = 16 + off
    built.data = built.data[:at] + raw + built.data[at + len(raw) :]
    built.expect = [(o, ab, num if o == PSEUDO + at else want) for o, ab, want in built.expect]


def _find(root, off, abbrev):
    for n in root.walk():
        if n.offset == off and n.abbrev == abbrev:
            return n
    return None


@pytest.mark.parametrize("path", SPECS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_spec_round_trip(path):
    spec = load_spec(path)
    if spec.protocol == "netlink-core":
        pytest.skip("not a family")
    reg = Registry()
    reg.add(spec)
    reg.load_file(builtin_plugin_dir() / "nlmsgerr.yaml", "builtin")
    builder = MessageBuilder(spec)
    checked = 0
    problems = []
    for op, role, value, flags, set_name, header, patch in _cases(spec):
        session = Session(reg, "little")
        proto = 16 if spec.is_genl else spec.protonum or 0
        if spec.is_genl:
            session.genl_overrides[GENL_TEST_ID] = spec.name
        # A reply answers a request seen before it (same seq, the requester's
        # port id); an event comes unasked (seq 0, port id 0).
        seq, pid = {"reply": (7, 4242), "event": (0, 0)}.get(role, (7, 0))
        if role == "reply" and op.requests:
            req = min(op.requests)
            if spec.is_genl:
                asked = builder.message(GENL_TEST_ID, 0x5, None, None, req, seq=7)
            else:
                asked = builder.message(req, 0x5, None, None, None, seq=7)
            session.decode(netlink_pseudo_header(proto) + asked.data)
        if spec.is_genl:
            built = builder.message(GENL_TEST_ID, flags, set_name, header, value, seq=seq, pid=pid)
        else:
            if patch is None:
                # Where two operations share a message type and direction (a
                # request set and a notification set under one RTM_NEWMDB),
                # the registry decodes with the first; build what it decodes with.
                lay = reg.raw_layout(
                    proto, value, role == "request", "<", None, event=role == "event"
                )
                if lay is not None and lay.op is not None:
                    set_name, header = lay.op.attribute_set, lay.op.fixed_header
            built = builder.message(value, flags, set_name, header, None, seq=seq, pid=pid)
        if patch is not None:
            _patch(built, patch)
        frame = session.decode(netlink_pseudo_header(proto) + built.data)
        where = f"{op.name} {role} {value} {header or ''}"
        for node, note in frame.root.all_notes():
            if note.group in ("malformed", "undecoded"):
                problems.append(f"{where}: {node.abbrev}: {note.text}")
        for off, abbrev, want in built.expect:
            node = _find(frame.root, off, abbrev)
            if node is None:
                problems.append(f"{where}: no node {abbrev} at {off - PSEUDO}")
            elif node.value != want:
                problems.append(f"{where}: {abbrev} = {node.value!r}, built {want!r}")
            else:
                checked += 1
    assert not problems, f"{len(problems)} problems, first: " + "; ".join(problems[:8])
    if any(True for _ in _cases(spec)):
        assert checked > 0
