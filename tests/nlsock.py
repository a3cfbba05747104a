"""A small netlink socket helper for the real-kernel tests.

Deliberately independent of `dissect`: messages are packed and parsed here
with `struct` straight from the uapi layouts (linux/netlink.h,
linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/genetlink.h), so
the tests can compare what nlshark decodes with what this minimal parser
reads from the same bytes.

`NlSock` wraps a plain ``socket.socket(AF_NETLINK, SOCK_RAW, proto)`` and
records every request it sends and every buffer the kernel hands back (one
``recv`` = one skb = one frame) in a `Recorder`, which writes them as a
LINKTYPE_NETLINK pcap (the 16-byte pseudo-header and the netlink bytes,
as nlmon would have captured them).

Run as a script (``python3 nlsock.py netns OUT.json``) it enters a new
network namespace first and only then creates a dummy link, an address and
a route in it; it refuses to change anything when the namespace could not
be entered (exit code 77). It writes the recorded frames and the sequence
numbers of its steps as JSON; the test turns them into a pcap.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

# linux/netlink.h
NETLINK_ROUTE = 0
NETLINK_GENERIC = 16
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11
NLMSGERR_ATTR_MSG = 1
NLMSGERR_ATTR_OFFS = 2

# linux/rtnetlink.h
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15

# linux/if_link.h
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK = 1, 3, 4, 5
IFLA_LINKINFO = 18
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_VLAN_ID = 1
IFF_UP = 0x1

# linux/if_addr.h
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL = 1, 2, 3

# linux/genetlink.h
GENL_ID_CTRL = 16
CTRL_CMD_NEWFAMILY, CTRL_CMD_GETFAMILY = 1, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2

NLMSGHDR = struct.Struct("=IHHII")
NLATTR = struct.Struct("=HH")
IFINFOMSG = struct.Struct("=BxHiII")
IFADDRMSG = struct.Struct("=BBBBi")
RTMSG = struct.Struct("=BBBBBBBBI")
GENLMSGHDR = struct.Struct("=BBH")

# ---------------------------------------------------------------------------
# Building


def align4(n: int) -> int:
    return (n + 3) & ~3


def attr(nla_type: int, payload: bytes) -> bytes:
    raw = NLATTR.pack(4 + len(payload), nla_type) + payload
    return raw + bytes(align4(len(raw)) - len(raw))


def nest(nla_type: int, *children: bytes) -> bytes:
    return attr(nla_type | NLA_F_NESTED, b"".join(children))


def strz(s: str) -> bytes:
    return s.encode() + b"\0"


def u16(v: int) -> bytes:
    return struct.pack("=H", v)


def u32(v: int) -> bytes:
    return struct.pack("=I", v)


def nlmsg(nl_type: int, flags: int, seq: int, body: bytes, pid: int = 0) -> bytes:
    return NLMSGHDR.pack(16 + len(body), nl_type, flags, seq, pid) + body


def ifinfomsg(family: int = 0, ifi_type: int = 0, index: int = 0, flags: int = 0,
              change: int = 0) -> bytes:  # fmt: skip
    return IFINFOMSG.pack(family, ifi_type, index, flags, change)


def ifaddrmsg(family: int = 0, prefixlen: int = 0, flags: int = 0, scope: int = 0,
              index: int = 0) -> bytes:  # fmt: skip
    return IFADDRMSG.pack(family, prefixlen, flags, scope, index)


def rtmsg(family: int = 0, dst_len: int = 0, table: int = 0, protocol: int = 0,
          scope: int = 0, rtype: int = 0) -> bytes:  # fmt: skip
    return RTMSG.pack(family, dst_len, 0, 0, table, protocol, scope, rtype, 0)


def genlmsghdr(cmd: int, version: int = 1) -> bytes:
    return GENLMSGHDR.pack(cmd, version, 0)


# ---------------------------------------------------------------------------
# Parsing (independent of dissect)


@dataclass
class RawMsg:
    len: int
    type: int
    flags: int
    seq: int
    pid: int
    body: bytes
    frame: int = 0  # index of the recorded frame it came in


def parse_msgs(buf: bytes) -> list[RawMsg]:
    out = []
    off = 0
    while off + 16 <= len(buf):
        ln, ty, fl, seq, pid = NLMSGHDR.unpack_from(buf, off)
        if ln < 16 or off + ln > len(buf):
            raise ValueError(f"bad nlmsg_len {ln} at {off} of {len(buf)}")
        out.append(RawMsg(ln, ty, fl, seq, pid, buf[off + 16 : off + ln]))
        off += align4(ln)
    return out


def parse_attrs(buf: bytes, off: int = 0) -> list[tuple[int, bytes]]:
    """Top-level attributes of ``buf[off:]`` as (type without flags, payload)."""
    out = []
    while off + 4 <= len(buf):
        ln, ty = NLATTR.unpack_from(buf, off)
        if ln < 4 or off + ln > len(buf):
            raise ValueError(f"bad nla_len {ln} at {off} of {len(buf)}")
        out.append((ty & NLA_TYPE_MASK, buf[off + 4 : off + ln]))
        off += align4(ln)
    return out


def attr_dict(buf: bytes, off: int = 0) -> dict[int, bytes]:
    d: dict[int, bytes] = {}
    for t, p in parse_attrs(buf, off):
        d.setdefault(t, p)
    return d


def cstr(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode()


# ---------------------------------------------------------------------------
# Sockets and recording


def pseudo_header(protocol: int) -> bytes:
    # LINKTYPE_NETLINK: pkttype PACKET_OUTGOING, ARPHRD_NETLINK, halen 0, address, protocol
    return struct.pack(">HHH8sH", 4, 824, 0, bytes(8), protocol)


@dataclass
class Recorder:
    frames: list[tuple[int, int, bytes]] = field(default_factory=list)  # (ts_ns, proto, data)

    def add(self, protocol: int, data: bytes) -> int:
        self.frames.append((time.time_ns(), protocol, bytes(data)))
        return len(self.frames)

    def write_pcap(self, path: str | os.PathLike[str]) -> None:
        from dissect.capture import PcapWriter, netlink_pseudo_header

        with PcapWriter(path) as w:
            for ts, proto, data in self.frames:
                w.write(netlink_pseudo_header(proto) + data, ts_ns=ts)

    def dump(self) -> list[dict[str, object]]:
        return [{"ts": ts, "proto": p, "hex": d.hex()} for ts, p, d in self.frames]

    @classmethod
    def load(cls, frames: list[dict[str, object]]) -> Recorder:
        rec = cls()
        for f in frames:
            rec.frames.append((int(f["ts"]), int(f["proto"]), bytes.fromhex(str(f["hex"]))))  # type: ignore[call-overload]
        return rec


class NlSock:
    def __init__(self, proto: int, rec: Recorder, ext_ack: bool = True) -> None:
        self.proto = proto
        self.rec = rec
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)
        self.sock.bind((0, 0))
        if ext_ack:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.sock.settimeout(10)
        self.seq = int(time.time()) & 0xFFFFFF

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NlSock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def send(self, data: bytes) -> int:
        self.sock.sendto(data, (0, 0))
        return self.rec.add(self.proto, data)

    def recv_frame(self) -> tuple[int, bytes]:
        # Peek the size first so no skb is ever cut by a short buffer.
        n = self.sock.recv_into(bytearray(16), 16, socket.MSG_PEEK | socket.MSG_TRUNC)
        data = self.sock.recv(max(n, 65536))
        return self.rec.add(self.proto, data), data

    def request(self, nl_type: int, flags: int, body: bytes) -> tuple[int, list[RawMsg]]:
        """Send one request; read until its NLMSG_DONE or NLMSG_ERROR. Returns (seq, replies)."""
        seq = self.next_seq()
        self.send(nlmsg(nl_type, flags, seq, body))
        replies: list[RawMsg] = []
        while True:
            frame_no, data = self.recv_frame()
            done = False
            for m in parse_msgs(data):
                m.frame = frame_no
                if m.seq == seq:
                    replies.append(m)
                    done = done or m.type in (NLMSG_DONE, NLMSG_ERROR)
            if done:
                return seq, replies

    def dump(self, nl_type: int, body: bytes) -> list[RawMsg]:
        _, replies = self.request(nl_type, NLM_F_REQUEST | NLM_F_DUMP, body)
        return replies


def error_of(m: RawMsg) -> tuple[int, dict[int, bytes]]:
    """errno and extended-ACK attributes of an NLMSG_ERROR."""
    code = struct.unpack_from("=i", m.body, 0)[0]
    echo_len = NLMSGHDR.unpack_from(m.body, 4)[0]
    echoed = 16 if (m.flags & NLM_F_CAPPED or code == 0) else echo_len
    ext = attr_dict(m.body, 4 + align4(echoed)) if m.flags & NLM_F_ACK_TLVS else {}
    return code, ext


# ---------------------------------------------------------------------------
# The namespace scenario (run in a child process)


def _unshare_net() -> bool:
    before = os.readlink("/proc/self/ns/net")
    try:
        if hasattr(os, "unshare"):
            os.unshare(os.CLONE_NEWNET)  # type: ignore[attr-defined]
        else:
            libc = ctypes.CDLL(None, use_errno=True)
            # CLONE_NEWNET; unprivileged, with a user namespace (CLONE_NEWUSER) too.
            if libc.unshare(0x40000000) != 0 and libc.unshare(0x10000000 | 0x40000000) != 0:
                return False
    except OSError:
        return False
    after = os.readlink("/proc/self/ns/net")
    return after != before and [n for _, n in socket.if_nameindex()] == ["lo"]


def _link_request(name: str, kind: str) -> bytes:
    return (
        ifinfomsg()
        + attr(IFLA_IFNAME, strz(name))
        + nest(IFLA_LINKINFO, attr(IFLA_INFO_KIND, strz(kind)))
    )


def netns_scenario(out: str) -> int:
    """Changes inside a fresh network namespace; steps name the seq of each request.

    A dummy link (or, where the kernel has no dummy driver, an ifb or a
    bridge: same request, another kind), created twice (EEXIST), a vlan with
    id 5000 on it (ERANGE from 8021q, or EOPNOTSUPP without it), an IFLA_MTU
    of 2 bytes (policy validation error with the attribute's offset), the
    link up, an IPv4 address, a route via a gateway on it, a route via an
    unreachable gateway (ENETUNREACH), then link, address and route dumps.
    """
    if not _unshare_net():
        print("cannot enter a new network namespace", file=sys.stderr)
        return 77
    rec = Recorder()
    steps: dict[str, object] = {}
    create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    ack = NLM_F_REQUEST | NLM_F_ACK
    name = "nlt0"
    with NlSock(NETLINK_ROUTE, rec) as rt:
        kind = None
        for k in ("dummy", "ifb", "bridge"):
            seq, replies = rt.request(RTM_NEWLINK, create, _link_request(name, k))
            if error_of(replies[-1])[0] == 0:
                kind = k
                steps["newlink"] = seq
                break
            steps[f"newlink_{k}_failed"] = seq
        if kind is None:
            print("no link kind among dummy, ifb, bridge can be created", file=sys.stderr)
            return 77
        steps["kind"] = kind
        steps["newlink_again"] = rt.request(RTM_NEWLINK, create, _link_request(name, kind))[0]
        idx = socket.if_nametoindex(name)
        steps["ifindex"] = idx
        head = ifinfomsg() + attr(IFLA_IFNAME, strz(name + ".5000")) + attr(IFLA_LINK, u32(idx))
        vkind = attr(IFLA_INFO_KIND, strz("vlan"))
        vlan = head + nest(
            IFLA_LINKINFO, vkind, nest(IFLA_INFO_DATA, attr(IFLA_VLAN_ID, u16(5000)))
        )
        # offset of IFLA_VLAN_ID from the start of the request (nlmsghdr included)
        steps["vlan_id_offset"] = 16 + len(head) + 4 + len(vkind) + 4
        steps["vlan"] = rt.request(RTM_NEWLINK, create, vlan)[0]
        bad_mtu = ifinfomsg(index=idx) + attr(IFLA_MTU, u16(1400))
        steps["mtu_offset"] = 16 + 16
        steps["bad_mtu"] = rt.request(RTM_NEWLINK, ack, bad_mtu)[0]
        up = ifinfomsg(index=idx, flags=IFF_UP, change=IFF_UP)
        steps["up"] = rt.request(RTM_NEWLINK, ack, up)[0]
        addr = (
            ifaddrmsg(socket.AF_INET, 24, 0, RT_SCOPE_UNIVERSE, idx)
            + attr(IFA_LOCAL, socket.inet_aton("10.77.0.1"))
            + attr(IFA_ADDRESS, socket.inet_aton("10.77.0.1"))
        )
        steps["newaddr"] = rt.request(RTM_NEWADDR, create, addr)[0]

        def route(dst: str, gw: str) -> bytes:
            return (
                rtmsg(
                    socket.AF_INET, 24, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST
                )
                + attr(RTA_DST, socket.inet_aton(dst))
                + attr(RTA_GATEWAY, socket.inet_aton(gw))
            )

        steps["newroute"] = rt.request(
            RTM_NEWROUTE, create, route("198.51.100.0", "10.77.0.254") + attr(RTA_OIF, u32(idx))
        )[0]
        steps["badroute"] = rt.request(RTM_NEWROUTE, create, route("203.0.113.0", "10.9.9.9"))[0]
        steps["links"] = rt.request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, ifinfomsg())[0]
        steps["addrs"] = rt.request(
            RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, ifaddrmsg(socket.AF_INET)
        )[0]
        steps["routes"] = rt.request(
            RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, rtmsg(socket.AF_INET)
        )[0]
    with open(out, "w") as f:
        json.dump({"steps": steps, "frames": rec.dump()}, f)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "netns":
        return netns_scenario(argv[2])
    print(f"usage: {argv[0]} netns OUT.json", file=sys.stderr)
    return errno.EINVAL


if __name__ == "__main__":
    sys.exit(main(sys.argv))
