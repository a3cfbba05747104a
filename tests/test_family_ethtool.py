"""The ethtool family spec (plugins/ethtool.yaml) against real traffic.

genl_ethtool.pcap was recorded on a 6.1 kernel while a script ran ethtool
against a veth pair and a dummy device (its .commands.log holds the text
ethtool printed); quickstart.pcap has an `ethtool -k` too.  Every ethtool
message must be named, decode without undecoded or malformed parts, and
show the values ethtool printed.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import dissect
from dissect.capture import netlink_pseudo_header
from dissect.core.netlink import TO_KERNEL, Session

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "captures"
GENL_ETHTOOL = SHARED / "genl_ethtool.pcap"
QUICKSTART = ROOT / "captures" / "quickstart.pcap"

needs_shared = pytest.mark.skipif(
    not GENL_ETHTOOL.is_file(), reason="shared/captures/genl_ethtool.pcap not present"
)

E = "genl.ethtool"


def ethtool_messages(path: Path) -> list:
    """Ethtool messages of a capture, errors and ACKs left out."""
    return [
        m
        for frame in dissect.read_capture(path)
        for m in frame.messages
        if m.family == "ethtool" and m.type_name != "NLMSG_ERROR"
    ]


@pytest.fixture(scope="module")
def genl_msgs() -> list:
    return ethtool_messages(GENL_ETHTOOL)


def one(msgs: list, type_name: str, direction: str | None = None):
    found = [
        m
        for m in msgs
        if m.type_name == type_name and (direction is None or m.direction == direction)
    ]
    assert found, f"no {type_name} in the capture"
    return found[0]


def value(msg, field: str):
    node = msg.node.find(field)
    assert node is not None, f"{field} missing from {msg.type_name}"
    return node.value


def bit_is_set(bitset_value_node, index: int) -> bool:
    """Bit `index` of a compact bitset's ETHTOOL_A_BITSET_VALUE (u32 words)."""
    words = [c.value for c in bitset_value_node.children]
    return bool(words[index // 32] >> (index % 32) & 1)


def feature_names(msgs: list) -> dict[str, int]:
    """Bit index of each netdev feature, from the ETH_SS_FEATURES string set."""
    reply = next(
        m
        for m in msgs
        if m.type_name == "ETHTOOL_MSG_STRSET_GET_REPLY"
        and value(m, f"{E}.strset.stringsets.stringset.id") == 4  # ETH_SS_FEATURES
    )
    names = {}
    for s in reply.node.find_all(f"{E}.strset.stringsets.stringset.strings.string"):
        idx = s.child("ETHTOOL_A_STRING_INDEX")
        name = s.child("ETHTOOL_A_STRING_VALUE")
        if idx is not None and name is not None and name.value:
            names[name.value] = idx.value
    return names


def sent_padding(msg, note) -> bool:
    """ethtool (userspace) leaves stale bytes in the alignment padding after
    the strings it sends; the capture really has them, in its requests and
    in the copies the kernel echoes in errors."""
    return (msg.direction == TO_KERNEL or msg.type_name == "NLMSG_ERROR") and (
        note.text == "non-zero padding after the attribute"
    )


PATHS = [
    pytest.param(GENL_ETHTOOL, marks=needs_shared, id="genl_ethtool"),
    pytest.param(QUICKSTART, id="quickstart"),
]


@pytest.mark.parametrize("path", PATHS)
def test_every_message_named_and_fully_decoded(path):
    msgs = [
        m for frame in dissect.read_capture(path) for m in frame.messages if m.family == "ethtool"
    ]
    assert msgs, "no ethtool messages"
    problems = []
    for m in msgs:
        if m.type_name != "NLMSG_ERROR":
            assert m.type_name.startswith("ETHTOOL_MSG_"), m.type_name
        for node, note in m.node.all_notes():
            if note.group in ("undecoded", "malformed") and not sent_padding(m, note):
                problems.append(f"{m.type_name} {node.abbrev}: {note.text}")
    assert not problems, problems


@needs_shared
def test_directional_numbers(genl_msgs):
    # requests and replies number in separate enums: CHANNELS_GET is 17,
    # its reply 18; TSINFO_GET 25, its reply 26
    assert one(genl_msgs, "ETHTOOL_MSG_CHANNELS_GET").genl_cmd == 17
    assert one(genl_msgs, "ETHTOOL_MSG_CHANNELS_GET_REPLY").genl_cmd == 18
    assert one(genl_msgs, "ETHTOOL_MSG_TSINFO_GET").genl_cmd == 25
    assert one(genl_msgs, "ETHTOOL_MSG_TSINFO_GET_REPLY").genl_cmd == 26
    assert one(genl_msgs, "ETHTOOL_MSG_FEATURES_SET_REPLY").genl_cmd == 12


@needs_shared
def test_link_settings_match_ethtool(genl_msgs):
    # "Speed: 10000Mb/s", "Duplex: Full", "Auto-negotiation: off",
    # "Supported link modes: Not reported"
    modes = one(genl_msgs, "ETHTOOL_MSG_LINKMODES_GET_REPLY")
    assert value(modes, f"{E}.linkmodes.header.dev_name") == "ge-veth0"
    assert value(modes, f"{E}.linkmodes.speed") == 10000
    assert modes.node.find(f"{E}.linkmodes.duplex").display.startswith("full")
    assert value(modes, f"{E}.linkmodes.autoneg") == 0
    assert not modes.node.find_all(f"{E}.linkmodes.ours.bits.bit")
    # "Port: Twisted Pair", "PHYAD: 0", "Transceiver: internal", "MDI-X: Unknown"
    info = one(genl_msgs, "ETHTOOL_MSG_LINKINFO_GET_REPLY")
    assert info.node.find(f"{E}.linkinfo.port").display.startswith("tp")
    assert value(info, f"{E}.linkinfo.phyaddr") == 0
    assert info.node.find(f"{E}.linkinfo.transceiver").display.startswith("internal")
    assert info.node.find(f"{E}.linkinfo.tp_mdix").display.startswith("mdi-invalid")
    # "Link detected: yes"
    state = one(genl_msgs, "ETHTOOL_MSG_LINKSTATE_GET_REPLY")
    assert value(state, f"{E}.linkstate.link") == 1
    assert "speed 10000" in modes.info and "duplex full" in modes.info


@needs_shared
def test_channels_match_ethtool(genl_msgs):
    # ethtool -l: maximums RX 2 TX 2, current RX 1 TX 1
    get = one(genl_msgs, "ETHTOOL_MSG_CHANNELS_GET_REPLY")
    counts = {
        f: value(get, f"{E}.channels.{f}") for f in ("rx_max", "tx_max", "rx_count", "tx_count")
    }
    assert counts == {"rx_max": 2, "tx_max": 2, "rx_count": 1, "tx_count": 1}
    assert get.node.find(f"{E}.channels.combined_count") is None  # "Combined: n/a"
    # ethtool -L ge-veth0 rx 2 tx 2: the request, and the notification the
    # monitor printed ("Current hardware settings: RX 2 TX 2")
    req = one(genl_msgs, "ETHTOOL_MSG_CHANNELS_SET", TO_KERNEL)
    assert (value(req, f"{E}.channels.rx_count"), value(req, f"{E}.channels.tx_count")) == (2, 2)
    ntf = next(m for m in genl_msgs if m.genl_cmd == 19 and m.direction != TO_KERNEL)
    assert (value(ntf, f"{E}.channels.rx_count"), value(ntf, f"{E}.channels.tx_count")) == (2, 2)


@needs_shared
def test_features_match_ethtool(genl_msgs):
    bits = feature_names(genl_msgs)
    assert {"rx-gro", "tx-checksum-ip-generic", "highdma"} <= bits.keys()
    # ethtool -k before the change: generic-receive-offload off,
    # tx-checksum-ip-generic on, highdma on
    before = one(genl_msgs, "ETHTOOL_MSG_FEATURES_GET_REPLY")
    active = before.node.find(f"{E}.features.active.value")
    assert not bit_is_set(active, bits["rx-gro"])
    assert bit_is_set(active, bits["tx-checksum-ip-generic"])
    assert bit_is_set(active, bits["highdma"])
    # ethtool -K ge-veth0 gro off tx-checksum-ip-generic off: a verbose
    # bitset naming both features without a value flag (off)
    req = one(genl_msgs, "ETHTOOL_MSG_FEATURES_SET", TO_KERNEL)
    named = [n.value for n in req.node.find_all(f"{E}.features.wanted.bits.bit.name")]
    assert named == ["rx-gro", "tx-checksum-ip-generic"]
    assert not req.node.find_all(f"{E}.features.wanted.bits.bit.value")
    # the monitor's notification: "tx-checksum-ip-generic: off"
    ntf = next(m for m in genl_msgs if m.genl_cmd == 13 and m.direction != TO_KERNEL)
    assert not bit_is_set(
        ntf.node.find(f"{E}.features.active.value"), bits["tx-checksum-ip-generic"]
    )


@needs_shared
def test_timestamping_match_ethtool(genl_msgs):
    # ethtool -T: software-transmit, software-receive, software-system-clock;
    # "PTP Hardware Clock: none" (no PHC index attribute)
    reply = one(genl_msgs, "ETHTOOL_MSG_TSINFO_GET_REPLY")
    names = [n.value for n in reply.node.find_all(f"{E}.tsinfo.timestamping.bits.bit.name")]
    assert names == ["software-transmit", "software-receive", "software-system-clock"]
    assert reply.node.find(f"{E}.tsinfo.phc_index") is None


@needs_shared
def test_notifications_named(genl_msgs):
    assert next(
        m for m in genl_msgs if m.genl_cmd == 19 and m.direction != TO_KERNEL
    ).type_name == ("ETHTOOL_MSG_CHANNELS_NTF")
    assert next(
        m for m in genl_msgs if m.genl_cmd == 13 and m.direction != TO_KERNEL
    ).type_name == ("ETHTOOL_MSG_FEATURES_NTF")


def _nla(t: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("<HH", n, t) + payload + b"\0" * (-n % 4)


def test_stats_counters_named_by_group():
    # A STATS_GET_REPLY (kernel enum 33) built by hand: each
    # ETHTOOL_A_STATS_GRP_STAT nest holds one u64 whose type is the counter's
    # number in its group's enum, from 0 (ETHTOOL_A_STATS_ETH_MAC_2_TX_PKT = 0)
    header = _nla(1, struct.pack("<I", 4)) + _nla(2, b"d0\0")
    mac = (
        _nla(2, struct.pack("<I", 1))  # ETHTOOL_STATS_ETH_MAC
        + _nla(4, _nla(0, struct.pack("<Q", 12345)))
        + _nla(4, _nla(13, struct.pack("<Q", 99)))
    )
    rmon = (
        _nla(2, struct.pack("<I", 3))  # ETHTOOL_STATS_RMON
        + _nla(4, _nla(1, struct.pack("<Q", 7)))
        + _nla(
            5,
            _nla(7, struct.pack("<I", 64))
            + _nla(8, struct.pack("<I", 64))
            + _nla(9, struct.pack("<Q", 5)),
        )
    )
    body = bytes([33, 1, 0, 0]) + _nla(2, header) + _nla(4, mac) + _nla(4, rmon)
    msg = struct.pack("<IHHII", 16 + len(body), 20, 0, 1, 0) + body
    session = Session(dissect.api.default_registry(), None)
    session.genl_overrides[20] = "ethtool"
    (m,) = dissect.decode_frame(netlink_pseudo_header(16) + msg, session=session).messages
    assert m.type_name == "ETHTOOL_MSG_STATS_GET_REPLY"
    stat = f"{E}.stats.grp.stat"
    assert value(m, f"{stat}.2_tx_pkt") == 12345
    assert m.node.find(f"{stat}.15_rx_int_err").name == "ETHTOOL_A_STATS_ETH_MAC_15_RX_INT_ERR"
    assert value(m, f"{stat}.15_rx_int_err") == 99
    assert value(m, f"{stat}.oversize") == 7
    assert value(m, f"{E}.stats.grp.hist_rx.hist_val") == 5
    assert not list(m.node.all_notes())
