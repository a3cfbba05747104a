"""``nlshark sockets`` and the socket table behind it, on the running kernel.

The test process opens netlink sockets of its own (bound to known groups)
and expects to find them, with its pid and comm, in what NETLINK_SOCK_DIAG
and /proc say; a socket made inside a namespace the test creates shows up
only when that namespace is asked for.  The parser of netlink_diag answers
is also fed hand-made bytes (short messages, group bitmaps past 64 bits).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from dissect.capture import sockets as S
from dissect.capture.nlsocket import RawNetlinkSocket
from dissect.commands.sockets import main, protocol_number

sys.path.insert(0, str(Path(__file__).resolve().parent))
from netns import named_netns  # noqa: E402

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "AF_NETLINK"), reason="AF_NETLINK sockets need Linux"
)
ROOT = Path(__file__).resolve().parents[1]
NETLINK_ROUTE, NETLINK_GENERIC = 0, 16


def _comm() -> str:
    return Path("/proc/self/comm").read_text().strip()


@pytest.fixture
def route_sock():
    """A NETLINK_ROUTE socket of ours bound to RTNLGRP_LINK and
    RTNLGRP_IPV4_IFADDR, plus RTNLGRP_IPV6_ACADDR past bind's 32-bit mask."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    s.bind((0, 1 << 0 | 1 << 4))
    try:
        s.setsockopt(270, 1, 39)  # NETLINK_ADD_MEMBERSHIP
        groups = [1, 5, 39]
    except OSError:  # a kernel before RTNLGRP_IPV6_ACADDR
        groups = [1, 5]
    yield s, groups
    s.close()


def _json(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return json.loads(out)


def test_own_socket_with_pid_comm_and_groups(capsys, route_sock):
    s, groups = route_sock
    portid = s.getsockname()[0]
    doc = _json(capsys, "--json")
    mine = [r for r in doc["sockets"] if r["family"] == "route" and r["portid"] == portid]
    assert len(mine) == 1
    row = mine[0]
    assert row["pid"] == os.getpid() and row["comm"] == _comm()
    assert row["inode"] == os.fstat(s.fileno()).st_ino
    assert row["groups"] == groups
    assert row["group_names"] == ["link", "ipv4-ifaddr", "ipv6-acaddr"][: len(groups)]
    assert row["state"] == "unconnected" and row["type"] == "raw"
    assert row["rqueue"] == 0 and row["meminfo"]["rcvbuf"] > 0
    cmdline = Path("/proc/self/cmdline").read_bytes().split(b"\0")
    assert row["cmdline"] == " ".join(a.decode() for a in cmdline if a)
    kernel = [r for r in doc["sockets"] if r["family"] == "route" and r["kernel"]]
    assert len(kernel) == 1 and kernel[0]["pid"] is None and kernel[0]["portid"] == 0


def test_table_row(capsys, route_sock):
    s, groups = route_sock
    portid = s.getsockname()[0]
    assert main(["-f", "route"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "Family", "Portid", "Recv-Q", "Send-Q", "State", "Groups", "Process",
    ]  # fmt: skip
    row = next(line for line in lines if line.split()[1] == str(portid))
    assert row.split()[0] == "route"
    assert "link,ipv4-ifaddr" in row
    assert row.endswith(f"{_comm()} {os.getpid()}")
    kernel = next(line for line in lines[1:] if line.split()[1] == "kernel")
    assert kernel.endswith("kernel")
    assert all(line.split()[0] == "route" for line in lines[1:])


def test_genl_groups_by_family_name(capsys):
    with RawNetlinkSocket(NETLINK_GENERIC) as sock:
        sock.add_membership(16)  # nlctrl's "notify" (linux/genetlink.h: GENL_ID_CTRL)
        doc = _json(capsys, "--json", "-f", "genl", "--pid", str(os.getpid()))
        rows = [r for r in doc["sockets"] if r["portid"] == sock.portid]
    assert len(rows) == 1 and rows[0]["group_names"] == ["nlctrl:notify"]
    assert {r["family"] for r in doc["sockets"]} == {"generic"}
    assert {r["pid"] for r in doc["sockets"]} == {os.getpid()}


def test_other_namespace_only_with_netns(capsys):
    with named_netns("nlshark-sk") as ns, RawNetlinkSocket(NETLINK_ROUTE, netns=ns) as there:
        inode = os.fstat(there.fileno()).st_ino
        here = _json(capsys, "--json")
        assert inode not in {r["inode"] for r in here["sockets"]}
        inside = _json(capsys, "--json", "--netns", ns)
        rows = [r for r in inside["sockets"] if r["inode"] == inode]
        assert len(rows) == 1 and rows[0]["pid"] == os.getpid()
        assert inside["netns"] == ns
        # the namespace has its own kernel sockets, nothing of the host's users
        assert all(r["kernel"] or r["pid"] == os.getpid() for r in inside["sockets"])


def test_bad_input(capsys):
    assert main(["-f", "nosuch"]) == 2
    _, err = capsys.readouterr()
    assert (
        err.startswith("nlshark sockets: unknown netlink family 'nosuch'") and err.count("\n") == 1
    )
    assert main(["--netns", "nlshark-no-such-ns"]) == 2
    _, err = capsys.readouterr()
    assert "nlshark-no-such-ns" in err and err.count("\n") == 1


def test_protocol_names():
    assert protocol_number("route") == 0
    assert protocol_number("NETLINK_GENERIC") == 16
    assert protocol_number("genl") == 16
    assert protocol_number("kobject-uevent") == 15
    assert protocol_number("12") == 12
    assert protocol_number("bogus") is None


def test_sock_diag_missing_is_explained(monkeypatch, capsys):
    """What the kernel says without netlink_diag (net/core/sock_diag.c:
    no handler for the family -> ENOENT) becomes a one-line hint."""

    def refused(self, msg_type, flags, payload=b""):
        yield struct.pack("=IHHIIi", 36, 2, 0, self.seq, 0, -errno.ENOENT) + bytes(16)

    monkeypatch.setattr(RawNetlinkSocket, "transact", refused)
    assert main([]) == 2
    _, err = capsys.readouterr()
    assert "netlink_diag" in err and err.count("\n") == 1


# ---------------------------------------------------------------------------
# The parser, on hand-made answers


# linux/netlink_diag.h: NETLINK_DIAG_* attribute types; the group bitmap is
# an array of unsigned long.
NETLINK_DIAG_MEMINFO = 0
NETLINK_DIAG_GROUPS = 1
NETLINK_DIAG_FLAGS = 4
_ULONG = struct.Struct("@L")


def _diag(portid: int, groups_bitmap: bytes, extra: bytes = b"") -> bytes:
    body = struct.pack("=BBBBIIIIII", 16, 3, 0, 7, portid, 0, 0, 1234, 5, 0)
    grp = struct.pack("=HH", 4 + len(groups_bitmap), NETLINK_DIAG_GROUPS) + groups_bitmap
    return body + grp + extra


def test_parse_groups_past_the_first_word():
    width = _ULONG.size
    bitmap = _ULONG.pack(1 << 0 | 1 << 4) + _ULONG.pack(1 << 2)
    info = S.parse_diag_message(_diag(77, bitmap), 0, len(_diag(77, bitmap)))
    assert info is not None
    assert info.groups == [1, 5, width * 8 + 3]
    assert info.portid == 77 and info.inode == 1234 and info.cookie == 5
    assert info.state_name == "unconnected" and info.flags is None and info.rqueue is None


def test_parse_flags_meminfo_and_truncation():
    mem = struct.pack("=HH", 4 + 36, NETLINK_DIAG_MEMINFO) + struct.pack("=9I", *range(10, 19))
    flags = struct.pack("=HHI", 8, NETLINK_DIAG_FLAGS, 0x1 | 0x8 | 0x100)
    data = _diag(1, b"", mem + flags)
    info = S.parse_diag_message(data, 0, len(data))
    assert info is not None
    assert info.rqueue == 10 and info.wqueue == 12 and info.meminfo["drops"] == 18
    assert info.flag_names == ["cb_running", "no_enobufs", "0x100"]
    # a message shorter than struct netlink_diag_msg is no socket
    assert S.parse_diag_message(data, 0, 20) is None
    # an attribute running past the end is ignored, the socket is kept
    bad = _diag(1, b"") + struct.pack("=HH", 200, NETLINK_DIAG_FLAGS)
    info = S.parse_diag_message(bad, 0, len(bad))
    assert info is not None and info.flags is None


# ---------------------------------------------------------------------------
# PortOwners


def test_port_owners_lookup_and_memory(route_sock):
    s, _ = route_sock
    portid = s.getsockname()[0]
    owners = S.PortOwners(min_interval=0.0)
    assert owners.lookup(NETLINK_ROUTE, portid) == (os.getpid(), _comm())
    assert owners.lookup(NETLINK_ROUTE, 0) is None  # the kernel
    assert owners.lookup(NETLINK_GENERIC, portid) is None  # another protocol
    s.close()
    owners.refresh()
    # the socket is gone, its owner is remembered for late messages
    assert owners.lookup(NETLINK_ROUTE, portid) == (os.getpid(), _comm())


def test_port_owners_refresh_rate():
    owners = S.PortOwners(min_interval=3600)
    assert owners.lookup(NETLINK_ROUTE, 0xFFFFFFF0) is None
    first = owners.last_refresh
    assert first is not None
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as s:
        s.bind((0, 0))
        # a miss within min_interval does not read the table again
        assert owners.lookup(NETLINK_ROUTE, s.getsockname()[0]) is None
        assert owners.last_refresh == first
        owners.refresh()
        assert owners.lookup(NETLINK_ROUTE, s.getsockname()[0]) == (os.getpid(), _comm())


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
def test_unprivileged_user_sees_own_sockets_only():
    """Other users' /proc/PID/fd are unreadable: those sockets have no
    owner, nothing fails, and the command's own socket is still named."""
    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root")
    code = (
        "import json, socket, sys; from dissect.commands.sockets import main; "
        "s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0); s.bind((0, 1)); "
        "print(s.getsockname()[0], flush=True); sys.exit(main(['--json']))"
    )
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as ours:
        ours.bind((0, 0))
        proc = _run_as_nobody(code)
        our_inode = os.fstat(ours.fileno()).st_ino
    if proc.returncode != 0 and "Permission denied" in proc.stderr:
        pytest.skip(f"nlshark cannot run as nobody here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    first, rest = proc.stdout.split("\n", 1)
    doc = json.loads(rest)
    mine = [r for r in doc["sockets"] if r["portid"] == int(first) and r["family"] == "route"]
    assert len(mine) == 1 and mine[0]["pid"] is not None
    # this (root) test process's socket is listed, without an owner
    (root_row,) = [r for r in doc["sockets"] if r["inode"] == our_inode]
    assert root_row["pid"] is None and not root_row["kernel"]


def _run_as_nobody(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )


def test_through_the_nlshark_command(capsys, route_sock):
    from dissect.cli import main as nlshark

    s, _ = route_sock
    assert nlshark(["sockets", "--json", "--pid", str(os.getpid())]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert s.getsockname()[0] in {r["portid"] for r in doc["sockets"] if r["family"] == "route"}
