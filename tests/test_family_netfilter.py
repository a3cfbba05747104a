"""NETLINK_NETFILTER: nf_tables and ctnetlink, from a real capture and a real kernel.

The capture (../shared/captures/mixed_families.pcapng, recorded on nlmon)
holds `nft add table/chain/rule` batches, `nft list table` dumps and a
`conntrack -L` dump (see its .commands.log).  Every NETFILTER message must
decode with no `undecoded` or `malformed` note, and the table, chain and
rule must carry the values `nft list table` printed.

The kernel tests run `nft` inside a network namespace the test creates, dump
the ruleset over our own NETLINK_NETFILTER socket there and compare the
decoded messages with `nft list ruleset`; then they make a TCP connection on
the namespace's loopback and find it, decoded, in a ctnetlink dump.  Crafted
messages (ctnetlink has no entries in the capture) check the byte order of
every conntrack value we decode.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import socket
import struct
import textwrap
from pathlib import Path

import pytest
from cmdlog import bad_notes, find_command, messages_during, read_commands
from netns import named_netns, ns_run
from nlbuild import attr, frame, msg

import dissect
from dissect.capture.nlsocket import NLM_F_DUMP, RawNetlinkSocket
from dissect.core.netlink import Session

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "captures"
PCAP = SHARED / "mixed_families.pcapng"
LOG = SHARED / "mixed_families.commands.log"

NETLINK_NETFILTER = 12
# linux/netfilter/nfnetlink.h, nf_tables.h, nfnetlink_conntrack.h
NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_NFTABLES = 1, 10
NFT_MSG_NEWTABLE, NFT_MSG_GETTABLE, NFT_MSG_GETCHAIN, NFT_MSG_GETRULE = 0, 1, 4, 7
IPCTNL_MSG_CT_NEW, IPCTNL_MSG_CT_GET = 0, 1
NFPROTO_UNSPEC, NFPROTO_INET, NFPROTO_IPV4 = 0, 1, 2
NF_INET_LOCAL_OUT = 3


def _kids(node):
    out = {}
    for c in node.children or ():
        out.setdefault(c.abbrev.rsplit(".", 1)[-1], c)
    return out


def _expressions(m) -> list[tuple[str, dict]]:
    """(name, {attribute: value}) of each expression of a rule message."""
    out = []
    for elem in _kids(m.node)["expressions"].children:
        k = _kids(elem)
        data = {}
        for c in k["data"].children or ():
            leaf = c.abbrev.rsplit(".", 1)[-1]
            if c.children:  # NFTA_*_DATA nests: the value or the verdict code
                inner = _kids(c)
                v = inner.get("value") or _kids(inner["verdict"])["code"]
                data[leaf] = v.value
            else:
                data[leaf] = c.value
        out.append((k["name"].value, data))
    return out


# -- the capture ------------------------------------------------------------


@pytest.fixture(scope="module")
def capture():
    if not PCAP.exists():
        pytest.skip("../shared/captures/mixed_families.pcapng not present")
    return list(dissect.read_capture(PCAP)), read_commands(LOG)


def test_capture_netfilter_decodes_clean(capture):
    frames, _ = capture
    seen = set()
    n = 0
    for f in frames:
        for m in f.messages:
            if m.protocol != NETLINK_NETFILTER:
                continue
            n += 1
            # nft leaves garbage in the padding of one attribute (frame 65's
            # NFTA_TABLE_NAME "mx\\0" is padded with 0xc6): that is a true
            # malformed note; nothing else may be noted.
            bad = [t for _a, t in bad_notes(m) if t != "non-zero padding after the attribute"]
            assert not bad, (f.number, m.type_name, bad)
            if m.type >= 16:
                assert m.layout is not None, (f.number, m.type_name)
                assert m.node.child("nfnl.nfgenmsg") is not None, (f.number, m.type_name)
            seen.add((m.family, m.type_name))
    assert n == 76
    assert {
        ("nfnetlink", "NFNL_MSG_BATCH_BEGIN"),
        ("nfnetlink", "NFNL_MSG_BATCH_END"),
        ("nftables", "NFT_MSG_NEWTABLE"),
        ("nftables", "NFT_MSG_NEWCHAIN"),
        ("nftables", "NFT_MSG_NEWRULE"),
        ("nftables", "NFT_MSG_GETGEN"),
        ("nftables", "NFT_MSG_NEWGEN"),
        ("ctnetlink", "IPCTNL_MSG_CT_GET"),
    } <= seen


def test_capture_batches_name_their_subsystem(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "nft add table inet mx")
    msgs = [m for f in frames if cmd.start_ns <= f.ts_ns <= cmd.end_ns for m in f.messages]
    names = [m.type_name for m in msgs if m.family in ("nfnetlink", "nftables")]
    i = names.index("NFNL_MSG_BATCH_BEGIN")
    assert names[i : i + 3] == ["NFNL_MSG_BATCH_BEGIN", "NFT_MSG_NEWTABLE", "NFNL_MSG_BATCH_END"]
    begin = next(m for m in msgs if m.type_name == "NFNL_MSG_BATCH_BEGIN")
    assert _kids(_kids(begin.node)["nfgenmsg"])["res_id"].value == NFNL_SUBSYS_NFTABLES
    assert begin.info == "nftables (10)"
    table = next(m for m in msgs if m.type_name == "NFT_MSG_NEWTABLE")
    assert _kids(_kids(table.node)["nfgenmsg"])["nfgen_family"].value == NFPROTO_INET
    assert _kids(table.node)["name"].value == "mx"


def test_capture_matches_nft_list(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "nft list table inet mx")
    out = "\n".join(cmd.output)
    fam, table = re.search(r"^table (\w+) (\w+) \{", out, re.M).groups()
    chain = re.search(r"^\s*chain (\w+) \{", out, re.M).group(1)
    ctype, hook, prio, policy = re.search(
        r"type (\w+) hook (\w+) priority (\w+); policy (\w+);", out
    ).groups()
    net = ipaddress.ip_network(re.search(r"ip daddr (\S+) counter", out).group(1))
    pkts, nbytes = map(int, re.search(r"counter packets (\d+) bytes (\d+)", out).groups())

    chains = messages_during(frames, cmd, "nftables", "NFT_MSG_NEWCHAIN")
    (c,) = chains
    k = _kids(c.node)
    assert (k["table"].value, k["name"].value, k["type"].value) == (table, chain, ctype)
    hk = _kids(k["hook"])
    assert hk["hooknum"].display.startswith(hook)
    # nft names priority 0 of a filter chain "filter" (NF_IP_PRI_FILTER)
    assert hk["priority"].value == {"filter": 0}.get(prio, prio)
    assert k["policy"].display.startswith(policy)

    (r,) = messages_during(frames, cmd, "nftables", "NFT_MSG_NEWRULE")
    k = _kids(r.node)
    assert (k["table"].value, k["chain"].value) == (table, chain)
    assert _kids(_kids(r.node)["nfgenmsg"])["nfgen_family"].display.startswith(fam)
    prefix_len = net.prefixlen // 8  # nft matches a /24 as its first 3 bytes
    assert (
        _expressions(r)
        == [
            ("meta", {"key": 15, "dreg": 1}),  # NFT_META_NFPROTO
            ("cmp", {"sreg": 1, "op": 0, "data": bytes([NFPROTO_IPV4])}),
            ("payload", {"dreg": 1, "base": 1, "offset": 16, "len": prefix_len}),  # iphdr daddr
            ("cmp", {"sreg": 1, "op": 0, "data": net.network_address.packed[:prefix_len]}),
            ("counter", {"bytes": nbytes, "packets": pkts}),
        ]
    )
    assert r.info.startswith(f"{fam} {table} {chain} handle ")
    assert "payload load 3b @ network header + 16 => reg 1" in r.info
    assert "cmp eq reg 1 0xc6120a" in r.info


def test_capture_conntrack_list_dump(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "conntrack -L")
    assert "0 flow entries" in "\n".join(cmd.output)
    msgs = [
        m
        for f in frames
        if cmd.start_ns <= f.ts_ns <= cmd.end_ns
        for m in f.messages
        if m.protocol == NETLINK_NETFILTER
    ]
    req = next(m for m in msgs if m.type_name == "IPCTNL_MSG_CT_GET")
    assert req.type == (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
    assert req.flags & NLM_F_DUMP == NLM_F_DUMP
    # no entries: the dump answers NLMSG_DONE straight away
    assert [m.type_name for m in msgs if m is not req] == ["NLMSG_DONE"]


# -- crafted ctnetlink messages ------------------------------------------------


def _be(t: int, fmt: str, v: int) -> bytes:
    return attr(t, struct.pack(">" + fmt, v))


def _nest(t: int, *kids: bytes) -> bytes:
    return attr(t, b"".join(kids), nested=True)


def _tuple(t: int, src: str, dst: str, sport: int, dport: int) -> bytes:
    # CTA_TUPLE_IP { CTA_IP_V4_SRC, CTA_IP_V4_DST }, CTA_TUPLE_PROTO { NUM, ports }
    return _nest(
        t,
        _nest(1, attr(1, socket.inet_aton(src)), attr(2, socket.inet_aton(dst))),
        _nest(2, attr(1, bytes([6])), _be(2, "H", sport), _be(3, "H", dport)),
    )


def test_crafted_conntrack_entry():
    body = struct.pack(">BBH", NFPROTO_IPV4, 0, 0) + b"".join(
        [
            _tuple(1, "192.0.2.1", "198.51.100.2", 40000, 443),  # CTA_TUPLE_ORIG
            _tuple(2, "198.51.100.2", "192.0.2.1", 443, 40000),  # CTA_TUPLE_REPLY
            _be(3, "I", 0x0E),  # CTA_STATUS: SEEN_REPLY|ASSURED|CONFIRMED
            _nest(4, _nest(1, attr(1, bytes([3])))),  # CTA_PROTOINFO_TCP_STATE established
            _be(7, "I", 431999),  # CTA_TIMEOUT
            _be(8, "I", 0x10),  # CTA_MARK
            _nest(9, _be(1, "Q", 12), _be(2, "Q", 3456)),  # CTA_COUNTERS_ORIG
            _be(11, "I", 1),  # CTA_USE
            _be(12, "I", 0xDEADBEEF),  # CTA_ID
            _be(18, "H", 7),  # CTA_ZONE
            _nest(20, _be(1, "Q", 10**18)),  # CTA_TIMESTAMP_START
        ]
    )
    data = frame(NETLINK_NETFILTER, msg((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW, 0, body))
    (m,) = dissect.decode_frame(data).messages
    assert (m.family, m.type_name) == ("ctnetlink", "IPCTNL_MSG_CT_NEW")
    assert not bad_notes(m)
    k = _kids(m.node)
    orig = _kids(k["tuple_orig"])
    assert _kids(orig["ip"])["v4_src"].display == "192.0.2.1"
    proto = _kids(orig["proto"])
    assert (proto["num"].display, proto["src_port"].value, proto["dst_port"].value) == (
        "tcp (6)",
        40000,
        443,
    )
    assert k["status"].display == "0x0000000e (SEEN_REPLY|ASSURED|CONFIRMED)"
    assert _kids(_kids(k["protoinfo"])["tcp"])["state"].display == "established (3)"
    assert (k["timeout"].value, k["mark"].value, k["use"].value, k["id"].value) == (
        431999,
        0x10,
        1,
        0xDEADBEEF,
    )
    assert k["zone"].value == 7
    assert _kids(k["counters_orig"])["bytes"].value == 3456
    assert _kids(k["timestamp"])["start"].value == 10**18
    assert m.info == (
        "tcp 6 431999 ESTABLISHED src=192.0.2.1 dst=198.51.100.2 sport=40000 dport=443 "
        "src=198.51.100.2 dst=192.0.2.1 sport=443 dport=40000 [ASSURED] mark=16 zone=7 use=1"
        " (notification)"
    )


def test_unknown_subsystem_shows_nfgenmsg_and_names_it():
    # NFNL_SUBSYS_QUEUE (3), NFQNL_MSG_CONFIG (2): no attribute set of ours
    body = struct.pack(">BBH", NFPROTO_UNSPEC, 0, 5) + _be(1, "I", 1)
    data = frame(NETLINK_NETFILTER, msg((3 << 8) | 2, 1, body))
    (m,) = dissect.decode_frame(data).messages
    assert m.type_name == "NFNL_SUBSYS_QUEUE 770"
    assert _kids(_kids(m.node)["nfgenmsg"])["res_id"].value == 5
    assert [g for _a, g in bad_notes(m)]
    assert all("not described" in text for _a, text in bad_notes(m))


# -- a real kernel ---------------------------------------------------------------

RULESET = textwrap.dedent(
    """\
    table inet nlt {
        chain out {
            type filter hook output priority 10; policy accept;
            ct state established,related counter accept
            ip daddr 127.0.0.3 tcp dport 4444 drop
        }
    }
    """
)


def _dump(ns: str, msg_type: int, family: int = NFPROTO_UNSPEC) -> list:
    session = Session()
    frames = []
    with RawNetlinkSocket(NETLINK_NETFILTER, netns=ns) as sock:
        sock.settimeout(5)
        body = struct.pack(">BBH", family, 0, 0)
        request = struct.pack("=IHHII", 20, msg_type, NLM_F_DUMP | 1, sock.seq + 1, 0) + body
        frames.append(sock.as_frame(request))
        frames += [sock.as_frame(b) for b in sock.transact(msg_type, NLM_F_DUMP, body)]
    return [m for f in frames for m in session.decode(f).messages]


@pytest.fixture(scope="module")
def nft_ns(tmp_path_factory):
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed")
    with named_netns("nlshark-nft") as ns:
        rules = tmp_path_factory.mktemp("nft") / "ruleset.nft"
        rules.write_text(RULESET)
        made = ns_run(ns, "nft", "-f", str(rules), check=False)
        if made.returncode != 0:
            pytest.skip(f"nft cannot load a ruleset here: {made.stderr.strip()}")
        ns_run(ns, "ip", "link", "set", "lo", "up")
        yield ns


def test_kernel_ruleset_dump_matches_nft_list(nft_ns):
    listed = ns_run(nft_ns, "nft", "-a", "list", "ruleset").stdout
    tables = [
        m
        for m in _dump(nft_ns, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE)
        if m.type_name == "NFT_MSG_NEWTABLE"
    ]
    assert [(_kids(m.node)["name"].value) for m in tables] == ["nlt"]
    assert not any(bad_notes(m) for m in tables)
    handle = re.search(r"^table inet nlt \{ # handle (\d+)", listed, re.M).group(1)
    assert _kids(tables[0].node)["handle"].value == int(handle)

    chains = [
        m
        for m in _dump(nft_ns, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN)
        if m.type_name == "NFT_MSG_NEWCHAIN"
    ]
    (c,) = chains
    assert not bad_notes(c)
    k = _kids(c.node)
    assert (k["table"].value, k["name"].value, k["type"].value) == ("nlt", "out", "filter")
    hook = _kids(k["hook"])
    assert (hook["hooknum"].value, hook["priority"].value) == (NF_INET_LOCAL_OUT, 10)
    assert "type filter hook output priority filter + 10; policy accept;" in listed
    assert c.info.startswith("inet nlt out handle ")

    rules = [
        m
        for m in _dump(nft_ns, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE)
        if m.type_name == "NFT_MSG_NEWRULE"
    ]
    assert len(rules) == 2
    assert not any(bad_notes(m) for m in rules)
    handles = [int(h) for h in re.findall(r"(?:accept|drop) # handle (\d+)", listed)]
    assert [_kids(m.node)["handle"].value for m in rules] == handles
    names = [[n for n, _ in _expressions(m)] for m in rules]
    assert names[0] == ["ct", "bitwise", "cmp", "counter", "immediate"]
    assert names[1][-1] == "immediate"
    assert {"payload", "cmp", "meta"} <= set(names[1])
    first = dict(_expressions(rules[0]))
    assert first["ct"]["key"] == 0  # NFT_CT_STATE
    assert first["immediate"]["data"] == 1  # NF_ACCEPT
    assert rules[0].info.endswith("immediate reg 0 accept")
    assert rules[1].info.endswith("immediate reg 0 drop")
    # 127.0.0.3 and port 4444 as the rule's cmp data, in network byte order
    datas = [d.get("data") for n, d in _expressions(rules[1]) if n == "cmp"]
    assert socket.inet_aton("127.0.0.3") in datas
    assert struct.pack(">H", 4444) in datas


LOOPBACK_TCP = textwrap.dedent(
    """\
    import socket
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
    cli = socket.create_connection(srv.getsockname())
    peer, _ = srv.accept()
    print(srv.getsockname()[1], cli.getsockname()[1])
    """
)


def test_kernel_conntrack_dump_finds_a_loopback_connection(nft_ns):
    # the ruleset's `ct state` expression turns conntrack on in the namespace
    out = ns_run(nft_ns, "python3", "-c", LOOPBACK_TCP).stdout.split()
    dport, sport = int(out[0]), int(out[1])
    msgs = _dump(nft_ns, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, NFPROTO_IPV4)
    entries = [m for m in msgs if m.type_name == "IPCTNL_MSG_CT_NEW"]
    assert not any(bad_notes(m) for m in msgs)
    mine = [m for m in entries if f"sport={sport} dport={dport}" in m.info]
    assert len(mine) == 1, [m.info for m in entries]
    k = _kids(mine[0].node)
    orig = _kids(k["tuple_orig"])
    assert _kids(orig["ip"])["v4_src"].display == "127.0.0.1"
    proto = _kids(orig["proto"])
    assert (proto["src_port"].value, proto["dst_port"].value) == (sport, dport)
    assert mine[0].info.startswith("tcp 6 ")
    assert isinstance(k["id"].value, int)
