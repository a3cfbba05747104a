"""Renderers: the fast JSON writer must equal the plain dict export."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from nlbuild import frame, ifinfomsg, msg, u32

import dissect
from dissect.core.netlink import Session
from dissect.render.json import _dumps, node_dict, tree_json

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = sorted((ROOT / "captures").glob("*.pcap*"))
SHARED = ROOT.parent / "shared" / "captures"
if SHARED.is_dir():
    CAPTURES += sorted(SHARED.glob("*.pcap*"))


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_fast_json_equals_reference(path):
    # twice: the second pass runs with the leaf cache warm
    for _ in range(2):
        for f in dissect.read_capture(path):
            assert tree_json(f.root) == _dumps(node_dict(f.root)), f.number


def test_leaf_cache_does_not_mix_byte_orders():
    """The same four bytes are 1500 in a little-endian capture and 0xdc050000
    in a big-endian one; a cached text must not carry one into the other."""
    le = frame(0, msg(16, 1, ifinfomsg() + u32(4, 1500)))
    attr_be = struct.pack(">HH", 8, 4) + struct.pack("<I", 1500)
    body_be = struct.pack(">BxHiII", 0, 0, 0, 0, 0) + attr_be
    be = frame(0, struct.pack(">IHHII", 16 + len(body_be), 16, 1, 1, 0) + body_be)
    texts = []
    for data, bo in ((le, None), (be, "big")):
        f = Session(byte_order=bo).decode(data)
        assert tree_json(f.root) == _dumps(node_dict(f.root))
        texts.append(tree_json(f.root))
    assert (
        '"abbrev":"rtnl.link.mtu","name":"IFLA_MTU","offset":48,"length":8,"raw":"08000400dc050000","value":1500,'
        in texts[0]
    )
    assert f'"raw":"00080004dc050000","value":{0xDC050000},' in texts[1]


@pytest.mark.parametrize("path", CAPTURES[:3], ids=lambda p: p.name)
def test_fast_frame_and_message_json_equal_reference(path):
    from dissect.render.json import frame_dict, frame_json, message_dict, message_json

    for f in dissect.read_capture(path):
        assert frame_json(f) == _dumps(frame_dict(f)), f.number
        for m in f.messages:
            assert message_json(m, f) == _dumps(message_dict(m, f)), (f.number, m.index)


def test_frame_output_shows_the_owning_process_in_every_format():
    import io
    import json

    from dissect.render.json import frame_dict, frame_json
    from dissect.render.output import FrameOutput

    f = Session().decode(frame(0, msg(16, 1, ifinfomsg() + u32(4, 1500))))
    f.process = (4242, "ip")
    texts = {}
    for fmt in ("text", "jsonl", "json"):
        buf = io.StringIO()
        out = FrameOutput(buf, fmt)
        out.write(f)
        out.close()
        texts[fmt] = buf.getvalue()
    assert texts["text"].rstrip().endswith("[ip 4242]")
    assert json.loads(texts["jsonl"])["process"] == {"pid": 4242, "comm": "ip"}
    doc = json.loads(texts["json"])
    assert doc["frames"][0]["process"] == {"pid": 4242, "comm": "ip"}
    assert doc["end"] == {"frames": 1}
    assert frame_json(f) == _dumps(frame_dict(f))
    f.process = None
    assert "process" not in json.loads(_jsonl_of(f))


def _jsonl_of(f):
    import io

    from dissect.render.output import FrameOutput

    buf = io.StringIO()
    FrameOutput(buf, "jsonl").write(f)
    return buf.getvalue()
