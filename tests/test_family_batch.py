"""Generic netlink families written from the uapi headers, against a real
capture (captures/genl_batch.pcap, recorded with the nlmon VM from
captures/scripts/genl_batch.sh): SEG6 and IOAM6 (`ip sr`, `ip ioam`), l2tp
(`ip l2tp`), macsec (`ip macsec`), team (`teamnl`), NET_DM (`dropwatch`),
and TASKSTATS, psample, thermal and gtp through a small python3 client.

Every message of these families must be named and decode without
`undecoded` or `malformed` notes, and the decoded values must agree with
what the tools printed (captures/genl_batch.commands.log).  Messages are
matched to the command that caused them by the log's timestamps (the guest
clock, the same clock as the capture's).
"""

from __future__ import annotations

import ipaddress
import re
import struct
from pathlib import Path

import pytest
from cmdlog import (
    Command,
    assert_family_ids,
    find_command,
    messages_during,
    named_and_clean,
    read_commands,
)

import dissect

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
PCAP = CAPTURES / "genl_batch.pcap"
LOG = CAPTURES / "genl_batch.commands.log"
TSV = CAPTURES / "genl_batch.genl_families.tsv"
FAMILIES = {
    "SEG6",
    "IOAM6",
    "l2tp",
    "macsec",
    "team",
    "NET_DM",
    "TASKSTATS",
    "psample",
    "thermal",
    "gtp",
}

pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="captures/genl_batch.pcap not present")

_BG = re.compile(r"^### \[(\d+\.\d+)\] background\((\w+)\): (.*)$")


def _commands() -> list[Command]:
    return read_commands(LOG)


@pytest.fixture(scope="module")
def capture():
    frames = list(dissect.read_capture(PCAP))
    return frames, _commands()


_command = find_command


_messages = messages_during


def _replies(frames, cmd: Command, family: str, type_name: str):
    return [
        m
        for m in _messages(frames, cmd, family, type_name)
        if m.direction != "user->kernel" and m.layout is not None
    ]


def _requests(frames, cmd: Command, family: str, type_name: str):
    return [m for m in _messages(frames, cmd, family, type_name) if m.direction == "user->kernel"]


def _val(msg, abbrev: str):
    n = msg.node.find(abbrev)
    assert n is not None, f"{abbrev} missing in {msg.type_name} (frame {msg.frame})"
    return n.value


def _ip(raw: bytes) -> str:
    return str(ipaddress.ip_address(bytes(raw)))


# -- every message is named and clean ------------------------------------------


def test_family_ids_match_the_guest(capture):
    frames, _ = capture
    assert_family_ids(frames, TSV, FAMILIES)


def test_every_message_named_and_clean(capture):
    frames, _ = capture
    names, count = named_and_clean(frames, FAMILIES)
    assert count > 100
    assert {
        ("SEG6", "SEG6_CMD_GET_TUNSRC"),
        ("SEG6", "SEG6_CMD_SET_TUNSRC"),
        ("SEG6", "SEG6_CMD_DUMPHMAC"),
        ("IOAM6", "IOAM6_CMD_ADD_NAMESPACE"),
        ("IOAM6", "IOAM6_CMD_DEL_NAMESPACE"),
        ("IOAM6", "IOAM6_CMD_DUMP_NAMESPACES"),
        ("IOAM6", "IOAM6_CMD_ADD_SCHEMA"),
        ("IOAM6", "IOAM6_CMD_DUMP_SCHEMAS"),
        ("IOAM6", "IOAM6_CMD_NS_SET_SCHEMA"),
        ("l2tp", "L2TP_CMD_TUNNEL_CREATE"),
        ("l2tp", "L2TP_CMD_TUNNEL_GET"),
        ("l2tp", "L2TP_CMD_TUNNEL_DELETE"),
        ("l2tp", "L2TP_CMD_SESSION_CREATE"),
        ("l2tp", "L2TP_CMD_SESSION_GET"),
        ("l2tp", "L2TP_CMD_SESSION_DELETE"),
        ("macsec", "MACSEC_CMD_ADD_TXSA"),
        ("macsec", "MACSEC_CMD_ADD_RXSC"),
        ("macsec", "MACSEC_CMD_ADD_RXSA"),
        ("macsec", "MACSEC_CMD_GET_TXSC"),
        ("team", "TEAM_CMD_OPTIONS_GET"),
        ("team", "TEAM_CMD_OPTIONS_SET"),
        ("team", "TEAM_CMD_PORT_LIST_GET"),
        ("NET_DM", "NET_DM_CMD_CONFIG_GET"),
        ("NET_DM", "NET_DM_CMD_CONFIG_NEW"),
        ("NET_DM", "NET_DM_CMD_START"),
        ("NET_DM", "NET_DM_CMD_STOP"),
        ("NET_DM", "NET_DM_CMD_ALERT"),
        ("TASKSTATS", "TASKSTATS_CMD_GET"),
        ("TASKSTATS", "TASKSTATS_CMD_NEW"),
        ("psample", "PSAMPLE_CMD_SAMPLE"),
        ("psample", "PSAMPLE_CMD_GET_GROUP"),
        ("psample", "PSAMPLE_CMD_NEW_GROUP"),
        ("thermal", "THERMAL_GENL_CMD_TZ_GET_ID"),
        ("thermal", "THERMAL_GENL_CMD_CDEV_GET"),
        ("gtp", "GTP_CMD_GETPDP"),
    } <= names


def test_every_command_succeeded(capture):
    _, cmds = capture
    assert cmds and all(c.rc == 0 for c in cmds), [c.line for c in cmds if c.rc != 0]


# -- SEG6 -------------------------------------------------------------------------


def test_seg6_tunsrc(capture):
    frames, cmds = capture
    before = _command(cmds, "ip sr tunsrc show")
    (reply,) = _replies(frames, before, "SEG6", "SEG6_CMD_GET_TUNSRC")
    assert before.output[0].strip() == f"tunsrc addr {_ip(_val(reply, 'genl.seg6.seg6.dst'))}"
    assert _ip(_val(reply, "genl.seg6.seg6.dst")) == "::"
    (req,) = _requests(
        frames, _command(cmds, "ip sr tunsrc set 2001:db8::1"), "SEG6", "SEG6_CMD_SET_TUNSRC"
    )
    assert _ip(_val(req, "genl.seg6.seg6.dst")) == "2001:db8::1"
    assert req.info.startswith("tunsrc 2001:db8::1")
    after = _command(cmds, "ip sr tunsrc show", 1)
    (reply,) = _replies(frames, after, "SEG6", "SEG6_CMD_GET_TUNSRC")
    assert after.output[0].strip() == f"tunsrc addr {_ip(_val(reply, 'genl.seg6.seg6.dst'))}"
    assert _ip(_val(reply, "genl.seg6.seg6.dst")) == "2001:db8::1"
    hmac = _command(cmds, "ip sr hmac show")
    assert not hmac.output
    assert not _replies(frames, hmac, "SEG6", "SEG6_CMD_DUMPHMAC")


# -- IOAM6 ------------------------------------------------------------------------

_NS = re.compile(
    r"namespace (?P<id>\d+)(?: \[schema (?P<sc>\d+)\])?, data 0x(?P<data>[0-9a-f]+)"
    r"(?:, wide 0x(?P<wide>[0-9a-f]+))?"
)


def _namespace_line(msg) -> str:
    v = "genl.ioam6.ioam6."
    line = f"namespace {_val(msg, v + 'ns_id')}"
    sc = msg.node.find(v + "sc_id")
    if sc is not None:
        line += f" [schema {sc.value}]"
    line += f", data 0x{_val(msg, v + 'ns_data'):08x}"
    wide = msg.node.find(v + "ns_data_wide")
    if wide is not None:
        line += f", wide 0x{wide.value:016x}"
    return line


@pytest.mark.parametrize("nth", [0, 1])
def test_ioam6_namespaces(capture, nth):
    frames, cmds = capture
    show = _command(cmds, "ip ioam namespace show", nth)
    expected = [line.strip() for line in show.output if line.strip()]
    assert all(_NS.fullmatch(line) for line in expected)
    replies = _replies(frames, show, "IOAM6", "IOAM6_CMD_DUMP_NAMESPACES")
    assert [_namespace_line(m) for m in replies] == expected
    assert ("namespace 1 [schema 2], data 0x00000007" in expected) == (nth == 1)


def test_ioam6_requests(capture):
    frames, cmds = capture
    v = "genl.ioam6.ioam6."
    (add,) = _requests(
        frames, _command(cmds, "ip ioam namespace add 1 data 7"), "IOAM6", "IOAM6_CMD_ADD_NAMESPACE"
    )
    assert (_val(add, v + "ns_id"), _val(add, v + "ns_data")) == (1, 7)
    (add2,) = _requests(
        frames,
        _command(cmds, "ip ioam namespace add 2 data 0x11 wide 0x2222"),
        "IOAM6",
        "IOAM6_CMD_ADD_NAMESPACE",
    )
    assert (_val(add2, v + "ns_data"), _val(add2, v + "ns_data_wide")) == (0x11, 0x2222)
    (sc,) = _requests(
        frames, _command(cmds, "ip ioam schema add 2 abc"), "IOAM6", "IOAM6_CMD_ADD_SCHEMA"
    )
    assert (_val(sc, v + "sc_id"), bytes(_val(sc, v + "sc_data"))) == (2, b"abc")
    (link,) = _requests(
        frames,
        _command(cmds, "ip ioam namespace set 1 schema 2"),
        "IOAM6",
        "IOAM6_CMD_NS_SET_SCHEMA",
    )
    assert (_val(link, v + "ns_id"), _val(link, v + "sc_id")) == (1, 2)
    (dele,) = _requests(
        frames, _command(cmds, "ip ioam namespace del 2"), "IOAM6", "IOAM6_CMD_DEL_NAMESPACE"
    )
    assert _val(dele, v + "ns_id") == 2


def test_ioam6_schema_dump(capture):
    frames, cmds = capture
    show = _command(cmds, "ip ioam schema show")
    m = re.fullmatch(r"schema (\d+), data: ((?:[0-9a-f]{2} ?)+)", show.output[0].strip())
    assert m
    (reply,) = _replies(frames, show, "IOAM6", "IOAM6_CMD_DUMP_SCHEMAS")
    assert _val(reply, "genl.ioam6.ioam6.sc_id") == int(m.group(1)) == 2
    assert bytes(_val(reply, "genl.ioam6.ioam6.sc_data")) == bytes.fromhex(m.group(2))


# -- l2tp -------------------------------------------------------------------------


def test_l2tp_tunnel(capture):
    frames, cmds = capture
    v = "genl.l2tp.l2tp."
    add = _command(
        cmds,
        "ip l2tp add tunnel tunnel_id 1 peer_tunnel_id 1 encap udp local 127.0.0.1 "
        "remote 127.0.0.1 udp_sport 5000 udp_dport 5001",
    )
    (req,) = _requests(frames, add, "l2tp", "L2TP_CMD_TUNNEL_CREATE")
    assert (_val(req, v + "conn_id"), _val(req, v + "peer_conn_id")) == (1, 1)
    assert (_val(req, v + "udp_sport"), _val(req, v + "udp_dport")) == (5000, 5001)
    assert req.node.find(v + "encap_type").display.startswith("udp")
    show = _command(cmds, "ip l2tp show tunnel")
    text = "\n".join(show.output)
    (reply,) = _replies(frames, show, "l2tp", "L2TP_CMD_TUNNEL_GET")
    assert f"Tunnel {_val(reply, v + 'conn_id')}, encap UDP" in text
    assert f"From {_ip(_val(reply, v + 'ip_saddr'))} to {_ip(_val(reply, v + 'ip_daddr'))}" in text
    assert f"Peer tunnel {_val(reply, v + 'peer_conn_id')}" in text
    ports = f"{_val(reply, v + 'udp_sport')}/{_val(reply, v + 'udp_dport')}"
    assert f"UDP source / dest ports: {ports}" in text
    assert ports == "5000/5001"
    assert _val(reply, v + "stats.rx_packets") == 0
    assert "tunnel 1 peer 1 udp 127.0.0.1 -> 127.0.0.1 ports 5000/5001" in reply.info
    (dele,) = _requests(
        frames, _command(cmds, "ip l2tp del tunnel tunnel_id 1"), "l2tp", "L2TP_CMD_TUNNEL_DELETE"
    )
    assert _val(dele, v + "conn_id") == 1


def test_l2tp_session(capture):
    frames, cmds = capture
    v = "genl.l2tp.l2tp."
    (req,) = _requests(
        frames,
        _command(cmds, "ip l2tp add session tunnel_id 1 session_id 1 peer_session_id 1"),
        "l2tp",
        "L2TP_CMD_SESSION_CREATE",
    )
    assert (_val(req, v + "session_id"), _val(req, v + "peer_session_id")) == (1, 1)
    show = _command(cmds, "ip l2tp show session")
    text = "\n".join(show.output)
    (reply,) = _replies(frames, show, "l2tp", "L2TP_CMD_SESSION_GET")
    assert f"Session {_val(reply, v + 'session_id')} in tunnel {_val(reply, v + 'conn_id')}" in text
    peer = f"Peer session {_val(reply, v + 'peer_session_id')}, tunnel {_val(reply, v + 'peer_conn_id')}"
    assert peer in text
    assert f"interface name: {_val(reply, v + 'ifname')}" in text
    assert reply.node.find(v + "pw_type").display.startswith("eth")


# -- macsec -----------------------------------------------------------------------


def test_macsec_dump(capture):
    frames, cmds = capture
    v = "genl.macsec.macsec."
    for cmd in (_command(cmds, "ip macsec show"), _command(cmds, "ip -s macsec show macsec0")):
        text = "\n".join(cmd.output)
        (reply,) = _replies(frames, cmd, "macsec", "MACSEC_CMD_GET_TXSC")
        tx_sci = _val(reply, v + "secy.sci")
        assert f"TXSC: {tx_sci:016x} on SA {_val(reply, v + 'secy.encoding_sa')}" in text
        assert tx_sci & 0xFFFF == 11  # port 11
        rx_sci = _val(reply, v + "rxsc_list.sci")
        assert f"RXSC: {rx_sci:016x}, state on" in text
        assert f"{rx_sci:016x}" == "c619528fe6a0" + f"{1234:04x}"
        assert "cipher suite: GCM-AES-128, using ICV length 16" in text
        # the kernel reports GCM-AES-128 as MACSEC_DEFAULT_CIPHER_ID, which
        # iproute2 prints as GCM-AES-128 too
        assert _val(reply, v + "secy.cipher_suite") == 0x0080020001000001
        assert reply.node.find(v + "secy.cipher_suite").display.startswith("default")
        assert _val(reply, v + "secy.icv_len") == 16
        assert reply.node.find(v + "secy.validate").display.startswith("strict")
        txsa = reply.node.find(v + "txsa_list")
        assert _val(reply, v + "txsa_list.pn") == 1
        assert bytes(txsa.find(v + "txsa_list.keyid").value).hex() == "01" + "00" * 15
        assert bytes(_val(reply, v + "rxsc_list.sa_list.keyid")) == bytes(16)
        assert "key 01000000000000000000000000000000" in text
        assert f"sci 0x{tx_sci:016x}" in reply.info


def test_macsec_requests(capture):
    frames, cmds = capture
    v = "genl.macsec.macsec."
    (txsa,) = _requests(
        frames,
        _command(
            cmds, "ip macsec add macsec0 tx sa 0 pn 1 on key 01 81818181818181818181818181818181"
        ),
        "macsec",
        "MACSEC_CMD_ADD_TXSA",
    )
    assert bytes(_val(txsa, v + "sa_config.key")) == bytes([0x81] * 16)
    assert (_val(txsa, v + "sa_config.an"), _val(txsa, v + "sa_config.pn")) == (0, 1)
    assert _val(txsa, v + "sa_config.active") == 1
    (rxsc,) = _requests(
        frames,
        _command(cmds, "ip macsec add macsec0 rx port 1234 address c6:19:52:8f:e6:a0"),
        "macsec",
        "MACSEC_CMD_ADD_RXSC",
    )
    assert _val(rxsc, v + "rxsc_config.sci") == 0xC619528FE6A004D2
    # the SCI is a big-endian u64 on the wire: MAC address, then the port
    assert rxsc.node.find(v + "rxsc_config.sci").raw[4:] == bytes.fromhex("c619528fe6a004d2")
    (rxsa,) = _requests(
        frames,
        _command(
            cmds,
            "ip macsec add macsec0 rx port 1234 address c6:19:52:8f:e6:a0 sa 0 pn 1 on key 00 "
            "82828282828282828282828282828282",
        ),
        "macsec",
        "MACSEC_CMD_ADD_RXSA",
    )
    assert bytes(_val(rxsa, v + "sa_config.key")) == bytes([0x82] * 16)
    assert _val(rxsa, v + "rxsc_config.sci") == 0xC619528FE6A004D2


# -- team -------------------------------------------------------------------------


def _options(msg) -> dict[str, bytes]:
    v = "genl.team.team.list_option.option."
    out = {}
    for opt in msg.node.find_all("genl.team.team.list_option.option"):
        name = opt.find(v + "name").value
        data = opt.find(v + "data")
        out[name] = bytes(data.value) if data is not None else None
    return out


def test_team_options(capture):
    frames, cmds = capture
    show = _command(cmds, "teamnl t0 options")
    printed = {line.split()[0]: line.split()[1] for line in show.output if line.strip()}
    replies = _replies(frames, show, "team", "TEAM_CMD_OPTIONS_GET")
    assert replies
    opts = {}
    for r in replies:
        opts.update(_options(r))
    for name, value in printed.items():
        if value == "*NOMODE*":
            assert opts[name] == b"*NOMODE*\0"  # a string option
        else:
            assert struct.unpack("<I", opts[name])[0] == int(value), name
    (req,) = _requests(
        frames,
        _command(cmds, "teamnl t0 setoption mode activebackup"),
        "team",
        "TEAM_CMD_OPTIONS_SET",
    )
    assert _options(req) == {"mode": b"activebackup\0"}
    assert req.node.find("genl.team.team.list_option.option.type").display.startswith("string")
    get = _command(cmds, "teamnl t0 getoption mode")
    opts = {}
    for r in _replies(frames, get, "team", "TEAM_CMD_OPTIONS_GET"):
        opts.update(_options(r))
    assert opts["mode"] == get.output[0].strip().encode() + b"\0"


def test_team_ports(capture):
    frames, cmds = capture
    show = _command(cmds, "teamnl t0 ports")
    m = re.fullmatch(r"(\d+): (\w+): (up|down) (\d+)Mbit (HD|FD)", show.output[0].strip())
    assert m
    (reply,) = _replies(frames, show, "team", "TEAM_CMD_PORT_LIST_GET")
    v = "genl.team.team.list_port.port."
    assert _val(reply, v + "ifindex") == int(m.group(1))
    assert (reply.node.find(v + "linkup") is not None) == (m.group(3) == "up")
    assert _val(reply, v + "speed") == int(m.group(4))
    assert _val(reply, v + "duplex") == (1 if m.group(5) == "FD" else 0)


# -- NET_DM -----------------------------------------------------------------------


def test_net_dm(capture):
    frames, cmds = capture
    cmd = next(c for c in cmds if any("dropwatch>" in line for line in c.output))
    text = "\n".join(cmd.output)
    (cfg,) = _replies(frames, cmd, "NET_DM", "NET_DM_CMD_CONFIG_NEW")
    v = "genl.net_dm.net_dm."
    assert "Alert mode: Summary" in text
    assert cfg.node.find(v + "alert_mode").display.startswith("summary")
    assert f"Truncation length: {_val(cfg, v + 'trunc_len')}" in text
    assert f"Queue length: {_val(cfg, v + 'queue_len')}" in text
    m = re.search(r"(\d+) drops at \S+ \((0x[0-9a-f]+)\)", text)
    assert m
    alerts = [
        m2
        for m2 in _messages(frames, cmd, "NET_DM", "NET_DM_CMD_ALERT")
        if m2.direction != "user->kernel"
    ]
    points = []
    for alert in alerts:
        raw = bytes(_val(alert, "genl.net_dm.alert.unspec"))
        (entries,) = struct.unpack_from("<I", raw)
        assert len(raw) == 4 + 12 * entries
        points += [struct.unpack_from("<QI", raw, 4 + 12 * i) for i in range(entries)]
    assert (int(m.group(2), 16), int(m.group(1))) in points


# -- TASKSTATS ----------------------------------------------------------------------


def test_taskstats(capture):
    frames, cmds = capture
    cmd = _command(cmds, "python3 -u gn.py taskstats")
    lines = [
        re.fullmatch(
            r"taskstats (pid|tgid) (\d+) version (\d+) stats_len (\d+) comm '(.*)'", line.strip()
        )
        for line in cmd.output
        if line.strip()
    ]
    assert len(lines) == 2 and all(lines)
    reqs = _requests(frames, cmd, "TASKSTATS", "TASKSTATS_CMD_GET")
    replies = _replies(frames, cmd, "TASKSTATS", "TASKSTATS_CMD_NEW")
    assert len(reqs) == len(replies) == 2
    s = "genl.taskstats.taskstats."
    for m, req, reply in zip(lines, reqs, replies):
        kind, pid, version, size, comm = m.groups()
        assert _val(req, f"genl.taskstats.cmd.{kind}") == int(pid)
        assert _val(reply, f"genl.taskstats.stats.aggr_{kind}.{kind}") == int(pid)
        assert _val(reply, s + "version") == int(version) == 13
        stats = reply.node.find(f"genl.taskstats.stats.aggr_{kind}.stats")
        assert stats.length - 4 == int(size) == 416
        assert _val(reply, s + "ac_comm") == comm
        assert f"{kind} {pid}" in reply.info
    pid_reply = replies[0]
    assert _val(pid_reply, s + "ac_pid") == _val(pid_reply, s + "ac_tgid") == int(lines[0][2])
    assert _val(pid_reply, s + "ac_btime") == _val(pid_reply, s + "ac_btime64")
    assert abs(_val(pid_reply, s + "ac_btime") * 10**9 - cmd.start_ns) < 5 * 10**9


# -- psample ------------------------------------------------------------------------


def test_psample(capture):
    frames, cmds = capture
    cmd = _command(cmds, "python3 -u gn.py psample")
    group = next(line for line in cmd.output if line.startswith("group "))
    attrs = {
        int(k): int.from_bytes(bytes.fromhex(v), "little")
        for k, v in re.findall(r"(\d+): '([0-9a-f]+)'", group)
    }
    (reply,) = _replies(frames, cmd, "psample", "PSAMPLE_CMD_NEW_GROUP")
    v = "genl.psample.psample."
    assert _val(reply, v + "sample_group") == attrs[3] == 5
    assert _val(reply, v + "group_refcount") == attrs[7]
    assert _val(reply, v + "group_seq") == attrs[4]
    samples = [
        m
        for f in frames
        for m in f.messages
        if m.family == "psample" and m.type_name == "PSAMPLE_CMD_SAMPLE"
    ]
    assert len(samples) == attrs[4]  # the group's sequence counts the samples sent
    for i, s in enumerate(samples):
        assert _val(s, v + "sample_group") == 5
        assert _val(s, v + "group_seq") == i
        assert _val(s, v + "sample_rate") == 1
        assert _val(s, v + "iifindex") == 1  # lo
        assert _val(s, v + "proto") == 0x0800
        data = bytes(_val(s, v + "data"))
        assert len(data) == min(64, _val(s, v + "origsize"))  # trunc 64
        assert data[12:14] == b"\x08\x00"
    assert b"sampled" in bytes(_val(samples[0], v + "data"))


# -- thermal ------------------------------------------------------------------------


def _kernel_messages(frames, cmd: Command, family: str, genl_cmd: int):
    return [
        m
        for m in _messages(frames, cmd, family)
        if m.direction != "user->kernel" and m.genl_cmd == genl_cmd and m.type >= 16
    ]


def test_thermal_cooling_devices(capture):
    frames, cmds = capture
    cmd = _command(cmds, "python3 -u gn.py thermal")
    printed = [line.split(" ", 4)[4] for line in cmd.output if line.startswith("cooling device")]
    # The kernel answers the THERMAL_GENL_CMD_CDEV_GET dump with port id 0
    # and sequence 0, like a notification, so the answer is taken for the
    # event that shares its number (THERMAL_GENL_EVENT_TZ_TRIP_DOWN); the
    # attributes are the same set either way.
    (reply,) = _kernel_messages(frames, cmd, "thermal", 6)
    assert (reply.seq, reply.pid) == (0, 0)
    assert reply.type_name in ("THERMAL_GENL_CMD_CDEV_GET", "THERMAL_GENL_EVENT_TZ_TRIP_DOWN")
    got = []
    for n in reply.node.find("genl.thermal.thermal.cdev").children:
        if n.abbrev.endswith("cdev_id"):
            got.append(struct.pack("<I", n.value).hex())
        elif n.abbrev.endswith("cdev_name"):
            got.append(n.value)
    assert got == printed and "Processor" in got
    zones = [line for line in cmd.output if line.startswith("thermal zone")]
    (reply,) = _kernel_messages(frames, cmd, "thermal", 1)
    tz = reply.node.find("genl.thermal.thermal.tz")
    assert len(tz.children or []) == len(zones)


# -- gtp ----------------------------------------------------------------------------


def test_gtp_empty_dump(capture):
    frames, cmds = capture
    cmd = _command(cmds, "python3 -u gn.py gtp")
    assert cmd.output[0].strip() == "gtp pdps 0"
    (req,) = _requests(frames, cmd, "gtp", "GTP_CMD_GETPDP")
    assert req.flags & 0x300 == 0x300  # NLM_F_DUMP
    kernel = [m for m in _messages(frames, cmd, "gtp") if m.direction != "user->kernel"]
    assert [m.type_name for m in kernel] == ["NLMSG_DONE"]
