"""The rtnetlink message types beyond links, addresses and routes, against a
real capture (captures/rtnl_full.pcap, recorded with the nlmon VM from
captures/scripts/rtnl_full.sh): namespace ids, address labels, neighbour
tables, multicast addresses, encapsulated routes, nexthop groups and
buckets, the bridge mdb, VLAN database and VNI filter, link statistics and
alternative names.

Every message must be named and decode without `undecoded` or `malformed`
notes (bar iproute2's stray padding bytes, `KNOWN_REQUEST_NOTES`), and
the decoded values must agree with what the tools printed
(captures/rtnl_full.commands.log), matched to their command by the log's
timestamps.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path

import pytest
from cmdlog import Command, bad_notes, find_command, messages_during, read_commands

import dissect
from dissect.core.constants import RTM_TYPES
from dissect.core.netlink import TO_KERNEL

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
PCAP = CAPTURES / "rtnl_full.pcap"
LOG = CAPTURES / "rtnl_full.commands.log"

pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="captures/rtnl_full.pcap not present")

# What iproute2 6.1 itself sends wrong, in requests only: u8/u16 attributes
# of `ip route add ... encap` with stray bytes in their padding.
KNOWN_REQUEST_NOTES = {
    ("rtnl.route.encap_type", "non-zero padding after the attribute"),
    ("rtnl.route.encap.ip6.hoplimit", "non-zero padding after the attribute"),
    ("rtnl.route.encap.ip.ttl", "non-zero padding after the attribute"),
}


@pytest.fixture(scope="module")
def capture():
    return list(dissect.read_capture(PCAP)), read_commands(LOG)


def _during(frames, cmd: Command, family: str, type_name: str) -> list:
    return [m for m in messages_during(frames, cmd, family, type_name) if m.direction != TO_KERNEL]


def _values(msgs, abbrev: str) -> list:
    return [n.value for m in msgs for n in m.node.walk() if n.abbrev == abbrev]


def test_every_message_named_and_clean(capture) -> None:
    frames, _ = capture
    seen = set()
    for f in frames:
        for m in f.messages:
            seen.add(m.type_name)
            assert not re.fullmatch(r"(RTM_)?\d+|.*type \d+", m.type_name), m.type_name
            if m.type >= 16:
                assert m.layout is not None, f"frame {f.number}: {m.type_name}"
            for abbrev, text in bad_notes(m):
                assert m.direction == TO_KERNEL and (abbrev, text) in KNOWN_REQUEST_NOTES, (
                    f"frame {f.number} {m.type_name}: {abbrev}: {text}"
                )
    assert all(t in RTM_TYPES.values() or t.startswith("NLMSG_") for t in seen)
    wanted = {
        "RTM_NEWNSID", "RTM_GETNSID", "RTM_DELNSID", "RTM_NEWADDRLABEL", "RTM_GETADDRLABEL",
        "RTM_DELADDRLABEL", "RTM_NEWNEIGHTBL", "RTM_GETNEIGHTBL", "RTM_SETNEIGHTBL",
        "RTM_NEWNEXTHOP", "RTM_NEWNEXTHOPBUCKET", "RTM_GETNEXTHOPBUCKET", "RTM_NEWMDB",
        "RTM_GETMDB", "RTM_DELMDB", "RTM_NEWVLAN", "RTM_GETVLAN", "RTM_NEWTUNNEL",
        "RTM_GETTUNNEL", "RTM_NEWSTATS", "RTM_GETSTATS", "RTM_NEWLINKPROP", "RTM_DELLINKPROP",
        "RTM_GETDCB", "RTM_NEWNETCONF", "RTM_NEWPREFIX", "RTM_NEWNDUSEROPT", "RTM_NEWCACHEREPORT", "RTM_GETMULTICAST", "RTM_GETANYCAST",
    }  # fmt: skip
    assert wanted <= seen, sorted(wanted - seen)


def test_nsids_agree_with_list_id(capture) -> None:
    frames, cmds = capture
    for nth in (0, 1):
        cmd = find_command(cmds, "ip netns list-id", nth)
        printed = {int(x) for x in re.findall(r"^nsid (\d+)", "\n".join(cmd.output), re.M)}
        decoded = set(_values(_during(frames, cmd, "rt-nsid", "RTM_NEWNSID"), "rtnl.nsid.nsid"))
        assert printed and decoded == printed


def test_nsid_set_request(capture) -> None:
    frames, cmds = capture
    cmd = find_command(cmds, "ip netns set nsa 7")
    reqs = [
        m
        for m in messages_during(frames, cmd, "rt-nsid", "RTM_NEWNSID")
        if m.direction == TO_KERNEL
    ]
    assert _values(reqs, "rtnl.nsid.nsid") == [7]


def test_addrlabels_agree(capture) -> None:
    frames, cmds = capture
    cmd = find_command(cmds, "ip addrlabel list")
    printed = {
        (ipaddress.ip_network(p), int(label))
        for p, label in re.findall(r"prefix (\S+) label (\d+)", "\n".join(cmd.output))
    }
    decoded = set()
    for m in _during(frames, cmd, "rt-addr", "RTM_NEWADDRLABEL"):
        addr = ipaddress.ip_address(bytes(m.node.find("rtnl.addrlabel.address").value))
        plen = m.node.find("rtnl.ifaddrlblmsg.ifal_prefixlen").value
        label = m.node.find("rtnl.addrlabel.label").value
        decoded.add((ipaddress.ip_network(f"{addr}/{plen}"), label))
    assert (ipaddress.ip_network("2001:db8:f::/48"), 42) in printed
    assert decoded == printed


def test_altname_and_mtu(capture) -> None:
    frames, cmds = capture
    cmd = find_command(cmds, "ip link show rfd0")
    out = "\n".join(cmd.output)
    mtu = int(re.search(r"mtu (\d+)", out).group(1))
    alt = re.search(r"altname (\S+)", out).group(1)
    msgs = _during(frames, cmd, "rt-link", "RTM_NEWLINK")
    assert set(_values(msgs, "rtnl.link.ifname")) == {"rfd0"}
    assert set(_values(msgs, "rtnl.link.mtu")) == {mtu}
    assert alt in _values(msgs, "rtnl.link.prop_list.alt_ifname")
    add = find_command(cmds, "ip link property add dev rfd0 altname rf-dummy-long-name")
    req = [m for m in messages_during(frames, add, "rt-link", "RTM_NEWLINKPROP")]
    assert _values(req, "rtnl.link.prop_list.alt_ifname") == [alt]


def _link_indexes(cmds) -> dict[str, int]:
    """Interface name -> index as `ip -s -d link show` printed them."""
    out = "\n".join(find_command(cmds, "ip -s -d link show").output)
    return {name: int(i) for i, name in re.findall(r"^(\d+): ([^:@\s]+)[@:]", out, re.M)}


def test_links_agree_with_ip_link_show(capture) -> None:
    frames, cmds = capture
    cmd = find_command(cmds, "ip -s -d link show")
    out = "\n".join(cmd.output)
    printed = {
        (int(i), name, int(mtu))
        for i, name, mtu in re.findall(r"^(\d+): ([^:@\s]+)\S*: <[^>]*> mtu (\d+)", out, re.M)
    }
    decoded = {
        (
            m.node.find("rtnl.ifinfomsg.ifi_index").value,
            m.node.find("rtnl.link.ifname").value,
            m.node.find("rtnl.link.mtu").value,
        )
        for m in _during(frames, cmd, "rt-link", "RTM_NEWLINK")
    }
    assert len(printed) >= 8 and decoded == printed


# `ip ntable show` names -> IFLA NDTPA_* field names (linux/neighbour.h)
NTABLE_FIELDS = {
    "refcnt": "refcnt", "reachable": "reachable_time", "base_reachable": "base_reachable_time",
    "retrans": "retrans_time", "gc_stale": "gc_staletime", "delay_probe": "delay_probe_time",
    "queue": "queue_len", "app_probes": "app_probes", "ucast_probes": "ucast_probes",
    "mcast_probes": "mcast_probes", "anycast_delay": "anycast_delay",
    "proxy_delay": "proxy_delay", "proxy_queue": "proxy_qlen", "locktime": "locktime",
}  # fmt: skip


def test_ntable_agrees(capture) -> None:
    frames, cmds = capture
    cmd = find_command(cmds, "ip ntable show name arp_cache dev rf0")
    printed = {k: int(v) for k, v in re.findall(r"\b([a-z_]+) (\d+)", "\n".join(cmd.output))}
    rf0 = _link_indexes(cmds)["rf0"]
    msgs = [
        m
        for m in _during(frames, cmd, "rt-neigh", "RTM_NEWNEIGHTBL")
        if _values([m], "rtnl.neightbl.name") == ["arp_cache"]
        and _values([m], "rtnl.neightbl.parms.ifindex") == [rf0]
    ]
    assert len(msgs) == 1
    decoded = {k: _values(msgs, f"rtnl.neightbl.parms.{f}")[0] for k, f in NTABLE_FIELDS.items()}
    assert decoded == {k: printed[k] for k in NTABLE_FIELDS}
    # what `ip ntable change ... queue 8 locktime 20` set
    assert (decoded["queue"], decoded["locktime"]) == (8, 20)


def test_buckets_agree(capture) -> None:
    frames, cmds = capture
    cmd = find_command(cmds, "ip nexthop bucket show id 21")
    printed = {
        int(i): int(n) for i, n in re.findall(r"index (\d+) .*nhid (\d+)", "\n".join(cmd.output))
    }
    decoded = {}
    for m in _during(frames, cmd, "rt-nexthop", "RTM_NEWNEXTHOPBUCKET"):
        idx = _values([m], "rtnl.nexthop.res_bucket.index")
        nhid = _values([m], "rtnl.nexthop.res_bucket.nh_id")
        decoded[idx[0]] = nhid[0]
    assert len(printed) == 8 and decoded == printed


def _mdb_group(raw: bytes, proto: int) -> str:
    if proto == 0x0800:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    if proto == 0x86DD:
        return socket.inet_ntop(socket.AF_INET6, raw[:16])
    return raw[:6].hex(":")


def test_mdb_agrees(capture) -> None:
    frames, cmds = capture
    cmd = find_command(cmds, "bridge mdb show")
    printed = set(
        re.findall(r"port (\S+) grp (\S+) (temp|permanent) vid (\d+)", "\n".join(cmd.output))
    )
    names = {i: n for n, i in _link_indexes(cmds).items()}
    decoded = set()
    for m in _during(frames, cmd, "rt-mdb", "RTM_GETMDB"):
        for n in m.node.walk():
            if n.abbrev != "rtnl.mdb.mdb.entry.info":
                continue
            e = {
                c.abbrev.rsplit(".", 1)[-1]: c.value
                for c in n.find("rtnl.mdb.mdb.entry.info.br_mdb_entry").children
            }
            state = "permanent" if e["state"] == 1 else "temp"
            decoded.add(
                (names[e["ifindex"]], _mdb_group(e["addr"], e["proto"]), state, str(e["vid"]))
            )
    assert ("rp0", "239.1.1.1", "permanent", "10") in printed
    assert decoded == printed


def test_vlan_global_agrees(capture) -> None:
    frames, cmds = capture
    cmd = find_command(cmds, "bridge vlan global show")
    out = "\n".join(cmd.output)
    printed = re.findall(r"^\s*(?:rbr0)?\s+(\d+)(?:-(\d+))?\s*$", out, re.M)
    intervals = re.findall(r"mcast_query_interval (\d+)", out)
    msgs = _during(frames, cmd, "rt-vlan", "RTM_NEWVLAN")
    ids = _values(msgs, "rtnl.vlan.global_options.id")
    ranges = _values(msgs, "rtnl.vlan.global_options.range")
    assert [int(a) for a, _ in printed] == ids
    assert [int(b) for _, b in printed if b] == ranges
    assert [int(x) for x in intervals] == _values(
        msgs, "rtnl.vlan.global_options.mcast_query_intvl"
    )
    assert "9000" in intervals


def test_vni_agrees(capture) -> None:
    frames, cmds = capture
    cmd = find_command(cmds, "bridge vni show")
    printed = re.findall(r"^\S*\s+(\d+)(?:-(\d+))?\s*$", "\n".join(cmd.output[1:]), re.M)
    msgs = _during(frames, cmd, "rt-tunnel", "RTM_NEWTUNNEL")
    assert [int(a) for a, _ in printed] == _values(msgs, "rtnl.tunnel.entry.start")
    assert [int(b) for _, b in printed if b] == _values(msgs, "rtnl.tunnel.entry.end")


def test_encap_routes_agree(capture) -> None:
    frames, cmds = capture
    cmd = find_command(cmds, "ip -6 route show")
    out = "\n".join(cmd.output)
    printed = {ipaddress.ip_network(p) for p in re.findall(r"^(\S+/\d+)\s+encap", out, re.M)}
    decoded = set()
    for m in _during(frames, cmd, "rt-route", "RTM_NEWROUTE"):
        if m.node.find("rtnl.route.encap_type") is None:
            continue
        dst = ipaddress.ip_address(bytes(m.node.find("rtnl.route.dst").value))
        plen = m.node.find("rtnl.rtmsg.rtm_dst_len").value
        decoded.add(ipaddress.ip_network(f"{dst}/{plen}"))
    assert len(printed) >= 3 and decoded == printed
    segs = re.search(r"2001:db8:100::/64 .*segs \d+ \[ ([^\]]+) \]", out).group(1).split()
    # the SRH lists the segments last first (RFC 8754)
    decoded = [
        [str(ipaddress.ip_address(bytes(c.value))) for c in n.children]
        for m in _during(frames, cmd, "rt-route", "RTM_NEWROUTE")
        for n in m.node.walk()
        if n.abbrev == "rtnl.seg6_iptunnel_encap.segments" and n.name == "segments"
    ]
    assert list(reversed(segs)) in decoded, decoded
    modes = {
        n.display.split()[0]
        for m in _during(frames, cmd, "rt-route", "RTM_NEWROUTE")
        for n in m.node.walk()
        if n.abbrev == "rtnl.seg6_iptunnel_encap.mode"
    }
    assert set(re.findall(r"encap seg6 mode (\w+)", out)) == modes


def test_summaries(capture) -> None:
    frames, cmds = capture
    cmd = find_command(cmds, "ip netns list-id")
    infos = [m.info for m in _during(frames, cmd, "rt-nsid", "RTM_NEWNSID")]
    assert "nsid 7" in infos
    cmd = find_command(cmds, "bridge vni show")
    infos = [m.info for m in _during(frames, cmd, "rt-tunnel", "RTM_NEWTUNNEL")]
    assert any(i.endswith("vni 3000") for i in infos), infos


def _monitor_lines(tag: str) -> list[str]:
    """What the background `ip -t monitor all` printed for one object kind."""
    return [
        line.split(f"[{tag}]", 1)[1]
        for line in LOG.read_text().splitlines()
        if line.startswith("#") and f"[{tag}]" in line
    ]


def test_prefixes_agree_with_ip_monitor(capture) -> None:
    frames, cmds = capture
    printed = {
        (ipaddress.ip_network(p), dev, int(valid), int(pref))
        for p, dev, valid, pref in (
            re.match(r"prefix (\S+?)dev (\S+) valid (\d+) preferred (\d+)", line).groups()
            for line in _monitor_lines("PREFIX")
        )
    }
    names = {i: n for n, i in _link_indexes_before_del(cmds).items()}
    decoded = set()
    for f in frames:
        for m in f.messages:
            if m.type_name != "RTM_NEWPREFIX":
                continue
            addr = ipaddress.ip_address(bytes(m.node.find("rtnl.prefix.address").value))
            plen = m.node.find("rtnl.prefixmsg.prefix_len").value
            dev = names[m.node.find("rtnl.prefixmsg.prefix_ifindex").value]
            valid = m.node.find("rtnl.prefix_cacheinfo.valid_time").value
            pref = m.node.find("rtnl.prefix_cacheinfo.preferred_time").value
            decoded.add((ipaddress.ip_network(f"{addr}/{plen}"), dev, valid, pref))
            # on-link and autonomous, as the advertisement said (rtnl_full_ra.py)
            assert m.node.find("rtnl.prefixmsg.prefix_flags").value == 0xC0
    assert printed and decoded == printed


def _link_indexes_before_del(cmds) -> dict[str, int]:
    """ra0/ra1 exist only around rtnl_full_ra.py: their indexes from ip monitor."""
    out = {}
    for line in _monitor_lines("LINK"):
        m = re.match(r"(\d+): ([^:@\s]+)", line)
        if m:
            out[m.group(2)] = int(m.group(1))
    return out


def test_nduseropt_from_the_router(capture) -> None:
    frames, cmds = capture
    cmd = find_command(cmds, "ip -6 route show dev ra1")
    router = re.search(r"default via (\S+) proto ra", "\n".join(cmd.output)).group(1)
    ra1 = _link_indexes_before_del(cmds)["ra1"]
    msgs = [
        m
        for f in frames
        for m in f.messages
        if m.type_name == "RTM_NEWNDUSEROPT"
        and m.node.find("rtnl.nduseroptmsg.nduseropt_ifindex").value == ra1
    ]
    assert msgs
    for m in msgs:
        src = ipaddress.ip_address(bytes(m.node.find("rtnl.nduseropt.srcaddr").value))
        assert str(src) == router
        opts = m.node.find("rtnl.nduseroptmsg.options").value
        assert len(opts) == m.node.find("rtnl.nduseroptmsg.nduseropt_opts_len").value
        assert len(opts) == opts[1] * 8  # one ND option, its length in 8-byte units
    # the RDNSS option (type 25) of the advertisement
    assert any(m.node.find("rtnl.nduseroptmsg.options").value[0] == 25 for m in msgs)
    # and each option split as captures/scripts/rtnl_full_ra.py wrote it
    shown = {}
    for m in msgs:
        opt = m.node.find("rtnl.nduseropt.option")
        fields = {c.name: c.display for c in opt.children}
        shown[fields["type"]] = fields
        assert not [n for n, _ in m.node.all_notes()]
    assert shown["RDNSS (25)"]["address"] == "2001:db8::53"
    assert shown["RDNSS (25)"]["lifetime"] == "600 s"
    info = shown["prefix information (3)"]
    assert info["prefix"] == "2001:db8:5a::" and info["prefix length"] == "64"
    assert info["flags"] == "0xc0 (on-link|autonomous)"
    assert info["valid lifetime"] == "86400 s" and info["preferred lifetime"] == "14400 s"


def test_cache_report_agrees_with_ip_monitor(capture) -> None:
    frames, _ = capture
    printed = {
        re.match(r"\((\S+),(\S+)\)", line).groups()
        for line in _monitor_lines("MROUTE")
        if not line.startswith("Deleted")
    }
    reports = [m for f in frames for m in f.messages if m.type_name == "RTM_NEWCACHEREPORT"]
    assert reports
    for m in reports:
        src = ipaddress.ip_address(bytes(m.node.find("rtnl.creport.src_addr").value))
        dst = ipaddress.ip_address(bytes(m.node.find("rtnl.creport.dst_addr").value))
        assert (str(src), str(dst)) in printed
        assert m.node.find("rtnl.creport.msgtype").display.startswith("nocache")


def _proc_addrs(cmds, path: str) -> set[tuple[int, ipaddress.IPv6Address]]:
    """(ifindex, address) of /proc/net/igmp6 or /proc/net/anycast6 as the log shows it."""
    out = set()
    for line in find_command(cmds, f"cat {path}").output:
        f = line.split()
        out.add((int(f[0]), ipaddress.IPv6Address(bytes.fromhex(f[2]))))
    return out


@pytest.mark.parametrize(
    "type_name, field, path",
    [
        ("RTM_GETMULTICAST", "rtnl.addr.multicast", "/proc/net/igmp6"),
        ("RTM_GETANYCAST", "rtnl.addr.anycast", "/proc/net/anycast6"),
    ],
)
def test_ipv6_multicast_and_anycast_dumps_agree_with_proc(capture, type_name, field, path):
    frames, cmds = capture
    cmd = find_command(cmds, "python3 /tmp/out/user/rtnl_full_ra.py")
    decoded = {
        (
            m.node.find("rtnl.ifaddrmsg.ifa_index").value,
            ipaddress.IPv6Address(bytes(m.node.find(field).value)),
        )
        for m in _during(frames, cmd, "rt-addr", type_name)
    }
    assert decoded and decoded == _proc_addrs(cmds, path)


def _nduseropt(options: bytes) -> list:
    """An RTM_NEWNDUSEROPT notification carrying `options` (struct
    nduseroptmsg, linux/rtnetlink.h), decoded."""
    import struct

    import dissect
    from dissect.capture import netlink_pseudo_header

    body = struct.pack("=BxHiBBHI", 10, len(options), 3, 134, 0, 0, 0) + options
    body += bytes(-len(body) % 4)
    msg = struct.pack("=IHHII", 16 + len(body), 68, 0, 0, 0) + body
    frame = dissect.decode_frame(netlink_pseudo_header(0) + msg)
    return frame.messages


def test_nd_options_of_every_kind_the_kernel_forwards() -> None:
    import socket
    import struct

    a6 = lambda t: socket.inet_pton(socket.AF_INET6, t)  # noqa: E731
    dnssl = b"\x07example\x03com\x00\x03lab\x00"
    dnssl += bytes(-(len(dnssl) + 8) % 8)
    opts = (
        struct.pack("!BBHI", 25, 5, 0, 0xFFFFFFFF) + a6("2001:db8::1") + a6("2001:db8::2")
        + struct.pack("!BBHI", 31, (8 + len(dnssl)) // 8, 0, 300) + dnssl
        + struct.pack("!BBBBI", 24, 2, 48, 0x08, 1800) + a6("2001:db8:77::")[:8]
        + struct.pack("!BBH", 38, 2, (600 // 8) << 3 | 1) + a6("64:ff9b::")[:12]
        + struct.pack("!BB", 37, 3) + b"https://cp.example/\0\0\0"
        + struct.pack("!BB", 200, 1) + b"\xaa" * 6
    )  # fmt: skip
    (m,) = _nduseropt(opts)
    node = m.node.find("rtnl.nduseroptmsg.options")
    kids = {c.name: c.display for c in node.children}
    assert kids["ND option: RDNSS"] == "2001:db8::1 2001:db8::2"
    assert kids["ND option: DNSSL"] == "example.com lab"
    assert kids["ND option: route information"] == "2001:db8:77::/48 preference high"
    assert kids["ND option: PREF64"] == "64:ff9b::/64"
    assert kids["ND option: captive portal"] == "https://cp.example/"
    assert "ND option: option 200" in kids
    assert not [n for n, _ in m.node.all_notes()]
    assert "RDNSS 2001:db8::1 2001:db8::2" in m.info


def test_nd_option_lengths_that_lie_are_malformed() -> None:
    import struct

    (m,) = _nduseropt(struct.pack("!BBHI", 25, 0, 0, 1))
    notes = [n.text for _, n in m.node.all_notes()]
    assert any("ND option 25: length 0" in t for t in notes)
    (m,) = _nduseropt(struct.pack("!BBHI", 25, 3, 0, 1))
    notes = [n.text for _, n in m.node.all_notes()]
    assert any("runs 16 bytes past the options" in t for t in notes)
