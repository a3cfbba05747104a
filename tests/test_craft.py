"""``nlshark craft`` and ``nlshark fuzz --craft``, as a user runs them.

Built messages are checked through the dissector and against each other
(an expression and its description give the same bytes); sent ones against
the kernel's answers in a namespace the command creates (the veth pair it
makes is there, and only there); the reproducer is run; bad input ends in
one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("scapy")

import dissect  # noqa: E402
from dissect.scapy.craft import (  # noqa: E402
    CraftError,
    from_description,
    from_expression,
    load_description,
)

VLAN_EXPR = (
    'Netlink(nlmsg_flags="REQUEST|ACK|CREATE|EXCL", nlmsg_seq=1) / rt_link.newlink('
    'ifname="vlan10", link=2, linkinfo={"kind": "vlan", "data": {"id": 10}})'
)
VLAN_YAML = """
family: rt-link
op: newlink
flags: [REQUEST, ACK, CREATE, EXCL]
seq: 1
attrs:
  ifname: vlan10
  link: 2
  linkinfo: {kind: vlan, data: {id: 10}}
"""
VETH_YAML = """
- family: rt-link
  op: newlink
  flags: [REQUEST, ACK, CREATE, EXCL]
  attrs:
    ifname: cra
    linkinfo:
      kind: veth
      data:
        peer: {header: {ifi_index: 0}, attrs: {ifname: crb}}
- family: rt-link
  op: getlink
  flags: [REQUEST, DUMP]
"""

netlink_only = pytest.mark.skipif(
    not hasattr(socket, "AF_NETLINK") or os.geteuid() != 0 or shutil.which("ip") is None,
    reason="sending needs Linux netlink, root and iproute2 (for the namespace)",
)


def nlshark(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dissect.cli", *argv],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


def _host_links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout


# -- building --------------------------------------------------------------------


def test_expression_and_description_build_the_same_bytes():
    (a,) = from_expression(VLAN_EXPR)
    (b,) = from_description(load_description(VLAN_YAML))
    assert bytes(a) == bytes(b)
    as_json = json.dumps(load_description(VLAN_YAML))
    (c,) = from_description(load_description(as_json))
    assert bytes(c) == bytes(a)


def test_craft_shows_the_tree_of_the_dissector():
    r = nlshark("craft", VLAN_EXPR)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "RTM_NEWLINK" in out
    assert "IFLA_IFNAME: vlan10" in out
    assert "IFLA_INFO_KIND: vlan" in out
    assert "IFLA_VLAN_ID: 10" in out
    assert "REQUEST|ACK|EXCL|CREATE" in out


def test_hex_and_capture_outputs(tmp_path):
    r = nlshark("craft", "--desc", VLAN_YAML, "--hex")
    assert r.returncode == 0, r.stderr
    (line,) = r.stdout.split()
    (msg,) = from_expression(VLAN_EXPR)
    assert bytes.fromhex(line) == bytes(msg)
    out = tmp_path / "vlan.pcap"
    r = nlshark("craft", "--desc", VLAN_YAML, "-w", str(out), "--brief")
    assert r.returncode == 0, r.stderr
    (frame,) = list(dissect.read_capture(str(out)))
    assert frame.messages[0].type_name == "RTM_NEWLINK"
    assert bytes(frame.data[16:]) == bytes(msg)
    if shutil.which("tshark"):
        t = subprocess.run(["tshark", "-r", str(out)], capture_output=True, text=True)
        assert t.returncode == 0 and "Netlink route" in t.stdout


def test_malformed_description_survives_and_gets_notes():
    desc = """
family: rt-link
op: newlink
attrs:
  - ifname: eth0
    nla_len: 3
  - mtu: 1500
    pad: ffffff
  - {type: 999, data: "010203"}
"""
    (msg,) = from_description(load_description(desc))
    data = bytes(msg)
    assert data[32:36] == b"\x03\x00\x03\x00" or data[32:36] == b"\x00\x03\x00\x03"
    r = nlshark("craft", "--desc", desc)
    assert r.returncode == 0, r.stderr
    assert "nla_len 3 is less than the 4-byte header" in r.stdout


def test_nested_items_take_overrides():
    desc = load_description(
        """
family: rt-link
op: newlink
attrs:
  - linkinfo:
      - kind: vlan
      - data: [{id: 10, nla_len: 100}]
"""
    )
    (msg,) = from_description(desc)
    linkinfo = msg.payload.attrs[0]
    data_attr = linkinfo.value[1]
    assert data_attr.value[0].nla_len == 100
    assert b"\x64\x00\x01\x00" in bytes(msg) or b"\x00\x64\x00\x01" in bytes(msg)


@pytest.mark.parametrize(
    "desc, text",
    [
        ('{"family": "rt-link", "op": "nosuch"}', "has no operation 'nosuch'"),
        ('{"family": "nosuch"}', "no family 'nosuch'"),
        ('{"family": "rt-link", "op": "newlink", "attrs": {"nosuch": 1}}', "no attribute 'nosuch'"),
        ('{"family": "rt-link", "op": "newlink", "header": {"x": 1}}', "no header member 'x'"),
        ('{"fam": 1}', "unknown key(s) fam"),
        ("[1]", "not a mapping"),
        ('{"family": "rt-link", "op": "newlink", "flags": "BOGUS"}', "unknown name 'BOGUS'"),
        ('{"raw": "zz"}', "is not hex bytes"),
    ],
)
def test_description_errors_are_clear(desc, text):
    with pytest.raises(CraftError, match=text.replace("(", r"\(").replace(")", r"\)")):
        from_description(load_description(desc))
    r = nlshark("craft", "--desc", desc)
    assert r.returncode == 2
    assert r.stderr.startswith("nlshark craft: ") and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "expr, text",
    [
        ("Netlink(", "not valid Python"),
        ("nosuch", "name 'nosuch' is not defined"),
        ("rt_link.nosuch()", "no attribute set 'nosuch'"),
        ("5", "not a netlink message"),
    ],
)
def test_expression_errors_are_clear(expr, text):
    r = nlshark("craft", expr)
    assert r.returncode == 2
    assert text in r.stderr and "Traceback" not in r.stderr


def test_no_source_or_two_sources():
    r = nlshark("craft")
    assert r.returncode == 2 and "give one message source" in r.stderr
    r = nlshark("craft", VLAN_EXPR, "--desc", VLAN_YAML)
    assert r.returncode == 2 and "give one message source" in r.stderr


def test_description_from_stdin_and_file(tmp_path):
    r = nlshark("craft", "-f", "-", "--hex", stdin=VLAN_YAML)
    assert r.returncode == 0, r.stderr
    f = tmp_path / "m.json"
    f.write_text(json.dumps(load_description(VLAN_YAML)))
    r2 = nlshark("craft", "-f", str(f), "--hex")
    assert r2.stdout == r.stdout
    r3 = nlshark("craft", "-f", str(tmp_path / "missing.yaml"))
    assert r3.returncode == 2 and "missing.yaml" in r3.stderr


# -- sending -----------------------------------------------------------------------


@netlink_only
def test_send_in_a_fresh_namespace(tmp_path):
    before = _host_links()
    out = tmp_path / "exchange.pcapng"
    r = nlshark("craft", "--desc", VETH_YAML, "--send", "--brief", "-w", str(out))
    assert r.returncode == 0, r.stderr
    assert "ACK for RTM_NEWLINK" in r.stdout
    assert "RTM_NEWLINK cra" in r.stdout and "crb" in r.stdout
    assert "NLMSG_DONE" in r.stdout
    assert "2 answered, 0 refused, 0 unanswered" in r.stderr
    assert _host_links() == before  # made in the namespace, gone with it
    frames = list(dissect.read_capture(str(out)))
    types = [m.type_name for f in frames for m in f.messages]
    assert types[0] == "RTM_NEWLINK" and "NLMSG_DONE" in types


@netlink_only
def test_send_refused_explains_the_error():
    desc = '{"family": "rt-link", "op": "newlink", "flags": "REQUEST|ACK|CREATE", "attrs": {"ifname": "x", "linkinfo": {"kind": "no-such-kind"}}}'
    r = nlshark("craft", "--desc", desc, "--send", "--brief")
    assert r.returncode == 1
    assert "EOPNOTSUPP" in r.stdout and "Unknown device type" in r.stdout
    assert "1 refused" in r.stderr


@netlink_only
def test_send_to_a_namespace_that_does_not_exist():
    r = nlshark("craft", VLAN_EXPR, "--send", "--netns", f"no-such-{os.getpid()}")
    assert r.returncode == 2 and "no network namespace" in r.stderr


@netlink_only
def test_python_reproducer_runs(tmp_path):
    repro = tmp_path / "repro.py"
    r = nlshark("craft", "--desc", VETH_YAML, "--python", str(repro), "--brief")
    assert r.returncode == 0, r.stderr
    text = repro.read_text()
    assert 'NETNS = "new"' in text or "NETNS = 'new'" in text
    before = _host_links()
    run = subprocess.run([sys.executable, str(repro)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "NLMSG_ERROR ACK" in run.stdout
    assert "ifname='cra'" in run.stdout and "NLMSG_DONE" in run.stdout
    assert _host_links() == before


@netlink_only
def test_expression_reproducer_checks_its_bytes(tmp_path):
    r = nlshark("craft", VLAN_EXPR.replace("vlan10", "v"), "--python")
    assert r.returncode == 0, r.stderr
    repro = tmp_path / "r.py"
    repro.write_text(r.stdout)
    run = subprocess.run([sys.executable, str(repro)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "built as before" in run.stdout
    # this kernel has no vlan module, or link 2 is not there: either way an answer
    assert "NLMSG_ERROR" in run.stdout


@netlink_only
def test_fuzz_takes_a_crafted_template(tmp_path):
    out = tmp_path / "fuzz.pcapng"
    expr = (
        'Netlink(nlmsg_flags="REQUEST|ACK|CREATE|EXCL") / '
        'rt_link.newlink(ifname="fz0", linkinfo={"kind": "veth"})'
    )
    r = nlshark("fuzz", "--craft", expr, "-n", "20", "--seed", "7", "-w", str(out))
    assert r.returncode in (0, 1), r.stderr
    assert "20 cases" in r.stdout
    frames = list(dissect.read_capture(str(out)))
    assert sum(1 for f in frames for m in f.messages if m.direction == "user->kernel") >= 20
    desc = tmp_path / "t.yaml"
    desc.write_text(VLAN_YAML)
    r = nlshark("fuzz", "--craft-file", str(desc), "-n", "5", "--seed", "1")
    assert r.returncode in (0, 1), r.stderr
    r = nlshark("fuzz", "--craft", "nosuch")
    assert r.returncode == 2 and "--craft" in r.stderr and "Traceback" not in r.stderr


def test_reproducer_is_valid_python():
    r = nlshark("craft", "--desc", VLAN_YAML, "--python")
    assert r.returncode == 0
    compile(r.stdout, "repro.py", "exec")


@netlink_only
def test_header_selected_layout_sock_diag(tmp_path):
    """A SOCK_DIAG request whose layout sdiag_family chooses, described in
    YAML and sent in a namespace the test made: the kernel lists the unix
    socket a process holds there."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from netns import named_netns

    path = tmp_path / "craft.sock"
    with named_netns() as ns:
        holder = subprocess.Popen(
            [
                "ip", "netns", "exec", ns, sys.executable, "-c",
                "import socket, sys, time; s = socket.socket(socket.AF_UNIX); "
                f"s.bind({str(path)!r}); s.listen(); print('up', flush=True); time.sleep(30)",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "up"
            desc = (
                "{family: sock-diag, op: sock-diag-by-family, flags: [REQUEST, DUMP], "
                "header: {sdiag_family: unix, udiag_states: 0xffffffff, udiag_show: 1}}"
            )
            r = nlshark("craft", "--desc", desc, "--send", "--netns", ns, "--brief")
        finally:
            holder.kill()
            holder.wait()
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if str(path) in line]
    assert len(lines) == 1 and "unix stream LISTEN" in lines[0]
    r = nlshark(
        "craft", "--desc", "{family: sock-diag, op: sock-diag-by-family, header: {udiag_states: 1}}"
    )
    assert r.returncode == 2 and "give sdiag_family to choose one" in r.stderr


def test_genl_family_missing_here_says_how_to_build_anyway():
    from dissect.capture.mcast import GroupError, genl_families

    try:
        if "nl80211" in genl_families():
            pytest.skip("this kernel has nl80211")
    except GroupError as exc:
        pytest.skip(f"cannot list generic netlink families: {exc}")
    expr = 'Netlink(nlmsg_flags="REQUEST") / nl80211.get_wiphy()'
    r = nlshark("craft", expr, "--brief")
    assert r.returncode == 2
    assert "'nl80211' is not registered on this kernel" in r.stderr
    assert "--genl nl80211=ID" in r.stderr
    r = nlshark("craft", expr, "--brief", "--genl", "nl80211=30")
    assert r.returncode == 0 and "NL80211_CMD_GET_WIPHY" in r.stdout
    r = nlshark("craft", expr, "--genl", "nl80211")
    assert r.returncode == 2 and "--genl wants NAME=ID" in r.stderr
