"""NETLINK_SOCK_DIAG: a real capture of `ss` and live dumps of this host.

The capture (../shared/captures/sock_diag.pcap, recorded on nlmon from the
`ss` runs in its .commands.log) must decode without `undecoded` or
`malformed` notes, and each socket ss printed (protocol, state, addresses,
ports, queues, unix paths and inodes) must be among the sockets decoded from
the replies to that ss run.

The live tests dump this host's sockets through our own netlink socket
(tests/nlsock.py, which packs the requests straight from the uapi layouts)
and check that the sockets the test opened itself decode with the values the
test knows: a TCP listener and a connected pair on 127.0.0.1, a bound unix
socket, a netlink socket that joined a multicast group, a packet socket.
"""

from __future__ import annotations

import os
import re
import socket
import struct
from pathlib import Path

import pytest
from cmdlog import bad_notes, find_command, messages_during, read_commands
from nlsock import NLM_F_DUMP, NLM_F_REQUEST, NlSock, Recorder

import dissect
from dissect.capture import netlink_pseudo_header
from dissect.core.netlink import Session

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "captures"
PCAP = SHARED / "sock_diag.pcap"
LOG = SHARED / "sock_diag.commands.log"

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
# linux/inet_diag.h, unix_diag.h, netlink_diag.h, packet_diag.h
ALL_STATES = 0xFFF
INET_DIAG_EXT_ALL = 0xFF
UDIAG_SHOW_ALL = 0x7F
NDIAG_SHOW_MEMINFO_GROUPS_FLAGS = 0x1 | 0x2 | 0x8
PACKET_SHOW_ALL = 0x3F
TCP_LISTEN, TCP_ESTABLISHED = 10, 1


def _value(node):
    """Addresses (bytes shown as IPv4/IPv6) by their text; other values as they are."""
    return node.display if isinstance(node.value, bytes) and node.fmt is not None else node.value


def _sockets(msgs) -> list[dict[str, object]]:
    """The decoded reply messages as {member or attribute name: value}."""
    out = []
    for m in msgs:
        if m.type_name != "SOCK_DIAG_BY_FAMILY" or m.direction != "kernel->user":
            continue
        d: dict[str, object] = {"info": m.info}
        for c in m.node.children or ():
            if c.name.startswith("struct ") and c.abbrev != "netlink.hdr":
                for mem in c.children or ():
                    d[mem.name] = _value(mem)
                    for sub in mem.children or ():
                        d[sub.name] = _value(sub)
            elif c.abbrev != "netlink.hdr":
                d[c.name] = (
                    {k.name: k.value for k in c.children}
                    if c.value is None and c.children
                    else c.value
                )
        out.append(d)
    return out


# -- the capture ----------------------------------------------------------------


@pytest.fixture(scope="module")
def capture():
    if not PCAP.exists():
        pytest.skip("../shared/captures/sock_diag.pcap not present")
    return list(dissect.read_capture(PCAP)), read_commands(LOG)


def test_capture_decodes_clean(capture):
    frames, _ = capture
    n = 0
    for f in frames:
        for m in f.messages:
            n += 1
            assert m.family == "sock-diag"
            assert m.type_name in ("SOCK_DIAG_BY_FAMILY", "NLMSG_DONE"), m.type_name
            assert not bad_notes(m), (f.number, bad_notes(m))
    assert n == 61


_SS_ROW = re.compile(
    r"^(?:(?P<netid>tcp|udp|u_str|u_dgr)\s+)?(?P<state>[A-Z-]+)\s+(?P<rq>\d+)\s+(?P<sq>\d+)\s+"
    r"(?P<local>\S+)\s+(?P<peer>\S+)"
)


def _ss_rows(cmd) -> list[dict[str, str]]:
    rows = []
    for line in cmd.output:
        m = _SS_ROW.match(line)
        if m:
            rows.append(m.groupdict())
    return rows


def _endpoint(addr: object, port: object, v6: bool) -> str:
    host = f"[{addr}]" if v6 else str(addr)
    return f"{host}:{port if port else '*'}"


@pytest.mark.parametrize("command", ["ss -tanu", "ss -tln", "ss -6 -uan"])
def test_capture_inet_sockets_match_ss(capture, command):
    frames, cmds = capture
    cmd = find_command(cmds, command)
    socks = _sockets(messages_during(frames, cmd, "sock-diag"))
    decoded = set()
    for s in socks:
        v6 = s["idiag_family"] == 10
        state = s["info"].split()[1]
        decoded.add(
            (
                s["info"].split()[0],
                state,
                _endpoint(s["idiag_src"], s["idiag_sport"], v6),
                _endpoint(s["idiag_dst"], s["idiag_dport"], v6),
                s["idiag_rqueue"] if state != "LISTEN" else None,
            )
        )
    rows = _ss_rows(cmd)
    assert rows
    for r in rows:
        netid = r["netid"] or ("udp" if "-u" in command and "-t" not in command else "tcp")
        want = (
            netid,
            r["state"],
            r["local"],
            r["peer"].replace("0.0.0.0:*", "0.0.0.0:*"),
            int(r["rq"]) if r["state"] != "LISTEN" else None,
        )
        assert want in decoded, (want, sorted(decoded, key=str))
    assert len(decoded) == len(rows)


def test_capture_unix_sockets_match_ss(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "ss -xa")
    socks = {s["udiag_ino"]: s for s in _sockets(messages_during(frames, cmd, "sock-diag"))}
    rows = _ss_rows(cmd)
    assert len(rows) == len(socks) == 5
    for line in cmd.output[1:]:
        # Netid State Recv-Q Send-Q Local-Address Port Peer-Address Port
        f = line.split()
        kind, state, local, ino, peer_ino = f[0], f[1], f[4], int(f[5]), int(f[7])
        s = socks[ino]
        assert s["udiag_type"] == {"u_str": 1, "u_dgr": 2}[kind]
        assert s["info"].split()[2] == state
        assert s.get("UNIX_DIAG_NAME", "*") == local
        assert s.get("UNIX_DIAG_PEER", 0) == peer_ino


def test_capture_unix_vfs_matches_ss(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "ss -x -e src /tmp/sd-stream.sock")
    socks = {s["udiag_ino"]: s for s in _sockets(messages_during(frames, cmd, "sock-diag"))}
    sock = socks[1303]  # ss filters the dump itself
    m = re.search(r"ino:(\d+) dev:(\d+)/(\d+)", cmd.output[1])
    assert m is not None
    vfs = next(
        mm
        for f in frames
        if cmd.start_ns <= f.ts_ns <= cmd.end_ns
        for mm in f.messages
        for c in mm.node.children or ()
        if c.name == "UNIX_DIAG_VFS"
        for mm in [c]
    )
    values = {c.name: c.value for c in vfs.children}
    assert values["udiag_vfs_ino"] == int(m.group(1))
    # ss prints the device as major/minor of the kernel's dev_t (minor in the low 20 bits)
    dev = values["udiag_vfs_dev"]
    assert (dev >> 20, dev & 0xFFFFF) == (int(m.group(2)), int(m.group(3)))
    assert sock["UNIX_DIAG_NAME"] == "/tmp/sd-stream.sock"


def test_capture_tcp_info_matches_ss(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "ss -tanui")
    socks = [
        s
        for s in _sockets(messages_during(frames, cmd, "sock-diag"))
        if s["info"].startswith("tcp ESTAB 127.0.0.1:53144")
    ]
    assert len(socks) == 1
    s = socks[0]
    assert s["INET_DIAG_CONG"] == "cubic"
    # the socket's line, then a line of TCP details
    row = next(
        i for i, line in enumerate(cmd.output) if "127.0.0.1:53144    127.0.0.1:7001" in line
    )
    want = re.search(r"cubic wscale:7,7 rto:(\d+) .*? mss:(\d+)", cmd.output[row + 1])
    assert want is not None
    frame_info = next(
        c
        for f in frames
        if cmd.start_ns <= f.ts_ns <= cmd.end_ns
        for mm in f.messages
        if mm.info.startswith("tcp ESTAB 127.0.0.1:53144")
        for c in mm.node.children
        if c.name == "INET_DIAG_INFO"
    )
    info = {c.name: c.value for c in frame_info.children}
    assert info["tcpi_rto"] == int(want.group(1)) * 1000  # ss prints milliseconds
    assert info["tcpi_snd_mss"] == int(want.group(2))
    assert info["tcpi_state"] == TCP_ESTABLISHED


# -- this host's sockets -----------------------------------------------------------


def _decode(rec: Recorder) -> list:
    session = Session(byte_order="little" if struct.pack("=H", 1) == b"\1\0" else "big")
    msgs = []
    for i, (ts, proto, data) in enumerate(rec.frames, 1):
        msgs += session.decode(netlink_pseudo_header(proto) + data, number=i, ts_ns=ts).messages
    return msgs


def _dump(body: bytes) -> tuple[list, list]:
    rec = Recorder()
    with NlSock(NETLINK_SOCK_DIAG, rec) as s:
        s.request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, body)
    msgs = _decode(rec)
    problems = [(m.info, bad) for m in msgs for bad in [bad_notes(m)] if bad]
    assert not problems, problems[:5]
    return msgs, _sockets(msgs)


def _inet_req(family: int, proto: int) -> bytes:
    # struct inet_diag_req_v2 with an empty struct inet_diag_sockid
    return struct.pack("=BBBxI", family, proto, INET_DIAG_EXT_ALL, ALL_STATES) + bytes(48)


def test_live_inet_tcp_sockets():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    try:
        client.sendall(b"x" * 100)  # 100 bytes waiting in the server's queue
        lport = listener.getsockname()[1]
        cport = client.getsockname()[1]
        msgs, socks = _dump(_inet_req(socket.AF_INET, socket.IPPROTO_TCP))
        assert msgs[0].info.startswith("inet tcp states all")
        by_ino = {s["idiag_inode"]: s for s in socks}
        lst = by_ino[os.fstat(listener.fileno()).st_ino]
        assert lst["info"] == (
            f"tcp LISTEN 127.0.0.1:{lport} -> 0.0.0.0:* ino {os.fstat(listener.fileno()).st_ino}"
        )
        assert lst["idiag_state"] == TCP_LISTEN and lst["idiag_sport"] == lport
        cli = by_ino[os.fstat(client.fileno()).st_ino]
        assert str(cli["idiag_src"]) == str(cli["idiag_dst"]) == "127.0.0.1"
        assert (cli["idiag_sport"], cli["idiag_dport"]) == (cport, lport)
        assert cli["INET_DIAG_CONG"]
        mem = cli["INET_DIAG_SKMEMINFO"]
        assert mem["SK_MEMINFO_RCVBUF"] > 0 and mem["SK_MEMINFO_SNDBUF"] > 0
        srv = by_ino[os.fstat(server.fileno()).st_ino]
        assert srv["info"].startswith(f"tcp ESTAB 127.0.0.1:{lport} -> 127.0.0.1:{cport}")
        for _ in range(50):  # the bytes reach the server's queue on loopback at once
            msgs, socks = _dump(_inet_req(socket.AF_INET, socket.IPPROTO_TCP))
            srv = {s["idiag_inode"]: s for s in socks}[os.fstat(server.fileno()).st_ino]
            if srv["idiag_rqueue"] == 100:
                break
        assert srv["idiag_rqueue"] == 100
        assert srv["idiag_uid"] == os.getuid()
    finally:
        for s in (client, server, listener):
            s.close()


def test_live_unix_sockets(tmp_path):
    path = str(tmp_path / "nlshark-test.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract.bind(f"\0nlshark-test-{os.getpid()}")
    try:
        body = struct.pack(
            "=BBxxIII8s", socket.AF_UNIX, 0, ALL_STATES, 0, UDIAG_SHOW_ALL, b"\xff" * 8
        )
        _, socks = _dump(body)
        by_ino = {s["udiag_ino"]: s for s in socks}
        ino = os.fstat(srv.fileno()).st_ino
        s = by_ino[ino]
        assert s["UNIX_DIAG_NAME"] == path
        assert s["info"] == f"unix stream LISTEN {path} ino {ino}"
        assert s["UNIX_DIAG_UID"] == os.getuid()
        a = by_ino[os.fstat(abstract.fileno()).st_ino]
        assert a["UNIX_DIAG_NAME"] == f"@nlshark-test-{os.getpid()}"
        assert a["udiag_type"] == socket.SOCK_DGRAM
    finally:
        srv.close()
        abstract.close()


def test_live_netlink_sockets():
    own = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
    own.bind((0, 0b101))  # RTMGRP_LINK (group 1) and RTMGRP_NEIGH (group 3)
    try:
        portid = own.getsockname()[0]
        body = struct.pack(
            "=BBxxII8s", socket.AF_NETLINK, 255, 0, NDIAG_SHOW_MEMINFO_GROUPS_FLAGS, b"\xff" * 8
        )
        msgs, socks = _dump(body)
        assert msgs[0].info == "netlink ALL dump"
        # A socket with groups comes twice: the kernel walks the bound
        # sockets and then the multicast listeners (net/netlink/diag.c).
        mine = {
            s["ndiag_ino"]: s
            for s in socks
            if s["ndiag_portid"] == portid and s["ndiag_protocol"] == 0
        }
        assert len(mine) == 1
        (s,) = mine.values()
        assert s["NETLINK_DIAG_GROUPS"] == [1, 3]
        assert s["ndiag_ino"] == os.fstat(own.fileno()).st_ino
        assert s["info"] == f"netlink ROUTE portid {portid} groups 1,3 ino {s['ndiag_ino']}"
        # the dumping socket itself is listed too, as NETLINK_SOCK_DIAG
        assert any(x["ndiag_protocol"] == NETLINK_SOCK_DIAG for x in socks)
    finally:
        own.close()


def test_live_packet_sockets():
    try:
        pkt = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B5))
    except PermissionError:
        pytest.skip("packet sockets need CAP_NET_RAW")
    try:
        body = struct.pack("=BBxxII8s", socket.AF_PACKET, 0, 0, PACKET_SHOW_ALL, b"\xff" * 8)
        _, socks = _dump(body)
        s = {x["pdiag_ino"]: x for x in socks}[os.fstat(pkt.fileno()).st_ino]
        assert s["pdiag_num"] == 0x88B5
        assert s["pdiag_type"] == socket.SOCK_RAW
        assert "PACKET_DIAG_INFO" in s
        assert s["info"] == f"packet raw proto 0x88b5 ino {s['pdiag_ino']}"
    finally:
        pkt.close()


def test_live_legacy_tcpdiag_getsock():
    """TCPDIAG_GETSOCK with the old struct inet_diag_req, which the kernel
    still answers (inet_diag's compat path), replies named after it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        body = (
            struct.pack("=BBBB", socket.AF_INET, 0, 0, 0)
            + bytes(48)
            + struct.pack("=II", ALL_STATES, 0)
        )
        rec = Recorder()
        with NlSock(NETLINK_SOCK_DIAG, rec) as s:
            s.request(18, NLM_F_REQUEST | NLM_F_DUMP, body)
        msgs = _decode(rec)
        assert not [bad_notes(m) for m in msgs if bad_notes(m)]
        assert msgs[0].type_name == "TCPDIAG_GETSOCK" and msgs[0].info == "inet states all dump"
        ino = os.fstat(listener.fileno()).st_ino
        port = listener.getsockname()[1]
        replies = [m for m in msgs if m.direction == "kernel->user" and m.type == 18]
        assert all(m.type_name == "TCPDIAG_GETSOCK" for m in replies)
        assert f"tcp LISTEN 127.0.0.1:{port} -> 0.0.0.0:* ino {ino}" in {m.info for m in replies}
    finally:
        listener.close()


def _msg(mtype: int, flags: int, body: bytes, seq: int = 1, pid: int = 0) -> bytes:
    raw = struct.pack("<IHHII", 16 + len(body), mtype, flags, seq, pid) + body
    return raw + bytes(-len(raw) & 3)


def test_sock_destroy_and_unknown_family():
    s = Session(byte_order="little")
    # SOCK_DESTROY of one TCP socket, by its addresses and ports
    sockid = struct.pack(">HH", 22, 5000) + socket.inet_aton("127.0.0.1") + bytes(12)
    sockid += socket.inet_aton("127.0.0.1") + bytes(12) + struct.pack("<IQ", 0, 0)
    body = (
        struct.pack("<BBBxI", socket.AF_INET, socket.IPPROTO_TCP, 0, 1 << TCP_ESTABLISHED) + sockid
    )
    f = s.decode(netlink_pseudo_header(NETLINK_SOCK_DIAG) + _msg(21, 0x5, body))
    (m,) = f.messages
    assert (m.type_name, m.info) == ("SOCK_DESTROY", "inet tcp states ESTAB")
    assert f.root.find("sockdiag.inet_diag_req_v2.id.idiag_sport").value == 22
    assert str(f.root.find("sockdiag.inet_diag_req_v2.id.idiag_dst").display) == "127.0.0.1"
    assert not bad_notes(m)
    # AF_TIPC (30): named, but no layout of ours
    f = s.decode(
        netlink_pseudo_header(NETLINK_SOCK_DIAG)
        + _msg(20, 0x301, struct.pack("<BBxx", 30, 0) + bytes(12))
    )
    assert any("'tipc' is not known to the schema" in t for _, t in bad_notes(f.messages[0]))
    assert f.messages[0].info == "tipc dump"


def test_inet6_reply_without_request_is_a_notification():
    """SKNLGRP_INET6_TCP_DESTROY multicasts an inet_diag_msg when a socket
    is destroyed: no request in the capture, so the protocol comes from
    INET_DIAG_PROTOCOL when present."""
    sockid = struct.pack(">HH", 443, 40000) + socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    sockid += socket.inet_pton(socket.AF_INET6, "2001:db8::2") + struct.pack("<IQ", 3, 77)
    body = struct.pack("<BBBB", socket.AF_INET6, TCP_ESTABLISHED, 0, 0) + sockid
    body += struct.pack("<5I", 0, 0, 0, 1000, 4242)
    body += struct.pack("<HHB3x", 5, 10, socket.IPPROTO_TCP)  # INET_DIAG_PROTOCOL
    f = Session(byte_order="little").decode(
        netlink_pseudo_header(NETLINK_SOCK_DIAG) + _msg(20, 0, body, seq=0)
    )
    (m,) = f.messages
    assert m.info == "tcp ESTAB [2001:db8::1]:443 -> [2001:db8::2]:40000 ino 4242 (notification)"
    assert f.root.find("sockdiag.inet6_diag_msg.id.idiag_cookie").value == 77
    assert f.root.find("sockdiag.inet6_diag_msg.id.idiag_if").value == 3
    assert not bad_notes(m)
