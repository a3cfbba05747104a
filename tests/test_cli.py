"""The command line as a user meets it: outputs, options and input errors."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from dissect.capture import PcapWriter, netlink_pseudo_header
from dissect.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUICK = str(ROOT / "captures" / "quickstart.pcap")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_lines(capsys):
    code, out, err = run(capsys, "-r", QUICK)
    lines = out.splitlines()
    assert code == 0 and not err
    assert len(lines) == 120  # one per netlink message
    assert any(
        "NLMSG_ERROR ERANGE (-34): 8021q: Invalid VLAN id for RTM_NEWLINK" in line for line in lines
    )
    assert any("CTRL_CMD_NEWFAMILY ethtool id 20" in line for line in lines)
    assert "\x1b[" not in out  # no colour off a terminal


def test_count_limits_frames(capsys):
    code, out, _ = run(capsys, "-r", QUICK, "-c", "2")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["1", "2", "2.2"]


def test_tree_and_hex(capsys):
    _, tree, _ = run(capsys, "-r", QUICK, "-c", "1", "-V")
    assert "nlmsg_flags: 0x0301 (REQUEST|DUMP)" in tree
    assert "IFLA_EXT_MASK" in tree
    _, hexed, _ = run(capsys, "-r", QUICK, "-c", "1", "-x")
    assert "[0000+16] 00 04 03 38" in hexed  # node offset, length and bytes
    assert "0000  00 04 03 38 00 00 00 00  00 00 00 00 00 00 00 00" in hexed  # frame dump


def test_json_document(capsys):
    code, out, _ = run(capsys, "-r", QUICK, "-T", "json")
    doc = json.loads(out)
    assert code == 0 and len(doc["frames"]) == 116 and doc["end"] == {"frames": 116}
    node = doc["frames"][0]["tree"]
    assert set(node) == {
        "abbrev",
        "name",
        "offset",
        "length",
        "raw",
        "value",
        "display",
        "notes",
        "children",
    }


def test_jsonl_messages(capsys):
    code, out, _ = run(capsys, "-r", QUICK, "-T", "jsonl")
    objs = [json.loads(line) for line in out.splitlines()]
    assert len(objs) == 120
    for o in objs:
        assert {"frame", "family", "direction", "netlink", "tree"} <= set(o)
        assert all(isinstance(o["netlink"][k], int) for k in ("len", "type", "flags", "seq", "pid"))
    err = next(o for o in objs if o.get("extack_msg") == "8021q: Invalid VLAN id")
    assert err["error"] == -34 and err["direction"] == "kernel->user"


def test_stats64_values_exact_in_json(tmp_path, capsys):
    big = 2**64 - 1
    body = struct.pack("<BxHiII", 0, 0, 1, 0, 0)
    stats = struct.pack("<HH", 4 + 8 * 24, 23) + struct.pack("<24Q", big, *range(23))
    msg = struct.pack("<IHHII", 16 + len(body) + len(stats), 16, 0, 1, 1) + body + stats
    path = tmp_path / "big.pcap"
    with PcapWriter(path) as w:
        w.write(netlink_pseudo_header(0) + msg, 0)
    _, out, _ = run(capsys, "-r", str(path), "-T", "jsonl")
    tree = json.loads(out)["tree"]

    def find(n, ab):
        if n["abbrev"] == ab:
            return n
        for c in n["children"]:
            r = find(c, ab)
            if r:
                return r
        return None

    assert find(tree, "rtnl.rtnl_link_stats64.rx_packets")["value"] == big


def test_glossaries(capsys):
    _, fams, _ = run(capsys, "-G", "families")
    assert "nlctrl\tgenetlink-legacy\t16" in fams and "rt-link\tnetlink-raw\t0" in fams
    _, fields, _ = run(capsys, "-G", "fields")
    assert "F\tIFLA_IFNAME\trtnl.link.ifname\tstring\trt-link" in fields
    assert "rtnl.link.linkinfo.data.vlan.id" in fields


def test_not_a_capture(tmp_path, capsys):
    p = tmp_path / "x.pcap"
    p.write_text("<html>hello</html>")
    code, out, err = run(capsys, "-r", str(p))
    assert code == 2 and not out
    assert err.count("\n") == 1 and "not a pcap or pcapng capture" in err


def test_unsupported_link_type_is_named(tmp_path, capsys):
    p = tmp_path / "eth.pcap"
    with PcapWriter(p, linktype=1) as w:
        w.write(b"\0" * 60, 0)
    code, _, err = run(capsys, "-r", str(p))
    assert code == 2 and "link type 1 (ETHERNET)" in err


def test_cut_short_file_shows_frames_then_where(tmp_path, capsys):
    data = Path(QUICK).read_bytes()
    p = tmp_path / "cut.pcap"
    p.write_bytes(data[:2000])
    code, out, err = run(capsys, "-r", str(p))
    assert code == 1 and out.strip()
    assert "cut short in frame" in err and err.count("\n") == 1


def test_missing_file(capsys):
    code, _, err = run(capsys, "-r", "/nonexistent/x.pcap")
    assert code == 2 and "No such file" in err


def test_bad_genl_option(capsys):
    with pytest.raises(SystemExit, match="NAME=ID"):
        main(["-r", QUICK, "--genl", "ethtool"])


def test_genl_override_names_a_family(capsys):
    _, out, _ = run(capsys, "-r", QUICK, "--no-prescan", "--genl", "myfam=20")
    assert "myfam" in out


def test_colour_when_asked(capsys, monkeypatch):
    _, out, _ = run(capsys, "-r", QUICK, "-c", "1", "--color", "always")
    assert "\x1b[" in out
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = run(capsys, "-r", QUICK, "-c", "1")
    assert "\x1b[" not in out


def test_closed_pipe_is_quiet():
    cmd = f"{sys.executable} -m dissect.cli -r {QUICK} -V | head -1"
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip() and "Traceback" not in r.stderr and "Broken" not in r.stderr


def test_nothing_to_read(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "-r FILE" in err


def test_readme_api_example_runs():
    text = (ROOT / "README.md").read_text()
    block = text.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    r = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "8021q: Invalid VLAN id" in r.stdout and "RTM_GETLINK" in r.stdout


def test_multicast_groups_catalogue(capsys):
    _, out, _ = run(capsys, "-G", "groups")
    assert "rt-link\trtnlgrp-link\t1" in out and "nlctrl\tnotify\tdynamic" in out
