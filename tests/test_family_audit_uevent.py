"""NETLINK_AUDIT, NETLINK_KOBJECT_UEVENT, NETLINK_CONNECTOR and NETLINK_SELINUX.

nlmon does not mirror these families, so the captures have none of them.
Hand-built messages (byte layouts from linux/audit.h, connector.h,
cn_proc.h, selinux_netlink.h and udev's monitor header) check each decoder,
malformed forms included; then traffic of this machine's kernel, read over
our own sockets:

- AUDIT_GET and AUDIT_GET_FEATURE answered by the kernel (read-only; skipped
  when the kernel has no audit support or refuses the socket);
- the uevents the kernel sends when the test creates a veth pair in a
  network namespace of its own (net device uevents go to the sockets of the
  device's namespace only);
- the process events connector, listening while the test runs a child
  process (needs CAP_NET_ADMIN in the initial namespaces; skipped otherwise).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cmdlog import bad_notes
from nlbuild import frame, msg
from nlsock import NLM_F_ACK, NLM_F_REQUEST, NlSock, Recorder, parse_msgs

from dissect.capture import netlink_pseudo_header
from dissect.core.netlink import Session

NETLINK_SELINUX, NETLINK_AUDIT, NETLINK_CONNECTOR, NETLINK_KOBJECT_UEVENT = 7, 9, 11, 15
AUDIT_GET, AUDIT_GET_FEATURE, AUDIT_ADD_RULE = 1000, 1019, 1011
AUDIT_SYSCALL, AUDIT_EXECVE, AUDIT_PROCTITLE = 1300, 1309, 1327
NLMSG_DONE = 3
CN_IDX_PROC = 1
PROC_EVENT_FORK, PROC_EVENT_EXEC, PROC_EVENT_EXIT = 1, 2, 0x80000000


def _tree(node, depth: int = 0) -> dict[str, object]:
    """name -> value of every descendant (first one wins)."""
    out: dict[str, object] = {}
    for n in node.walk():
        out.setdefault(n.name, n.value)
    return out


def _notes(f) -> list[str]:
    return [note.text for _, note in f.root.all_notes()]


# -- audit -------------------------------------------------------------------------


def _status(**kw: int) -> bytes:
    names = [
        "mask", "enabled", "failure", "pid", "rate_limit", "backlog_limit", "lost", "backlog",
        "feature_bitmap", "backlog_wait_time", "backlog_wait_time_actual",
    ]  # fmt: skip
    return struct.pack("<11I", *(kw.get(n, 0) for n in names))


def test_audit_status_reply():
    s = Session(byte_order="little")
    s.decode(frame(NETLINK_AUDIT, msg(AUDIT_GET, NLM_F_REQUEST | NLM_F_ACK, b"", seq=7)))
    f = s.decode(
        frame(
            NETLINK_AUDIT,
            msg(
                AUDIT_GET,
                0,
                _status(
                    enabled=1, failure=1, pid=321, backlog_limit=8192, lost=5, feature_bitmap=0x7F
                ),
                seq=7,
                pid=4242,
            ),
        )
    )
    (m,) = f.messages
    assert (m.type_name, m.role) == ("AUDIT_GET", "reply")
    assert m.info == "enabled pid 321 failure printk rate_limit 0 backlog 0/8192 lost 5"
    v = _tree(m.node)
    assert v["pid"] == 321 and v["lost"] == 5 and v["feature_bitmap"] == 0x7F
    assert not bad_notes(m)


def test_audit_set_and_short_status():
    s = Session(byte_order="little")
    f = s.decode(
        frame(
            NETLINK_AUDIT,
            msg(1001, NLM_F_REQUEST | NLM_F_ACK, _status(mask=0x5, enabled=1, pid=99)),
        )
    )
    assert f.messages[0].type_name == "AUDIT_SET"
    assert f.messages[0].info == "mask ENABLED,PID"
    f = s.decode(frame(NETLINK_AUDIT, msg(1001, NLM_F_REQUEST, _status()[:20])))
    assert any("needs 44 bytes" in t for t in _notes(f))


SYSCALL = (
    b"audit(1700000000.123:45): arch=c000003e syscall=59 success=yes exit=0 a0=55d items=2 "
    b'ppid=100 pid=200 auid=1000 uid=0 comm="ls" exe="/usr/bin/ls" key=6D79206B6579'
)


def test_audit_syscall_record():
    f = Session(byte_order="little").decode(
        frame(NETLINK_AUDIT, msg(AUDIT_SYSCALL, 0, SYSCALL, seq=0))
    )
    (m,) = f.messages
    assert m.type_name == "AUDIT_SYSCALL" and m.role == "notification"
    rec = next(n for n in m.node.children if n.abbrev == "audit.record")
    assert rec.value == SYSCALL.decode()
    fields = {c.name: c for c in rec.children}
    assert fields["timestamp"].value == "1700000000.123"
    assert fields["serial"].value == 45
    assert fields["syscall"].value == "59"
    assert fields["comm"].value == "ls"
    assert fields["key"].value == "my key"  # hex-encoded by the kernel: it has a space
    assert fields["arch"].value == "c000003e"  # hex, but not a string field
    assert fields["pid"].raw == b"pid=200"
    assert m.info.startswith("audit(1700000000.123:45) arch=c000003e syscall=59 ")
    assert 'key="my key"' in m.info
    assert not bad_notes(m)


def test_audit_proctitle_and_execve():
    s = Session(byte_order="little")
    f = s.decode(
        frame(
            NETLINK_AUDIT, msg(AUDIT_PROCTITLE, 0, b"audit(1.2:3): proctitle=6C73002D6C00", seq=0)
        )
    )
    assert f.messages[0].info == 'audit(1.2:3) proctitle="ls -l" (notification)'
    f = s.decode(
        frame(
            NETLINK_AUDIT,
            msg(AUDIT_EXECVE, 0, b'audit(1.2:3): argc=3 a0="ls" a1=2D6C2061 a2=2F', seq=0),
        )
    )
    v = _tree(f.messages[0].node)
    assert (v["a0"], v["a1"], v["a2"]) == ("ls", "-l a", "/")
    # outside EXECVE, a0 is a syscall argument in hex and stays as it is
    f = s.decode(frame(NETLINK_AUDIT, msg(AUDIT_SYSCALL, 0, b"audit(1.2:3): a0=2D6C", seq=0)))
    assert _tree(f.messages[0].node)["a0"] == "2D6C"


def test_audit_user_message_to_kernel():
    text = (
        b"pid=1 uid=0 auid=4294967295 ses=4 msg='op=PAM:session_open acct=\"root\" res=success'\0"
    )
    f = Session(byte_order="little").decode(
        frame(NETLINK_AUDIT, msg(1105, NLM_F_REQUEST | NLM_F_ACK, text))
    )
    (m,) = f.messages
    assert m.direction == "user->kernel"
    assert m.type_name == "AUDIT_USER_MSG 1105"  # named by its range of linux/audit.h
    inner = next(n for n in m.node.walk() if n.name == "msg")
    assert {c.name: c.value for c in inner.children if c.abbrev != "audit.key"} == {
        "op": "PAM:session_open",
        "acct": "root",
        "res": "success",
    }
    assert not bad_notes(m)


def test_audit_record_types_by_name_and_range():
    s = Session(byte_order="little")
    names = {}
    for t in (1107, 1124, 1200, 1400, 1403, 1700, 1702, 1800, 2000, 1350, 1450, 1999, 2500):
        names[t] = s.decode(frame(NETLINK_AUDIT, msg(t, 0, b"x=1", seq=0))).messages[0].type_name
    assert names[1107] == "AUDIT_USER_AVC" and names[1124] == "AUDIT_USER_TTY"
    assert names[1200] == "AUDIT_DAEMON_START" and names[1400] == "AUDIT_AVC"
    assert names[1403] == "AUDIT_MAC_POLICY_LOAD" and names[1702] == "AUDIT_ANOM_LINK"
    assert names[1700] == "AUDIT_ANOM_PROMISCUOUS" and names[2000] == "AUDIT_KERNEL"
    assert names[1350] == "AUDIT_EVENT_MSG 1350" and names[1450] == "AUDIT_SELINUX_MSG 1450"
    assert names[1999] == "AUDIT_KERNEL_MSG 1999" and names[2500] == "AUDIT_USER_MSG2 2500"


def test_audit_malformed_records():
    s = Session(byte_order="little")
    f = s.decode(frame(NETLINK_AUDIT, msg(1300, 0, b'audit(1.2:3): comm="unterminated', seq=0)))
    assert any("no closing" in t for t in _notes(f))
    f = s.decode(frame(NETLINK_AUDIT, msg(1300, 0, b"a=1\0garbage", seq=0)))
    assert any("after the NUL" in t for t in _notes(f))
    f = s.decode(frame(NETLINK_AUDIT, msg(1300, 0, b"", seq=0)))
    assert f.messages[0].type_name == "AUDIT_SYSCALL"


def _rule(fields, values, ops, strings: bytes, flags=4, action=2, syscalls=(59,), buflen=None):
    mask = [0] * 64
    for nr in syscalls:
        mask[nr // 32] |= 1 << (nr % 32)
    pad = lambda xs: list(xs) + [0] * (64 - len(xs))  # noqa: E731
    return (
        struct.pack("<III", flags, action, len(fields))
        + struct.pack("<64I", *mask)
        + struct.pack("<64I", *pad(fields))
        + struct.pack("<64I", *pad(values))
        + struct.pack("<64I", *pad(ops))
        + struct.pack("<I", len(strings) if buflen is None else buflen)
        + strings
    )


def test_audit_rule():
    # auditctl -a always,exit -F arch=b64 -S execve -F uid!=0 -k test
    body = _rule([11, 1, 210], [0xC000003E, 0, 4], [0x40000000, 0x30000000, 0x40000000], b"test")
    f = Session(byte_order="little").decode(frame(NETLINK_AUDIT, msg(AUDIT_ADD_RULE, 5, body)))
    (m,) = f.messages
    assert m.type_name == "AUDIT_ADD_RULE"
    assert m.info == "exit,always syscall=59 arch=c000003e uid!=0 key=test"
    v = _tree(m.node)
    assert v["mask"] == [59] and v["field_count"] == 3
    assert v["[2] key"] == "test"
    assert not bad_notes(m)


def test_audit_rule_malformed():
    s = Session(byte_order="little")
    f = s.decode(frame(NETLINK_AUDIT, msg(AUDIT_ADD_RULE, 5, b"\0" * 100)))
    assert any("needs 1040 bytes" in t for t in _notes(f))
    body = _rule([210], [40], [0x40000000], b"short")
    f = s.decode(frame(NETLINK_AUDIT, msg(AUDIT_ADD_RULE, 5, body)))
    assert any("runs past the buffer" in t for t in _notes(f))
    body = _rule([210], [4], [0x40000000], b"test", buflen=9)
    f = s.decode(frame(NETLINK_AUDIT, msg(AUDIT_ADD_RULE, 5, body)))
    assert any("buflen 9" in t for t in _notes(f))


def test_audit_features_and_signal_info():
    s = Session(byte_order="little")
    s.decode(frame(NETLINK_AUDIT, msg(AUDIT_GET_FEATURE, 5, b"", seq=3)))
    f = s.decode(
        frame(
            NETLINK_AUDIT, msg(AUDIT_GET_FEATURE, 0, struct.pack("<4I", 1, 3, 2, 0), seq=3, pid=9)
        )
    )
    assert (
        f.messages[0].info
        == "features LOGINUID_IMMUTABLE mask ONLY_UNSET_LOGINUID,LOGINUID_IMMUTABLE"
    )
    s.decode(frame(NETLINK_AUDIT, msg(1010, 5, b"", seq=4)))
    f = s.decode(
        frame(
            NETLINK_AUDIT, msg(1010, 0, struct.pack("<Ii", 0, 77) + b"unconfined\0", seq=4, pid=9)
        )
    )
    assert f.messages[0].info == "uid 0 pid 77 ctx unconfined"


def _audit_exchange(nl_type: int) -> tuple[list, bytes]:
    """Ask the kernel; the decoded frames and the raw reply body."""
    rec = Recorder()
    try:
        sock = NlSock(NETLINK_AUDIT, rec, ext_ack=False)
    except OSError as exc:
        pytest.skip(f"no NETLINK_AUDIT socket: {exc.strerror}")
    with sock:
        sock.send(struct.pack("=IHHII", 16, nl_type, NLM_F_REQUEST | NLM_F_ACK, 77, 0))
        body = None
        for _ in range(4):
            _, data = sock.recv_frame()
            for m in parse_msgs(data):
                if m.type == 2 and struct.unpack_from("=i", m.body)[0] != 0:
                    code = -struct.unpack_from("=i", m.body)[0]
                    pytest.skip(
                        f"the kernel refuses audit requests: {errno.errorcode.get(code, code)}"
                    )
                if m.type == nl_type:
                    body = m.body
            if body is not None:
                break
    assert body is not None
    s = Session(byte_order="little" if sys.byteorder == "little" else "big")
    frames = [
        s.decode(netlink_pseudo_header(p) + d, number=i)
        for i, (_, p, d) in enumerate(rec.frames, 1)
    ]
    return frames, body


def test_live_audit_status():
    frames, body = _audit_exchange(AUDIT_GET)
    msgs = [m for f in frames for m in f.messages]
    for m in msgs:
        assert not bad_notes(m), bad_notes(m)
    (reply,) = [m for m in msgs if m.type_name == "AUDIT_GET" and m.direction == "kernel->user"]
    assert reply.role == "reply"
    want = struct.unpack_from("=9I", body)
    v = _tree(reply.node)
    got = tuple(
        v[n]
        for n in (
            "mask",
            "enabled",
            "failure",
            "pid",
            "rate_limit",
            "backlog_limit",
            "lost",
            "backlog",
            "feature_bitmap",
        )
    )
    assert got == want


def test_live_audit_features():
    frames, body = _audit_exchange(AUDIT_GET_FEATURE)
    (reply,) = [
        m
        for f in frames
        for m in f.messages
        if m.type_name == "AUDIT_GET_FEATURE" and m.role == "reply"
    ]
    assert not bad_notes(reply)
    v = _tree(reply.node)
    assert (v["vers"], v["mask"], v["features"], v["lock"]) == struct.unpack_from("=4I", body)


# -- uevent ---------------------------------------------------------------------------

KERNEL_UEVENT = (
    b"add@/devices/virtual/net/veth0\0ACTION=add\0DEVPATH=/devices/virtual/net/veth0\0"
    b"SUBSYSTEM=net\0INTERFACE=veth0\0IFINDEX=5\0SEQNUM=1234\0"
)


def _udev(props: bytes, magic: int = 0xFEEDCAFE, off: int = 40, length: int | None = None) -> bytes:
    n = len(props) if length is None else length
    return (
        b"libudev\0"
        + struct.pack(">I", magic)
        + struct.pack("<III", 40, off, n)
        + struct.pack(">4I", 1, 2, 3, 4)
        + props
    )


def test_uevent_kernel_form():
    f = Session().decode(frame(NETLINK_KOBJECT_UEVENT, KERNEL_UEVENT))
    (m,) = f.messages
    assert (m.type_name, m.direction) == ("uevent", "kernel->user")
    assert m.info == "add /devices/virtual/net/veth0 (net)"
    v = _tree(m.node)
    assert v["action"] == "add" and v["devpath"] == "/devices/virtual/net/veth0"
    assert v["SEQNUM"] == "1234" and v["IFINDEX"] == "5"
    assert not _notes(f)


def test_uevent_udev_form():
    props = b"ACTION=remove\0DEVPATH=/devices/virtual/net/veth0\0SUBSYSTEM=net\0SEQNUM=9\0"
    f = Session().decode(frame(NETLINK_KOBJECT_UEVENT, _udev(props)))
    (m,) = f.messages
    assert (m.type_name, m.info) == ("udev event", "remove /devices/virtual/net/veth0 (net)")
    v = _tree(m.node)
    assert v["magic"] == 0xFEEDCAFE and v["properties_len"] == len(props)
    assert v["filter_subsystem_hash"] == 1 and v["filter_tag_bloom_lo"] == 4
    assert not _notes(f)


@pytest.mark.parametrize(
    ("payload", "note"),
    [
        (b"no-at-sign\0KEY=1\0", "no '@'"),
        (b"add@/devices/x", "not NUL-terminated"),
        (b"add@/x\0NOEQUALS\0", "has no '='"),
        (b"add@/x\0ACTION=remove\0", "differs from the header"),
        (b"", "empty uevent"),
        (_udev(b"A=1\0", magic=0x12345678), "is not 0xfeedcafe"),
        (_udev(b"A=1\0", off=400), "do not lie within"),
        (_udev(b"A=1\0", length=100), "do not lie within"),
        (_udev(b"")[:20], "needs 40 bytes"),
    ],
)
def test_uevent_malformed(payload, note):
    f = Session().decode(frame(NETLINK_KOBJECT_UEVENT, payload))
    assert len(f.messages) == 1
    assert any(note in t for t in _notes(f)), _notes(f)


_VETH_SCRIPT = """
import json, os, socket, subprocess, sys
sys.path.insert(0, {tests!r})
import nlsock
if not nlsock._unshare_net():
    sys.exit(77)
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 15)
s.bind((0, 1))
s.settimeout(2)
subprocess.run(["ip", "link", "add", "nlsk-ue0", "type", "veth", "peer", "name", "nlsk-ue1"], check=True)
subprocess.run(["ip", "link", "del", "nlsk-ue0"], check=True)
out = []
try:
    while True:
        out.append(s.recv(65536).hex())
except socket.timeout:
    pass
print(json.dumps(out))
"""


def test_live_uevents_of_a_veth_in_our_namespace():
    if (
        not Path("/sbin/ip").exists()
        and not Path("/usr/sbin/ip").exists()
        and not Path("/bin/ip").exists()
    ):
        pytest.skip("iproute2 (ip) not installed")
    tests = str(Path(__file__).resolve().parent)
    p = subprocess.run(
        [sys.executable, "-c", _VETH_SCRIPT.format(tests=tests)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if p.returncode == 77:
        pytest.skip("cannot enter a new network namespace")
    assert p.returncode == 0, p.stderr
    datagrams = [bytes.fromhex(h) for h in json.loads(p.stdout)]
    s = Session()
    msgs = [
        m
        for i, d in enumerate(datagrams, 1)
        for m in s.decode(frame(NETLINK_KOBJECT_UEVENT, d), number=i).messages
    ]
    for m in msgs:
        assert m.type_name == "uevent"
        assert not bad_notes(m), (m.info, bad_notes(m))
    infos = {m.info for m in msgs}
    assert "add /devices/virtual/net/nlsk-ue0 (net)" in infos
    assert "add /devices/virtual/net/nlsk-ue1 (net)" in infos
    assert "remove /devices/virtual/net/nlsk-ue0 (net)" in infos
    seqnums = [int(_tree(m.node)["SEQNUM"]) for m in msgs]
    assert seqnums == sorted(seqnums)


# -- connector ---------------------------------------------------------------------------


def _cn(idx: int, data: bytes, seq: int = 0, ack: int = 0, val: int = 1) -> bytes:
    return struct.pack("<IIIIHH", idx, val, seq, ack, len(data), 0) + data


def _proc_event(what: int, data: bytes, cpu: int = 1, ts: int = 123456789) -> bytes:
    return struct.pack("<IIQ", what, cpu, ts) + data


def test_connector_proc_events():
    s = Session(byte_order="little")
    cases = [
        (
            _proc_event(PROC_EVENT_FORK, struct.pack("<4i", 123, 123, 456, 456)),
            "proc fork parent 123/123 -> child 456/456",
        ),
        (
            _proc_event(PROC_EVENT_EXEC, struct.pack("<2i", 456, 456) + bytes(16)),
            "proc exec 456/456",
        ),
        (
            _proc_event(PROC_EVENT_EXIT, struct.pack("<iiIIii", 456, 456, 0, 17, 123, 123)),
            "proc exit 456 code 0 signal 17",
        ),
        (
            _proc_event(0x200, struct.pack("<2i", 456, 456) + b"bash".ljust(16, b"\0")),
            "proc comm 456/456 bash",
        ),
        (
            _proc_event(4, struct.pack("<2i2I", 456, 456, 1000, 0)),
            "proc uid 456/456 ruid 1000 euid 0",
        ),
        (_proc_event(0, struct.pack("<I", 0) + bytes(20)), "proc ack err 0"),
    ]
    for data, info in cases:
        f = s.decode(
            frame(NETLINK_CONNECTOR, msg(NLMSG_DONE, 0, _cn(CN_IDX_PROC, data), seq=0, pid=0))
        )
        (m,) = f.messages
        assert (m.direction, m.info) == ("kernel->user", f"{info} (notification)")
        assert not bad_notes(m), bad_notes(m)
    v = _tree(m.node)
    assert v["idx"] == CN_IDX_PROC and v["timestamp_ns"] == 123456789


def test_connector_listen_request_and_other_callbacks():
    s = Session(byte_order="little")
    f = s.decode(
        frame(
            NETLINK_CONNECTOR, msg(NLMSG_DONE, 0, _cn(CN_IDX_PROC, struct.pack("<I", 1)), pid=4321)
        )
    )
    (m,) = f.messages
    assert (m.direction, m.type_name, m.info) == ("user->kernel", "CN_MSG", "proc listen")
    f = s.decode(
        frame(
            NETLINK_CONNECTOR,
            msg(NLMSG_DONE, 0, _cn(CN_IDX_PROC, struct.pack("<II", 1, 3)), pid=4321),
        )
    )
    assert f.messages[0].info == "proc listen events fork,exec"
    f = s.decode(frame(NETLINK_CONNECTOR, msg(NLMSG_DONE, 0, _cn(9, b"\1\2\3"), pid=0)))
    assert f.messages[0].info == "CN_KVP_IDX val 1 len 3"
    assert _tree(f.messages[0].node)["data"] == b"\1\2\3"
    # a real NLMSG_DONE of another protocol is still the end of a dump
    f = s.decode(frame(4, msg(NLMSG_DONE, 2, struct.pack("<i", 0), seq=1, pid=1)))
    assert f.messages[0].type_name == "NLMSG_DONE"


def test_connector_malformed():
    s = Session(byte_order="little")
    f = s.decode(frame(NETLINK_CONNECTOR, msg(NLMSG_DONE, 0, b"\1\0\0\0", pid=0)))
    assert any("needs 20 bytes" in t for t in _notes(f))
    f = s.decode(
        frame(
            NETLINK_CONNECTOR,
            msg(NLMSG_DONE, 0, _cn(CN_IDX_PROC, b"\0" * 8)[:-4] + b"\0" * 4, pid=0),
        )
    )
    assert any("needs at least 16 bytes" in t for t in _notes(f))
    bad_len = struct.pack("<IIIIHH", 1, 1, 0, 0, 200, 0) + _proc_event(1, bytes(16))
    f = s.decode(frame(NETLINK_CONNECTOR, msg(NLMSG_DONE, 0, bad_len, pid=0)))
    assert any("runs" in t for t in _notes(f))
    f = s.decode(
        frame(
            NETLINK_CONNECTOR,
            msg(NLMSG_DONE, 0, _cn(CN_IDX_PROC, _proc_event(0x1000, b"\1\2")), pid=0),
        )
    )
    assert any("not known" in t for t in _notes(f))


def test_live_proc_connector():
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    except OSError as exc:
        pytest.skip(f"no NETLINK_CONNECTOR socket: {exc.strerror}")
    rec = Recorder()
    with sock:
        try:
            sock.bind((0, 1 << (CN_IDX_PROC - 1)))
        except OSError as exc:
            pytest.skip(f"cannot join the proc connector group: {exc.strerror}")
        listen = struct.pack("=IHHII", 16 + 24, NLMSG_DONE, 0, 1, os.getpid()) + struct.pack(
            "=IIIIHHI", CN_IDX_PROC, 1, 1, 0, 4, 0, 1
        )
        sock.send(listen)
        rec.add(NETLINK_CONNECTOR, listen)
        sock.settimeout(2)
        child = subprocess.Popen(["/bin/sh", "-c", "exit 3"])
        child.wait()
        seen_exit = False
        try:
            for _ in range(2000):
                data = sock.recv(65536)
                rec.add(NETLINK_CONNECTOR, data)
                (what,) = struct.unpack_from("=I", data, 36)
                if what == PROC_EVENT_EXIT and struct.unpack_from("=i", data, 52)[0] == child.pid:
                    seen_exit = True
                    break
        except TimeoutError:
            pass
        if len(rec.frames) == 1:
            pytest.skip(
                "no process events (CONFIG_PROC_EVENTS off, or not in the initial namespaces)"
            )
    assert seen_exit
    s = Session(byte_order="little" if sys.byteorder == "little" else "big")
    msgs = [
        m
        for i, (_, p, d) in enumerate(rec.frames, 1)
        for m in s.decode(netlink_pseudo_header(p) + d, number=i).messages
    ]
    for m in msgs:
        assert m.type_name == "CN_MSG"
        assert not bad_notes(m), (m.info, bad_notes(m))
    assert msgs[0].info == "proc listen" and msgs[0].direction == "user->kernel"
    infos = [m.info.removesuffix(" (notification)") for m in msgs[1:]]
    assert f"proc fork parent {os.getpid()}/{os.getpid()} -> child {child.pid}/{child.pid}" in infos
    assert f"proc exec {child.pid}/{child.pid}" in infos
    # exit_code is the wait status: exit(3) is 3 << 8
    assert f"proc exit {child.pid} code {3 << 8} signal 17" in infos


# -- selinux --------------------------------------------------------------------------------


def test_selinux_notifications():
    s = Session(byte_order="little")
    f = s.decode(frame(NETLINK_SELINUX, msg(0x10, 0, struct.pack("<i", 1), seq=0)))
    (m,) = f.messages
    assert (m.type_name, m.info) == ("SELNL_MSG_SETENFORCE", "enforcing 1 (notification)")
    f = s.decode(frame(NETLINK_SELINUX, msg(0x11, 0, struct.pack("<I", 7), seq=0)))
    assert (f.messages[0].type_name, f.messages[0].info) == (
        "SELNL_MSG_POLICYLOAD",
        "policy seqno 7 (notification)",
    )
    assert _tree(f.messages[0].node)["seqno"] == 7
    assert not _notes(f)
    f = s.decode(frame(NETLINK_SELINUX, msg(0x10, 0, b"\1", seq=0)))
    assert any("needs 4 bytes" in t for t in _notes(f))


def test_live_audit_list_rules():
    """AUDIT_LIST_RULES as `auditctl -l` sends it: the kernel answers with one
    AUDIT_LIST_RULES message per rule and NLMSG_DONE (read-only)."""
    rec = Recorder()
    try:
        sock = NlSock(NETLINK_AUDIT, rec, ext_ack=False)
    except OSError as exc:
        pytest.skip(f"no NETLINK_AUDIT socket: {exc.strerror}")
    with sock:
        sock.send(struct.pack("=IHHII", 16, 1013, NLM_F_REQUEST | NLM_F_ACK, 78, 0))
        done = False
        for _ in range(64):
            _, data = sock.recv_frame()
            for m in parse_msgs(data):
                if m.type == 2 and struct.unpack_from("=i", m.body)[0] != 0:
                    code = -struct.unpack_from("=i", m.body)[0]
                    pytest.skip(
                        f"the kernel refuses audit requests: {errno.errorcode.get(code, code)}"
                    )
                done = done or m.type == NLMSG_DONE
            if done:
                break
    assert done
    s = Session(byte_order="little" if sys.byteorder == "little" else "big")
    msgs = [
        m
        for i, (_, p, d) in enumerate(rec.frames, 1)
        for m in s.decode(netlink_pseudo_header(p) + d, number=i).messages
    ]
    for m in msgs:
        assert not bad_notes(m), (m.info, bad_notes(m))
    assert msgs[0].type_name == "AUDIT_LIST_RULES" and msgs[0].direction == "user->kernel"
    assert msgs[-1].info == "end of dump (AUDIT_LIST_RULES)"
    for m in msgs[1:-1]:
        if m.type == 1013:
            assert m.role == "reply" and _tree(m.node)["field_count"] is not None
