"""NetlinkSocket against the running kernel, inside namespaces the tests make.

Each answer is checked against something the kernel states independently:
a fresh namespace's link dump holds exactly its loopback (and `ip` agrees
on the veth pair a test adds), a refused request's errno, kernel message and
attribute are what the kernel's extended ACK says, and events arrive on the
groups they were sent to while answers to requests never swallow them.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("scapy")

from scapy.utils import wrpcap  # noqa: E402

import dissect  # noqa: E402
from dissect.scapy import Netlink, NetlinkError, NetlinkSocket, family  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from netns import named_netns, ns_run  # noqa: E402

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "AF_NETLINK"), reason="AF_NETLINK sockets need Linux"
)

rt = family("rt-link")


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def _links(ans):
    return [a for _, a in ans if a[Netlink].nlmsg_type == 16]


def test_dump_reads_to_done_in_a_fresh_namespace():
    with named_netns() as ns, NetlinkSocket("route", netns=ns) as nl:
        ans, unans = nl.sr(Netlink(nlmsg_flags="REQUEST|DUMP") / rt.getlink())
        assert not unans
        last = ans[-1][1][Netlink]
        assert last.nlmsg_type == 3  # NLMSG_DONE ends the dump
        links = _links(ans)
        assert [_text(a.attr("ifname").value) for a in (x[Netlink].payload for x in links)] == [
            "lo"
        ]
        # the socket numbered the request, and every answer carries that number
        seqs = {a[Netlink].nlmsg_seq for _, a in ans}
        assert seqs == {ans[0][0].nlmsg_seq} and 0 not in seqs


def test_dump_sees_what_ip_made():
    with named_netns() as ns:
        ns_run(ns, "ip", "link", "add", "va", "type", "veth", "peer", "name", "vb")
        with NetlinkSocket(rt, netns=ns) as nl:
            links = nl.query(Netlink(nlmsg_flags="REQUEST|DUMP") / rt.getlink())
        names = sorted(_text(p[Netlink].payload.attr("ifname").value) for p in links)
        shown = ns_run(ns, "ip", "-o", "link", "show").stdout
        assert names == ["lo", "va", "vb"]
        for n in names:
            assert f" {n}" in shown


def test_ack_and_error_with_extack():
    with named_netns() as ns, NetlinkSocket("route", netns=ns) as nl:
        ack = nl.sr1(Netlink(nlmsg_flags="REQUEST|ACK") / rt.setlink(ifi_index=1, txqlen=77))
        assert ack[Netlink].nlmsg_type == 2 and ack[Netlink].payload.error == 0
        assert "ACK" in ack.summary()
        assert "qlen 77" in ns_run(ns, "ip", "link", "show", "lo").stdout

        bad = Netlink(nlmsg_flags="REQUEST|ACK|CREATE|EXCL") / rt.newlink(
            ifname="x0", linkinfo={"kind": "no-such-kind"}
        )
        reply = nl.sr1(bad)
        err = reply[Netlink].payload
        assert err.error == -errno.EOPNOTSUPP
        assert "EOPNOTSUPP" in reply.summary()
        with pytest.raises(NetlinkError) as exc:
            nl.query(bad)
        assert exc.value.errno == errno.EOPNOTSUPP
        assert exc.value.name == "EOPNOTSUPP"
        assert exc.value.message == "Unknown device type"
        assert "RTM_NEWLINK" in str(exc.value)
        with pytest.raises(NetlinkError):
            nl.sr(bad, check=True)


def test_extack_offset_is_resolved_to_the_attribute():
    try:
        nl = NetlinkSocket("ethtool")
    except (ValueError, OSError) as exc:
        pytest.skip(f"no ethtool generic netlink family here: {exc}")
    eth = family("ethtool")
    with nl:
        assert nl.genl_id and nl.protocol == 16
        req = Netlink(nlmsg_flags="REQUEST|ACK") / eth.linkinfo_get(
            header={"dev-name": "no-such-dev0"}
        )
        with pytest.raises(NetlinkError) as exc:
            nl.query(req)
    e = exc.value
    assert e.errno == errno.ENODEV
    # the kernel points at the attribute it rejected; nlshark names it
    assert e.attribute == "ETHTOOL_A_LINKINFO_HEADER > ETHTOOL_A_HEADER_DEV_NAME"


def test_genl_family_by_name_and_controller_query():
    with NetlinkSocket("nlctrl") as nl:
        ctrl = family("nlctrl")
        (reply,) = nl.query(Netlink(nlmsg_flags="REQUEST") / ctrl.getfamily(family_name="nlctrl"))
        body = reply[Netlink].payload
        assert body.attr("family-id").value == 16
        assert _text(body.attr("family-name").value) == "nlctrl"


def test_unknown_family_and_group_are_clear_errors():
    with pytest.raises(ValueError, match="unknown netlink family 'no-such-family'"):
        NetlinkSocket("no-such-family")
    with pytest.raises(ValueError, match="has no multicast group 'nope'"):
        NetlinkSocket("route", groups=["nope"])
    with pytest.raises(ValueError, match="out of range"):
        NetlinkSocket(99)


def test_sniff_events_on_groups_and_queue_them_past_requests():
    with (
        named_netns() as ns,
        NetlinkSocket("route", groups=["link", "ipv4-ifaddr"], netns=ns) as nl,
    ):
        assert nl.joined == {"link": 1, "ipv4-ifaddr": 5}

        def change() -> None:
            time.sleep(0.3)
            ns_run(ns, "ip", "link", "add", "ea", "type", "veth", "peer", "name", "eb")
            ns_run(ns, "ip", "addr", "add", "10.77.0.1/24", "dev", "ea")

        t = threading.Thread(target=change)
        t.start()
        events = nl.sniff(timeout=2.5)
        t.join()
        kinds = [(p[Netlink].nlmsg_type, p.nl_group) for p in events]
        assert (16, 1) in kinds  # RTM_NEWLINK on RTNLGRP_LINK
        assert (20, 5) in kinds  # RTM_NEWADDR on RTNLGRP_IPV4_IFADDR
        addr = next(p for p in events if p[Netlink].nlmsg_type == 20)[Netlink].payload
        assert addr.attr("local").value in ("10.77.0.1", b"\x0a\x4d\x00\x01")

        # an event that arrives while a request is answered is kept for recv
        ns_run(ns, "ip", "link", "set", "ea", "up")
        time.sleep(0.2)
        ans, _ = nl.sr(Netlink(nlmsg_flags="REQUEST|DUMP") / rt.getlink())
        assert all(a[Netlink].nlmsg_seq == ans[0][0].nlmsg_seq for _, a in ans)
        later = nl.sniff(timeout=0.5)
        assert any(p[Netlink].nlmsg_type == 16 and p[Netlink].nlmsg_seq == 0 for p in later)


def test_answers_write_a_capture_nlshark_reads(tmp_path):
    out = tmp_path / "answers.pcap"
    with named_netns() as ns, NetlinkSocket("route", netns=ns, record=True) as nl:
        ans, _ = nl.sr(Netlink(nlmsg_flags="REQUEST|DUMP") / family("rt-addr").getaddr())
        wrpcap(str(out), [a for _, a in ans])
        assert len(nl.recorded) >= 2  # the request and at least one answer buffer
    frames = list(dissect.read_capture(str(out)))
    assert len(frames) == len(ans)
    assert frames[-1].messages[0].type_name == "NLMSG_DONE"
    notes = [n.text for f in frames for _, n in f.root.all_notes()]
    assert not [t for t in notes if "malformed" in t.lower()]


def test_raw_bytes_and_explicit_sequence_are_sent_as_given():
    with named_netns() as ns, NetlinkSocket("route", netns=ns) as nl:
        msg = Netlink(nlmsg_flags="REQUEST|ACK", nlmsg_seq=4242) / rt.setlink(ifi_index=99)
        reply = nl.sr1(msg)
        assert reply[Netlink].nlmsg_seq == 4242
        assert reply[Netlink].payload.error == -errno.ENODEV
        reply = nl.sr1(bytes(Netlink(nlmsg_flags="REQUEST|ACK", nlmsg_seq=9) / rt.getlink()))
        assert reply[Netlink].nlmsg_seq == 9


def test_netns_that_does_not_exist():
    with pytest.raises(OSError, match="network namespace"):
        NetlinkSocket("route", netns=f"no-such-ns-{os.getpid()}")


def test_no_answer_is_unanswered():
    # NLMSG_NOOP is dropped by the kernel without an answer
    with NetlinkSocket("route") as nl:
        ans, unans = nl.sr(Netlink(nlmsg_type=1, nlmsg_flags="REQUEST"), timeout=0.3)
        assert not ans and len(unans) == 1


def test_ip_can_be_used_beside(tmp_path):
    """The socket leaves other netlink users alone (its own port id)."""
    with named_netns() as ns, NetlinkSocket("route", netns=ns) as nl:
        assert nl.portid != 0
        subprocess.run(["ip", "-n", ns, "link", "show"], check=True, capture_output=True)
        assert nl.sr1(Netlink(nlmsg_flags="REQUEST|ACK") / rt.getlink(ifi_index=1))


def test_a_batch_of_requests_is_answered_message_by_message():
    from dissect.scapy import NetlinkBatch

    with named_netns() as ns, NetlinkSocket("route", netns=ns) as nl:
        batch = NetlinkBatch(
            msgs=[
                Netlink(nlmsg_flags="REQUEST|ACK") / rt.setlink(ifi_index=1, txqlen=42),
                Netlink(nlmsg_flags="REQUEST|DUMP") / rt.getlink(),
                Netlink(nlmsg_flags="REQUEST|ACK") / rt.setlink(ifi_index=77),
            ]
        )
        ans, unans = nl.sr(batch)
        assert not unans
        sent = ans[0][0]
        seqs = [m.nlmsg_seq for m in sent.msgs]
        assert len(set(seqs)) == 3 and 0 not in seqs
        by_seq: dict[int, list[int]] = {}
        for _, a in ans:
            by_seq.setdefault(a[Netlink].nlmsg_seq, []).append(a[Netlink].nlmsg_type)
        assert by_seq[seqs[0]] == [2]  # the ACK
        assert by_seq[seqs[1]][-1] == 3 and 16 in by_seq[seqs[1]]  # the dump, to its DONE
        assert by_seq[seqs[2]] == [2]
        errs = [a[Netlink].payload.error for _, a in ans if a[Netlink].nlmsg_type == 2]
        assert errs == [0, -errno.ENODEV]


def test_uevents_arrive_whole():
    """Kernel uevents are bare text without a netlink header: one packet each."""
    with named_netns() as ns, NetlinkSocket("kobject_uevent", groups=["kernel"], netns=ns) as nl:
        ns_run(ns, "ip", "link", "add", "ua", "type", "veth", "peer", "name", "ub")
        events = nl.sniff(timeout=1.0)
    texts = [bytes(p)[16:] for p in events]
    assert any(t.startswith(b"add@/devices/virtual/net/ua\0") for t in texts)
    assert all(b"ACTION=" in t for t in texts)
    # each dissects as the generated uevent layer, properties split
    first = next(p for p in events if bytes(p)[16:].startswith(b"add@/devices/virtual/net/ua\0"))
    body = first.payload
    props = [x.decode() if isinstance(x, bytes) else str(x) for x in body.properties]
    assert "ACTION=add" in props and "DEVPATH=/devices/virtual/net/ua" in props
    assert body.extra == b""
