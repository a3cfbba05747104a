"""The spec extensions the classic families brought (docs/schema.md), on
small specs written for the test: message-level sub-messages, operation
hooks and summary hooks, ranged message types, extensible structs and
struct arrays, `direction: pid`, frame hooks, and a control message number
claimed by a family.  Hooks that are missing or fail leave notes."""

from __future__ import annotations

import struct

import pytest
from nlbuild import attr, frame, msg

from dissect.core.netlink import Session
from dissect.schema import Registry

PROTO = 8  # NETLINK_ISCSI: no family of ours uses it

SPEC = """
name: testfam
protocol: netlink-raw
protonum: 8
abbrev: tf
definitions:
  - {name: kinds, type: enum, entries: [{name: small, value: 1}, {name: big, value: 2}]}
  - name: head
    type: struct
    members: [{name: kind, type: u8, enum: kinds}]
  - name: small-hdr
    type: struct
    members: [{name: kind, type: u8, enum: kinds}, {name: pad, type: pad, len: 1}, {name: val, type: u16}]
  - name: big-hdr
    type: struct
    members: [{name: kind, type: u8, enum: kinds}, {name: pad, type: pad, len: 3}, {name: val, type: u32}]
  - name: info
    type: struct
    members: [{name: a, type: u32}, {name: b, type: u32}, {name: c, type: u32}]
  - name: pair
    type: struct
    members: [{name: x, type: u16}, {name: y, type: u16}]
attribute-sets:
  - name: big-attrs
    attributes:
      - {name: info, type: binary, struct: info, extensible: true}
      - {name: pairs, type: binary, struct: pair, struct-array: true}
sub-messages:
  - name: by-kind
    formats:
      - {value: small, fixed-header: small-hdr, summary: ["small {val!raw}"]}
      - {value: big, fixed-header: big-hdr, attribute-set: big-attrs, summary-hook: tfhooks.big_summary}
operations:
  enum-model: directional
  list:
    - {name: select, fixed-header: head, sub-message: by-kind, selector: kind, kind: get, do: {request: {value: 16}}}
    - {name: hooked, hook: tfhooks.body, event: {value: 17}}
    - {name: failing, hook: tfhooks.boom, event: {value: 18}}
    - {name: missing, hook: tfhooks.nothere, event: {value: 19}}
    - {name: ranged, hook: tfhooks.body, event: {value: 100, last: 199}}
    - {name: named, hook: tfhooks.body, event: {value: 150}}
    - {name: bad-summary, fixed-header: head, summary-hook: tfhooks.boom_summary, event: {value: 20}}
"""
# `named` comes after `ranged`: the first operation listed keeps a number.

HOOKS = """
from dissect.core.tree import Node

def body(msg, buf, start, end, bo):
    msg.node.add(Node("tf.text", "text", start, end - start, buf, bytes(buf[start:end]).decode(), None))
    return "text " + bytes(buf[start:end]).decode()

def boom(msg, buf, start, end, bo):
    msg.node.add(Node("tf.partial", "partial", start, 0, buf))
    raise ValueError("bad body")

def boom_summary(msg):
    raise KeyError("nope")

def big_summary(msg):
    return "big message"
"""


@pytest.fixture
def session(tmp_path):
    (tmp_path / "testfam.yaml").write_text(SPEC)
    (tmp_path / "tfhooks.py").write_text(HOOKS)
    reg = Registry.default([tmp_path])
    assert not reg.errors, reg.errors
    return Session(reg, "little")


def _notes(f):
    return [n.text for _, n in f.root.all_notes()]


def test_message_level_sub_message_picks_header_and_set(session):
    f = session.decode(frame(PROTO, msg(16, 0x301, struct.pack("<BxH", 1, 513))))
    (m,) = f.messages
    assert (m.type_name, m.info) == ("SELECT", "small 513 dump")
    assert f.root.find("tf.small_hdr.val").value == 513
    body = struct.pack("<BxxxI", 2, 7) + attr(1, struct.pack("<3I", 1, 2, 3))
    f = session.decode(frame(PROTO, msg(16, 0x5, body)))
    assert f.messages[0].info == "big message"
    assert f.root.find("tf.big_hdr.val").value == 7
    assert not _notes(f)


def test_unknown_or_missing_selector_value_is_noted(session):
    f = session.decode(frame(PROTO, msg(16, 0x5, struct.pack("<BxH", 9, 1))))
    assert any("= '9' is not known to the schema" in t for t in _notes(f))
    assert f.root.find("tf.head.kind").value == 9
    f = session.decode(frame(PROTO, msg(16, 0x5, b"")))
    assert any("too short for head.kind" in t for t in _notes(f))


def test_extensible_struct_shorter_and_longer(session):
    def info(payload: bytes):
        body = struct.pack("<BxxxI", 2, 7) + attr(1, payload)
        f = session.decode(frame(PROTO, msg(16, 0x5, body)))
        return f, f.root.find("tf.big.info")

    f, node = info(struct.pack("<2I", 1, 2))  # an older kernel's struct
    assert [c.name for c in node.children] == ["a", "b"]
    assert [(n.severity, n.group) for n in node.notes] == [("chat", "protocol")]
    f, node = info(struct.pack("<4I", 1, 2, 3, 4))  # a newer kernel's struct
    assert [c.name for c in node.children] == ["a", "b", "c", "newer fields"]
    assert node.children[-1].value == struct.pack("<I", 4)
    assert not any(n.group in ("malformed", "undecoded") for _, n in f.root.all_notes())


def test_struct_array_may_be_empty(session):
    for payload, count in (
        (b"", 0),
        (struct.pack("<2H", 1, 2), 1),
        (struct.pack("<4H", 1, 2, 3, 4), 2),
    ):
        body = struct.pack("<BxxxI", 2, 7) + attr(2, payload)
        f = session.decode(frame(PROTO, msg(16, 0x5, body)))
        node = f.root.find("tf.big.pairs")
        assert len(node.children or ()) == count
        assert not _notes(f)


def test_operation_hook_and_ranged_names(session):
    f = session.decode(frame(PROTO, msg(17, 0, b"hello", seq=0)))
    assert (f.messages[0].type_name, f.messages[0].info) == ("HOOKED", "text hello (notification)")
    assert f.root.find("tf.text").value == "hello"
    names = [
        session.decode(frame(PROTO, msg(t, 0, b"x", seq=0))).messages[0].type_name
        for t in (100, 150, 199)
    ]
    assert names == ["RANGED 100", "RANGED 150", "RANGED 199"]
    assert (
        session.decode(frame(PROTO, msg(200, 0, b"x", seq=0))).messages[0].type_name == "type 200"
    )


def test_failing_and_missing_hooks_leave_notes(session):
    f = session.decode(frame(PROTO, msg(18, 0, b"abc", seq=0)))
    assert any("hook tfhooks.boom failed: ValueError: bad body" in t for t in _notes(f))
    assert f.root.find("tf.partial") is None  # what the hook added before failing is gone
    assert f.root.find("netlink.payload").value == b"abc"
    f = session.decode(frame(PROTO, msg(19, 0, b"abc", seq=0)))
    assert any("tfhooks.py has no function nothere" in t for t in _notes(f))
    f = session.decode(frame(PROTO, msg(20, 0, b"\1", seq=0)))
    assert f.messages[0].info.startswith("(summary hook failed: KeyError")


FRAMED = """
name: framed
protocol: netlink-raw
protonum: 18
frame-hook: fh.split
"""
FRAME_HOOKS = """
from dissect.core.tree import Node

def split(buf, start, end, bo):
    out = []
    p = start
    for part in bytes(buf[start:end]).split(b";"):
        out.append((Node("fr.part", "part", p, len(part), buf, part.decode(), None), "PART", part.decode()))
        p += len(part) + 1
    return out

def boom(buf, start, end, bo):
    raise RuntimeError("no")
"""


@pytest.mark.parametrize("hook", ["fh.split", "fh.boom", "fh.absent"])
def test_frame_hook(tmp_path, hook):
    (tmp_path / "framed.yaml").write_text(FRAMED.replace("fh.split", hook))
    (tmp_path / "fh.py").write_text(FRAME_HOOKS)
    f = Session(Registry.default([tmp_path])).decode(frame(18, b"one;two"))
    if hook == "fh.split":
        assert [(m.type_name, m.info, m.direction) for m in f.messages] == [
            ("PART", "one", "kernel->user"),
            ("PART", "two", "kernel->user"),
        ]
        assert not _notes(f)
    else:
        (m,) = f.messages
        assert m.node.value == b"one;two"
        assert any(
            ("failed: RuntimeError" if hook == "fh.boom" else "has no function") in t
            for t in _notes(f)
        )


PID_SPEC = """
name: bypid
protocol: netlink-raw
protonum: 19
direction: pid
operations:
  enum-model: directional
  list:
    - {name: carried, fixed-header: h, do: {request: {value: 3}}, event: {value: 3}}
definitions:
  - {name: h, type: struct, members: [{name: v, type: u32}]}
"""


def test_direction_by_pid_and_claimed_control_number(tmp_path):
    (tmp_path / "bypid.yaml").write_text(PID_SPEC)
    s = Session(Registry.default([tmp_path]), "little")
    f = s.decode(frame(19, msg(3, 0, struct.pack("<I", 5), seq=1, pid=999)))
    assert (f.messages[0].direction, f.messages[0].type_name) == ("user->kernel", "CARRIED")
    f = s.decode(frame(19, msg(3, 0, struct.pack("<I", 6), seq=0, pid=0)))
    assert (f.messages[0].direction, f.messages[0].type_name) == ("kernel->user", "CARRIED")
    assert f.root.find("netlink.bypid.h.v").value == 6
    # NLMSG_DONE keeps its meaning for protocols whose specs do not claim it
    f = s.decode(frame(20, msg(3, 2, struct.pack("<i", 0), seq=1, pid=1)))
    assert f.messages[0].type_name == "NLMSG_DONE"
