"""The nl80211 family against a real capture: `iw` driving two simulated
radios (mac80211_hwsim radios=2), captures/nl80211_hwsim.pcap, recorded with
the nlmon VM from captures/scripts/nl80211_hwsim.sh.

Every nl80211 message must be named (NL80211_CMD_*) and decode without
`undecoded` or `malformed` notes, and the decoded values must agree with
what iw printed (captures/nl80211_hwsim.commands.log).  Messages are matched
to the command that caused them by the log's timestamps (the guest clock,
the same clock as the capture's).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cmdlog import (
    Command,
    bad_notes,
    find_command,
    messages_during,
    read_commands,
)

import dissect

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
PCAP = CAPTURES / "nl80211_hwsim.pcap"
LOG = CAPTURES / "nl80211_hwsim.commands.log"
TSV = CAPTURES / "nl80211_hwsim.genl_families.tsv"
FAMILY = "nl80211"
A = "genl.nl80211.attrs."

pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="captures/nl80211_hwsim.pcap not present")


# iw's names of interface types (iftype_name() in iw) -> enum nl80211_iftype
IW_IFTYPES = {
    "IBSS": "adhoc",
    "managed": "station",
    "AP": "ap",
    "AP/VLAN": "ap-vlan",
    "WDS": "wds",
    "monitor": "monitor",
    "mesh point": "mesh-point",
    "P2P-client": "p2p-client",
    "P2P-GO": "p2p-go",
    "P2P-device": "p2p-device",
    "outside context of a BSS": "ocb",
    "NAN": "nan",
}


def _commands() -> list[Command]:
    return read_commands(LOG)


@pytest.fixture(scope="module")
def capture():
    frames = list(dissect.read_capture(PCAP))
    return frames, _commands()


_command = find_command


def _messages(frames, cmd: Command, type_name: str | None = None):
    return messages_during(frames, cmd, FAMILY, type_name)


def _replies(frames, cmd: Command, type_name: str):
    return [
        m
        for m in _messages(frames, cmd, type_name)
        if m.direction != "user->kernel" and m.layout is not None
    ]


def _val(msg, name: str):
    n = msg.node.find(A + name)
    assert n is not None, f"{name} missing in {msg.type_name} (frame {msg.frame})"
    return n.value


def _all(msgs, name: str) -> list:
    """Values of every node named `name`, in message and tree order (an
    indexed array's own node, which holds no value, left out)."""
    return [
        n.value for m in msgs for n in m.node.walk() if n.abbrev == A + name and n.value is not None
    ]


def _enum_name(node) -> str:
    """The enum name of a displayed value, "station (2)" -> "station"."""
    return node.display.split(" (")[0]


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in bytes(raw))


def _wiphy_msgs(frames, cmd: Command, phy: str):
    return [
        m for m in _replies(frames, cmd, "NL80211_CMD_NEW_WIPHY") if _val(m, "wiphy_name") == phy
    ]


def _section(lines: list[str], start: str, indent: str = "\t") -> list[str]:
    """The lines after the line `start`, up to the next line indented no deeper."""
    out: list[str] = []
    it = iter(lines)
    for line in it:
        if line.strip() == start:
            depth = len(line) - len(line.lstrip("\t"))
            for rest in it:
                if rest.strip() and len(rest) - len(rest.lstrip("\t")) <= depth:
                    break
                out.append(rest)
            break
    return out


def _iw_list_phy(cmds) -> list[str]:
    """The `iw list` lines of phy0."""
    out = _command(cmds, "iw list").output
    start = out.index("Wiphy phy0")
    end = next((i for i in range(start + 1, len(out)) if out[i].startswith("Wiphy ")), len(out))
    return out[start:end]


# -- every message is named and clean ------------------------------------------


def test_family_id_matches_the_guest(capture):
    frames, _ = capture
    ids = dict(reversed(line.split("\t")) for line in TSV.read_text().splitlines())
    seen = {m.type for f in frames for m in f.messages if m.family == FAMILY and m.type >= 16}
    assert seen == {int(ids[FAMILY])}


def test_every_message_named_and_clean(capture):
    frames, _ = capture
    count = 0
    names = set()
    for f in frames:
        for m in f.messages:
            if m.family != FAMILY:
                continue
            count += 1
            names.add(m.type_name)
            if m.type < 16:  # NLMSG_ERROR / NLMSG_DONE of the family's requests
                continue
            assert m.type_name.startswith("NL80211_CMD_"), f"frame {f.number}: {m.type_name!r}"
            assert m.layout is not None, f"frame {f.number}: no layout for {m.type_name}"
            bad = bad_notes(m)
            assert not bad, f"frame {f.number} {m.type_name}: {bad}"
    assert count > 600
    assert {
        "NL80211_CMD_GET_PROTOCOL_FEATURES",
        "NL80211_CMD_GET_WIPHY",
        "NL80211_CMD_NEW_WIPHY",
        "NL80211_CMD_SET_WIPHY",
        "NL80211_CMD_GET_INTERFACE",
        "NL80211_CMD_NEW_INTERFACE",
        "NL80211_CMD_SET_INTERFACE",
        "NL80211_CMD_DEL_INTERFACE",
        "NL80211_CMD_GET_REG",
        "NL80211_CMD_REQ_SET_REG",
        "NL80211_CMD_TRIGGER_SCAN",
        "NL80211_CMD_GET_SCAN",
        "NL80211_CMD_NEW_SCAN_RESULTS",
        "NL80211_CMD_GET_STATION",
        "NL80211_CMD_NEW_STATION",
        "NL80211_CMD_DEL_STATION",
        "NL80211_CMD_GET_SURVEY",
        "NL80211_CMD_NEW_SURVEY_RESULTS",
        "NL80211_CMD_SET_POWER_SAVE",
        "NL80211_CMD_GET_POWER_SAVE",
        "NL80211_CMD_JOIN_IBSS",
        "NL80211_CMD_LEAVE_IBSS",
    } <= names


def test_every_command_succeeded(capture):
    _, cmds = capture
    assert cmds and all(c.rc == 0 for c in cmds), [c.line for c in cmds if c.rc != 0]


# -- wiphys (iw list, iw phy phy0 info) -------------------------------------------


def test_wiphy_names_and_indexes(capture):
    frames, cmds = capture
    cmd = _command(cmds, "iw list")
    listed = [line.split()[1] for line in cmd.output if line.startswith("Wiphy ")]
    assert sorted(listed) == ["phy0", "phy1"]
    # `iw dev` prints each interface under "phy#<wiphy index>"
    index = {
        f"phy{line[4:]}": int(line[4:])
        for line in _command(cmds, "iw dev").output
        if line.startswith("phy#")
    }
    for phy in listed:
        msgs = _wiphy_msgs(frames, cmd, phy)
        assert len(msgs) > 20, phy  # a split dump: many messages per wiphy
        assert {_val(m, "wiphy") for m in msgs} == {index[phy]}
        assert msgs[0].info.startswith(phy)
    info = _command(cmds, "iw phy phy0 info")
    assert {_val(m, "wiphy_name") for m in _replies(frames, info, "NL80211_CMD_NEW_WIPHY")} == {
        "phy0"
    }


def test_supported_interface_types(capture):
    frames, cmds = capture
    lines = _iw_list_phy(cmds)
    modes = [
        line.strip().lstrip("* ").strip() for line in _section(lines, "Supported interface modes:")
    ]
    expected = {IW_IFTYPES[m] for m in modes}
    assert "station" in expected and "monitor" in expected
    msgs = _wiphy_msgs(frames, _command(cmds, "iw list"), "phy0")
    nodes = [n for m in msgs for n in m.node.walk() if n.abbrev == A + "supported_iftypes"]
    assert len(nodes) == 1
    decoded = {c.abbrev.rsplit(".", 1)[1].replace("_", "-") for c in nodes[0].children}
    assert decoded == expected
    soft = [
        line.strip().lstrip("* ").strip()
        for line in _section(lines, "software interface modes (can always be added):")
    ]
    snodes = [n for m in msgs for n in m.node.walk() if n.abbrev == A + "software_iftypes"]
    assert {c.abbrev.rsplit(".", 1)[1].replace("_", "-") for c in snodes[0].children} == {
        IW_IFTYPES[s] for s in soft
    }


def _band_freqs(lines: list[str], band: int) -> list[int]:
    sec = _section(lines, f"Band {band}:")
    freqs = _section(sec, "Frequencies:")
    return [int(m.group(1)) for line in freqs if (m := re.match(r"\s*\* (\d+) MHz", line))]


def _band_values(msgs, band: int, name: str) -> list:
    """Values of `name` (e.g. "freqs.freq") inside the NL80211_ATTR_WIPHY_BANDS
    element of band number `band` (enum nl80211_band), in message order."""
    out = []
    for m in msgs:
        for n in m.node.walk():
            if n.abbrev == A + "wiphy_bands" and n.name == f"[{band}]":
                out += [
                    c.value
                    for c in n.walk()
                    if c.abbrev == A + "wiphy_bands." + name and c.value is not None
                ]
    return out


def test_band_frequencies(capture):
    frames, cmds = capture
    lines = _iw_list_phy(cmds)
    msgs = _wiphy_msgs(frames, _command(cmds, "iw list"), "phy0")
    # iw numbers bands from 1: Band 1 = NL80211_BAND_2GHZ (0), Band 2 = 5GHZ (1),
    # Band 4 = 6GHZ (3)
    for band in (1, 2, 4):
        expected = _band_freqs(lines, band)
        assert expected, band
        assert _band_values(msgs, band - 1, "freqs.freq") == expected, band
    assert _band_freqs(lines, 1)[0] == 2412
    assert _band_values(msgs, 0, "freqs.freq")[0] == 2412
    # the 2 GHz bitrates: "* 1.0 Mbps" ... in 100 kbit/s units
    rates = [
        round(float(m.group(1)) * 10)
        for line in _section(_section(lines, "Band 1:"), "Bitrates (non-HT):")
        if (m := re.match(r"\s*\* ([\d.]+) Mbps", line))
    ]
    assert rates and _band_values(msgs, 0, "rates.rate") == rates


def test_supported_commands(capture):
    frames, cmds = capture
    lines = _iw_list_phy(cmds)
    expected = [
        line.strip().lstrip("* ").strip() for line in _section(lines, "Supported commands:")
    ]
    msgs = _wiphy_msgs(frames, _command(cmds, "iw list"), "phy0")
    nodes = [n for m in msgs for n in m.node.walk() if n.name == "NL80211_ATTR_SUPPORTED_COMMANDS"]
    assert len(nodes) == 1
    decoded = [_enum_name(c).replace("-", "_") for c in nodes[0].children]
    assert decoded == expected


def test_interface_combinations(capture):
    frames, cmds = capture
    lines = _iw_list_phy(cmds)
    combo = " ".join(line.strip() for line in _section(lines, "valid interface combinations:"))
    m = re.search(r"total <= (\d+), #channels <= (\d+)", combo)
    assert m
    limits = [int(x) for x in re.findall(r"\} <= (\d+)", combo)]
    msgs = _wiphy_msgs(frames, _command(cmds, "iw list"), "phy0")
    assert _all(msgs, "interface_combinations.maxnum") == [int(m.group(1))]
    assert _all(msgs, "interface_combinations.num_channels") == [int(m.group(2))]
    assert _all(msgs, "interface_combinations.limits.max") == limits


def test_cipher_suites(capture):
    frames, cmds = capture
    lines = _iw_list_phy(cmds)
    iw = [line.strip().lstrip("* ").strip() for line in _section(lines, "Supported Ciphers:")]
    msgs = _wiphy_msgs(frames, _command(cmds, "iw list"), "phy0")
    values = _all(msgs, "cipher_suites")
    # iw prints "WEP40 (00-0f-ac:1)"
    suites = []
    for s in iw:
        oui, _, kind = s.split("(")[1].rstrip(")").partition(":")
        suites.append(
            int(oui.replace("-", ""), 16) << 8 | int(kind)
        )  # iw prints the type in decimal
    assert values == suites


# -- interfaces ---------------------------------------------------------------------


def _iw_interfaces(output: list[str]) -> dict[str, dict[str, str]]:
    ifaces: dict[str, dict[str, str]] = {}
    cur = None
    for line in output:
        words = line.split(None, 1)
        if not words:
            continue
        if words[0] == "Interface":
            cur = ifaces.setdefault(words[1], {})
        elif cur is not None and len(words) == 2:
            cur[words[0]] = words[1]
    return ifaces


def test_iw_dev(capture):
    frames, cmds = capture
    cmd = _command(cmds, "iw dev")
    iw = _iw_interfaces(cmd.output)
    assert set(iw) == {"wlan0", "wlan1"}
    replies = _replies(frames, cmd, "NL80211_CMD_NEW_INTERFACE")
    got = {_val(m, "ifname"): m for m in replies}
    assert set(got) == set(iw)
    for name, want in iw.items():
        m = got[name]
        assert _val(m, "ifindex") == int(want["ifindex"])
        assert _val(m, "wdev") == int(want["wdev"], 16)
        assert _mac(_val(m, "mac")) == want["addr"]
        assert _enum_name(m.node.find(A + "iftype")) == IW_IFTYPES[want["type"]]
        assert m.info.startswith(f"{name} ifindex {want['ifindex']}")


def test_interface_type_changes(capture):
    frames, cmds = capture
    for text, iftype in (
        ("iw dev wlan0 set type monitor", 6),
        ("iw dev wlan0 set type managed", 2),
        ("iw dev wlan1 set type ibss", 1),
    ):
        cmd = _command(cmds, text)
        (req,) = [
            m
            for m in _messages(frames, cmd, "NL80211_CMD_SET_INTERFACE")
            if m.direction == "user->kernel"
        ]
        assert _val(req, "iftype") == iftype
        # the "config" multicast event that `iw event` printed
        events = [
            m
            for m in _messages(frames, cmd, "NL80211_CMD_SET_INTERFACE")
            if m.direction != "user->kernel"
        ]
        assert events and all(_val(e, "iftype") == iftype for e in events)
    info = _command(cmds, "iw dev wlan0 info")
    iw = _iw_interfaces(info.output)["wlan0"]
    assert iw["type"] == "monitor"
    (reply,) = _replies(frames, info, "NL80211_CMD_NEW_INTERFACE")
    assert _enum_name(reply.node.find(A + "iftype")) == "monitor"
    assert _val(reply, "ifindex") == int(iw["ifindex"])
    # a monitor interface added and removed
    add = _command(cmds, "iw phy phy0 interface add mon0 type monitor")
    (req,) = _messages(frames, add, "NL80211_CMD_NEW_INTERFACE")[:1]
    assert _val(req, "ifname") == "mon0" and _val(req, "iftype") == 6 and _val(req, "wiphy") == 0
    dele = _command(cmds, "iw dev mon0 del")
    assert _messages(frames, dele, "NL80211_CMD_DEL_INTERFACE")


def test_set_rts_threshold(capture):
    frames, cmds = capture
    (req,) = _messages(frames, _command(cmds, "iw phy phy0 set rts 500"), "NL80211_CMD_SET_WIPHY")
    assert _val(req, "wiphy_rts_threshold") == 500
    (req,) = _messages(frames, _command(cmds, "iw phy phy0 set rts off"), "NL80211_CMD_SET_WIPHY")
    assert _val(req, "wiphy_rts_threshold") == 0xFFFFFFFF


def test_power_save(capture):
    frames, cmds = capture
    (req,) = _messages(
        frames, _command(cmds, "iw dev wlan0 set power_save on"), "NL80211_CMD_SET_POWER_SAVE"
    )
    assert _val(req, "ps_state") == 1
    cmd = _command(cmds, "iw dev wlan0 get power_save")
    assert cmd.output == ["Power save: on"]
    (reply,) = _replies(frames, cmd, "NL80211_CMD_GET_POWER_SAVE")
    assert _enum_name(reply.node.find(A + "ps_state")) == "enabled"


# -- regulatory ---------------------------------------------------------------------


def test_regulatory_domain(capture):
    frames, cmds = capture
    cmd = _command(cmds, "iw reg get")
    m = re.match(r"country (\S\S): (\S+)", cmd.output[1])
    assert m
    rules = [
        tuple(int(x) for x in r.groups())
        for line in cmd.output
        if (r := re.match(r"\s*\((\d+) - (\d+) @ (\d+)\), \((\d+), (\d+)\)", line))
    ]
    (reply,) = _replies(frames, cmd, "NL80211_CMD_GET_REG")
    assert _val(reply, "reg_alpha2") == m.group(1)
    region = reply.node.find(A + "dfs_region")
    # the kernel leaves NL80211_ATTR_DFS_REGION out for NL80211_DFS_UNSET (0)
    shown = _enum_name(region) if region is not None else "unset"
    assert shown == m.group(2).split("-")[1].lower()
    decoded = list(
        zip(
            _all([reply], "reg_rules.freq_range_start"),
            _all([reply], "reg_rules.freq_range_end"),
            _all([reply], "reg_rules.freq_range_max_bw"),
            _all([reply], "reg_rules.power_rule_max_ant_gain"),
            _all([reply], "reg_rules.power_rule_max_eirp"),
        )
    )
    # iw prints MHz and dBi/dBm; nl80211 carries kHz and mBi/mBm
    want = [(s * 1000, e * 1000, bw * 1000, g * 100, p * 100) for s, e, bw, g, p in rules]
    assert decoded[: len(want)] == want
    assert len(decoded) == len(cmd.output) - 3  # "global", "country", the rules, ""
    (req,) = _messages(frames, _command(cmds, "iw reg set DE"), "NL80211_CMD_REQ_SET_REG")
    assert _val(req, "reg_alpha2") == "DE"


# -- scan ----------------------------------------------------------------------------


def test_scan(capture):
    frames, cmds = capture
    cmd = _command(cmds, "iw dev wlan0 scan")
    out = cmd.output
    bssid = re.match(r"BSS (\S+)\(on wlan0\)", out[0]).group(1)
    fields = dict(line.strip().split(": ", 1) for line in out[1:] if ": " in line)
    trig = [
        m
        for m in _messages(frames, cmd, "NL80211_CMD_TRIGGER_SCAN")
        if m.direction == "user->kernel"
    ]
    assert len(trig) == 1 and _val(trig[0], "ifindex") == 3
    events = [
        m
        for m in _messages(frames, cmd)
        if m.direction != "user->kernel"
        and m.type_name in ("NL80211_CMD_TRIGGER_SCAN", "NL80211_CMD_NEW_SCAN_RESULTS")
    ]
    assert {m.type_name for m in events} == {
        "NL80211_CMD_TRIGGER_SCAN",
        "NL80211_CMD_NEW_SCAN_RESULTS",
    }
    # the scan-finished event lists the scanned frequencies, as `iw event` printed
    log = LOG.read_text()
    finished = re.search(r"wlan0 \(phy #0\): scan finished: ([\d ]+),", log).group(1).split()
    done = [m for m in events if m.type_name == "NL80211_CMD_NEW_SCAN_RESULTS"]
    assert _all(done[:1], "scan_frequencies") == [int(f) for f in finished]
    bss = [
        m for m in _replies(frames, cmd, "NL80211_CMD_NEW_SCAN_RESULTS") if m.node.find(A + "bss")
    ]
    assert len(bss) == 1
    b = bss[0]
    assert _mac(_val(b, "bss.bssid")) == bssid
    assert _val(b, "bss.frequency") == int(fields["freq"])
    assert _val(b, "bss.beacon_interval") == int(fields["beacon interval"].split()[0])
    assert _val(b, "bss.capability") == int(fields["capability"].split("(")[1].rstrip(")"), 16)
    assert _val(b, "bss.signal_mbm") == round(float(fields["signal"].split()[0]) * 100)
    assert _val(b, "bss.tsf") == int(fields["TSF"].split()[0])
    assert _val(b, "bss.seen_ms_ago") == int(re.search(r"(\d+) ms ago", "\n".join(out)).group(1))
    ies = bytes(_val(b, "bss.information_elements"))
    ssid = fields["SSID"].encode()
    assert ies[:2] == bytes([0, len(ssid)]) and ies[2 : 2 + len(ssid)] == ssid
    assert f"{bssid} freq 2412" in b.info


# -- stations ------------------------------------------------------------------------


def test_station_dump(capture):
    frames, cmds = capture
    empty = _command(cmds, "iw dev wlan0 station dump")
    assert empty.output == []
    assert not _replies(frames, empty, "NL80211_CMD_NEW_STATION")
    for dev, nth in (("wlan0", 1), ("wlan1", 0)):
        cmd = _command(cmds, f"iw dev {dev} station dump", nth)
        mac = re.match(r"Station (\S+) \(on " + dev + r"\)", cmd.output[0]).group(1)
        fields = {}
        for line in cmd.output[1:]:
            k, _, v = line.strip().partition(":")
            fields[k] = v.strip()
        (sta,) = _replies(frames, cmd, "NL80211_CMD_NEW_STATION")
        assert _mac(_val(sta, "mac")) == mac
        assert _val(sta, "sta_info.rx_bytes64") == int(fields["rx bytes"])
        assert _val(sta, "sta_info.rx_packets") == int(fields["rx packets"])
        assert _val(sta, "sta_info.tx_packets") == int(fields["tx packets"])
        assert _val(sta, "sta_info.signal") == int(fields["signal"].split()[0])
        assert _val(sta, "sta_info.signal_avg") == int(fields["signal avg"].split()[0])
        assert _val(sta, "sta_info.inactive_time") == int(fields["inactive time"].split()[0])
        assert _val(sta, "sta_info.connected_time") == int(fields["connected time"].split()[0])
        rate = float(fields["tx bitrate"].split()[0])
        assert _val(sta, "sta_info.tx_bitrate.bitrate32") == round(rate * 10)
        assert _val(sta, "sta_info.bss_param.beacon_interval") == int(fields["beacon interval"])
        # struct nl80211_sta_flag_update: bit n = enum nl80211_sta_flags value n
        flags = sta.node.find(A + "sta_info.sta_flags")
        (mask,) = [c.value for c in flags.children if c.name == "mask"]
        (setb,) = [c.value for c in flags.children if c.name == "set"]
        for word, bit in (("authorized", 1), ("authenticated", 5), ("associated", 7)):
            assert mask & (1 << bit)
            assert bool(setb & (1 << bit)) == (fields[word] == "yes"), word
        assert bool(setb & (1 << 3)) == (fields["WMM/WME"] == "yes")
        assert bool(setb & (1 << 4)) == (fields["MFP"] == "yes")
        boot = float(fields["associated at [boottime]"].rstrip("s"))
        assert _val(sta, "sta_info.assoc_at_boottime") // 1_000_000 == round(boot * 1000)
        assert sta.info.startswith(f"{mac} ifindex ")


def test_station_events(capture):
    frames, _ = capture
    log = LOG.read_text()
    seen = re.findall(r"(wlan\d): (new|del) station (\S+)", log)
    assert len(seen) == 4
    msgs = [
        m
        for f in frames
        for m in f.messages
        if m.family == FAMILY
        and m.type_name in ("NL80211_CMD_NEW_STATION", "NL80211_CMD_DEL_STATION")
        and m.node.find(A + "sta_info") is not None
        and m.flags & 0x2 == 0
    ]
    events = {
        ("new" if m.type_name.endswith("NEW_STATION") else "del", _mac(_val(m, "mac")))
        for m in msgs
    }
    assert events >= {(kind, mac) for _, kind, mac in seen}


def test_ibss_join(capture):
    frames, cmds = capture
    cmd = _command(cmds, "iw dev wlan1 ibss join nlshark-ibss 2412 fixed-freq 02:11:22:33:44:55")
    (req,) = [
        m for m in _messages(frames, cmd, "NL80211_CMD_JOIN_IBSS") if m.direction == "user->kernel"
    ]
    assert bytes(_val(req, "ssid")) == b"nlshark-ibss"
    assert _val(req, "wiphy_freq") == 2412
    assert _mac(_val(req, "mac")) == "02:11:22:33:44:55"
    assert req.node.find(A + "freq_fixed") is not None


def test_survey(capture):
    frames, cmds = capture
    cmd = _command(cmds, "iw dev wlan0 survey dump")
    freqs = [int(line.split()[1]) for line in cmd.output if line.strip().startswith("frequency:")]
    noise = [int(line.split()[1]) for line in cmd.output if line.strip().startswith("noise:")]
    replies = _replies(frames, cmd, "NL80211_CMD_NEW_SURVEY_RESULTS")
    assert _all(replies, "survey_info.frequency") == freqs
    assert _all(replies, "survey_info.noise") == noise
