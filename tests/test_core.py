"""Table-style tests of the core: headers, control messages, attributes, notes."""

from __future__ import annotations

import struct

import pytest
from nlbuild import attr, frame, genlhdr, ifinfomsg, msg, nest, string, u32

from dissect.core.netlink import TO_KERNEL, TO_USER, Session
from dissect.schema import Registry

REQUEST, ACK, DUMP, CREATE, EXCL = 0x1, 0x4, 0x300, 0x400, 0x200
RTM_NEWLINK, RTM_GETLINK = 16, 18
IFLA_IFNAME, IFLA_MTU, IFLA_LINKINFO = 3, 4, 18
INFO_KIND, INFO_DATA = 1, 2
VLAN_ID = 1


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.default()


@pytest.fixture
def session(registry: Registry) -> Session:
    return Session(registry)


def notes(node, group=None):
    return [n for _, n in node.all_notes() if group is None or n.group == group]


def test_link_request_decodes_header_and_attributes(session):
    body = ifinfomsg(index=3) + string(IFLA_IFNAME, "d0") + u32(IFLA_MTU, 1400)
    f = session.decode(frame(0, msg(RTM_NEWLINK, REQUEST | ACK, body, seq=7)))
    (m,) = f.messages
    assert (m.type_name, m.direction, m.seq, m.family) == ("RTM_NEWLINK", TO_KERNEL, 7, "rt-link")
    assert m.node.find("rtnl.link.ifname").value == "d0"
    assert m.node.find("rtnl.link.mtu").value == 1400
    assert m.node.find("rtnl.ifinfomsg.ifi_index").value == 3
    assert m.node.find("netlink.flags").display == "0x0005 (REQUEST|ACK)"
    assert not notes(f.root, "malformed") and not notes(f.root, "undecoded")


@pytest.mark.parametrize(
    ("mtype", "flags", "shown"),
    [
        (RTM_GETLINK, REQUEST | DUMP, "REQUEST|DUMP"),
        (RTM_GETLINK, REQUEST | 0x400, "REQUEST|ATOMIC"),
        (RTM_NEWLINK, REQUEST | CREATE | EXCL, "REQUEST|EXCL|CREATE"),
        (RTM_NEWLINK, REQUEST | 0x100, "REQUEST|REPLACE"),
        (17, REQUEST | 0x100, "REQUEST|NONREC"),
        (17, REQUEST | 0x200, "REQUEST|BULK"),
        (RTM_NEWLINK, 0x2 | 0x10 | 0x20, "MULTI|DUMP_INTR|DUMP_FILTERED"),
    ],
)
def test_flags_are_named_for_the_kind_of_request(session, mtype, flags, shown):
    f = session.decode(frame(0, msg(mtype, flags, ifinfomsg())))
    assert shown in f.messages[0].node.find("netlink.flags").display


def test_direction_comes_from_flags_not_pid(session):
    req = session.decode(frame(0, msg(RTM_GETLINK, REQUEST | DUMP, ifinfomsg(), seq=5, pid=1234)))
    rep = session.decode(
        frame(
            0, msg(RTM_NEWLINK, 0x2, ifinfomsg(index=1) + string(IFLA_IFNAME, "lo"), seq=5, pid=0)
        )
    )
    note = session.decode(frame(0, msg(RTM_NEWLINK, 0, ifinfomsg(index=1), seq=0, pid=0)))
    assert req.direction == TO_KERNEL and rep.direction == TO_USER
    assert rep.messages[0].role == "reply" and rep.messages[0].request.frame == 1
    assert note.messages[0].role == "notification"


def test_several_messages_per_frame_and_zero_tail(session):
    one = msg(RTM_NEWLINK, 0x2, ifinfomsg(index=1), seq=9)
    done = msg(3, 0x2, struct.pack("<i", 0), seq=9)
    f = session.decode(frame(0, one, one, done) + b"\0" * 20)
    assert [m.type_name for m in f.messages] == ["RTM_NEWLINK", "RTM_NEWLINK", "NLMSG_DONE"]
    assert f.messages[2].info.startswith("end of dump")
    tail = f.root.find("netlink.trailer")
    assert tail is not None and tail.length == 20
    assert not notes(f.root, "malformed")


def _vlan_request(vid: int) -> bytes:
    data = nest(INFO_DATA, attr(VLAN_ID, struct.pack("<H", vid)))
    body = (
        ifinfomsg()
        + string(IFLA_IFNAME, "v0")
        + nest(IFLA_LINKINFO, string(INFO_KIND, "vlan"), data)
    )
    return msg(RTM_NEWLINK, REQUEST | ACK | CREATE | EXCL, body, seq=42)


def _offset_of_vlan_id(req: bytes) -> int:
    return req.index(struct.pack("<HH", 6, VLAN_ID))


def _error(code: int, req: bytes, *, capped: bool, tlvs: bytes = b"", seq: int = 42) -> bytes:
    echoed = req[:16] if capped else req
    flags = (0x100 if capped else 0) | (0x200 if tlvs else 0)
    return msg(2, flags, struct.pack("<i", code) + echoed + tlvs, seq=seq, pid=77)


def test_error_echo_and_extack_offset_path(session):
    req = _vlan_request(5000)
    tlvs = string(1, "8021q: Invalid VLAN id") + u32(2, _offset_of_vlan_id(req))
    session.decode(frame(0, req))
    f = session.decode(frame(0, _error(-34, req, capped=False, tlvs=tlvs)), number=2)
    (m,) = f.messages
    assert m.error == -34 and m.role == "error"
    assert m.ext_msg == "8021q: Invalid VLAN id"
    assert m.ext_path == "IFLA_LINKINFO > IFLA_INFO_DATA > IFLA_VLAN_ID"
    assert (
        "ERANGE (-34): 8021q: Invalid VLAN id [at IFLA_LINKINFO > IFLA_INFO_DATA > IFLA_VLAN_ID]"
        in m.info
    )
    echo = m.node.find("netlink.echo")
    assert echo.find("rtnl.link.linkinfo.data.vlan.id").value == 5000
    assert not notes(f.root, "malformed")


def test_capped_error_offset_resolved_from_earlier_request(session):
    req = _vlan_request(5000)
    session.decode(frame(0, req))
    tlvs = u32(2, _offset_of_vlan_id(req))
    f = session.decode(frame(0, _error(-34, req, capped=True, tlvs=tlvs)))
    assert f.messages[0].ext_path == "IFLA_LINKINFO > IFLA_INFO_DATA > IFLA_VLAN_ID"


def test_capped_error_without_request_says_why(session):
    req = _vlan_request(5000)
    f = session.decode(frame(0, _error(-34, req, capped=True, tlvs=u32(2, 40))))
    offs = f.root.find("netlink.extack.offs")
    assert any("not resolved" in n.text for n in offs.notes)


def test_missing_attribute_named(session):
    req = msg(RTM_NEWLINK, REQUEST | ACK, ifinfomsg(), seq=3)
    session.decode(frame(0, req))
    f = session.decode(frame(0, _error(-22, req, capped=True, tlvs=u32(5, IFLA_IFNAME), seq=3)))
    assert f.messages[0].ext_path == "missing IFLA_IFNAME"


def test_ack(session):
    req = msg(RTM_NEWLINK, REQUEST | ACK, ifinfomsg(), seq=3)
    session.decode(frame(0, req))
    f = session.decode(frame(0, _error(0, req, capped=True, seq=3)))
    assert f.messages[0].role == "ack" and f.messages[0].info == "ACK for RTM_NEWLINK seq 3"


def test_policy_nest_in_extack(session):
    req = _vlan_request(5000)
    policy = nest(4, u32(1, 4), attr(5, struct.pack("<Q", 4094)))
    f = session.decode(frame(0, _error(-34, req, capped=True, tlvs=policy)))
    pol = f.root.find("netlink.extack.policy")
    assert pol.find("netlink.extack.policy.type").display == "u32 (4)"
    assert pol.find("netlink.extack.policy.max_value_u").value == 4094


def test_done_with_error_and_extack(session):
    body = struct.pack("<i", -95) + string(1, "not supported")
    f = session.decode(frame(0, msg(3, 0x2 | 0x200, body, seq=1)))
    m = f.messages[0]
    assert m.error == -95 and m.ext_msg == "not supported"
    assert "EOPNOTSUPP (-95): not supported" in m.info


@pytest.mark.parametrize(
    ("attrs", "expect"),
    [
        (struct.pack("<HH", 2, IFLA_MTU) + b"\0" * 4, "less than the 4-byte header"),
        (struct.pack("<HH", 40, IFLA_MTU) + b"\0" * 4, "runs 32 bytes past the end"),
        (attr(IFLA_MTU, b"\x01\x02"), "too short for a 32-bit value"),
        (attr(IFLA_MTU, b"\x01\0\0\0\0\0\0\0"), "expected 4"),
        (attr(IFLA_IFNAME, b"ab", pad=b"\x01\x02"), "non-zero padding"),
        (attr(IFLA_IFNAME, b"ab\0cd"), "after the terminating NUL"),
        (b"\x05\x00", "too short for an attribute header"),
    ],
)
def test_malformed_attributes_are_noted_and_walk_goes_on(session, attrs, expect):
    body = ifinfomsg() + attrs
    f = session.decode(frame(0, msg(RTM_NEWLINK, REQUEST, body)))
    texts = [n.text for n in notes(f.root, "malformed")]
    assert any(expect in t for t in texts), texts


def test_walk_continues_after_bad_sibling(session):
    body = ifinfomsg() + attr(IFLA_MTU, b"\x01") + string(IFLA_IFNAME, "ok0")
    f = session.decode(frame(0, msg(RTM_NEWLINK, REQUEST, body)))
    assert f.root.find("rtnl.link.ifname").value == "ok0"


def test_unknown_attribute_kept_raw_with_note(session):
    body = ifinfomsg() + attr(999, b"\xaa\xbb")
    f = session.decode(frame(0, msg(RTM_NEWLINK, REQUEST, body)))
    node = f.root.find("rtnl.link.unknown")
    assert node.value == b"\xaa\xbb" and node.name == "attribute type 999"
    assert notes(node, "undecoded")


def test_unknown_link_kind_keeps_rest_of_message(session):
    body = (
        ifinfomsg()
        + nest(IFLA_LINKINFO, string(INFO_KIND, "frobnicator"), nest(INFO_DATA, u32(1, 5)))
        + u32(IFLA_MTU, 9000)
    )
    f = session.decode(frame(0, msg(RTM_NEWLINK, REQUEST, body)))
    data = f.root.find("rtnl.link.linkinfo.data")
    assert any("frobnicator" in n.text for n in notes(data, "undecoded"))
    assert f.root.find("rtnl.link.mtu").value == 9000


def test_nesting_depth_is_bounded(session):
    inner = attr(1, b"x")
    for _ in range(100):
        inner = nest(1, inner)
    body = ifinfomsg() + attr(999, inner[4:], nested=True)
    f = session.decode(frame(0, msg(RTM_NEWLINK, REQUEST, body)))
    assert any("nesting deeper" in n.text for n in notes(f.root))


def test_message_length_errors(session):
    f = session.decode(frame(0, msg(RTM_NEWLINK, REQUEST, ifinfomsg(), length=400)))
    assert any(
        "runs" in n.text and "past the end of the frame" in n.text
        for n in notes(f.root, "malformed")
    )
    f = session.decode(frame(0, msg(RTM_NEWLINK, REQUEST, ifinfomsg(), length=8)))
    assert any("less than the 16-byte header" in n.text for n in notes(f.root, "malformed"))


def test_snaplen_cut_frame_decodes_as_far_as_it_goes(session):
    full = frame(
        0,
        msg(
            RTM_NEWLINK, REQUEST, ifinfomsg() + string(IFLA_IFNAME, "abcdef") + u32(IFLA_MTU, 1500)
        ),
    )
    f = session.decode(full[:-6], orig_len=len(full))
    assert f.root.find("rtnl.link.ifname").value == "abcdef"
    assert any("snaplen" in n.text for n in notes(f.root))


def test_byte_order_guessed_big_endian(registry):
    s = Session(registry)
    be = struct.pack(">IHHII", 32, RTM_NEWLINK, REQUEST, 1, 0) + struct.pack(
        ">BxHiII", 0, 0, 7, 0, 0
    )
    f = s.decode(frame(0, be))
    assert s.bo == ">" and f.root.find("rtnl.ifinfomsg.ifi_index").value == 7


def test_byte_order_override(registry):
    s = Session(registry, "big")
    f = s.decode(frame(0, msg(RTM_NEWLINK, REQUEST, ifinfomsg())))
    assert f.messages[0].type != RTM_NEWLINK


@pytest.mark.parametrize("linktype", [113, 276])
def test_other_link_types(session, linktype):
    m = msg(RTM_NEWLINK, REQUEST, ifinfomsg(index=4))
    if linktype == 113:
        data = frame(0, m)
    else:
        data = struct.pack(">HHIHBB8s", 0, 0, 0, 824, 4, 0, b"\0" * 8) + m
    f = session.decode(data, linktype)
    assert f.root.find("rtnl.ifinfomsg.ifi_index").value == 4


def test_unsupported_link_type_frame_is_noted(session):
    f = session.decode(b"\0" * 30, 1)
    assert not f.messages and notes(f.root, "undecoded")


def test_genl_family_learned_from_controller(session):
    ctrl_reply = genlhdr(1, 2) + string(2, "ethtool") + attr(1, struct.pack("<H", 20))
    f = session.decode(frame(16, msg(16, 0, ctrl_reply, seq=3, pid=9)))
    assert f.messages[0].type_name == "CTRL_CMD_NEWFAMILY"
    assert session.genl_family(20) == "ethtool"
    g = session.decode(frame(16, msg(20, REQUEST, genlhdr(1) + attr(1, b""), seq=4)))
    assert g.messages[0].family == "ethtool"


def test_genl_unknown_family_says_how_to_name_it(session):
    f = session.decode(frame(16, msg(33, REQUEST, genlhdr(1) + u32(1, 5))))
    assert any("--genl NAME=33" in n.text for n in notes(f.root, "undecoded"))
    assert f.root.find("genl.cmd").value == 1


def test_every_byte_is_covered(session):
    body = (
        ifinfomsg()
        + string(IFLA_IFNAME, "abc")
        + nest(
            IFLA_LINKINFO, string(INFO_KIND, "vlan"), nest(INFO_DATA, attr(VLAN_ID, b"\x05\x00"))
        )
    )
    f = session.decode(frame(0, msg(RTM_NEWLINK, REQUEST, body), b"\0" * 8))
    holes = [
        i
        for i in range(len(f.data))
        if not any(n.offset <= i < n.end for n in f.root.walk() if n is not f.root)
    ]
    assert not holes


# IFLA_LINKINFO: KIND 1, SLAVE_KIND 4, SLAVE_DATA 5; IFLA_BRPORT_COST 3
_BRPORT_COST = u32(3, 77)


@pytest.mark.parametrize(
    "linkinfo, chosen",
    [
        # iproute2's `type bridge_slave`: no SLAVE_KIND, the second selector picks
        ((string(1, "bridge_slave"), nest(5, _BRPORT_COST)), "bridge_slave"),
        # the kernel's order: SLAVE_KIND before SLAVE_DATA, the first selector wins
        ((string(1, "veth"), string(4, "bridge"), nest(5, _BRPORT_COST)), "bridge"),
        # SLAVE_KIND after SLAVE_DATA: decoded again once it is seen
        ((string(1, "veth"), nest(5, _BRPORT_COST), string(4, "bridge")), "bridge"),
    ],
)
def test_sub_message_selector_list(linkinfo, chosen):
    body = ifinfomsg(index=3) + nest(18, *linkinfo)
    f = Session(Registry.default(), "little").decode(frame(0, msg(16, 0x5, body)))
    node = f.messages[0].node.find("rtnl.link.linkinfo.slave_data")
    assert node.display == f"({chosen})"
    cost = [n for n in node.walk() if n.abbrev.endswith(".cost")]
    assert [n.value for n in cost] == [77]
    assert not [n for n, note in f.root.all_notes() if note.group in ("malformed", "undecoded")]


def test_sub_message_selector_list_none_present():
    body = ifinfomsg(index=3) + nest(18, nest(5, _BRPORT_COST))
    f = Session(Registry.default(), "little").decode(frame(0, msg(16, 0x5, body)))
    node = f.messages[0].node.find("rtnl.link.linkinfo.slave_data")
    assert [note.text for note in node.notes] == [
        "IFLA_INFO_SLAVE_DATA not decoded: its selector 'slave-kind' or 'kind' is not in the message"
    ]


def _nduseropt(opts_len: int, opts: bytes, tail: bytes = b"") -> bytes:
    # struct nduseroptmsg (linux/rtnetlink.h): AF_INET6, opts_len, ifindex 4, RA (134)
    hdr = struct.pack("<BxHiBBHI", 10, opts_len, 4, 134, 0, 0, 0)
    return frame(0, msg(68, 0, hdr + opts + tail, seq=0))


def test_struct_trailer_counted_by_a_member():
    # an RDNSS option (type 25, 3 x 8 bytes), then NDUSEROPT_SRCADDR
    opts = bytes([25, 3, 0, 0, 0, 0, 0x0E, 0x10]) + bytes(range(16))
    src = bytes.fromhex("fe800000000000000000000000000001")
    f = Session(Registry.default(), "little").decode(_nduseropt(len(opts), opts, attr(1, src)))
    m = f.messages[0]
    assert m.type_name == "RTM_NEWNDUSEROPT"
    assert m.node.find("rtnl.nduseroptmsg.options").value == opts
    assert m.node.find("rtnl.nduseropt.srcaddr").display == "fe80::1"
    assert not list(f.root.all_notes())


def test_struct_trailer_longer_than_the_message():
    f = Session(Registry.default(), "little").decode(_nduseropt(64, bytes(8)))
    node = f.messages[0].node.find("rtnl.nduseroptmsg.options")
    assert node.value == bytes(8)
    assert [n.text for n in node.notes] == [
        "nduseropt_opts_len says 64 bytes but only 8 follow the struct"
    ]


def _seg6_route(srh: bytes) -> bytes:
    # struct rtmsg AF_INET6 /64, RTA_DST, RTA_ENCAP {SEG6_IPTUNNEL_SRH}, RTA_ENCAP_TYPE seg6 (5)
    rtm = struct.pack("<BBBBBBBBI", 10, 64, 0, 0, 254, 4, 0, 1, 0)
    dst = attr(1, bytes.fromhex("20010db8010000000000000000000000"))
    encap = nest(22, attr(1, srh))
    return frame(0, msg(24, 0x5, rtm + dst + encap + attr(21, struct.pack("<H", 5))))


def _srh(hdrlen: int, payload: bytes) -> bytes:
    # mode encap (1), struct ipv6_sr_hdr: nexthdr 41, hdrlen, type 4, left 1, first 1, flags, tag
    return struct.pack("<i", 1) + struct.pack("<BBBBBBH", 41, hdrlen, 4, 1, 1, 0, 0) + payload


def test_trailer_elements_seg6_segments():
    segs = bytes.fromhex("20010db800bb0000000000000000000120010db800aa0000000000000000000120")[:32]
    f = Session(Registry.default(), "little").decode(_seg6_route(_srh(4, segs)))
    node = f.messages[0].node.find("rtnl.seg6_iptunnel_encap.segments")
    assert [c.display for c in node.children] == ["2001:db8:bb::1", "2001:db8:aa::1"]
    assert not list(f.root.all_notes())


def test_trailer_elements_with_a_short_tail_and_a_short_attribute():
    # hdrlen 3: 24 bytes, one segment and 8 bytes that are not one
    f = Session(Registry.default(), "little").decode(_seg6_route(_srh(3, bytes(24))))
    node = f.messages[0].node.find("rtnl.seg6_iptunnel_encap.segments")
    assert [c.name for c in node.children] == ["[0]", "rest"]
    assert [n.text for n in node.children[1].notes] == ["8 bytes after the segments not decoded"]
    # hdrlen 4 but only 16 bytes present
    f = Session(Registry.default(), "little").decode(_seg6_route(_srh(4, bytes(16))))
    node = f.messages[0].node.find("rtnl.seg6_iptunnel_encap.segments")
    assert [n.text for n in node.notes] == ["hdrlen says 32 bytes but only 16 follow the struct"]


def _mdb_request(addr: bytes, proto: int) -> bytes:
    # struct br_port_msg (AF_BRIDGE, bridge 6), MDBA_SET_ENTRY: struct br_mdb_entry
    entry = struct.pack("<IBBH16s", 8, 1, 0, 10, addr) + struct.pack(">H", proto) + bytes(2)
    return frame(0, msg(84, 0x405, struct.pack("<BxxxI", 7, 6) + attr(1, entry)))


@pytest.mark.parametrize(
    "addr, proto, shown",
    [
        (bytes([239, 1, 1, 1]), 0x0800, "239.1.1.1"),
        (bytes.fromhex("ff0e0000000000000000000000000042"), 0x86DD, "ff0e::42"),
        (bytes.fromhex("01005e010101"), 0, "01:00:5e:01:01:01"),
        (bytes([1, 2, 3, 4]), 0x1234, "01020304" + "00" * 12),
    ],
)
def test_struct_union_shown_by_another_member(addr, proto, shown):
    f = Session(Registry.default(), "little").decode(_mdb_request(addr.ljust(16, b"\0"), proto))
    m = f.messages[0]
    node = m.node.find("rtnl.br_mdb_entry.addr")
    assert node.display == shown and node.length == 16
    assert f"grp {shown}" in m.info
