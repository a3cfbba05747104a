"""Four generic netlink families against a real capture: mptcp_pm,
tcp_metrics, fou and wireguard (captures/genl_misc.pcap, recorded with the
nlmon VM from captures/scripts/genl_misc.sh).

Every message of these families must be named and decode without
`undecoded` or `malformed` notes, and the decoded values must agree with
what the tools printed (captures/genl_misc.commands.log).  Messages are
matched to the command that caused them by the log's timestamps (the guest
clock, the same clock as the capture's).
"""

from __future__ import annotations

import base64
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
PCAP = CAPTURES / "genl_misc.pcap"
LOG = CAPTURES / "genl_misc.commands.log"
TSV = CAPTURES / "genl_misc.genl_families.tsv"
FAMILIES = {"mptcp_pm", "tcp_metrics", "fou", "wireguard"}

pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="captures/genl_misc.pcap not present")


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
    assert count > 60
    assert {
        ("mptcp_pm", "MPTCP_PM_CMD_SET_LIMITS"),
        ("mptcp_pm", "MPTCP_PM_CMD_GET_LIMITS"),
        ("mptcp_pm", "MPTCP_PM_CMD_ADD_ADDR"),
        ("mptcp_pm", "MPTCP_PM_CMD_SET_FLAGS"),
        ("mptcp_pm", "MPTCP_PM_CMD_GET_ADDR"),
        ("mptcp_pm", "MPTCP_PM_CMD_DEL_ADDR"),
        ("mptcp_pm", "MPTCP_PM_CMD_FLUSH_ADDRS"),
        ("tcp_metrics", "TCP_METRICS_CMD_GET"),
        ("tcp_metrics", "TCP_METRICS_CMD_DEL"),
        ("fou", "FOU_CMD_ADD"),
        ("fou", "FOU_CMD_DEL"),
        ("fou", "FOU_CMD_GET"),
        ("wireguard", "WG_CMD_GET_DEVICE"),
        ("wireguard", "WG_CMD_SET_DEVICE"),
    } <= names


def test_every_command_succeeded(capture):
    _, cmds = capture
    assert cmds and all(c.rc == 0 for c in cmds), [c.line for c in cmds if c.rc != 0]


# -- mptcp_pm -------------------------------------------------------------------


def test_mptcp_limits(capture):
    frames, cmds = capture
    cmd = _command(cmds, "ip mptcp limits show")
    m = re.fullmatch(r"add_addr_accepted (\d+) subflows (\d+)", cmd.output[0].strip())
    assert m
    (reply,) = _replies(frames, cmd, "mptcp_pm", "MPTCP_PM_CMD_GET_LIMITS")
    assert _val(reply, "genl.mptcp_pm.pm.rcv_add_addrs") == int(m.group(1))
    assert _val(reply, "genl.mptcp_pm.pm.subflows") == int(m.group(2))
    (req,) = _messages(
        frames,
        _command(cmds, "ip mptcp limits set subflow 2 add_addr_accepted 2"),
        "mptcp_pm",
        "MPTCP_PM_CMD_SET_LIMITS",
    )
    assert _val(req, "genl.mptcp_pm.pm.subflows") == 2
    assert _val(req, "genl.mptcp_pm.pm.rcv_add_addrs") == 2
    assert "subflows 2 add_addr_accepted 2" in req.info


def _endpoint(msg) -> str:
    """An endpoint as `ip mptcp endpoint show` prints it."""
    addr = msg.node.find("genl.mptcp_pm.pm.addr.addr4") or msg.node.find(
        "genl.mptcp_pm.pm.addr.addr6"
    )
    words = [_ip(addr.value)]
    port = msg.node.find("genl.mptcp_pm.pm.addr.port")
    if port is not None and port.value:
        words += ["port", str(port.value)]
    words += ["id", str(_val(msg, "genl.mptcp_pm.pm.addr.id"))]
    flags = _val(msg, "genl.mptcp_pm.pm.addr.flags")
    for bit, name in ((1, "signal"), (2, "subflow"), (4, "backup"), (8, "fullmesh")):
        if flags & bit:
            words.append(name)
    ifidx = msg.node.find("genl.mptcp_pm.pm.addr.if_idx")
    if ifidx is not None and ifidx.value:
        assert ifidx.value == 1  # lo
        words += ["dev", "lo"]
    return " ".join(words)


def test_mptcp_endpoints(capture):
    frames, cmds = capture
    show = _command(cmds, "ip mptcp endpoint show")
    expected = [line.strip() for line in show.output if line.strip()]
    assert expected == [
        "192.0.2.1 id 1 signal dev lo",
        "2001:db8::1 id 5 subflow",
        "127.0.0.2 port 10000 id 6 signal",
    ]
    replies = _replies(frames, show, "mptcp_pm", "MPTCP_PM_CMD_GET_ADDR")
    assert [_endpoint(m) for m in replies] == expected
    assert [m.node.find("genl.mptcp_pm.pm.addr.family").display for m in replies] == [
        "inet (2)",
        "inet6 (10)",
        "inet (2)",
    ]
    one = _command(cmds, "ip mptcp endpoint show id 5")
    (reply,) = _replies(frames, one, "mptcp_pm", "MPTCP_PM_CMD_GET_ADDR")
    assert _endpoint(reply) == one.output[0].strip()
    # the request as given: the backup flag that `change id 5 nobackup` cleared
    (add,) = _messages(
        frames,
        _command(cmds, "ip mptcp endpoint add 2001:db8::1 id 5 subflow backup"),
        "mptcp_pm",
        "MPTCP_PM_CMD_ADD_ADDR",
    )
    assert add.node.find("genl.mptcp_pm.pm.addr.flags").display == "0x00000006 (SUBFLOW|BACKUP)"
    assert "2001:db8::1 id 5" in add.info
    # after the flush the dump is empty
    empty = _command(cmds, "ip mptcp endpoint show", 1)
    assert not empty.output
    assert not _replies(frames, empty, "mptcp_pm", "MPTCP_PM_CMD_GET_ADDR")


# -- tcp_metrics ----------------------------------------------------------------

_METRICS = re.compile(
    r"(?P<addr>\S+) age (?P<age>[\d.]+)sec cwnd (?P<cwnd>\d+) rtt (?P<rtt>\d+)us "
    r"rttvar (?P<rttvar>\d+)us source (?P<src>\S+)"
)


@pytest.mark.parametrize("command", ["ip tcp_metrics show", "ip tcp_metrics show 127.0.0.1"])
def test_tcp_metrics_entry(capture, command):
    frames, cmds = capture
    cmd = _command(cmds, command)
    m = _METRICS.fullmatch(cmd.output[0].strip())
    assert m, cmd.output
    (reply,) = _replies(frames, cmd, "tcp_metrics", "TCP_METRICS_CMD_GET")
    v = "genl.tcp_metrics.metrics."
    assert _ip(_val(reply, v + "addr_ipv4")) == m["addr"] == "127.0.0.1"
    assert _ip(_val(reply, v + "saddr_ipv4")) == m["src"]
    assert _val(reply, v + "age") == round(float(m["age"]) * 1000)
    assert _val(reply, v + "vals.cwnd") == int(m["cwnd"])
    # fixed point: srtt in 1/8 us, mdev in 1/4 us (iproute2 shifts them)
    assert _val(reply, v + "vals.rtt_us") >> 3 == int(m["rtt"])
    assert _val(reply, v + "vals.rttvar_us") >> 2 == int(m["rttvar"])
    assert _val(reply, v + "vals.rtt") == max(_val(reply, v + "vals.rtt_us") // 1000, 1)


def test_tcp_metrics_delete(capture):
    frames, cmds = capture
    req = _messages(frames, _command(cmds, "ip tcp_metrics delete 127.0.0.1"), "tcp_metrics")[0]
    assert req.type_name == "TCP_METRICS_CMD_DEL"
    assert _ip(_val(req, "genl.tcp_metrics.metrics.addr_ipv4")) == "127.0.0.1"
    after = _command(cmds, "ip tcp_metrics show", 1)
    assert not after.output
    assert not _replies(frames, after, "tcp_metrics", "TCP_METRICS_CMD_GET")


# -- fou -------------------------------------------------------------------------


def _fou_line(msg) -> str:
    """A port as `ip fou show` prints it."""
    v = "genl.fou.fou."
    words = ["port", str(_val(msg, v + "port"))]
    if _val(msg, v + "type") == 2:
        words.append("gue")
    else:
        words += ["ipproto", str(_val(msg, v + "ipproto"))]
    local = msg.node.find(v + "local_v4")
    if local is not None and any(local.value):
        words += ["local", _ip(local.value)]
    peer = msg.node.find(v + "peer_v4")
    if peer is not None and any(peer.value):
        words += ["peer", _ip(peer.value)]
        words += ["peer_port", str(_val(msg, v + "peer_port"))]
    ifindex = msg.node.find(v + "ifindex")
    if ifindex is not None and ifindex.value:
        assert ifindex.value == 1
        words += ["dev", "lo"]
    return " ".join(words)


@pytest.mark.parametrize("nth", [0, 1])
def test_fou_ports(capture, nth):
    frames, cmds = capture
    show = _command(cmds, "ip fou show", nth)
    expected = [line.strip() for line in show.output if line.strip()]
    replies = _replies(frames, show, "fou", "FOU_CMD_GET")
    assert [_fou_line(m) for m in replies] == expected
    assert ("port 5555 ipproto 4" in expected) == (nth == 0)


def test_fou_requests(capture):
    frames, cmds = capture
    add = _messages(frames, _command(cmds, "ip fou add port 5555 ipproto 4"), "fou")[0]
    assert add.type_name == "FOU_CMD_ADD"
    assert _val(add, "genl.fou.fou.port") == 5555  # network byte order on the wire
    assert add.node.find("genl.fou.fou.port").raw[4:] == (5555).to_bytes(2, "big")
    assert "port 5555 direct ipproto 4" in add.info
    gue = _messages(frames, _command(cmds, "ip fou add port 5556 gue"), "fou")[0]
    assert gue.node.find("genl.fou.fou.type").display == "gue (2)"
    dele = _messages(frames, _command(cmds, "ip fou del port 5555"), "fou")[0]
    assert dele.type_name == "FOU_CMD_DEL" and _val(dele, "genl.fou.fou.port") == 5555


# -- wireguard ---------------------------------------------------------------------


def _sockaddr(raw: bytes) -> str:
    """WGPEER_A_ENDPOINT (shown as hex by the spec) as `wg` prints it."""
    family = struct.unpack_from("<H", raw)[0]  # host order: the capture is little-endian
    port = struct.unpack_from(">H", raw, 2)[0]
    if family == 2:
        assert len(raw) == 16
        return f"{_ip(raw[4:8])}:{port}"
    assert family == 10 and len(raw) == 28
    return f"[{_ip(raw[8:24])}]:{port}"


def _wg_show(lines: list[str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    iface: dict[str, str] = {}
    peers: list[dict[str, str]] = []
    cur = iface
    for line in lines:
        if not line.strip() or ":" not in line:
            continue
        key, val = (s.strip() for s in line.split(":", 1))
        if key == "peer":
            cur = {}
            peers.append(cur)
        cur[key] = val
    return iface, peers


def test_wireguard_show(capture):
    frames, cmds = capture
    show = _command(cmds, "wg show wg0")
    iface, peers = _wg_show(show.output)
    (reply,) = _replies(frames, show, "wireguard", "WG_CMD_GET_DEVICE")
    d = "genl.wireguard.device."
    assert _val(reply, d + "ifname") == "wg0"
    assert str(_val(reply, d + "listen_port")) == iface["listening port"] == "51820"
    assert reply.node.find(d + "public_key").display == iface["public key"]
    got = reply.node.find(d + "peers").children
    assert len(got) == len(peers) == 2
    for node, peer in zip(got, peers):
        assert node.find(d + "peers.public_key").display == peer["peer"]
        assert _sockaddr(node.find(d + "peers.endpoint").value) == peer["endpoint"]
        ips = [
            f"{_ip(el.find(d + 'peers.allowedips.ipaddr').value)}/"
            f"{el.find(d + 'peers.allowedips.cidr_mask').value}"
            for el in node.find(d + "peers.allowedips").children
        ]
        assert ", ".join(ips) == peer["allowed ips"]
        keep = node.find(d + "peers.persistent_keepalive_interval").value
        assert (f"every {keep} seconds" if keep else None) == peer.get("persistent keepalive")
    assert peers[0]["allowed ips"] == "10.0.0.0/24, fd00::/64"


def test_wireguard_keys_and_set(capture):
    frames, cmds = capture
    conf = _command(cmds, "wg showconf wg0")
    kv = dict(
        (s.strip() for s in line.split("=", 1)) for line in conf.output if " = " in line
    )  # [Interface] keys; a later [Peer] would overwrite peer keys, so:
    first_peer_psk = next(
        line.split("=", 1)[1].strip() for line in conf.output if line.startswith("PresharedKey")
    )
    (reply,) = _replies(frames, conf, "wireguard", "WG_CMD_GET_DEVICE")
    d = "genl.wireguard.device."
    assert reply.node.find(d + "private_key").display == kv["PrivateKey"]
    assert len(base64.b64decode(kv["PrivateKey"])) == 32
    assert reply.node.find(d + "peers.preshared_key").display == first_peer_psk
    # the first `wg set` carries the same keys, port and allowed IPs
    set_cmd = next(c for c in cmds if c.line.startswith("bash -c 'wg set wg0 private-key"))
    (req,) = [
        m
        for m in _messages(frames, set_cmd, "wireguard", "WG_CMD_SET_DEVICE")
        if m.direction == "user->kernel"
    ]
    assert req.node.find(d + "private_key").display == kv["PrivateKey"]
    assert _val(req, d + "listen_port") == 51820
    assert req.node.find(d + "peers.preshared_key").display == first_peer_psk
    assert _sockaddr(_val(req, d + "peers.endpoint")) == "192.0.2.9:51820"
    assert [_ip(n.value) for n in req.node.find_all(d + "peers.allowedips.ipaddr")] == [
        "10.0.0.0",
        "fd00::",
    ]
    assert req.node.find(d + "peers.flags").display == "0x00000002 (REPLACE_ALLOWEDIPS)"
    # after `peer ... remove` one peer is left
    dump = _command(cmds, "wg show wg0 dump")
    (after,) = _replies(frames, dump, "wireguard", "WG_CMD_GET_DEVICE")
    assert len(after.node.find(d + "peers").children) == 1
    assert len([line for line in dump.output if line.strip()]) == 2
