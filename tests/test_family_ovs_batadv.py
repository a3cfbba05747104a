"""Open vSwitch's kernel datapath families (ovs_datapath, ovs_vport, ovs_flow,
ovs_packet) and batman-adv (batadv) against a real capture
(captures/genl_ovs_batadv.pcap, recorded with the nlmon VM from
captures/scripts/genl_ovs_batadv.sh): ovs-dpctl and a small upcall listener
for OVS, batctl for batman-adv.

Every message of these families must be named and decode without
`undecoded` or `malformed` notes, and the decoded values must agree with
what the tools printed (captures/genl_ovs_batadv.commands.log).  Messages
are matched to the command that caused them by the log's timestamps.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import pytest
from cmdlog import (
    assert_family_ids,
    find_command,
    messages_during,
    named_and_clean,
    read_commands,
)

import dissect

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
PCAP = CAPTURES / "genl_ovs_batadv.pcap"
LOG = CAPTURES / "genl_ovs_batadv.commands.log"
TSV = CAPTURES / "genl_ovs_batadv.genl_families.tsv"
FAMILIES = {"ovs_datapath", "ovs_vport", "ovs_flow", "ovs_packet", "batadv"}

pytestmark = pytest.mark.skipif(
    not PCAP.exists(), reason="captures/genl_ovs_batadv.pcap not present"
)


@pytest.fixture(scope="module")
def capture():
    frames = list(dissect.read_capture(PCAP))
    return frames, read_commands(LOG)


def _from_kernel(msgs):
    return [m for m in msgs if m.direction != "user->kernel"]


def _from_user(msgs):
    return [m for m in msgs if m.direction == "user->kernel"]


def _val(msg, abbrev: str):
    n = msg.node.find(abbrev)
    assert n is not None, f"{abbrev} missing in {msg.type_name} (frame {msg.frame})"
    return n.value


def _ip(raw) -> str:
    return str(ipaddress.ip_address(bytes(raw)))


def _mac(raw) -> str:
    return ":".join(f"{b:02x}" for b in bytes(raw))


def _json_output(cmd):
    return json.loads("".join(cmd.output))


# -- every message is named and clean ------------------------------------------


def test_family_ids_match_the_guest(capture):
    frames, _ = capture
    assert_family_ids(frames, TSV, FAMILIES)


def test_every_message_named_and_clean(capture):
    frames, _ = capture
    names, count = named_and_clean(frames, FAMILIES)
    assert count > 700
    assert {
        ("ovs_datapath", "OVS_DP_CMD_NEW"),
        ("ovs_datapath", "OVS_DP_CMD_DEL"),
        ("ovs_datapath", "OVS_DP_CMD_GET"),
        ("ovs_datapath", "OVS_DP_CMD_SET"),
        ("ovs_vport", "OVS_VPORT_CMD_NEW"),
        ("ovs_vport", "OVS_VPORT_CMD_DEL"),
        ("ovs_vport", "OVS_VPORT_CMD_GET"),
        ("ovs_vport", "OVS_VPORT_CMD_SET"),
        ("ovs_flow", "OVS_FLOW_CMD_NEW"),
        ("ovs_flow", "OVS_FLOW_CMD_DEL"),
        ("ovs_flow", "OVS_FLOW_CMD_GET"),
        ("ovs_flow", "OVS_FLOW_CMD_SET"),
        ("ovs_packet", "OVS_PACKET_CMD_MISS"),
        ("ovs_packet", "OVS_PACKET_CMD_ACTION"),
        ("ovs_packet", "OVS_PACKET_CMD_EXECUTE"),
        ("batadv", "BATADV_CMD_GET_MESH"),
        ("batadv", "BATADV_CMD_GET_ROUTING_ALGOS"),
        ("batadv", "BATADV_CMD_GET_HARDIF"),
        ("batadv", "BATADV_CMD_GET_TRANSTABLE_LOCAL"),
        ("batadv", "BATADV_CMD_GET_TRANSTABLE_GLOBAL"),
        ("batadv", "BATADV_CMD_GET_ORIGINATORS"),
        ("batadv", "BATADV_CMD_GET_NEIGHBORS"),
        ("batadv", "BATADV_CMD_GET_GATEWAYS"),
        ("batadv", "BATADV_CMD_GET_BLA_CLAIM"),
        ("batadv", "BATADV_CMD_GET_BLA_BACKBONE"),
        ("batadv", "BATADV_CMD_GET_DAT_CACHE"),
        ("batadv", "BATADV_CMD_GET_MCAST_FLAGS"),
        ("batadv", "BATADV_CMD_SET_MESH"),
        ("batadv", "BATADV_CMD_SET_HARDIF"),
    } <= names


def test_every_command_succeeded(capture):
    _, cmds = capture
    assert cmds and all(c.rc == 0 for c in cmds), [c.line for c in cmds if c.rc != 0]


# -- Open vSwitch ----------------------------------------------------------------

DP = "genl.ovs_datapath."
VP = "genl.ovs_vport."
FL = "genl.ovs_flow."
PK = "genl.ovs_packet."


def test_datapath_created(capture):
    frames, cmds = capture
    msgs = messages_during(frames, find_command(cmds, "ovs-dpctl add-dp dp0"), "ovs_datapath")
    (reply,) = _from_kernel(m for m in msgs if m.type_name == "OVS_DP_CMD_NEW")
    assert _val(reply, DP + "dp.name") == "dp0"
    assert reply.node.find(DP + "dp.user_features").display.endswith(
        "(UNALIGNED|DISPATCH_UPCALL_PER_CPU)"
    )
    # the kernel's answer carries the new datapath's ifindex in struct ovs_header
    ifindex = _val(reply, DP + "ovs_header.dp_ifindex")
    assert ifindex > 0
    assert "dp0" in reply.info
    (req,) = [m for m in _from_user(msgs) if m.type_name == "OVS_DP_CMD_NEW"][-1:]
    assert _val(req, DP + "dp.name") == "dp0"
    assert _val(req, DP + "ovs_header.dp_ifindex") == 0


def test_show_ports_and_stats(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "ovs-dpctl -s show dp0")
    text = "\n".join(cmd.output)
    assert cmd.output[0] == "system@dp0:"
    ports = dict((int(n), name) for n, name in re.findall(r"port (\d+): (\w+)", text))
    assert ports == {0: "dp0", 1: "ovsp0", 2: "ovsp1"}
    dumps = [
        m
        for m in _from_kernel(messages_during(frames, cmd, "ovs_vport", "OVS_VPORT_CMD_GET"))
        if m.node.find(VP + "vport.port_no") is not None
    ]
    seen = {_val(m, VP + "vport.port_no"): _val(m, VP + "vport.name") for m in dumps}
    assert seen == ports
    types = {_val(m, VP + "vport.name"): m.node.find(VP + "vport.type").display for m in dumps}
    assert types["dp0"].startswith("internal")
    assert types["ovsp0"].startswith("netdev")
    # RX bytes of port 1 as printed
    rx = re.search(r"port 1: ovsp0\n.*\n.*\n.*\n\s+RX bytes:(\d+)\s+TX bytes:(\d+)", text)
    assert rx
    (p1,) = {
        _val(m, VP + "ovs_vport_stats.rx_bytes")
        for m in dumps
        if _val(m, VP + "vport.name") == "ovsp0"
    }
    assert p1 == int(rx.group(1))
    # datapath statistics: "lookups: hit:0 missed:1 lost:1"
    hit, missed, lost = map(
        int, re.search(r"lookups: hit:(\d+) missed:(\d+) lost:(\d+)", text).groups()
    )
    dp = _from_kernel(messages_during(frames, cmd, "ovs_datapath", "OVS_DP_CMD_GET"))
    assert dp
    stats = {
        (
            _val(m, DP + "ovs_dp_stats.n_hit"),
            _val(m, DP + "ovs_dp_stats.n_missed"),
            _val(m, DP + "ovs_dp_stats.n_lost"),
        )
        for m in dp
    }
    assert stats == {(hit, missed, lost)}


def test_flow_keys_as_added(capture):
    frames, cmds = capture
    reqs = _from_user(
        messages_during(frames, find_command(cmds, "ovs-dpctl add-flows dp0 flows.txt"), "ovs_flow")
    )
    assert [m.type_name for m in reqs] == ["OVS_FLOW_CMD_NEW"] * 4
    tcp, arp, udp, v6 = reqs
    assert _val(tcp, FL + "flow.key.in_port") == 2
    assert _ip(_val(tcp, FL + "ovs_key_ipv4.ipv4_src")) == "192.0.2.1"
    assert _ip(_val(tcp, FL + "ovs_key_ipv4.ipv4_dst")) == "192.0.2.2"
    assert _val(tcp, FL + "ovs_key_tcp.tcp_dst") == 80
    assert _val(tcp, FL + "ovs_key_tcp.tcp_src") == 1234
    assert _mac(_val(tcp, FL + "ovs_key_ethernet.eth_src")) == "02:00:00:00:00:0a"
    assert _val(tcp, FL + "flow.actions.output") == 2
    assert _ip(_val(arp, FL + "ovs_key_arp.arp_sip")) == "192.0.2.3"
    assert _ip(_val(arp, FL + "ovs_key_arp.arp_tip")) == "192.0.2.4"
    assert _val(arp, FL + "ovs_key_arp.arp_op") == 1
    # push_vlan(vid=100,pcp=0): TPID 0x8100, TCI with the CFI bit
    assert _val(arp, FL + "ovs_action_push_vlan.vlan_tpid") == 0x8100
    assert _val(arp, FL + "ovs_action_push_vlan.vlan_tci") == 0x1000 | 100
    assert _val(udp, FL + "flow.actions.userspace.pid") == 4242
    assert bytes(_val(udp, FL + "flow.actions.userspace.userdata"))[:4] == bytes.fromhex("01020304")
    assert _ip(_val(v6, FL + "ovs_key_ipv6.ipv6_src")) == "2001:db8::1"
    assert _ip(_val(v6, FL + "ovs_key_ipv6.ipv6_dst")) == "2001:db8::2"
    assert _val(v6, FL + "ovs_key_udp.udp_src") == 53


def test_flow_dump_stats(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "ovs-dpctl dump-flows -s dp0")
    m = re.search(
        r"ipv4\(src=198\.51\.100\.1,dst=198\.51\.100\.2.*packets:(\d+), bytes:(\d+)",
        "\n".join(cmd.output),
    )
    assert m and int(m.group(1)) == 1
    replies = _from_kernel(messages_during(frames, cmd, "ovs_flow", "OVS_FLOW_CMD_GET"))
    assert len(replies) == len([line for line in cmd.output if line.strip()]) == 4
    (udp,) = [
        r
        for r in replies
        if r.node.find(FL + "ovs_key_udp.udp_dst") is not None
        and _val(r, FL + "ovs_key_udp.udp_dst") == 6000
    ]
    assert _val(udp, FL + "ovs_flow_stats.n_packets") == int(m.group(1))
    assert _val(udp, FL + "ovs_flow_stats.n_bytes") == int(m.group(2))
    assert _val(udp, FL + "flow.used") > 0
    # the tcp flow after mod-flow: pop_vlan,2
    (tcp,) = [r for r in replies if r.node.find(FL + "ovs_key_tcp.tcp_dst") is not None]
    assert tcp.node.find(FL + "flow.actions.pop_vlan") is not None
    assert _val(tcp, FL + "flow.actions.output") == 2


def test_upcalls_and_execute(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "python3 ovs_upcall.py 6000")
    lines = [line for line in cmd.output if line.startswith("upcall")]
    got = [
        re.match(r"upcall cmd (\d) dp_ifindex (\d+) len (\d+) userdata (\w*)", s).groups()
        for s in lines
    ]
    msgs = messages_during(frames, cmd, "ovs_packet")
    miss, execute, action = [m for m in msgs if m.type_name.startswith("OVS_PACKET_CMD")]
    assert miss.type_name == "OVS_PACKET_CMD_MISS" and got[0][0] == "1"
    assert action.type_name == "OVS_PACKET_CMD_ACTION" and got[1][0] == "2"
    assert execute.type_name == "OVS_PACKET_CMD_EXECUTE"
    for msg, (_, ifindex, length, _userdata) in ((miss, got[0]), (action, got[1])):
        assert _val(msg, PK + "ovs_header.dp_ifindex") == int(ifindex)
        assert len(bytes(_val(msg, PK + "packet.packet"))) == int(length)
        assert _val(msg, PK + "packet.key.in_port") == 2
        assert _ip(_val(msg, PK + "ovs_key_ipv4.ipv4_src")) == "198.51.100.1"
    assert _val(miss, PK + "ovs_key_udp.udp_dst") == 5000
    assert _val(action, PK + "ovs_key_udp.udp_dst") == 6000
    assert bytes(_val(action, PK + "packet.userdata")).hex() == got[1][3]
    # EXECUTE sends the missed packet back out of port 2
    assert bytes(_val(execute, PK + "packet.packet")) == bytes(_val(miss, PK + "packet.packet"))
    assert _val(execute, PK + "packet.actions.output") == 2
    # the per-CPU upcall ports and the vport's upcall port set before
    (dpset,) = _from_user(messages_during(frames, cmd, "ovs_datapath", "OVS_DP_CMD_SET"))
    pids = dpset.node.find(DP + "dp.per_cpu_pids")
    assert [c.value for c in pids.children] == [4242] * 4
    (vpset,) = _from_user(messages_during(frames, cmd, "ovs_vport", "OVS_VPORT_CMD_SET"))
    assert _val(vpset, VP + "vport.name") == "ovsp1"


def test_datapath_deleted(capture):
    frames, cmds = capture
    msgs = messages_during(frames, find_command(cmds, "ovs-dpctl del-dp dp0"), "ovs_datapath")
    dels = [m for m in msgs if m.type_name == "OVS_DP_CMD_DEL"]
    (req,) = _from_user(dels)
    (reply,) = _from_kernel(dels)
    # the request names the datapath by its ifindex only; the answer by name too
    assert _val(reply, DP + "dp.name") == "dp0"
    assert _val(req, DP + "ovs_header.dp_ifindex") == _val(reply, DP + "ovs_header.dp_ifindex")


# -- batman-adv ------------------------------------------------------------------

BA = "genl.batadv.batadv."


def test_routing_algos(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "batctl routing_algo")
    listed = [s.strip()[2:] for s in cmd.output if s.strip().startswith("* ")]
    assert listed == ["BATMAN_IV", "BATMAN_V"]
    replies = _from_kernel(messages_during(frames, cmd, "batadv", "BATADV_CMD_GET_ROUTING_ALGOS"))
    assert [_val(m, BA + "algo_name") for m in replies] == listed


def test_mesh_json(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "batctl meshif bat0 mesh_json")
    want = _json_output(cmd)
    (reply,) = _from_kernel(messages_during(frames, cmd, "batadv", "BATADV_CMD_GET_MESH"))
    assert _val(reply, BA + "algo_name") == want["algo_name"] == "BATMAN_V"
    assert _val(reply, BA + "mesh_ifname") == want["mesh_ifname"] == "bat0"
    assert _val(reply, BA + "mesh_ifindex") == want["mesh_ifindex"]
    assert _mac(_val(reply, BA + "mesh_address")) == want["mesh_address"]
    assert _val(reply, BA + "hard_ifname") == want["hard_ifname"] == "batp0"
    assert _mac(_val(reply, BA + "hard_address")) == want["hard_address"]
    assert _val(reply, BA + "version") == want["version"]
    assert _val(reply, BA + "orig_interval") == want["orig_interval"] == 2000
    assert _val(reply, BA + "aggregated_ogms_enabled") == int(want["aggregated_ogms_enabled"])
    assert reply.node.find(BA + "gw_mode").display.startswith("server")
    assert _val(reply, BA + "gw_bandwidth_down") == want["gw_bandwidth_down"] == 100
    assert "bat0" in reply.info


def test_hardifs(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "batctl meshif bat0 hardifs_json")
    want = _json_output(cmd)
    replies = _from_kernel(messages_during(frames, cmd, "batadv", "BATADV_CMD_GET_HARDIF"))
    got = [
        (
            _val(m, BA + "hard_ifname"),
            _val(m, BA + "hard_ifindex"),
            _mac(_val(m, BA + "hard_address")),
            _val(m, BA + "elp_interval"),
            m.node.find(BA + "active") is not None,
        )
        for m in replies
    ]
    assert got == [
        (h["hard_ifname"], h["hard_ifindex"], h["hard_address"], h["elp_interval"], h["active"])
        for h in want
    ]
    assert {g[0] for g in got} == {"batp0", "batp0b"}
    one = find_command(cmds, "batctl hardif batp0 hardif_json")
    (reply,) = _from_kernel(messages_during(frames, one, "batadv", "BATADV_CMD_GET_HARDIF"))
    h = _json_output(one)
    assert _val(reply, BA + "elp_interval") == h["elp_interval"] == 700
    assert _val(reply, BA + "throughput_override") == h["throughput_override"]
    assert _val(reply, BA + "mesh_ifname") == "bat0"


def test_set_hardif(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "batctl hardif batp0 elp_interval 700")
    (req,) = _from_user(messages_during(frames, cmd, "batadv", "BATADV_CMD_SET_HARDIF"))
    assert _val(req, BA + "elp_interval") == 700
    cmd = find_command(cmds, "batctl meshif bat0 gw_mode server 10000/2000")
    (req,) = _from_user(messages_during(frames, cmd, "batadv", "BATADV_CMD_SET_MESH"))
    assert req.node.find(BA + "gw_mode").display.startswith("server")
    assert _val(req, BA + "gw_bandwidth_down") == 100  # 10 MBit in 100 kbit/s
    assert _val(req, BA + "gw_bandwidth_up") == 20


def test_translocal(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "batctl meshif bat0 transtable_local_json")
    want = _json_output(cmd)
    replies = _from_kernel(
        messages_during(frames, cmd, "batadv", "BATADV_CMD_GET_TRANSTABLE_LOCAL")
    )
    got = [
        (_mac(_val(m, BA + "tt_address")), _val(m, BA + "tt_crc32"), _val(m, BA + "tt_flags"))
        for m in replies
    ]
    assert got == [(t["tt_address"], t["tt_crc32"], t["tt_flags"]["raw"]) for t in want]
    assert "NOPURGE" in replies[0].node.find(BA + "tt_flags").display
