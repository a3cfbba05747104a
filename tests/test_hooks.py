"""Python hooks named by specs (``hook: module.function``): nl80211's 802.11
frames and information elements, and hooks that are missing or fail."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from nlbuild import attr, frame, genlhdr, msg

import dissect
from dissect.core.netlink import Session
from dissect.schema import Registry

ROOT = Path(__file__).resolve().parents[1]
HWSIM = ROOT / "captures" / "nl80211_hwsim.pcap"
NL80211_ID = 0x40


@pytest.mark.skipif(not HWSIM.exists(), reason="captures/nl80211_hwsim.pcap not present")
def test_scan_results_elements_are_split_and_named():
    elements = [
        n
        for f in dissect.read_capture(HWSIM)
        for m in f.messages
        for n in m.node.walk()
        if n.abbrev.endswith(".element")
    ]
    names = {(n.name, n.display) for n in elements}
    assert ("SSID", "'nlshark-ibss'") in names
    assert ("DS Parameter Set", "channel 1") in names
    assert all(not n.notes for n in elements)


def _nl80211_frame_message(payload: bytes) -> bytes:
    # NL80211_CMD_FRAME (59) with NL80211_ATTR_FRAME (51)
    return frame(16, msg(NL80211_ID, 0, genlhdr(59) + attr(51, payload), seq=0))


def test_beacon_frame_fields_and_elements():
    header = struct.pack(
        "<HH6s6s6sH",
        0x0080,
        0,
        b"\xff" * 6,
        bytes.fromhex("021122334455"),
        bytes.fromhex("021122334455"),
        0x10,
    )
    fixed = struct.pack("<QHH", 123456, 100, 0x0401)
    ies = b"\x00\x04test" + b"\x03\x01\x06"
    s = Session()
    s.genl_overrides[NL80211_ID] = "nl80211"
    f = s.decode(_nl80211_frame_message(header + fixed + ies))
    node = f.root.find("genl.nl80211.attrs.frame")
    kids = {c.name: c for c in node.children}
    assert kids["transmitter"].display == "02:11:22:33:44:55"
    assert kids["beacon interval"].value == 100 and kids["timestamp"].value == 123456
    els = kids["elements"].children
    assert [(e.name, e.display) for e in els] == [
        ("SSID", "'test'"),
        ("DS Parameter Set", "channel 6"),
    ]
    for n in node.walk():  # children inside their parent
        for c in n.children or ():
            assert n.offset <= c.offset and c.end <= n.end


def test_truncated_element_is_noted():
    s = Session()
    s.genl_overrides[NL80211_ID] = "nl80211"
    f = s.decode(frame(16, msg(NL80211_ID, 1, genlhdr(33) + attr(42, b"\x00\x09abc"))))
    el = f.root.find("genl.nl80211.attrs.element")
    assert el.name == "SSID" and any("runs" in n.text for n in el.notes)


SPEC = """
name: hooked
protocol: genetlink
attribute-sets:
  - name: main
    attributes:
      - {name: blob, type: binary, value: 1, hook: %s}
operations:
  list:
    - {name: get, value: 1, attribute-set: main, do: {request: {attributes: [blob]}}}
"""


@pytest.mark.parametrize(
    ("hook", "module", "expect"),
    [
        ("nothere.fn", None, "no nothere.py beside the spec"),
        ("mod.missing", "def other(*a):\n    pass\n", "has no function missing"),
        (
            "mod.boom",
            "def boom(node, buf, start, end):\n    raise ValueError('bad')\n",
            "failed: ValueError: bad",
        ),
        ("mod.fn", "raise ImportError('broken module')\n", "failed to load"),
    ],
)
def test_missing_or_failing_hooks_leave_a_note(tmp_path, hook, module, expect):
    (tmp_path / "hooked.yaml").write_text(SPEC % hook)
    if module is not None:
        (tmp_path / "mod.py").write_text(module)
    reg = Registry.default([tmp_path])
    s = Session(reg)
    s.genl_overrides[0x41] = "hooked"
    f = s.decode(frame(16, msg(0x41, 1, genlhdr(1) + attr(1, b"\x01\x02"))))
    blob = f.root.find("genl.hooked.main.blob")
    assert blob.value == b"\x01\x02"
    assert any(expect in n.text for n in blob.notes), [n.text for n in blob.notes]
