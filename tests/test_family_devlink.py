"""The devlink family against a real capture (captures/genl_devlink.pcap,
recorded with the nlmon VM from captures/scripts/genl_devlink.sh: iproute2's
`devlink` against a netdevsim device with two ports, `devlink mon` in the
background), and the netdev family, which the capture's 6.1 kernel does not
have, against hand-built messages.

Every devlink message must be named DEVLINK_CMD_* and decode without
`undecoded` or `malformed` notes (except the stale padding bytes iproute2
sends, see `sent_padding`), and the decoded values must agree with what
`devlink` printed (captures/genl_devlink.commands.log).  Messages are
matched to the command that caused them by the log's timestamps (the guest
clock, the same clock as the capture's).
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
from cmdlog import Command, find_command, read_commands

import dissect
from dissect.capture import netlink_pseudo_header
from dissect.core.netlink import Session
from dissect.core.tree import MALFORMED, UNDECODED

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
PCAP = CAPTURES / "genl_devlink.pcap"
LOG = CAPTURES / "genl_devlink.commands.log"
TSV = CAPTURES / "genl_devlink.genl_families.tsv"
D = "genl.devlink.devlink"
TO_KERNEL = "user->kernel"

pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="captures/genl_devlink.pcap not present")


def _commands() -> list[Command]:
    return read_commands(LOG)


def _monitor_lines() -> list[str]:
    """The background `devlink mon` output (commented in the log)."""
    text = LOG.read_text()
    part = text.split("# background(mon) output:", 1)[1]
    return [line[4:] for line in part.splitlines() if line.startswith("#   ")]


@pytest.fixture(scope="module")
def capture():
    frames = list(dissect.read_capture(PCAP))
    return frames, _commands()


_command = find_command


def _messages(frames, cmd: Command, type_name: str | None = None):
    """devlink messages captured while `cmd` ran."""
    return [
        m
        for f in frames
        if cmd.start_ns <= f.ts_ns <= cmd.end_ns
        for m in f.messages
        if m.family == "devlink" and (type_name is None or m.type_name == type_name)
    ]


def _replies(frames, cmd: Command, type_name: str):
    return [m for m in _messages(frames, cmd, type_name) if m.direction != TO_KERNEL]


def _val(node, abbrev: str):
    n = node.find(abbrev)
    assert n is not None, f"{abbrev} missing"
    return n.value


def sent_padding(msg, note) -> bool:
    """iproute2 6.1's devlink leaves stale bytes in the alignment padding
    after some attributes it sends (param name, cmode, hw_addr); the capture
    really has them, in requests only."""
    return msg.direction == TO_KERNEL and note.text == "non-zero padding after the attribute"


# -- every message is named and clean ------------------------------------------


def test_family_id_matches_the_guest(capture):
    frames, _ = capture
    ids = dict(reversed(line.split("\t")) for line in TSV.read_text().splitlines())
    types = {m.type for f in frames for m in f.messages if m.family == "devlink" and m.type >= 16}
    assert types == {int(ids["devlink"])}
    # the 6.1 guest has no netdev family (registered since 6.3)
    assert "netdev" not in ids


def test_every_message_named_and_clean(capture):
    frames, _ = capture
    names = set()
    padding = []
    count = 0
    for f in frames:
        for m in f.messages:
            if m.family != "devlink":
                continue
            count += 1
            names.add(m.type_name)
            if m.type >= 16:
                assert m.type_name.startswith("DEVLINK_CMD_"), (f.number, m.type_name)
                assert m.layout is not None, f"frame {f.number}: no layout for {m.type_name}"
            else:
                assert m.type_name in ("NLMSG_ERROR", "NLMSG_DONE"), m.type_name
            for n, note in m.node.all_notes():
                if note.group not in (UNDECODED, MALFORMED):
                    continue
                if sent_padding(m, note):
                    padding.append((m.type_name, n.abbrev))
                    continue
                raise AssertionError(f"frame {f.number} {m.type_name}: {n.abbrev}: {note.text}")
    assert count > 150
    assert {
        "DEVLINK_CMD_GET",
        "DEVLINK_CMD_NEW",
        "DEVLINK_CMD_PORT_GET",
        "DEVLINK_CMD_PORT_NEW",
        "DEVLINK_CMD_PORT_DEL",
        "DEVLINK_CMD_PORT_SET",
        "DEVLINK_CMD_PORT_SPLIT",
        "DEVLINK_CMD_INFO_GET",
        "DEVLINK_CMD_PARAM_GET",
        "DEVLINK_CMD_PARAM_SET",
        "DEVLINK_CMD_PARAM_NEW",
        "DEVLINK_CMD_RESOURCE_DUMP",
        "DEVLINK_CMD_DPIPE_TABLE_GET",
        "DEVLINK_CMD_HEALTH_REPORTER_GET",
        "DEVLINK_CMD_HEALTH_REPORTER_DIAGNOSE",
        "DEVLINK_CMD_ESWITCH_GET",
        "DEVLINK_CMD_REGION_GET",
        "DEVLINK_CMD_REGION_NEW",
        "DEVLINK_CMD_REGION_DEL",
        "DEVLINK_CMD_REGION_READ",
        "DEVLINK_CMD_RELOAD",
        "DEVLINK_CMD_TRAP_GET",
        "DEVLINK_CMD_TRAP_NEW",
        "DEVLINK_CMD_TRAP_DEL",
        "DEVLINK_CMD_TRAP_GROUP_NEW",
        "DEVLINK_CMD_TRAP_POLICER_NEW",
    } <= names
    # the stale padding is only in what iproute2 sent
    assert padding and {a for _, a in padding} <= {
        f"{D}.param_name",
        f"{D}.param_value_cmode",
        f"{D}.port_function.hw_addr",
    }


def test_commands_and_expected_failures(capture):
    _, cmds = capture
    failed = {c.line for c in cmds if c.rc != 0}
    assert failed == {
        "devlink region new netdevsim/netdevsim10/dummy snapshot 1",
        "devlink port split netdevsim/netdevsim10/0 count 4",
        "devlink port function set netdevsim/netdevsim10/0 hw_addr 02:00:00:00:00:01",
    }


# -- values against the tool's output ------------------------------------------------


def test_dev_show(capture):
    frames, cmds = capture
    for line in ("devlink dev show", "devlink -j dev show"):
        cmd = _command(cmds, line)
        if "-j" in line:
            handles = list(json.loads("\n".join(cmd.output))["dev"])
        else:
            handles = [o.strip() for o in cmd.output if o.strip()]
        (reply,) = _replies(frames, cmd, "DEVLINK_CMD_NEW")
        got = f"{_val(reply.node, f'{D}.bus_name')}/{_val(reply.node, f'{D}.dev_name')}"
        assert handles == [got] == ["netdevsim/netdevsim10"]
        assert reply.info.startswith("netdevsim/netdevsim10")


def test_dev_info(capture):
    frames, cmds = capture
    cmd = _command(cmds, "devlink dev info")
    out = [o.strip() for o in cmd.output]
    driver = next(o.split()[1] for o in out if o.startswith("driver "))
    running = out[out.index("running:") + 1].split()
    stored = out[out.index("stored:") + 1].split()
    (reply,) = _replies(frames, cmd, "DEVLINK_CMD_INFO_GET")
    assert _val(reply.node, f"{D}.info_driver_name") == driver == "netdevsim"
    assert f"driver {driver}" in reply.info
    for kind, words in (("running", running), ("stored", stored)):
        nest = reply.node.find(f"{D}.info_version_{kind}")
        assert nest is not None
        assert (
            [
                _val(nest, f"{D}.info_version_{kind}.info_version_name"),
                _val(nest, f"{D}.info_version_{kind}.info_version_value"),
            ]
            == words
            == ["fw.mgmt", "10.20.30"]
        )


_PORT = re.compile(
    r"^(\S+)/(\d+): type (\w+) netdev (\S+) flavour (\w+) port (\d+) splittable (\w+)$"
)


def test_port_show(capture):
    frames, cmds = capture
    cmd = _command(cmds, "devlink port show")
    want = [_PORT.match(o).groups() for o in cmd.output]
    # 6.1 answers a PORT_GET dump with DEVLINK_CMD_NEW messages
    replies = _replies(frames, cmd, "DEVLINK_CMD_NEW")
    got = []
    for r in replies:
        n = r.node
        got.append(
            (
                f"{_val(n, f'{D}.bus_name')}/{_val(n, f'{D}.dev_name')}",
                str(_val(n, f"{D}.port_index")),
                n.find(f"{D}.port_type").display.split()[0],
                _val(n, f"{D}.port_netdev_name"),
                n.find(f"{D}.port_flavour").display.split()[0],
                str(_val(n, f"{D}.port_number")),
                "true" if _val(n, f"{D}.port_splittable") else "false",
            )
        )
        assert f"port {_val(n, f'{D}.port_index')}" in r.info
        assert _val(n, f"{D}.port_netdev_ifindex") > 0
    assert got == want
    assert [w[3] for w in want] == ["eth0", "eth1"]


_PARAM = re.compile(r"^name (\S+) type (\S+)$")
_VALUE = re.compile(r"^cmode (\w+) value (\S+)$")


def _param_values(reply) -> tuple[str, bool, list[tuple[str, object]]]:
    p = f"{D}.param"
    name = _val(reply.node, f"{p}.param_name")
    generic = reply.node.find(f"{p}.param_generic") is not None
    ptype = reply.node.find(f"{p}.param_type").display.split()[0]
    values = []
    for v in reply.node.find_all(f"{p}.param_values_list.param_value"):
        cmode = v.find(f"{p}.param_values_list.param_value.param_value_cmode").display.split()[0]
        data = v.find(f"{p}.param_values_list.param_value.param_value_data")
        if ptype == "flag":  # present when true
            value: object = "true" if data is not None else "false"
        else:
            value = str(int.from_bytes(bytes(data.value), "little"))
        values.append((cmode, value))
    return name, generic, values


def test_param_show_and_set(capture):
    frames, cmds = capture
    cmd = _command(cmds, "devlink dev param show")
    want = []
    for line in (o.strip() for o in cmd.output):
        if m := _PARAM.match(line):
            want.append([m.group(1), m.group(2) == "generic", []])
        elif m := _VALUE.match(line):
            want[-1][2].append((m.group(1), m.group(2)))
    replies = _replies(frames, cmd, "DEVLINK_CMD_PARAM_GET")
    assert [list(_param_values(r)) for r in replies] == want
    assert want == [
        ["max_macs", True, [("driverinit", "32")]],
        ["test1", False, [("driverinit", "true")]],
    ]
    # after `param set ... value 16`: the request, the PARAM_NEW notification
    # and the next `param show` all carry 16
    set_cmd = _command(
        cmds, "devlink dev param set netdevsim/netdevsim10 name max_macs value 16 cmode driverinit"
    )
    (req,) = [m for m in _messages(frames, set_cmd, "DEVLINK_CMD_PARAM_SET")]
    assert _val(req.node, f"{D}.param_name") == "max_macs"
    assert bytes(_val(req.node, f"{D}.param_value_data")) == struct.pack("<I", 16)
    (ntf,) = _replies(frames, set_cmd, "DEVLINK_CMD_PARAM_NEW")
    assert _param_values(ntf) == ("max_macs", True, [("driverinit", "16")])
    show = _command(cmds, "devlink dev param show netdevsim/netdevsim10 name max_macs")
    (reply,) = _replies(frames, show, "DEVLINK_CMD_PARAM_GET")
    assert _param_values(reply)[2] == [("driverinit", "16")]
    assert "cmode driverinit value 16" in [o.strip() for o in show.output]


_RESOURCE = re.compile(r"^name (\S+) size (\S+)(?: occ (\d+))? unit (\w+)")


def test_resource_show(capture):
    frames, cmds = capture
    cmd = _command(cmds, "devlink resource show netdevsim/netdevsim10")
    want = []
    for line in cmd.output:
        if m := _RESOURCE.match(line.strip()):
            depth = (len(line) - len(line.lstrip())) // 6
            want.append((depth, m.group(1), m.group(3), m.group(4)))
    (reply,) = _replies(frames, cmd, "DEVLINK_CMD_RESOURCE_DUMP")
    got = []

    def walk(list_node, depth):
        for res in list_node.children or ():
            if res.name != "DEVLINK_ATTR_RESOURCE":
                continue
            name = res.child("DEVLINK_ATTR_RESOURCE_NAME").value
            occ = res.child("DEVLINK_ATTR_RESOURCE_OCC")
            unit = res.child("DEVLINK_ATTR_RESOURCE_UNIT").display.split()[0]
            got.append((depth, name, None if occ is None else str(occ.value), unit))
            sub = res.child("DEVLINK_ATTR_RESOURCE_LIST")
            if sub is not None:
                walk(sub, depth + 1)

    walk(reply.node.find(f"{D}.resource_list"), 0)
    assert got == want
    assert [g[1] for g in got if g[0] == 0] == ["IPv4", "IPv6", "nexthops"]


_REPORTER = re.compile(r"^reporter (\w+)$")


def test_health_show_and_diagnose(capture):
    frames, cmds = capture
    cmd = _command(cmds, "devlink health show")
    out = [o.strip() for o in cmd.output]
    names = [m.group(1) for o in out if (m := _REPORTER.match(o))]
    states = [o.split()[1] for o in out if o.startswith("state ")]
    replies = _replies(frames, cmd, "DEVLINK_CMD_HEALTH_REPORTER_GET")
    h = f"{D}.health_reporter"
    assert [_val(r.node, f"{h}.health_reporter_name") for r in replies] == names
    assert [r.node.find(f"{h}.health_reporter_state").display.split()[0] for r in replies] == (
        states
    )
    assert names == ["empty", "dummy"] and states == ["healthy", "healthy"]
    assert all(_val(r.node, f"{h}.health_reporter_auto_dump") for r in replies)

    # the diagnosis is a formatted message (fmsg): names, each followed by a
    # value type and its bytes
    diag = _command(cmds, "devlink health diagnose netdevsim/netdevsim10 reporter dummy")
    (reply,) = _replies(frames, diag, "DEVLINK_CMD_HEALTH_REPORTER_DIAGNOSE")
    fmsg = reply.node.find(f"{D}.fmsg")
    items = {}
    name = None
    vtype = None
    for n in fmsg.children:
        if n.name == "DEVLINK_ATTR_FMSG_OBJ_NAME":
            name = n.value
        elif n.name == "DEVLINK_ATTR_FMSG_OBJ_VALUE_TYPE":
            vtype = n.display.split()[0]
        elif n.name == "DEVLINK_ATTR_FMSG_OBJ_VALUE_DATA" and name not in items:
            items[name] = (vtype, bytes(n.value))
    text = " ".join(diag.output)
    for key, (vtype, raw) in items.items():
        if vtype in ("u8", "u32", "u64") and f"{key}:" in text:
            assert f"{key}: {int.from_bytes(raw, 'little')}" in text
    assert items["test_u32"] == ("u32", struct.pack("<I", 3))
    assert items["test_u64"] == ("u64", struct.pack("<Q", 4))
    assert items["test_string"] == ("nul-string", b"somestring\0")
    assert items["test_bool"] == ("flag", b"\x01")
    binary = bytes.fromhex(diag.output[diag.output.index("  test_binary:") + 1].strip())
    assert items["test_binary"] == ("binary", binary)


_TRAP = re.compile(r"^name (\S+) type (\w+) generic (\w+) action (\w+) group (\S+)$")


def test_trap_show(capture):
    frames, cmds = capture
    cmd = _command(cmds, "bash -c 'devlink trap show | head -n 12'")
    want = [m.groups() for o in cmd.output if (m := _TRAP.match(o.strip()))]
    assert len(want) == 11
    replies = _replies(frames, cmd, "DEVLINK_CMD_TRAP_NEW")
    got = [
        (
            _val(r.node, f"{D}.trap_name"),
            r.node.find(f"{D}.trap_type").display.split()[0],
            "true" if r.node.find(f"{D}.trap_generic") is not None else "false",
            r.node.find(f"{D}.trap_action").display.split()[0],
            _val(r.node, f"{D}.trap_group_name"),
        )
        for r in replies
    ]
    assert got[: len(want)] == want
    for r in replies:
        stats = r.node.find(f"{D}.stats")
        assert stats is not None and stats.child("DEVLINK_ATTR_STATS_RX_PACKETS") is not None


def test_eswitch_show(capture):
    frames, cmds = capture
    cmd = _command(cmds, "devlink dev eswitch show netdevsim/netdevsim10")
    mode = re.search(r"mode (\w+)", cmd.output[0]).group(1)
    (reply,) = _replies(frames, cmd, "DEVLINK_CMD_ESWITCH_GET")
    assert reply.node.find(f"{D}.eswitch_mode").display.split()[0] == mode == "legacy"
    assert "mode legacy" in reply.info


def test_region_snapshot_read(capture):
    frames, cmds = capture
    show = _command(cmds, "devlink region show")
    m = re.match(r"^(\S+)/(\w+): size (\d+) snapshot \[(\d+)\] max (\d+)$", show.output[0])
    (reply,) = _replies(frames, show, "DEVLINK_CMD_REGION_GET")
    n = reply.node
    assert _val(n, f"{D}.region_name") == m.group(2) == "dummy"
    assert _val(n, f"{D}.region_size") == int(m.group(3))
    assert _val(n, f"{D}.region_snapshots.region_snapshot.region_snapshot_id") == int(m.group(4))
    assert _val(n, f"{D}.region_max_snapshots") == int(m.group(5))

    read = _command(
        cmds, "devlink region read netdevsim/netdevsim10/dummy snapshot 1 address 0 length 16"
    )
    addr, *hexbytes = read.output[0].split()
    (chunks,) = _replies(frames, read, "DEVLINK_CMD_REGION_READ")
    c = f"{D}.region_chunks.region_chunk"
    assert bytes(_val(chunks.node, f"{c}.region_chunk_data")) == bytes.fromhex("".join(hexbytes))
    assert _val(chunks.node, f"{c}.region_chunk_addr") == int(addr, 16)


def _error(frames, cmd: Command):
    errs = [m for m in _messages(frames, cmd, "NLMSG_ERROR") if m.error]
    assert len(errs) == 1, [m.info for m in errs]
    return errs[0]


def test_extended_acks(capture):
    frames, cmds = capture
    cases = [
        ("devlink region new netdevsim/netdevsim10/dummy snapshot 1", -17, 1),
        ("devlink port function set netdevsim/netdevsim10/0 hw_addr 02:00:00:00:00:01", -95, 0),
    ]
    for line, errno, nth in cases:
        cmd = _command(cmds, line, nth)
        printed = next(o for o in cmd.output if o.startswith("Error: "))
        err = _error(frames, cmd)
        assert err.error == errno
        assert printed == f"Error: {err.ext_msg}."
    # port split: EOPNOTSUPP, no message
    split = _error(frames, _command(cmds, "devlink port split netdevsim/netdevsim10/0 count 4"))
    assert split.error == -95 and split.ext_msg is None
    (req,) = _messages(
        frames,
        _command(cmds, "devlink port split netdevsim/netdevsim10/0 count 4"),
        "DEVLINK_CMD_PORT_SPLIT",
    )
    assert _val(req.node, f"{D}.port_split_count") == 4
    assert _val(req.node, f"{D}.port_index") == 0
    (fn,) = _messages(
        frames,
        _command(
            cmds, "devlink port function set netdevsim/netdevsim10/0 hw_addr 02:00:00:00:00:01"
        ),
        "DEVLINK_CMD_PORT_SET",
    )
    assert bytes(_val(fn.node, f"{D}.port_function.hw_addr")) == bytes.fromhex("020000000001")
    assert fn.node.find(f"{D}.port_function.hw_addr").display == "02:00:00:00:00:01"


def test_monitor_notifications(capture):
    """Each `devlink mon` line is one notification in the capture (the only
    socket in the "config" group)."""
    frames, _ = capture
    kinds = {
        "dev": "DEVLINK_CMD",
        "port": "DEVLINK_CMD_PORT",
        "param": "DEVLINK_CMD_PARAM",
        "region": "DEVLINK_CMD_REGION",
        "trap": "DEVLINK_CMD_TRAP",
        "trap-group": "DEVLINK_CMD_TRAP_GROUP",
        "trap-policer": "DEVLINK_CMD_TRAP_POLICER",
    }
    want: dict[str, int] = {}
    for line in _monitor_lines():
        m = re.match(r"^\[([\w-]+),(new|del)\]", line)
        if m:
            name = f"{kinds[m.group(1)]}_{m.group(2).upper()}"
            want[name] = want.get(name, 0) + 1
    got: dict[str, int] = {}
    for f in frames:
        for m in f.messages:
            if m.family == "devlink" and m.direction != TO_KERNEL and "(notification)" in m.info:
                got[m.type_name] = got.get(m.type_name, 0) + 1
    assert got == want
    assert want["DEVLINK_CMD_TRAP_NEW"] == 28  # 14 traps, registered twice (reload)


# -- netdev (not in the 6.1 guest): hand-built messages -----------------------------


def _nla(t: int, payload: bytes) -> bytes:
    return struct.pack("<HH", 4 + len(payload), t) + payload + bytes(-len(payload) % 4)


def _netdev(cmd: int, body: bytes, flags: int = 0):
    data = bytes([cmd, 1, 0, 0]) + body
    msg = struct.pack("<IHHII", 16 + len(data), 0x20, flags, 1, 0) + data
    session = Session(dissect.api.default_registry(), None)
    session.genl_overrides[0x20] = "netdev"
    (m,) = dissect.decode_frame(netlink_pseudo_header(16) + msg, session=session).messages
    assert not [(n.abbrev, note.text) for n, note in m.node.all_notes()]
    return m


def test_netdev_dev_get_reply():
    body = (
        _nla(1, struct.pack("<I", 7))
        + _nla(3, struct.pack("<Q", 0x7F))  # every NETDEV_XDP_ACT_*
        + _nla(4, struct.pack("<I", 1))
        + _nla(5, struct.pack("<Q", 0x3))
        + _nla(6, struct.pack("<Q", 0x2))
    )
    m = _netdev(1, body)
    assert m.type_name == "NETDEV_CMD_DEV_GET"
    assert _val(m.node, "genl.netdev.dev.ifindex") == 7
    feats = m.node.find("genl.netdev.dev.xdp_features").display
    assert feats.endswith("(BASIC|REDIRECT|NDO_XMIT|XSK_ZEROCOPY|HW_OFFLOAD|RX_SG|NDO_XMIT_SG)")
    meta = m.node.find("genl.netdev.dev.xdp_rx_metadata_features").display
    assert meta.endswith("(TIMESTAMP|HASH)")
    assert m.node.find("genl.netdev.dev.xsk_features").display.endswith("(TX_CHECKSUM)")
    assert m.info.startswith("ifindex 7")


def test_netdev_qstats_and_page_pool():
    # a per-queue qstats reply: counters are variable-width (NLA_UINT)
    body = (
        _nla(1, struct.pack("<I", 2))
        + _nla(2, struct.pack("<I", 0))  # rx
        + _nla(3, struct.pack("<I", 3))
        + _nla(8, struct.pack("<I", 1000))
        + _nla(9, struct.pack("<Q", 1 << 33))
    )
    m = _netdev(12, body)
    assert m.type_name == "NETDEV_CMD_QSTATS_GET"
    assert _val(m.node, "genl.netdev.qstats.rx_packets") == 1000
    assert _val(m.node, "genl.netdev.qstats.rx_bytes") == 1 << 33
    assert m.node.find("genl.netdev.qstats.queue_type").display.startswith("rx")
    # a page-pool notification (group page-pool)
    pp = _netdev(
        6, _nla(1, struct.pack("<I", 5)) + _nla(2, struct.pack("<I", 2)) + _nla(4, b"\0" * 8)
    )
    assert pp.type_name == "NETDEV_CMD_PAGE_POOL_ADD_NTF"
    assert _val(pp.node, "genl.netdev.page-pool.id") == 5
    assert "id 5" in pp.info
