"""Golden tests on real captures: ours (captures/) and the shared ones.

Each capture's summary lines are compared with tests/golden/NAME.summary and
quickstart's full tree with tests/golden/quickstart.tree; regenerate both
with ``NLSHARK_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` and review the
diff.  Beside the snapshots, facts recorded with each capture (message
counts, error replies, extended-ACK texts, generic netlink ids) are checked
directly, and so are the tree invariants.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

import dissect
from dissect.render.text import summary_line, tree_lines

ROOT = Path(__file__).resolve().parents[1]
OURS = ROOT / "captures"
SHARED = ROOT.parent / "shared" / "captures"
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = bool(os.environ.get("NLSHARK_UPDATE_GOLDEN"))

# Facts from each capture's README and commands log.
FACTS = {
    "quickstart.pcap": {
        "messages": 120,
        "errors": {"OK": 13, "ENODEV": 7, "ERANGE": 1, "ENETUNREACH": 1, "EINVAL": 1},
        "extack": {"8021q: Invalid VLAN id", "Nexthop has invalid gateway", "mtu greater than device maximum"},
    },
    "quickstart_ns.pcap": {
        "messages": 120,
        "errors": {"OK": 13, "ENODEV": 7, "ERANGE": 1, "ENETUNREACH": 1, "EINVAL": 1},
        "extack": {"8021q: Invalid VLAN id", "Nexthop has invalid gateway", "mtu greater than device maximum"},
    },
    "routes_multi.pcapng": {"messages": 247, "errors": {"OK": 18, "ENODEV": 9}, "extack": set()},
    "tc.pcap": {
        "messages": 1730,
        "errors": {"OK": 102, "ENODEV": 9, "ENOENT": 2, "EPERM": 1, "EOPNOTSUPP": 1, "EINVAL": 1},
        "extack": {
            "Invalid handle", "Specified qdisc kind is unknown",
            "TC action with specified index not found", "sch_taprio: Multi-queue device is required",
        },
    },
    "link_kinds.pcap": {"messages": 443, "errors": {"ENODEV": 49, "OK": 42}},
    "addr_route_neigh.pcap": {"messages": 477, "errors": {"OK": 44, "EADDRNOTAVAIL": 1}},
    "genl_ethtool.pcap": {
        "messages": 309,
        "errors": {"OK": 36, "EOPNOTSUPP": 12, "ENODEV": 4},
        "extack": {"device does not report tunnel offload info", "failed to retrieve link settings"},
    },
    "extack_errors.pcap": {
        "messages": 126,
        "errors": {"ENODEV": 16, "ERANGE": 10, "EINVAL": 8, "OK": 8, "EEXIST": 3, "ENETUNREACH": 3, "ENOENT": 1},
        "extack": {
            "8021q: link not specified", "Egress device not specified", "Invalid nexthop id",
            "Nexthop id can not be used twice in a group", "Nexthop id does not exist",
            "Number of buckets needs to be non-0", "mtu greater than device maximum",
            "mtu less than device minimum", "Nexthop has invalid gateway", "no device matches name",
            "8021q: Invalid VLAN id", "Attribute failed policy validation",
        },
    },
    "sock_diag.pcap": {"messages": 61},
    "mixed_families.pcapng": {"messages": 121, "errors": {"OK": 12, "ENODEV": 3}},
    "trace_rtnl_618.pcapng": {
        "messages": 381,
        "errors": {"OK": 23, "ENODEV": 15, "EINVAL": 2, "ENOENT": 2, "EEXIST": 1},
        "extack": {"mtu greater than device maximum"},
    },
    "trace_hooks_618.pcapng": {"messages": 76, "errors": {"OK": 13, "ENODEV": 3}, "extack": set()},
}  # fmt: skip

# Families that later work covers; their messages may stay undecoded for now.
NOT_YET = {"netfilter", "xfrm"}

# Known malformed notes on real traffic: iproute2 sends uninitialised
# padding after some attributes of its requests.
MALFORMED_OK = {
    "non-zero padding after the attribute",
    # extack_errors' ack_modes.py sends a 2-byte IFA_LOCAL on purpose
    "IFA_LOCAL has 2 bytes, expected 4 or 16",
}


def _captures() -> list[Path]:
    files = sorted(p for p in OURS.glob("*.pcap*"))
    if SHARED.is_dir():
        files += sorted(SHARED.glob("*.pcap*"))
    return files


CAPTURES = _captures()


@pytest.fixture(scope="module", params=CAPTURES, ids=lambda p: p.name)
def decoded(request):
    path: Path = request.param
    return path, list(dissect.read_capture(path))


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.write_text(text)
        if not UPDATE:
            pytest.fail(
                f"golden file {name} was missing and has been written; review and commit it"
            )
    assert text == path.read_text(), (
        f"output differs from tests/golden/{name}; run with NLSHARK_UPDATE_GOLDEN=1 and review"
    )


def test_summary_golden(decoded):
    path, frames = decoded
    t0 = frames[0].ts_ns if frames else 0
    lines = [summary_line(m, t0, f.ts_ns) for f in frames for m in f.messages]
    prefix = "" if path.parent == OURS else "shared_"
    _golden(f"{prefix}{path.name}.summary", "\n".join(lines) + "\n")


def test_quickstart_tree_golden():
    """Full trees of the first frames and of every frame with a failure."""
    frames = [
        f
        for f in dissect.read_capture(OURS / "quickstart.pcap")
        if f.number <= 12 or any(m.error for m in f.messages)
    ]
    text = "\n".join(line for f in frames for line in tree_lines(f.root)) + "\n"
    _golden("quickstart.tree", text)


def test_recorded_facts(decoded):
    path, frames = decoded
    facts = FACTS.get(path.name)
    if facts is None:
        pytest.skip("no recorded facts for this capture")
    msgs = [m for f in frames for m in f.messages]
    assert len(msgs) == facts["messages"]
    if "errors" in facts:
        errors = collections.Counter(
            dissect.core.display.errno_name(m.error)
            for m in msgs
            if m.type == 2 and m.error is not None
        )
        assert dict(errors) == facts["errors"]
    if "extack" in facts:
        assert {m.ext_msg for m in msgs if m.ext_msg} == facts["extack"]


def test_genl_ids_agree_with_the_capturing_kernel(decoded):
    path, frames = decoded
    tsv = path.with_name(path.name.rsplit(".", 1)[0] + ".genl_families.tsv")
    if not tsv.exists():
        pytest.skip("no genl_families.tsv")
    kernel = {
        int(i): n for i, n in (line.split("\t") for line in tsv.read_text().split("\n") if line)
    }
    for f in frames:
        for m in f.messages:
            if m.protocol == 16 and m.type >= 16:
                assert m.family == kernel.get(m.type), (f.number, m.family)


def _unexpected(msg, group: str, text: str) -> bool:
    if group == "malformed":
        return text not in MALFORMED_OK
    if group == "undecoded":
        family = msg.family.split()[0]
        return family not in NOT_YET
    return False


def test_no_unexpected_notes(decoded):
    path, frames = decoded
    bad = [
        (f.number, m.type_name, node.name, note.text)
        for f in frames
        for m in f.messages
        for node, note in m.node.all_notes()
        if _unexpected(m, note.group, note.text)
    ]
    assert not bad, bad[:20]


def test_tree_invariants(decoded):
    _, frames = decoded
    for f in frames:
        n = len(f.data)
        covered = bytearray(n)
        for node in f.root.walk():
            assert node.offset >= 0 and node.end <= n and node.length >= 0
            for c in node.children or ():
                assert node.offset <= c.offset and c.end <= node.end, (
                    f.number,
                    node.abbrev,
                    c.abbrev,
                )
            if node is not f.root:
                covered[node.offset : node.end] = b"\1" * node.length
        assert all(covered), f"frame {f.number}: bytes not in any node"
