"""RawNetlinkSocket against the running kernel, inside namespaces the tests make.

What the socket does is checked with the independent parser in `nlsock`
(struct straight from the uapi layouts): a dump in a fresh namespace sees
only that namespace's loopback, a refused request comes back as an
NLMSG_ERROR with the errno and an extended ACK, joined groups deliver
events with the group they were sent to, and a namespace that does not
exist, a protocol the kernel lacks or a group beyond the family's range are
`NetlinkSocketError`s carrying the errno.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys
from pathlib import Path

import pytest

from dissect.capture.nlsocket import (
    NLM_F_ACK,
    NLM_F_DUMP,
    NetlinkSocketError,
    RawNetlinkSocket,
    error_of,
    netns_path,
)
from dissect.core.netlink import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nlsock as N  # noqa: E402
from netns import named_netns, ns_run  # noqa: E402

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "AF_NETLINK"), reason="AF_NETLINK sockets need Linux"
)


@pytest.fixture(scope="module")
def ns():
    with named_netns("nlshark-sock") as name:
        yield name


def _messages(buffers: list[bytes]) -> list[N.RawMsg]:
    return [m for b in buffers for m in N.parse_msgs(b)]


def test_netns_path_forms():
    assert netns_path("blue") == "/run/netns/blue"
    assert netns_path("pid:42") == "/proc/42/ns/net"
    assert netns_path("/var/run/netns/x") == "/var/run/netns/x"


def test_dump_inside_a_namespace_sees_its_links_only(ns):
    home = os.readlink("/proc/thread-self/ns/net")
    with RawNetlinkSocket(N.NETLINK_ROUTE, netns=ns) as sock:
        # the thread went back to its namespace once the socket was made
        assert os.readlink("/proc/thread-self/ns/net") == home
        sock.settimeout(5)
        buffers = list(sock.transact(N.RTM_GETLINK, NLM_F_DUMP, N.ifinfomsg()))
    msgs = _messages(buffers)
    links = [m for m in msgs if m.type == N.RTM_NEWLINK]
    names = [N.cstr(N.attr_dict(m.body, N.IFINFOMSG.size)[N.IFLA_IFNAME]) for m in links]
    assert names == ["lo"]
    assert msgs[-1].type == N.NLMSG_DONE


def test_error_reply_with_extended_ack(ns):
    # IFLA_MTU of 2 bytes instead of 4: the policy check refuses it and
    # the extended ACK points at the attribute.
    body = N.ifinfomsg(index=1) + N.attr(N.IFLA_MTU, N.u16(1400))
    with RawNetlinkSocket(N.NETLINK_ROUTE, netns=ns) as sock:
        sock.settimeout(5)
        buffers = list(sock.transact(N.RTM_NEWLINK, NLM_F_ACK, body))
        request = struct.pack("=IHHII", 16 + len(body), N.RTM_NEWLINK, NLM_F_ACK | 1, sock.seq, 0)
        frames = [sock.as_frame(request + body)] + [sock.as_frame(b) for b in buffers]
    assert len(buffers) == 1
    assert error_of(buffers[0]) == errno.ERANGE  # lib/nlattr.c: attribute shorter than its policy
    (msg,) = N.parse_msgs(buffers[0])
    code, ext = N.error_of(msg)
    assert -code == error_of(buffers[0])
    assert struct.unpack("=I", ext[N.NLMSGERR_ATTR_OFFS])[0] == 32
    # and nlshark decodes the pair: the error names the request's attribute
    session = Session()
    decoded = [session.decode(f) for f in frames]
    err = decoded[1].messages[0]
    assert err.type_name == "NLMSG_ERROR"
    assert err.ext_path.endswith("IFLA_MTU")


def test_error_of_ack_and_none():
    ack = N.nlmsg(N.NLMSG_ERROR, 0, 1, struct.pack("=i", 0) + N.nlmsg(16, 5, 1, b""))
    assert error_of(ack) == 0
    assert error_of(N.nlmsg(N.NLMSG_DONE, 2, 1, struct.pack("=i", 0))) is None
    assert error_of(b"\x01\x00") is None


def test_membership_delivers_events_with_their_group(ns):
    with RawNetlinkSocket(N.NETLINK_ROUTE, netns=ns) as sock:
        sock.settimeout(5)
        sock.add_membership(1)  # RTNLGRP_LINK
        sock.add_membership(5)  # RTNLGRP_IPV4_IFADDR
        ns_run(ns, "ip", "link", "add", "sa0", "type", "veth", "peer", "name", "sb0")
        ns_run(ns, "ip", "addr", "add", "192.0.2.1/24", "dev", "sa0")
        seen: dict[int, set[int]] = {}
        while not (seen.get(N.RTM_NEWLINK) and seen.get(N.RTM_NEWADDR)):
            data, portid, group = sock.recvfrom()
            assert portid == 0  # from the kernel
            for m in N.parse_msgs(data):
                seen.setdefault(m.type, set()).add(group)
    assert seen[N.RTM_NEWLINK] == {1}
    assert seen[N.RTM_NEWADDR] == {5}


def test_group_beyond_the_family_is_refused():
    with RawNetlinkSocket(N.NETLINK_ROUTE) as sock, pytest.raises(NetlinkSocketError) as info:
        sock.add_membership(1000)
    assert info.value.errno == errno.EINVAL
    assert "group 1000" in str(info.value)


def test_missing_namespace_is_an_error():
    with pytest.raises(NetlinkSocketError) as info:
        RawNetlinkSocket(N.NETLINK_ROUTE, netns="nlshark-no-such-namespace")
    assert info.value.errno == errno.ENOENT
    assert "nlshark-no-such-namespace" in str(info.value)


def test_unknown_protocol_is_an_error():
    with pytest.raises(NetlinkSocketError) as info:
        RawNetlinkSocket(31)  # MAX_LINKS - 1: never registered
    assert info.value.errno == errno.EPROTONOSUPPORT


def test_as_frame_header():
    with RawNetlinkSocket(N.NETLINK_GENERIC) as sock:
        frame = sock.as_frame(b"abcd")
        assert sock.portid > 0
    assert frame[:16] == N.pseudo_header(N.NETLINK_GENERIC) and frame[16:] == b"abcd"
