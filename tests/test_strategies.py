"""dissect.strategies: every mutation of `malformed_messages` is a defect
our dissector reports, and well-formed messages cover every family."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

import dissect
from dissect import strategies as nst
from dissect.capture import netlink_pseudo_header
from dissect.core.netlink import Session
from dissect.scapy import NetlinkCooked

REPORTED = ("malformed", "undecoded", "protocol")


def _notes(msg):
    session = Session(dissect.api.default_registry())
    for fid, name in msg.context.user.items():
        session.genl_overrides[fid] = name
    data = netlink_pseudo_header(msg.protocol) + bytes(msg)
    frame = session.decode(data)
    return data, [(n.name, note.group, note.text) for n, note in frame.root.all_notes()]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(nst.malformed_messages())
def test_every_mutation_is_reported(case):
    msg, kind = case
    data, notes = _notes(msg)
    assert [n for n in notes if n[1] in REPORTED], (kind, msg.payload.name, notes)
    assert bytes(NetlinkCooked(data)) == data


def test_message_types_cover_every_family():
    reg = dissect.api.default_registry()
    # every family with operations, or frames a frame-hook decodes
    # (header-selected and hook-decoded bodies included)
    families = {
        s.name for s in reg.specs if s.protocol != "netlink-core" and (s.operations or s.frame_hook)
    }
    types = nst.message_types()
    assert {t.family for t in types} == families
    assert {"rt-link", "nlctrl", "audit", "rt-tc", "sock-diag", "connector"} <= families
    ops = {(t.family, t.op) for t in types}
    assert {
        ("sock-diag", "sock-diag-by-family"),
        ("audit", "syscall"),
        ("audit", "add-rule"),
        ("connector", "msg"),
        ("kobject-uevent", "kernel"),
        ("kobject-uevent", "udev"),
    } <= ops


def test_genl_test_ids_are_distinct():
    ids = nst.genl_test_ids()
    assert len(set(ids.values())) == len(ids)
    assert ids["nlctrl"] == 16
