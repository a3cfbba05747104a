"""TIPC (family TIPCv2) and the four NetLabel families (NLBL_MGMT,
NLBL_CIPSOv4, NLBL_CALIPSO, NLBL_UNLBL) against a real capture
(captures/genl_tipc_netlabel.pcap, recorded with the nlmon VM from
captures/scripts/genl_tipc_netlabel.sh: iproute2's `tipc` and
netlabel-tools' `netlabelctl` on a Debian 6.1 kernel).

Every message of these families must be named and decode without
`undecoded` or `malformed` notes, and the decoded values must agree with
what the tools printed (captures/genl_tipc_netlabel.commands.log).  Messages
are matched to the command that caused them by the log's timestamps (the
guest clock, the same clock as the capture's).
"""

from __future__ import annotations

import ipaddress
import re
import struct
from pathlib import Path

import pytest
from cmdlog import (
    Command,
    bad_notes,
    find_command,
    genl_ids,
    genl_types_seen,
    messages_during,
    read_commands,
)

import dissect

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
PCAP = CAPTURES / "genl_tipc_netlabel.pcap"
LOG = CAPTURES / "genl_tipc_netlabel.commands.log"
TSV = CAPTURES / "genl_tipc_netlabel.genl_families.tsv"
FAMILIES = {"TIPCv2", "NLBL_MGMT", "NLBL_CIPSOv4", "NLBL_CALIPSO", "NLBL_UNLBL"}

# NETLBL_NLTYPE_* and the names netlabelctl prints for them
NLTYPE_CIPSOV4, NLTYPE_UNLABELED, NLTYPE_CALIPSO = 3, 5, 7
NLTYPE_PRINTED = {NLTYPE_UNLABELED: "UNLABELED", NLTYPE_CIPSOV4: "CIPSO", NLTYPE_CALIPSO: "CALIPSO"}
# CIPSO_V4_MAP_* / CALIPSO_MAP_* and the names netlabelctl prints for them
MAP_PRINTED = {1: "TRANSLATED", 2: "PASS_THROUGH", 3: "LOCAL"}

pytestmark = pytest.mark.skipif(
    not PCAP.exists(), reason="captures/genl_tipc_netlabel.pcap not present"
)


@pytest.fixture(scope="module")
def capture():
    frames = list(dissect.read_capture(PCAP))
    return frames, read_commands(LOG)


def _replies(frames, cmd: Command, family: str, type_name: str):
    return [
        m
        for m in messages_during(frames, cmd, family, type_name)
        if m.direction != "user->kernel" and m.layout is not None
    ]


def _requests(frames, cmd: Command, family: str, type_name: str):
    return [
        m for m in messages_during(frames, cmd, family, type_name) if m.direction == "user->kernel"
    ]


def _val(msg, abbrev: str):
    n = msg.node.find(abbrev)
    assert n is not None, f"{abbrev} missing in {msg.type_name} (frame {msg.frame})"
    return n.value


def _opt(msg, abbrev: str):
    n = msg.node.find(abbrev)
    return None if n is None else n.value


# -- every message is named and clean ------------------------------------------


def test_family_ids_match_the_guest(capture):
    frames, _ = capture
    ids = genl_ids(TSV)
    seen = genl_types_seen(frames, FAMILIES)
    assert set(seen) == FAMILIES
    for fam, types in seen.items():
        assert types == {ids[fam]}, fam


def test_every_message_named_and_clean(capture):
    frames, _ = capture
    n = 0
    for f in frames:
        for m in f.messages:
            if m.family not in FAMILIES:
                continue
            n += 1
            assert " cmd " not in m.type_name, (f.number, m.type_name)
            assert not bad_notes(m), (f.number, m.type_name, bad_notes(m))
    assert n > 150


def test_every_tipc_command_used_is_named(capture):
    frames, _ = capture
    names = {
        m.type_name
        for f in frames
        for m in f.messages
        if m.family == "TIPCv2" and m.type_name.startswith("TIPC_NL_")
    }
    for want in (
        "TIPC_NL_BEARER_ENABLE",
        "TIPC_NL_BEARER_DISABLE",
        "TIPC_NL_BEARER_GET",
        "TIPC_NL_BEARER_SET",
        "TIPC_NL_SOCK_GET",
        "TIPC_NL_PUBL_GET",
        "TIPC_NL_LINK_GET",
        "TIPC_NL_LINK_SET",
        "TIPC_NL_LINK_RESET_STATS",
        "TIPC_NL_MEDIA_GET",
        "TIPC_NL_MEDIA_SET",
        "TIPC_NL_NODE_GET",
        "TIPC_NL_NET_GET",
        "TIPC_NL_NET_SET",
        "TIPC_NL_NAME_TABLE_GET",
        "TIPC_NL_MON_SET",
        "TIPC_NL_MON_GET",
        "TIPC_NL_MON_PEER_GET",
        "TIPC_NL_PEER_REMOVE",
    ):
        assert want in names, want


# -- TIPC ----------------------------------------------------------------------


def test_tipc_bearer_enable_and_list(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "tipc bearer enable media udp name b1 localip 127.0.0.1")
    (req,) = _requests(frames, cmd, "TIPCv2", "TIPC_NL_BEARER_ENABLE")
    assert _val(req, "genl.tipc.tipc.bearer.name") == "udp:b1"
    local = bytes(_val(req, "genl.tipc.tipc.bearer.udp_opts.local"))
    assert len(local) == 16 and struct.unpack_from("<H", local)[0] == 2  # a struct sockaddr_in
    assert str(ipaddress.ip_address(local[4:8])) == "127.0.0.1"

    listed = find_command(cmds, "tipc bearer list")
    names = [
        _val(m, "genl.tipc.tipc.bearer.name")
        for m in _replies(frames, listed, "TIPCv2", "TIPC_NL_BEARER_GET")
    ]
    assert names == [line.strip() for line in listed.output if line.strip()] == ["udp:b1"]
    # after the bearer is disabled the list is empty
    after = find_command(cmds, "tipc bearer list", 1)
    assert not _replies(frames, after, "TIPCv2", "TIPC_NL_BEARER_GET")
    (dis,) = _requests(
        frames,
        find_command(cmds, "tipc bearer disable media udp name b1"),
        "TIPCv2",
        "TIPC_NL_BEARER_DISABLE",
    )
    assert _val(dis, "genl.tipc.tipc.bearer.name") == "udp:b1"


def test_tipc_bearer_properties(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "tipc bearer get tolerance media udp name b1")
    (rep,) = _replies(frames, cmd, "TIPCv2", "TIPC_NL_BEARER_GET")
    assert _val(rep, "genl.tipc.tipc.bearer.prop.tol") == int(cmd.output[0])
    cmd = find_command(cmds, "tipc bearer get media udp name b1 localip")
    (rep,) = _replies(frames, cmd, "TIPCv2", "TIPC_NL_BEARER_GET")
    local = bytes(_val(rep, "genl.tipc.tipc.bearer.udp_opts.local"))
    assert str(ipaddress.ip_address(local[4:8])) == cmd.output[0].strip()
    (req,) = _requests(
        frames,
        find_command(cmds, "tipc bearer set priority 12 media udp name b1"),
        "TIPCv2",
        "TIPC_NL_BEARER_SET",
    )
    assert _val(req, "genl.tipc.tipc.bearer.prop.prio") == 12


def test_tipc_media(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "tipc media list")
    names = [
        _val(m, "genl.tipc.tipc.media.name")
        for m in _replies(frames, cmd, "TIPCv2", "TIPC_NL_MEDIA_GET")
    ]
    assert names == [line.strip() for line in cmd.output if line.strip()]
    cmd = find_command(cmds, "tipc media get mtu media udp")
    (rep,) = _replies(frames, cmd, "TIPCv2", "TIPC_NL_MEDIA_GET")
    assert _val(rep, "genl.tipc.tipc.media.name") == "udp"
    assert _val(rep, "genl.tipc.tipc.media.prop.mtu") == int(cmd.output[0])
    (req,) = _requests(
        frames,
        find_command(cmds, "tipc media set tolerance 2000 media udp"),
        "TIPCv2",
        "TIPC_NL_MEDIA_SET",
    )
    assert _val(req, "genl.tipc.tipc.media.prop.tol") == 2000


def test_tipc_links(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "tipc link list")
    reps = _replies(frames, cmd, "TIPCv2", "TIPC_NL_LINK_GET")
    printed = [line.split(":")[0] for line in cmd.output if line.strip()]
    assert [_val(m, "genl.tipc.tipc.link.name") for m in reps] == printed == ["broadcast-link"]
    assert _val(reps[0], "genl.tipc.tipc.link.broadcast") is True
    assert _val(reps[0], "genl.tipc.tipc.link.up") is True

    (req,) = _requests(
        frames,
        find_command(cmds, "tipc link set window 100 link broadcast-link"),
        "TIPCv2",
        "TIPC_NL_LINK_SET",
    )
    assert _val(req, "genl.tipc.tipc.link.name") == "broadcast-link"
    assert _val(req, "genl.tipc.tipc.link.prop.win") == 100
    cmd = find_command(cmds, "tipc link get window link broadcast-link")
    (rep,) = [
        m
        for m in _replies(frames, cmd, "TIPCv2", "TIPC_NL_LINK_GET")
        if _opt(m, "genl.tipc.tipc.link.name") == "broadcast-link"
    ]
    assert _val(rep, "genl.tipc.tipc.link.prop.win") == int(cmd.output[0])

    cmd = find_command(cmds, "tipc link stat show")
    (rep,) = _replies(frames, cmd, "TIPCv2", "TIPC_NL_LINK_GET")
    text = "\n".join(cmd.output)
    assert f"Link <{_val(rep, 'genl.tipc.tipc.link.name')}>" in text
    assert f"Window:{_val(rep, 'genl.tipc.tipc.link.prop.win')} packets" in text
    m = re.search(r"RX naks:(\d+) defs:(\d+) dups:(\d+)", text)
    assert m
    assert _val(rep, "genl.tipc.tipc.link.stats.rx_nacks") == int(m.group(1))
    assert _val(rep, "genl.tipc.tipc.link.stats.rx_deferred") == int(m.group(2))
    assert _val(rep, "genl.tipc.tipc.link.stats.duplicates") == int(m.group(3))
    m = re.search(r"Send queue max:(\d+) avg:(\d+)", text)
    assert _val(rep, "genl.tipc.tipc.link.stats.max_queue") == int(m.group(1))
    assert _val(rep, "genl.tipc.tipc.link.stats.avg_queue") == int(m.group(2))

    (req,) = _requests(
        frames,
        find_command(cmds, "tipc link stat reset link broadcast-link"),
        "TIPCv2",
        "TIPC_NL_LINK_RESET_STATS",
    )
    assert _val(req, "genl.tipc.tipc.link.name") == "broadcast-link"


def test_tipc_monitor(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "tipc link monitor get threshold")
    (rep,) = _replies(frames, cmd, "TIPCv2", "TIPC_NL_MON_GET")
    assert _val(rep, "genl.tipc.tipc.mon.activation_threshold") == int(cmd.output[0])
    (req,) = _requests(
        frames,
        find_command(cmds, "tipc link monitor set threshold 16"),
        "TIPCv2",
        "TIPC_NL_MON_SET",
    )
    assert _val(req, "genl.tipc.tipc.mon.activation_threshold") == 16
    cmd = find_command(cmds, "tipc link monitor summary")
    reps = _replies(frames, cmd, "TIPCv2", "TIPC_NL_MON_GET")
    bearers = [_opt(m, "genl.tipc.tipc.mon.bearer_name") for m in reps]
    assert "udp:b1" in bearers
    assert "bearer udp:b1" in cmd.output
    cmd = find_command(cmds, "tipc link monitor list")
    peers = _replies(frames, cmd, "TIPCv2", "TIPC_NL_MON_PEER_GET")
    assert peers and all(_val(m, "genl.tipc.tipc.mon_peer.up") is True for m in peers)


def test_tipc_net_and_identity(capture):
    frames, cmds = capture
    (req,) = _requests(
        frames, find_command(cmds, "tipc node set netid 4712"), "TIPCv2", "TIPC_NL_NET_SET"
    )
    assert _val(req, "genl.tipc.tipc.net.id") == 4712
    cmd = find_command(cmds, "tipc node get netid")
    (rep,) = _replies(frames, cmd, "TIPCv2", "TIPC_NL_NET_GET")
    assert _val(rep, "genl.tipc.tipc.net.id") == int(cmd.output[0])
    # `tipc node set identity 0x1234` sends the text of the identity as the
    # first bytes of the 16-byte node id
    (req,) = _requests(
        frames, find_command(cmds, "tipc node set identity 0x1234"), "TIPCv2", "TIPC_NL_NET_SET"
    )
    w0 = _val(req, "genl.tipc.tipc.net.nodeid")
    assert struct.pack("<Q", w0).rstrip(b"\0") == b"0x1234"


def test_tipc_name_table_and_sockets(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "tipc nametable show")
    rows = [line.split() for line in cmd.output[1:] if line.strip()]
    reps = _replies(frames, cmd, "TIPCv2", "TIPC_NL_NAME_TABLE_GET")
    got = [
        [str(_val(m, f"genl.tipc.tipc.name_table.publ.{k}")) for k in ("type", "lower", "upper")]
        + [{2: "cluster", 3: "node"}[_val(m, "genl.tipc.tipc.name_table.publ.scope")]]
        + [str(_val(m, "genl.tipc.tipc.name_table.publ.ref"))]
        for m in reps
    ]
    assert got == [r[:5] for r in rows]

    cmd = find_command(cmds, "tipc socket list")
    refs = [int(line.split()[1]) for line in cmd.output if line.startswith("socket ")]
    reps = _replies(frames, cmd, "TIPCv2", "TIPC_NL_SOCK_GET")
    assert [_val(m, "genl.tipc.tipc.sock.ref") for m in reps] == refs
    # the socket bound to {1,1,1}: its publication
    publ = _replies(frames, cmd, "TIPCv2", "TIPC_NL_PUBL_GET")
    assert [
        (
            _val(m, "genl.tipc.tipc.publ.type"),
            _val(m, "genl.tipc.tipc.publ.lower"),
            _val(m, "genl.tipc.tipc.publ.upper"),
        )
        for m in publ
    ] == [(1, 1, 1)]

    # the Python socket bound to {1000, 1..10} while `tipc socket list` ran
    cmd = [c for c in cmds if c.line.startswith("bash -c 'python3")][0]
    publ = _replies(frames, cmd, "TIPCv2", "TIPC_NL_PUBL_GET")
    assert (1000, 1, 10) in [
        (
            _val(m, "genl.tipc.tipc.publ.type"),
            _val(m, "genl.tipc.tipc.publ.lower"),
            _val(m, "genl.tipc.tipc.publ.upper"),
        )
        for m in publ
    ]


# -- NetLabel ------------------------------------------------------------------


def test_netlabel_version_and_protocols(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "netlabelctl -p mgmt version")
    (rep,) = _replies(frames, cmd, "NLBL_MGMT", "NLBL_MGMT_C_VERSION")
    kernel = [line for line in cmd.output if line.strip().startswith("kernel :")]
    assert _val(rep, "genl.nlbl_mgmt.mgmt.version") == int(kernel[0].split(":")[1]) == 3
    cmd = find_command(cmds, "netlabelctl -p mgmt protocols")
    protos = [
        _val(m, "genl.nlbl_mgmt.mgmt.protocol")
        for m in _replies(frames, cmd, "NLBL_MGMT", "NLBL_MGMT_C_PROTOCOLS")
    ]
    printed = cmd.output[0].split(":")[1].split()
    assert [NLTYPE_PRINTED[p] for p in protos] == printed


def test_netlabel_domain_mappings(capture):
    frames, cmds = capture
    (req,) = _requests(
        frames,
        find_command(cmds, "netlabelctl map add domain:lab protocol:cipsov4,16"),
        "NLBL_MGMT",
        "NLBL_MGMT_C_ADD",
    )
    assert _val(req, "genl.nlbl_mgmt.mgmt.domain") == "lab"
    assert _val(req, "genl.nlbl_mgmt.mgmt.protocol") == NLTYPE_CIPSOV4
    assert _val(req, "genl.nlbl_mgmt.mgmt.cv4doi") == 16
    (req,) = _requests(
        frames,
        find_command(cmds, "netlabelctl map add domain:lab2 address:192.0.2.0/24 protocol:unlbl"),
        "NLBL_MGMT",
        "NLBL_MGMT_C_ADD",
    )
    assert bytes(_val(req, "genl.nlbl_mgmt.mgmt.ipv4addr")) == bytes([192, 0, 2, 0])
    assert bytes(_val(req, "genl.nlbl_mgmt.mgmt.ipv4mask")) == bytes([255, 255, 255, 0])

    cmd = find_command(cmds, "netlabelctl -p map list", 1)
    reps = _replies(frames, cmd, "NLBL_MGMT", "NLBL_MGMT_C_LISTALL")
    domains = [_val(m, "genl.nlbl_mgmt.mgmt.domain") for m in reps]
    printed = re.findall(r'domain: "([^"]+)"', "\n".join(cmd.output))
    assert domains == printed == ["lab2", "lab"]
    lab2 = reps[0]
    sel = "genl.nlbl_mgmt.mgmt.selectorlist.addrselector"
    assert bytes(_val(lab2, f"{sel}.ipv4addr")) == bytes([192, 0, 2, 0])
    assert _val(lab2, f"{sel}.protocol") == NLTYPE_UNLABELED
    assert _val(reps[1], "genl.nlbl_mgmt.mgmt.cv4doi") == 16
    # the default mapping (LISTDEF), printed as DEFAULT ... UNLABELED
    defs = _replies(frames, cmd, "NLBL_MGMT", "NLBL_MGMT_C_LISTDEF")
    assert defs and all(_val(m, "genl.nlbl_mgmt.mgmt.protocol") == NLTYPE_UNLABELED for m in defs)
    for name in ("lab", "lab2"):
        (req,) = _requests(
            frames,
            find_command(cmds, f"netlabelctl map del domain:{name}"),
            "NLBL_MGMT",
            "NLBL_MGMT_C_REMOVE",
        )
        assert _val(req, "genl.nlbl_mgmt.mgmt.domain") == name


def test_netlabel_unlabeled(capture):
    frames, cmds = capture
    for flag, want in (("off", 0), ("on", 1)):
        (req,) = _requests(
            frames,
            find_command(cmds, f"netlabelctl unlbl accept {flag}"),
            "NLBL_UNLBL",
            "NLBL_UNLABEL_C_ACCEPT",
        )
        assert _val(req, "genl.nlbl_unlbl.unlbl.acptflg") == want
    cmd = find_command(cmds, "netlabelctl -p unlbl list", 1)
    (rep,) = _replies(frames, cmd, "NLBL_UNLBL", "NLBL_UNLABEL_C_LIST")
    assert cmd.output[0] == "Accept unlabeled packets : on"
    assert _val(rep, "genl.nlbl_unlbl.unlbl.acptflg") == 1
    # a static label: refused (no LSM in the guest), the request decodes
    (req,) = _requests(
        frames,
        find_command(
            cmds,
            "netlabelctl unlbl add interface:lo address:192.0.2.0/24 label:system_u:object_r:netlabel_peer_t:s0",
        ),
        "NLBL_UNLBL",
        "NLBL_UNLABEL_C_STATICADD",
    )
    assert _val(req, "genl.nlbl_unlbl.unlbl.iface") == "lo"
    assert _val(req, "genl.nlbl_unlbl.unlbl.secctx") == "system_u:object_r:netlabel_peer_t:s0"
    assert bytes(_val(req, "genl.nlbl_unlbl.unlbl.ipv4mask")) == bytes([255, 255, 255, 0])


def test_netlabel_cipsov4(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "netlabelctl -p cipsov4 list", 2)
    reps = _replies(frames, cmd, "NLBL_CIPSOv4", "NLBL_CIPSOV4_C_LISTALL")
    got = [
        (
            _val(m, "genl.nlbl_cipsov4.cipsov4.doi"),
            MAP_PRINTED[_val(m, "genl.nlbl_cipsov4.cipsov4.mtype")],
        )
        for m in reps
    ]
    text = "\n".join(cmd.output)
    printed = [
        (int(d), t) for d, t in re.findall(r"DOI value : (\d+)\n\s+mapping type : (\S+)", text)
    ]
    assert got == printed == [(16, "PASS_THROUGH"), (18, "TRANSLATED"), (19, "LOCAL")]

    cmd = find_command(
        cmds, "netlabelctl cipsov4 add trans doi:18 tags:1 levels:0=0,1=1 categories:0=0,1=1"
    )
    (req,) = _requests(frames, cmd, "NLBL_CIPSOv4", "NLBL_CIPSOV4_C_ADD")
    assert _val(req, "genl.nlbl_cipsov4.cipsov4.taglst.tag") == 1
    cmd = find_command(cmds, "netlabelctl -p cipsov4 list doi:18")
    (rep,) = _replies(frames, cmd, "NLBL_CIPSOv4", "NLBL_CIPSOV4_C_LIST")
    lvls = [
        (
            n.find("genl.nlbl_cipsov4.cipsov4.mlslvllst.mlslvl.mlslvlloc").value,
            n.find("genl.nlbl_cipsov4.cipsov4.mlslvllst.mlslvl.mlslvlrem").value,
        )
        for n in rep.node.walk()
        if n.abbrev == "genl.nlbl_cipsov4.cipsov4.mlslvllst.mlslvl"
    ]
    text = "\n".join(cmd.output)
    levels_text = text.split("levels")[1].split("categories")[0]
    assert lvls == [(int(a), int(b)) for a, b in re.findall(r"(\d+) = (\d+)", levels_text)]
    cats = [n.value for n in rep.node.walk() if n.abbrev.endswith("mlscat.mlscatrem")]
    assert cats == [int(b) for _, b in re.findall(r"(\d+) = (\d+)", text.split("categories")[1])]
    (req,) = _requests(
        frames,
        find_command(cmds, "netlabelctl cipsov4 add local doi:19"),
        "NLBL_CIPSOv4",
        "NLBL_CIPSOV4_C_ADD",
    )
    assert _val(req, "genl.nlbl_cipsov4.cipsov4.taglst.tag") == 128  # CIPSO_V4_TAG_LOCAL


def test_netlabel_calipso(capture):
    frames, cmds = capture
    (req,) = _requests(
        frames,
        find_command(cmds, "netlabelctl calipso add pass doi:17"),
        "NLBL_CALIPSO",
        "NLBL_CALIPSO_C_ADD",
    )
    assert _val(req, "genl.nlbl_calipso.calipso.doi") == 17
    assert _val(req, "genl.nlbl_calipso.calipso.mtype") == 2
    cmd = find_command(cmds, "netlabelctl -p calipso list", 1)
    (rep,) = _replies(frames, cmd, "NLBL_CALIPSO", "NLBL_CALIPSO_C_LISTALL")
    assert _val(rep, "genl.nlbl_calipso.calipso.doi") == 17 == int(cmd.output[1].split(":")[1])
    assert (
        MAP_PRINTED[_val(rep, "genl.nlbl_calipso.calipso.mtype")]
        == cmd.output[2].split(":")[1].strip()
    )
    (req,) = _requests(
        frames,
        find_command(cmds, "netlabelctl calipso del doi:17"),
        "NLBL_CALIPSO",
        "NLBL_CALIPSO_C_REMOVE",
    )
    assert _val(req, "genl.nlbl_calipso.calipso.doi") == 17
