"""Traffic control (rt-tc) against a real capture, a real kernel and built
messages.

captures/tc.pcap was recorded with the nlmon VM from captures/scripts/tc.sh
(iproute2 6.1 ``tc`` on a Debian 6.1 kernel).  Every tc message must be
named and decode without `undecoded` or `malformed` notes, and the decoded
values must agree with what ``tc -s -d ... show`` printed into
captures/tc.commands.log: that text is parsed here (handles, parents,
qdisc and class parameters, statistics, filter keys, action parameters) and
compared with the decoded dump replies of the same command, matched by the
log's timestamps (the guest clock, the clock of the capture).

The real-kernel test configures tc objects with ``tc`` inside a network
namespace of its own (a child process that unshares its network namespace
first), dumps them with the test's own netlink socket code (tests/nlsock.py)
and decodes the recorded frames.  The round-trip tests build one message per
tc message type and one per kind of every kind table (qdisc, class, filter
and action options, extended statistics) with tests/specbuild.py.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cmdlog import Command, bad_notes, find_command, messages_during, named_and_clean, read_commands
from specbuild import PSEUDO, Built, MessageBuilder

import dissect
from dissect.capture import netlink_pseudo_header
from dissect.core.netlink import Session
from dissect.schema import Registry, builtin_plugin_dir, load_spec
from dissect.schema.spec import field_name

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
PCAP = CAPTURES / "tc.pcap"
LOG = CAPTURES / "tc.commands.log"
SPEC = builtin_plugin_dir() / "rt-tc.yaml"

TC_TYPES = {
    "RTM_NEWQDISC", "RTM_DELQDISC", "RTM_GETQDISC", "RTM_NEWTCLASS", "RTM_DELTCLASS",
    "RTM_GETTCLASS", "RTM_NEWTFILTER", "RTM_DELTFILTER", "RTM_GETTFILTER", "RTM_NEWACTION",
    "RTM_DELACTION", "RTM_GETACTION", "RTM_NEWCHAIN", "RTM_DELCHAIN", "RTM_GETCHAIN",
}  # fmt: skip

capture_only = pytest.mark.skipif(not PCAP.exists(), reason="captures/tc.pcap not present")


@pytest.fixture(scope="module")
def capture():
    frames = list(dissect.read_capture(PCAP))
    return frames, read_commands(LOG)


# -- reading tc's text ------------------------------------------------------------

_TIME = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_SIZE = {"b": 1, "Kb": 1024, "Mb": 1024 * 1024, "Gb": 1024**3}
_RATE = {"bit": 1, "Kbit": 1000, "Mbit": 1000**2, "Gbit": 1000**3}


def seconds(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(s|sec|ms|us|ns)", text)
    assert m, text
    return float(m.group(1)) * _TIME[m.group(2)]


def _second_nsec(words: list[str]) -> int:
    return nsec(words[1])


def usec(text: str) -> int:
    return round(seconds(text) * 1e6)


def nsec(text: str) -> int:
    return round(seconds(text) * 1e9)


def size(text: str) -> int:
    m = re.fullmatch(r"([\d.]+)(b|Kb|Mb|Gb)", text.split("/")[0])
    assert m, text
    return round(float(m.group(1)) * _SIZE[m.group(2)])


def rate_bytes(text: str) -> float:
    """tc's ``8Mbit`` as bytes per second."""
    m = re.fullmatch(r"([\d.]+)(bit|Kbit|Mbit|Gbit)", text)
    assert m, text
    return float(m.group(1)) * _RATE[m.group(2)] / 8


def packets(text: str) -> int:
    return int(text.rstrip("p"))


def handle(text: str) -> int:
    """tc's ``8001:`` / ``1:10`` / ``root`` as the 32-bit number."""
    if text == "root":
        return 0xFFFFFFFF
    major, _, minor = text.partition(":")
    return (int(major or "0", 16) << 16) | int(minor or "0", 16)


def after(tokens: list[str], key: str, n: int = 1) -> list[str] | None:
    """The `n` tokens that follow `key`, or None."""
    if key not in tokens:
        return None
    i = tokens.index(key)
    return tokens[i + 1 : i + 1 + n]


class Obj:
    """One ``qdisc ...`` / ``class ...`` block of tc's output."""

    def __init__(self, head: str) -> None:
        self.tokens = head.split()
        self.kind = self.tokens[1]
        self.handle = handle(self.tokens[2])
        self.parent = (
            0xFFFFFFFF if "root" in self.tokens[3:4] else handle(after(self.tokens, "parent")[0])  # type: ignore[index]
        )
        self.lines: list[str] = []

    def sent(self) -> tuple[int, int, int, int, int] | None:
        for line in self.lines:
            m = re.match(
                r"\s*Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+) requeues (\d+)\)",
                line,
            )
            if m:
                return tuple(int(x) for x in m.groups())  # type: ignore[return-value]
        return None

    def text(self) -> list[str]:
        return self.tokens + [t for line in self.lines for t in line.replace(":", " ").split()]


def blocks(cmd: Command, word: str) -> list[Obj]:
    out: list[Obj] = []
    for line in cmd.output:
        if line.startswith(word + " "):
            out.append(Obj(line))
        elif out:
            out[-1].lines.append(line)
    return out


# -- decoded side -------------------------------------------------------------------


def ifindexes(frames) -> dict[str, int]:
    """Link names to indexes, from the RTM_NEWLINK replies in the capture."""
    out = {}
    for f in frames:
        for m in f.messages:
            if m.family == "rt-link" and m.type_name == "RTM_NEWLINK":
                name = m.node.find("rtnl.link.ifname")
                idx = m.node.find("rtnl.ifinfomsg.ifi_index")
                if name is not None and idx is not None and idx.value:
                    out[name.value] = idx.value
    return out


def replies(frames, cmd: Command, type_name: str) -> list:
    return [
        m
        for m in messages_during(frames, cmd, "rt-tc", type_name)
        if m.direction == "kernel->user" and m.role == "reply"
    ]


def v(node, abbrev: str):
    n = node.find(abbrev)
    assert n is not None, f"{abbrev} missing"
    return n.value


def short(node, abbrev: str) -> str:
    from dissect.core.display import short_display

    n = node.find(abbrev)
    assert n is not None, f"{abbrev} missing"
    return short_display(n.fmt, n.value)


def find_obj(msgs, ifindex: int, o: Obj):
    hits = [
        m
        for m in msgs
        if v(m.node, "rtnl.tcmsg.tcm_ifindex") == ifindex
        and v(m.node, "rtnl.tc.kind") == o.kind
        and v(m.node, "rtnl.tcmsg.tcm_handle") == o.handle
        and v(m.node, "rtnl.tcmsg.tcm_parent") == o.parent
    ]
    kind, hnd = o.kind, o.handle
    assert len(hits) == 1, (kind, hex(hnd), len(hits))
    return hits[0].node


# -- 1. named and clean -----------------------------------------------------------------


@capture_only
def test_every_tc_message_named_and_clean(capture):
    frames, _ = capture
    names, count = named_and_clean(frames, {"rt-tc"})
    seen = {n for _, n in names}
    assert seen >= TC_TYPES, TC_TYPES - seen
    assert count > 500


@capture_only
def test_extended_acks_match_the_log(capture):
    frames, cmds = capture
    checked = 0
    for cmd in cmds:
        texts = [line[len("Error: ") :] for line in cmd.output if line.startswith("Error: ")]
        if not texts or not cmd.line.startswith("tc "):
            continue
        got = {m.ext_msg for m in messages_during(frames, cmd, "rt-tc", "NLMSG_ERROR") if m.ext_msg}
        assert {t.rstrip(".") for t in texts} <= got, (cmd.line, texts, got)
        checked += 1
    assert checked >= 4


# -- 2. qdiscs and classes as tc printed them ----------------------------------------------------

OPT = "rtnl.tc.options"


def _check_stats(node, obj: Obj) -> int:
    sent = obj.sent()
    if sent is None:
        return 0
    b, p, dropped, over, req = sent
    assert v(node, "rtnl.gnet_stats_basic.bytes") == b
    assert v(node, "rtnl.gnet_stats_basic.packets") == p
    assert v(node, "rtnl.gnet_stats_queue.drops") == dropped
    assert v(node, "rtnl.gnet_stats_queue.overlimits") == over
    assert v(node, "rtnl.gnet_stats_queue.requeues") == req
    # the legacy TCA_STATS carries the same counters
    assert v(node, "rtnl.tc_stats.bytes") == b
    return 5


def _pct(raw: int) -> float:
    return raw / 0xFFFFFFFF * 100


def _check_qdisc(node, o: Obj) -> int:
    """Compare the kind-specific parameters tc printed; returns the count."""
    t = o.text()
    n = 0

    def eq(key: str, abbrev: str, conv=int, k: int = 1) -> None:
        nonlocal n
        got = after(t, key, k)
        if got is not None:
            want = conv(got[0]) if k == 1 else conv(got)
            if conv in (usec, nsec, rate_bytes, _second_nsec):
                # tc prints times and rates rounded to a few digits
                want = pytest.approx(want, rel=0.005, abs=1)
            assert v(node, abbrev) == want, (o.kind, key, v(node, abbrev), want)
            n += 1

    if o.kind == "fq_codel":
        p = f"{OPT}.fq_codel"
        eq("limit", f"{p}.limit", packets)
        eq("flows", f"{p}.flows")
        eq("quantum", f"{p}.quantum")
        eq("target", f"{p}.target", usec)
        eq("interval", f"{p}.interval", usec)
        eq("ce_threshold", f"{p}.ce_threshold", usec)
        eq("memory_limit", f"{p}.memory_limit", size)
        eq("drop_batch", f"{p}.drop_batch_size")
        for key in ("maxpacket", "drop_overlimit", "new_flow_count", "ecn_mark", "new_flows_len"):
            eq(key, f"rtnl.tc.stats2.app.tc_fq_codel_xstats_qdisc.{key}")
            eq(key, f"rtnl.tc.xstats.tc_fq_codel_xstats_qdisc.{key}")
        assert short(node, "rtnl.tc.xstats.tc_fq_codel_xstats_qdisc.type") == "qdisc"
    elif o.kind == "fq":
        p = f"{OPT}.fq"
        eq("limit", f"{p}.plimit", packets)
        eq("flow_limit", f"{p}.flow_plimit", packets)
        eq("buckets", f"{p}.buckets_log", lambda s: int(math.log2(int(s))))
        eq("orphan_mask", f"{p}.orphan_mask")
        eq("quantum", f"{p}.quantum", size)
        eq("initial_quantum", f"{p}.initial_quantum", size)
        eq("maxrate", f"{p}.flow_max_rate", rate_bytes)
        eq("low_rate_threshold", f"{p}.low_rate_threshold", rate_bytes)
        eq("refill_delay", f"{p}.flow_refill_delay", usec)
        eq("ce_threshold", f"{p}.ce_threshold", usec)
        eq("timer_slack", f"{p}.timer_slack", nsec)
        eq("horizon", f"{p}.horizon", usec)
        eq("flows", "rtnl.tc.stats2.app.tc_fq_qd_stats.flows")
        eq("inactive", "rtnl.tc.stats2.app.tc_fq_qd_stats.inactive_flows")
        eq("gc", "rtnl.tc.stats2.app.tc_fq_qd_stats.gc_flows")
        eq("highprio", "rtnl.tc.stats2.app.tc_fq_qd_stats.highprio_packets")
    elif o.kind == "codel":
        p = f"{OPT}.codel"
        eq("limit", f"{p}.limit", packets)
        eq("target", f"{p}.target", usec)
        eq("interval", f"{p}.interval", usec)
        eq("ce_threshold", f"{p}.ce_threshold", usec)
        assert v(node, f"{p}.ecn") == (1 if "ecn" in t else 0)
        for key in ("count", "lastcount", "maxpacket", "ecn_mark", "drop_overlimit"):
            eq(key, f"rtnl.tc.xstats.tc_codel_xstats.{key}")
        eq("ldelay", "rtnl.tc.xstats.tc_codel_xstats.ldelay", usec)
    elif o.kind == "tbf":
        assert v(node, "rtnl.tc_tbf_qopt.rate.rate") == rate_bytes(after(t, "rate")[0])  # type: ignore[index]
        assert v(node, "rtnl.tc_tbf_qopt.peakrate.rate") == rate_bytes(after(t, "peakrate")[0])  # type: ignore[index]
        assert short(node, "rtnl.tc_tbf_qopt.rate.linklayer") == after(t, "linklayer")[0]  # type: ignore[index]
        n += 3
    elif o.kind == "netem":
        eq("limit", f"{OPT}.tc_netem_qopt.limit")
        eq("delay", f"{OPT}.netem.latency64", nsec)
        eq("delay", f"{OPT}.netem.jitter64", _second_nsec, 2)
        eq("gap", f"{OPT}.tc_netem_qopt.gap")
        for key, ab in (("loss", "loss"), ("duplicate", "duplicate")):
            want = float(after(t, key)[0].rstrip("%"))  # type: ignore[index]
            assert abs(_pct(v(node, f"{OPT}.tc_netem_qopt.{ab}")) - want) < 0.01
            n += 1
        reorder = after(t, "reorder", 2)
        assert reorder is not None
        assert (
            abs(_pct(v(node, "rtnl.tc_netem_reorder.probability")) - float(reorder[0][:-1])) < 0.01
        )
        assert (
            abs(_pct(v(node, "rtnl.tc_netem_reorder.correlation")) - float(reorder[1][:-1])) < 0.01
        )
        eq("rate", "rtnl.tc_netem_rate.rate", rate_bytes)
        eq("slot", "rtnl.tc_netem_slot.min_delay", nsec)
        eq("slot", "rtnl.tc_netem_slot.max_delay", _second_nsec, 2)
        eq("packets", "rtnl.tc_netem_slot.max_packets")
        n += 2
    elif o.kind == "sfq":
        p = f"{OPT}.tc_sfq_qopt_v1"
        eq("limit", f"{p}.v0.limit", packets)
        eq("quantum", f"{p}.v0.quantum", size)
        eq("depth", f"{p}.depth")
        eq("divisor", f"{p}.v0.divisor")
        eq("perturb", f"{p}.v0.perturb_period", lambda s: round(seconds(s)))
        assert v(node, f"{p}.headdrop") == (1 if "headdrop" in t else 0)
    elif o.kind == "red":
        p = "rtnl.tc_red_qopt"
        eq("limit", f"{p}.limit", size)
        eq("min", f"{p}.qth_min", size)
        eq("max", f"{p}.qth_max", size)
        eq("ewma", f"{p}.wlog")
        eq("Scell_log", f"{p}.scell_log")
        flags = short(node, f"{p}.flags").split(",")
        assert ("ECN" in flags) == ("ecn" in t) and ("ADAPTATIVE" in flags) == ("adaptive" in t)
        for key in ("marked", "early", "pdrop", "other"):
            eq(key, f"rtnl.tc.xstats.tc_red_xstats.{key}")
    elif o.kind == "cake":
        p = f"{OPT}.cake"
        eq("bandwidth", f"{p}.base_rate64", rate_bytes)
        eq("rtt", f"{p}.rtt", usec)
        eq("overhead", f"{p}.overhead")
        eq("mpu", f"{p}.mpu")
        eq("memlimit", f"{p}.memory", size)
        eq("fwmark", f"{p}.fwmark", lambda s: int(s, 16))
        assert short(node, f"{p}.diffserv_mode") in t
        assert short(node, f"{p}.flow_mode").replace("dual-src", "dual-srchost") in t
        assert v(node, f"{p}.nat") == 1 and v(node, f"{p}.wash") == 1
        eq("used", "rtnl.tc.stats2.app.cake.memory_used", size)
        eq("estimate", "rtnl.tc.stats2.app.cake.capacity_estimate64", rate_bytes)
        # one TCA_CAKE_STATS_TIN_STATS element per tin: diffserv4 has four
        tins = node.find("rtnl.tc.stats2.app.cake.tin_stats")
        assert tins is not None and len(tins.children) == 4
        n += 3
    elif o.kind in ("prio", "pfifo_fast"):
        eq("bands", f"{OPT}.tc_prio_qopt.bands")
        prio = after(t, "priomap", 16)
        assert list(v(node, f"{OPT}.tc_prio_qopt.priomap")) == [int(x) for x in prio]  # type: ignore[union-attr]
        n += 1
    elif o.kind == "pfifo":
        eq("limit", f"{OPT}.tc_fifo_qopt.limit", packets)
    elif o.kind == "bfifo":
        eq("limit", f"{OPT}.tc_fifo_qopt.limit", size)
    elif o.kind == "ets":
        p = f"{OPT}.ets"
        eq("bands", f"{p}.nbands")
        eq("strict", f"{p}.nstrict")
        nstrict = int(after(t, "strict")[0])  # type: ignore[index]
        nbands = int(after(t, "bands")[0])  # type: ignore[index]
        quanta = [c.value for c in node.find(f"{p}.quanta").children]
        assert quanta == [int(x) for x in after(t, "quanta", nbands - nstrict)]  # type: ignore[union-attr]
        priomap = [c.value for c in node.find(f"{p}.priomap").children]
        assert priomap == [int(x) for x in after(t, "priomap", 16)]  # type: ignore[union-attr]
        n += 2
    elif o.kind == "htb":
        eq("r2q", "rtnl.tc_htb_glob.rate2quantum")
        eq("default", "rtnl.tc_htb_glob.defcls", lambda s: int(s, 16))
        eq("direct_qlen", f"{OPT}.htb.direct_qlen")
        eq("direct_packets_stat", "rtnl.tc_htb_glob.direct_pkts")
    elif o.kind in ("mqprio", "taprio"):
        hdr = f"{OPT}.tc_mqprio_qopt" if o.kind == "mqprio" else "rtnl.tc_mqprio_qopt"
        eq("tc", f"{hdr}.num_tc")
        assert list(v(node, f"{hdr}.prio_tc_map")) == [int(x) for x in after(t, "map", 16)]  # type: ignore[union-attr]
        n += 1
        if o.kind == "taprio":
            eq("base-time", f"{OPT}.taprio.attr_sched_base_time")
            eq("cycle-time", f"{OPT}.taprio.attr_sched_cycle_time")
            assert short(node, f"{OPT}.taprio.attr_sched_clockid") == after(t, "clockid")[0].lower()  # type: ignore[index]
            entries = node.find_all(f"{OPT}.taprio.attr_sched_entry_list.entry")
            lines = [line.split() for line in o.lines if line.strip().startswith("index ")]
            assert len(entries) == len(lines) == 2
            for e, words in zip(entries, lines):
                ab = f"{OPT}.taprio.attr_sched_entry_list.entry"
                assert v(e, f"{ab}.index") == int(after(words, "index")[0])  # type: ignore[index]
                assert v(e, f"{ab}.gate_mask") == int(after(words, "gatemask")[0], 16)  # type: ignore[index]
                assert v(e, f"{ab}.interval") == int(after(words, "interval")[0])  # type: ignore[index]
                assert short(e, f"{ab}.cmd") == "set-gates" and after(words, "cmd") == ["S"]
                n += 4
    elif o.kind == "multiq":
        bands, max_bands = after(t, "bands")[0].split("/")  # type: ignore[index]
        assert v(node, f"{OPT}.tc_multiq_qopt.bands") == int(bands)
        assert v(node, f"{OPT}.tc_multiq_qopt.max_bands") == int(max_bands)
        n += 2
    return n


def _check_class(node, o: Obj) -> int:
    t = o.text()
    n = 0

    def eq(key: str, abbrev: str, conv=int) -> None:
        nonlocal n
        got = after(t, key)
        if got is not None:
            assert v(node, abbrev) == conv(got[0]), (o.kind, key)
            n += 1

    if o.kind == "htb":
        eq("prio", "rtnl.tc_htb_opt.prio")
        eq("quantum", "rtnl.tc_htb_opt.quantum")
        eq("rate", "rtnl.tc_htb_opt.rate.rate", rate_bytes)
        eq("ceil", "rtnl.tc_htb_opt.ceil.rate", rate_bytes)
        eq("level", "rtnl.tc_htb_opt.level")
        for key, member in (("lended", "lends"), ("borrowed", "borrows"), ("giants", "giants"),
                            ("tokens", "tokens"), ("ctokens", "ctokens")):  # fmt: skip
            eq(key, f"rtnl.tc.stats2.app.tc_htb_xstats.{member}")
            eq(key, f"rtnl.tc.xstats.tc_htb_xstats.{member}")
    elif o.kind == "hfsc":
        for curve, attr in (("rt", "rsc"), ("ls", "fsc"), ("sc", "rsc"), ("ul", "usc")):
            got = after(t, curve, 6)
            if got is None:
                continue
            sc = node.find(f"{OPT}.hfsc.{attr}")
            assert sc is not None, (o.tokens, curve)
            assert v(sc, "rtnl.tc_service_curve.m1") == rate_bytes(got[1])
            assert v(sc, "rtnl.tc_service_curve.d") == usec(got[3])
            assert v(sc, "rtnl.tc_service_curve.m2") == rate_bytes(got[5])
            n += 3
        eq("period", "rtnl.tc.xstats.tc_hfsc_stats.period")
        eq("level", "rtnl.tc.xstats.tc_hfsc_stats.level")
    elif o.kind == "drr":
        eq("quantum", f"{OPT}.drr.quantum", size)
        eq("deficit", "rtnl.tc.xstats.tc_drr_stats.deficit", size)
    elif o.kind == "qfq":
        eq("weight", f"{OPT}.qfq.weight")
        eq("maxpkt", f"{OPT}.qfq.lmax")
        eq("weight", "rtnl.tc.xstats.tc_qfq_stats.weight")
    elif o.kind == "ets":
        eq("quantum", f"{OPT}.ets.quanta_band")
    return n


def _show_commands(cmds, what: str) -> list[Command]:
    return [c for c in cmds if re.fullmatch(rf"tc -s -d {what} show dev \w+", c.line) and c.rc == 0]


@capture_only
def test_qdiscs_agree_with_tc_show(capture):
    frames, cmds = capture
    idx = ifindexes(frames)
    kinds: dict[str, int] = {}
    for cmd in _show_commands(cmds, "qdisc"):
        dev = cmd.line.split()[-1]
        msgs = replies(frames, cmd, "RTM_NEWQDISC")
        for o in blocks(cmd, "qdisc"):
            node = find_obj(msgs, idx[dev], o)
            assert v(node, "rtnl.tcmsg.tcm_parent") == o.parent
            refcnt = after(o.tokens, "refcnt")
            if refcnt:
                assert v(node, "rtnl.tcmsg.tcm_info") == int(refcnt[0])
            kinds[o.kind] = kinds.get(o.kind, 0) + _check_stats(node, o) + _check_qdisc(node, o)
    wanted = {"pfifo", "bfifo", "pfifo_fast", "fq_codel", "fq", "codel", "tbf", "netem", "sfq",
              "red", "cake", "prio", "ets", "mqprio", "multiq", "taprio", "htb", "mq", "plug",
              "clsact", "ingress"}  # fmt: skip
    assert wanted <= set(kinds), wanted - set(kinds)
    # every kind with parameters had some compared
    assert all(kinds[k] > 5 for k in wanted - {"mq", "plug", "clsact", "ingress"}), kinds


@capture_only
def test_classes_agree_with_tc_show(capture):
    frames, cmds = capture
    idx = ifindexes(frames)
    kinds: dict[str, int] = {}
    for cmd in _show_commands(cmds, "class"):
        dev = cmd.line.split()[-1]
        msgs = replies(frames, cmd, "RTM_NEWTCLASS")
        objs = blocks(cmd, "class")
        assert len(msgs) == len(objs), cmd.line
        for o in objs:
            node = find_obj(msgs, idx[dev], o)
            assert v(node, "rtnl.tcmsg.tcm_parent") == o.parent
            leaf = after(o.tokens, "leaf")
            if leaf:
                assert v(node, "rtnl.tcmsg.tcm_info") == handle(leaf[0])
            kinds[o.kind] = kinds.get(o.kind, 0) + _check_stats(node, o) + _check_class(node, o)
    assert {"htb", "hfsc", "drr", "qfq", "ets"} <= set(kinds), kinds
    assert all(n > 5 for n in kinds.values()), kinds


# -- filters, actions, chains ----------------------------------------------------------------------


class Filter:
    def __init__(self, head: str) -> None:
        self.tokens = head.split()
        self.pref = int(after(self.tokens, "pref")[0])  # type: ignore[index]
        self.kind = self.tokens[self.tokens.index("pref") + 2]
        self.chain = int(after(self.tokens, "chain")[0])  # type: ignore[index]
        fh = after(self.tokens, "handle") or after(self.tokens, "fh")
        self.handle = None if fh is None else fh[0]
        self.keys: list[list[str]] = []
        self.actions: list[list[str]] = []


def filters(cmd: Command) -> list[Filter]:
    out: list[Filter] = []
    for line in cmd.output:
        if line.startswith("filter "):
            out.append(Filter(line))
        elif out and re.match(r"\s+action order \d+:", line):
            out[-1].actions.append([line])
        elif out and out[-1].actions and line[:1] in (" ", "\t") and line.strip():
            out[-1].actions[-1].append(line)
        elif out and line.startswith("  ") and not out[-1].actions:
            out[-1].keys.append(line.split())
    return out


def _u32_handle(text: str) -> int:
    ht, _, rest = text.partition(":")
    bkt, _, node = rest.partition(":")
    return (int(ht or "0", 16) << 20) | (int(bkt or "0", 16) << 12) | int(node or "0", 16)


def _addr_prefix(text: str) -> tuple[str, int]:
    net = ipaddress.ip_network(text, strict=False)
    return str(net.network_address), net.prefixlen


def _mask_len(raw: bytes) -> int:
    return bin(int.from_bytes(bytes(raw), "big")).count("1")


def _check_flower(node, f: Filter) -> int:
    p = f"{OPT}.flower"
    n = 0
    for words in f.keys:
        key, args = words[0], words[1:]
        if key in ("src_ip", "dst_ip", "enc_dst_ip", "enc_src_ip"):
            addr, plen = _addr_prefix(args[0])
            fam = "ipv6" if ":" in addr else "ipv4"
            base = (
                f"{p}.key_enc_{fam}_{key[4:7]}"
                if key.startswith("enc")
                else f"{p}.key_{fam}_{key[:3]}"
            )
            assert ipaddress.ip_address(bytes(v(node, base))) == ipaddress.ip_address(addr)
            assert _mask_len(v(node, f"{base}_mask")) == plen
        elif key == "eth_type":
            assert short(node, f"{p}.key_eth_type") == {"ipv4": "ip", "ipv6": "ipv6"}[args[0]]
        elif key == "ip_proto":
            assert short(node, f"{p}.key_ip_proto") == args[0]
        elif key in ("dst_port", "src_port"):
            if "-" in args[0]:
                lo, hi = (int(x) for x in args[0].split("-"))
                assert v(node, f"{p}.key_port_{key[:3]}_min") == lo
                assert v(node, f"{p}.key_port_{key[:3]}_max") == hi
            else:
                proto = short(node, f"{p}.key_ip_proto")
                assert v(node, f"{p}.key_{proto}_{key[:3]}") == int(args[0])
        elif key in ("vlan_id", "vlan_prio", "ip_ttl", "enc_key_id"):
            assert v(node, f"{p}.key_{key}") == int(args[0])
        elif key == "enc_dst_port":
            assert v(node, f"{p}.key_enc_udp_dst_port") == int(args[0])
        elif key == "vlan_ethtype":
            assert short(node, f"{p}.key_vlan_eth_type") == args[0]
        elif key == "ip_tos":
            val, mask = args[0].split("/")
            assert v(node, f"{p}.key_ip_tos") == int(val, 0)
            assert v(node, f"{p}.key_ip_tos_mask") == int(mask, 0)
        elif key == "dst_mac":
            assert bytes(v(node, f"{p}.key_eth_dst")).hex(":") == args[0]
        elif key in ("skip_hw", "not_in_hw"):
            assert key.upper() in short(node, f"{p}.flags").split(",")
        elif key == "ct_state":
            names = {"trk": "TRACKED", "est": "ESTABLISHED", "new": "NEW", "rel": "RELATED"}
            want = set(re.findall(r"([+-])(\w+)", args[0]))
            state = set(short(node, f"{p}.key_ct_state").split(","))
            mask = set(short(node, f"{p}.key_ct_state_mask").split(","))
            for sign, name in want:
                assert names[name] in mask
                assert (names[name] in state) == (sign == "+")
        elif key == "type" or key == "code":
            assert v(node, f"{p}.key_icmpv4_{key}") == int(args[0])
        elif key == "tcp_flags":
            val, mask = args[0].split("/")
            assert v(node, f"{p}.key_tcp_flags") == int(val, 16)
            assert v(node, f"{p}.key_tcp_flags_mask") == int(mask, 16)
        else:
            continue
        n += 1
    return n


def _check_u32(node, f: Filter) -> int:
    matches = [w for w in f.keys if w[0] == "match"]
    keys = node.find_all("rtnl.tc_u32_sel.keys")
    elements = keys[0].children if keys else []
    assert len(elements) == len(matches) == v(node, "rtnl.tc_u32_sel.nkeys")
    for el, words in zip(elements, matches):
        val, mask = words[1].split("/")
        assert v(el, "rtnl.tc_u32_sel.keys.val") == int(val, 16)
        assert v(el, "rtnl.tc_u32_sel.keys.mask") == int(mask, 16)
        assert v(el, "rtnl.tc_u32_sel.keys.off") == int(after(words, "at")[0])  # type: ignore[index]
    return len(matches)


# What tc prints for a verdict (TC_ACT_OK is "pass").
_VERDICT = {
    "ok": "pass",
    "drop": "drop",
    "pipe": "pipe",
    "stolen": "stolen",
    "reclassify": "reclassify",
}


def _action_parms(act):
    """The tc_gen-style struct of an action: the struct holding index, refcnt and bindcnt."""
    for n in act.walk():
        if n.name == "index" and n.abbrev.startswith("rtnl.tc_"):
            return n.abbrev.rsplit(".", 1)[0]
    raise AssertionError(f"no parameters in {act.abbrev}")


def _check_action(act, lines: list[str]) -> int:
    """One ``action order N: KIND ...`` block against the decoded action nest."""
    head = lines[0].split(":", 1)[1].split()
    text = " ".join(lines).split()
    ao = f"{act.abbrev}.options"
    if not head and "schedule:" in text:
        # tc 6.1 prints a gate action without its kind
        head = ["gate"]
    kind = head[0]
    words = head
    assert v(act, f"{act.abbrev}.kind") == kind
    parms = _action_parms(act)
    idx = after(text, "index")
    if kind == "police":  # tc prints a policer's index as ``police 0x1``
        idx = [str(int(after(text, "police")[0], 16))]  # type: ignore[index]
    assert idx is not None
    assert v(act, f"{parms}.index") == int(idx[0])
    assert v(act, f"{parms}.refcnt") == int(after(text, "ref")[0])  # type: ignore[index]
    assert v(act, f"{parms}.bindcnt") == int(after(text, "bind")[0])  # type: ignore[index]
    n = 3
    verdict = short(act, f"{parms}.action")
    if kind == "gact":
        assert " ".join(after(words, "action", len(verdict.split())) or []) == _VERDICT.get(
            verdict, verdict
        )
        n += 1
        rnd = after(text, "type", 4)
        if rnd is not None and rnd[0] != "none":
            assert short(act, "rtnl.tc_gact_p.ptype") == rnd[0]
            assert v(act, "rtnl.tc_gact_p.pval") == int(rnd[3])
            assert _VERDICT.get(short(act, "rtnl.tc_gact_p.paction")) == rnd[1]
            n += 3
    elif kind in ("vlan", "tunnel_key", "mirred", "csum", "nat", "skbedit", "mpls", "sample", "ct",
                  "connmark", "ctinfo", "skbmod", "gate"):  # fmt: skip
        assert _VERDICT.get(verdict, verdict) in words[-2:] or verdict in text, (
            kind,
            verdict,
            words,
        )
        n += 1
    if kind == "mirred":
        m = re.search(r"\((\w+) (\w+) to device (\w+)\)", lines[0])
        assert m
        mode = {"Redirect": "redir", "Mirror": "mirror"}[m.group(2)]
        assert short(act, "rtnl.tc_mirred.eaction") == f"{m.group(1).lower()}-{mode}"
        n += 1
    elif kind == "police":
        assert v(act, "rtnl.tc_police.rate.rate") == rate_bytes(after(text, "rate")[0]) or after(
            text, "pkts_rate"
        )  # type: ignore[index]
        n += 1
    elif kind == "sample":
        assert v(act, f"{ao}.sample.rate") == int(after(text, "rate")[0].split("/")[1])  # type: ignore[index]
        assert v(act, f"{ao}.sample.psample_group") == int(after(text, "group")[0])  # type: ignore[index]
        assert v(act, f"{ao}.sample.trunc_size") == int(after(text, "trunc_size")[0])  # type: ignore[index]
        n += 3
    elif kind == "nat":
        old, new = after(text, kind, 3)[1:]  # type: ignore[index]
        addr, plen = _addr_prefix(old)
        assert str(ipaddress.IPv4Address(v(act, "rtnl.tc_nat.old_addr"))) == addr
        assert bin(v(act, "rtnl.tc_nat.mask")).count("1") == plen
        assert str(ipaddress.IPv4Address(v(act, "rtnl.tc_nat.new_addr"))) == new
        n += 3
    elif kind == "skbedit" and after(text, "mark"):
        assert v(act, f"{ao}.skbedit.mark") == int(after(text, "mark")[0], 0)  # type: ignore[index]
        n += 1
    elif kind == "tunnel_key" and "set" in text:
        src = after(text, "src_ip")[0]  # type: ignore[index]
        fam = "ipv6" if ":" in src else "ipv4"
        assert str(ipaddress.ip_address(bytes(v(act, f"{ao}.tunnel_key.enc_{fam}_src")))) == src
        assert v(act, f"{ao}.tunnel_key.enc_key_id") == int(after(text, "key_id")[0])  # type: ignore[index]
        assert v(act, f"{ao}.tunnel_key.enc_dst_port") == int(after(text, "dst_port")[0])  # type: ignore[index]
        n += 3
        if after(text, "ttl"):
            assert v(act, f"{ao}.tunnel_key.enc_ttl") == int(after(text, "ttl")[0])  # type: ignore[index]
            n += 1
    elif kind == "ct" and after(text, "zone"):
        assert v(act, f"{ao}.ct.zone") == int(after(text, "zone")[0])  # type: ignore[index]
        n += 1
    elif kind == "vlan" and "push" in text:
        assert v(act, f"{ao}.vlan.push_vlan_id") == int(after(text, "id")[0])  # type: ignore[index]
        n += 1
    elif kind == "mpls" and "push" in text:
        assert v(act, f"{ao}.mpls.label") == int(after(text, "label")[0])  # type: ignore[index]
        assert v(act, f"{ao}.mpls.ttl") == int(after(text, "ttl")[0])  # type: ignore[index]
        n += 2
    elif kind == "gate":
        assert v(act, f"{ao}.gate.cycle_time") == nsec(after(text, "cycle-time")[0])  # type: ignore[index]
        assert short(act, f"{ao}.gate.clockid") == after(text, "clockid")[0].lower()  # type: ignore[index]
        entries = act.find_all(f"{ao}.gate.entry_list.entry")
        states = [w for w in text if w in ("open", "close")]
        intervals = [text[i + 1] for i, w in enumerate(text) if w == "interval"]
        assert len(entries) == len(states) == len(intervals) == 2
        for e, state, iv in zip(entries, states, intervals):
            assert (e.find(f"{ao}.gate.entry_list.entry.gate") is not None) == (state == "open")
            assert v(e, f"{ao}.gate.entry_list.entry.interval") == nsec(iv)
        n += 6
    elif kind == "connmark":
        assert v(act, "rtnl.tc_connmark.zone") == int(after(text, "zone")[0])  # type: ignore[index]
        n += 1
    return n


def _filter_node(msgs, ifindex: int, f: Filter):
    for m in msgs:
        node = m.node
        if (
            v(node, "rtnl.tcmsg_filter.tcm_ifindex") == ifindex
            and v(node, "rtnl.tcmsg_filter.tcm_prio") == f.pref
            and v(node, "rtnl.tc.kind") == f.kind
            and v(node, "rtnl.tc.chain") == f.chain
        ):
            h = v(node, "rtnl.tcmsg_filter.tcm_handle")
            want = (
                0
                if f.handle is None
                else (_u32_handle(f.handle) if f.kind == "u32" else int(f.handle, 16))
            )
            if h == want:
                return node
    raise AssertionError(f"no decoded filter pref {f.pref} {f.kind} handle {f.handle}")


@capture_only
def test_filters_and_their_actions_agree_with_tc_show(capture):
    frames, cmds = capture
    idx = ifindexes(frames)
    kinds: set[str] = set()
    actions: dict[str, int] = {}
    checked = 0
    for cmd in cmds:
        m = re.fullmatch(r"tc -s -d filter show dev (\w+)(?: (ingress|egress))?", cmd.line)
        if not m or cmd.rc != 0:
            continue
        msgs = replies(frames, cmd, "RTM_NEWTFILTER")
        fl = filters(cmd)
        assert len(msgs) == len(fl), cmd.line
        for f in fl:
            node = _filter_node(msgs, idx[m.group(1)], f)
            kinds.add(f.kind)
            if f.kind == "flower":
                checked += _check_flower(node, f)
            elif f.kind == "u32" and f.handle and not f.handle.endswith(":"):
                checked += _check_u32(node, f)
            if not f.actions:
                continue
            acts = node.find(f"{OPT}.{f.kind}.act")
            assert acts is not None and len(acts.children) == len(f.actions)
            for el, lines in zip(acts.children, f.actions):
                order = int(re.search(r"action order (\d+):", lines[0]).group(1))  # type: ignore[union-attr]
                assert el.name == f"[{order}]"
                kind = v(el, f"{el.abbrev}.kind")
                actions[kind] = actions.get(kind, 0) + _check_action(el, lines)
    assert {"flower", "u32", "matchall", "basic", "bpf", "fw", "route", "flow"} <= kinds, kinds
    wanted = {"gact", "mirred", "pedit", "vlan", "skbedit", "police", "csum", "tunnel_key", "ct",
              "bpf", "nat", "sample", "connmark", "ctinfo", "mpls", "skbmod", "gate"}  # fmt: skip
    assert wanted <= set(actions), wanted - set(actions)
    assert checked > 20


@capture_only
def test_bpf_filter_and_bpf_action_use_their_own_tables(capture):
    """`bpf` is both a filter kind and an action kind: the same name selects
    TCA_BPF_* in TCA_OPTIONS and TCA_ACT_BPF_* in TCA_ACT_OPTIONS."""
    frames, _ = capture
    seen = 0
    for f in frames:
        for m in f.messages:
            if m.family != "rt-tc" or m.node.find("rtnl.tc.kind") is None:
                continue
            if m.node.find("rtnl.tc.kind").value != "bpf" or m.type_name != "RTM_NEWTFILTER":
                continue
            ops = m.node.find(f"{OPT}.bpf.ops")
            if ops is None:  # the per-preference header entry of a dump
                continue
            assert ops.name == "TCA_BPF_OPS"
            # one classic BPF instruction (struct sock_filter, 8 bytes) per TCA_BPF_OPS_LEN
            assert v(m.node, f"{OPT}.bpf.ops_len") * 8 == ops.length - 4
            act = m.node.find(f"{OPT}.bpf.act.options.bpf.ops")
            assert act is not None and act.name == "TCA_ACT_BPF_OPS"
            assert v(ops, "rtnl.sock_filter.k") == 0xFFFFFFFF
            seen += 1
    assert seen >= 2


@capture_only
def test_standalone_actions_agree_with_tc_actions_ls(capture):
    frames, cmds = capture
    kinds = set()
    for cmd in cmds:
        if not re.fullmatch(r"tc -s actions (ls|get) action \w+.*", cmd.line) or cmd.rc != 0:
            continue
        msgs = replies(frames, cmd, "RTM_GETACTION")
        assert msgs, cmd.line
        total = [int(line.split()[-1]) for line in cmd.output if line.startswith("total acts")]
        if cmd.line.split()[3] == "ls":
            assert sum(v(m.node, "rtnl.tc.act.count") for m in msgs) == total[0]
        blocks_: list[list[str]] = []
        for line in cmd.output:
            if re.match(r"\s+action order \d+:", line):
                blocks_.append([line])
            elif blocks_ and line[:1] in (" ", "\t") and line.strip():
                blocks_[-1].append(line)
        elements = [el for m in msgs for el in m.node.find("rtnl.tc.act.tab").children]
        assert len(elements) == len(blocks_), cmd.line
        for el, lines in zip(elements, blocks_):
            _check_action(el, lines)
            kinds.add(v(el, f"{el.abbrev}.kind"))
            cookie = after(" ".join(lines).split(), "cookie")
            if cookie:
                assert bytes(v(el, f"{el.abbrev}.cookie")).hex() == cookie[0]
    assert {"gact", "police", "mirred", "tunnel_key"} <= kinds


@capture_only
def test_chains_agree_with_tc_chain_show(capture):
    frames, cmds = capture
    cmd = find_command(cmds, "tc chain show dev v0 ingress")
    msgs = replies(frames, cmd, "RTM_NEWCHAIN")
    printed = [line.split() for line in cmd.output if line.startswith("chain ")]
    assert [int(w[-1]) for w in printed] == [v(m.node, "rtnl.tc.chain") for m in msgs]
    for words, m in zip(printed, msgs):
        assert v(m.node, "rtnl.tcmsg_filter.tcm_parent") == handle(after(words, "parent")[0])  # type: ignore[index]
        template = words[3] if len(words) == 6 else None
        kind = m.node.find("rtnl.tc.kind")
        assert (kind.value if kind else None) == template
        if template == "flower":
            assert short(m.node, f"{OPT}.flower.key_ip_proto") == "tcp"


@capture_only
def test_summary_lines(capture):
    frames, _ = capture
    infos = {m.info for f in frames for m in f.messages if m.family == "rt-tc"}
    assert "fq_codel 8001: dev 3 root" in infos
    assert "htb 1:10 dev 6 parent 1:1" in infos
    assert any(
        i.startswith("flower dev 6 ingress protocol ip pref 10 chain 0 handle 0x1") for i in infos
    )
    assert "gact count 7" in infos  # the reply to `tc -s actions ls action gact`


# -- unknown kinds and attributes --------------------------------------------------------------------


def _attr(t: int, payload: bytes) -> bytes:
    return struct.pack("<HH", 4 + len(payload), t) + payload + b"\0" * (-len(payload) % 4)


def _decode(nl_type: int, body: bytes, flags: int = 0x2):
    data = struct.pack("<IHHII", 16 + len(body), nl_type, flags, 0, 0) + body
    session = Session(Registry.default(), "little")
    frame = session.decode(netlink_pseudo_header(0) + data)
    return frame.messages[0]


def test_unknown_kind_and_attribute_leave_the_rest_decoded():
    tcmsg = struct.pack("<BxxxiIII", 0, 3, 0x80010000, 0xFFFFFFFF, 1)
    basic = struct.pack("<QI4x", 1234, 5)
    body = (
        tcmsg
        + _attr(1, b"out_of_tree\0")  # TCA_KIND
        + _attr(2, _attr(1, struct.pack("<I", 7)))  # TCA_OPTIONS of an unknown kind
        + _attr(7, _attr(1, basic) + _attr(4, b"\1\2\3\4"))  # TCA_STATS2 with BASIC and APP
        + _attr(99, b"\xaa\xbb")  # an attribute no header knows
        + _attr(11, struct.pack("<I", 42))  # TCA_CHAIN
    )
    msg = _decode(36, body)
    assert msg.type_name == "RTM_NEWQDISC"
    assert v(msg.node, "rtnl.tcmsg.tcm_handle") == 0x80010000
    assert v(msg.node, "rtnl.tc.kind") == "out_of_tree"
    assert v(msg.node, "rtnl.gnet_stats_basic.bytes") == 1234
    assert v(msg.node, "rtnl.tc.chain") == 42
    notes = bad_notes(msg)
    assert all(group_ok for group_ok in (t for _, t in notes))
    texts = " | ".join(t for _, t in notes)
    assert "'out_of_tree' is not known" in texts  # TCA_OPTIONS
    assert texts.count("'out_of_tree' is not known") == 2  # and TCA_STATS_APP
    assert "attribute 99 is not known in set 'tc-attrs'" in texts
    assert len(notes) == 3
    assert msg.info.startswith("out_of_tree 8001: dev 3 root")


def test_unknown_action_kind_inside_a_filter():
    tcm = struct.pack("<BxxxiIIHH", 0, 3, 1, 0xFFFFFFF2, 0x0008, 10)
    act = _attr(1, b"brand_new\0") + _attr(2, _attr(1, b"\0" * 8)) + _attr(3, struct.pack("<I", 9))
    body = tcm + _attr(1, b"matchall\0") + _attr(2, _attr(2, _attr(1, act)))
    msg = _decode(44, body)
    assert v(msg.node, "rtnl.tcmsg_filter.tcm_protocol") == 0x0800
    assert v(msg.node, "rtnl.tcmsg_filter.tcm_prio") == 10
    assert v(msg.node, f"{OPT}.matchall.act.index") == 9
    notes = bad_notes(msg)
    assert len(notes) == 1 and "'brand_new' is not known" in notes[0][1]
    assert "matchall dev 3 ingress protocol ip pref 10" in msg.info


def test_flexible_array_member_with_a_partial_element():
    """struct tc_u32_sel with one key and 4 stray bytes: the key decodes, the
    leftover is a malformed note, nothing raises."""
    sel = (
        struct.pack("<BBBxHHhhI", 1, 0, 1, 0, 0, 0, 0, 0)
        + struct.pack(">II", 0xFF, 0x11)
        + struct.pack("<ii", 12, 0)
    )
    tcm = struct.pack("<BxxxiIIHH", 0, 3, 0x800800, 0xFFFFFFF2, 0x0008, 20)
    for extra, want in ((b"", 0), (b"\0" * 4, 1)):
        body = tcm + _attr(1, b"u32\0") + _attr(2, _attr(5, sel + extra))
        msg = _decode(44, body)
        assert v(msg.node, "rtnl.tc_u32_sel.keys.val") == 0x11
        assert v(msg.node, "rtnl.tc_u32_sel.keys.off") == 12
        assert len(bad_notes(msg)) == want


# -- 4. round trips ------------------------------------------------------------------------------------


def _session_decode(reg: Registry, data: bytes):
    return Session(reg, "little").decode(netlink_pseudo_header(0) + data)


def _check_built(frame, built: Built) -> int:
    problems = [
        f"{n.abbrev}: {note.text}"
        for n, note in frame.root.all_notes()
        if note.group in ("malformed", "undecoded")
    ]
    assert not problems, problems[:5]
    checked = 0
    for off, abbrev, want in built.expect:
        node = next((n for n in frame.root.walk() if n.offset == off and n.abbrev == abbrev), None)
        assert node is not None, (abbrev, off - PSEUDO)
        assert node.value == want, (abbrev, node.value, want)
        checked += 1
    return checked


def test_round_trip_every_tc_message_type():
    spec = load_spec(SPEC)
    reg = Registry()
    reg.add(spec)
    builder = MessageBuilder(spec)
    types = set()
    for op in spec.operations:
        for value in sorted(op.requests | op.events):
            built = builder.message(value, 0x5, op.attribute_set, op.fixed_header, None)
            frame = _session_decode(reg, built.data)
            assert frame.messages[0].type_name == f"RTM_{op.name.upper()}" or value != min(
                op.requests or {value}
            )
            assert _check_built(frame, built) > 3, op.name
            types.add(frame.messages[0].type_name)
    assert (
        TC_TYPES
        - {"RTM_GETQDISC", "RTM_GETTCLASS", "RTM_GETTFILTER", "RTM_GETCHAIN", "RTM_GETACTION"}
        <= types
    )
    assert {
        "RTM_GETQDISC",
        "RTM_GETTCLASS",
        "RTM_GETTFILTER",
        "RTM_GETCHAIN",
        "RTM_GETACTION",
    } <= types


# (sub-message, operation whose top-level set holds it, attribute path to it)
_TABLES = [
    ("tc-qdisc-options", "newqdisc", "options"),
    ("tc-class-options", "newtclass", "options"),
    ("tc-filter-options", "newtfilter", "options"),
    ("tc-qdisc-xstats", "newqdisc", "xstats"),
    ("tc-class-xstats", "newtclass", "xstats"),
]


def _kind_message(spec, builder: MessageBuilder, op, kind: str, attr: str) -> Built:
    """tcmsg + TCA_KIND + one kind-specific attribute (TCA_OPTIONS or TCA_XSTATS)."""
    built = Built(b"")
    base = PSEUDO + 16
    hdr = builder.struct_bytes(
        op.fixed_header, f"rtnl.{field_name(op.fixed_header)}", base, built.expect
    )
    body = hdr
    aset = spec.attr_sets[op.attribute_set]
    a = aset.by_name[attr]
    fmt = spec.sub_messages[a.get("sub-message")][kind]
    body += _attr(1, kind.encode() + b"\0")
    start = base + len(body) + 4
    ab = f"rtnl.tc.{attr}"
    payload = b""
    if fmt.fixed_header:
        h = builder.struct_bytes(
            fmt.fixed_header, f"{ab}.{field_name(fmt.fixed_header)}", start, built.expect
        )
        payload = h + b"\0" * (-len(h) % 4)
    if fmt.attribute_set:
        payload += builder.attrs(
            fmt.attribute_set, f"{ab}.{field_name(kind)}", start + len(payload), 1, built
        )
    body += _attr(a.value, payload)
    built.data = struct.pack("<IHHII", 16 + len(body), min(op.requests), 0x5, 1, 0) + body
    return built


def test_round_trip_every_kind_of_every_table():
    spec = load_spec(SPEC)
    reg = Registry()
    reg.add(spec)
    builder = MessageBuilder(spec)
    ops = {op.name: op for op in spec.operations}
    count = 0
    for table, opname, attr in _TABLES:
        for kind in spec.sub_messages[table]:
            built = _kind_message(spec, builder, ops[opname], kind, attr)
            frame = _session_decode(reg, built.data)
            assert frame.messages[0].node.find(f"rtnl.tc.{attr}").display == f"({kind})"
            _check_built(frame, built)
            count += 1
    assert count >= 50


def test_round_trip_every_action_kind_inside_a_filter():
    spec = load_spec(SPEC)
    reg = Registry()
    reg.add(spec)
    builder = MessageBuilder(spec)
    op = next(o for o in spec.operations if o.name == "newtfilter")
    for kind, fmt in spec.sub_messages["tc-act-options"].items():
        built = Built(b"")
        base = PSEUDO + 16
        body = builder.struct_bytes("tcmsg-filter", "rtnl.tcmsg_filter", base, built.expect)
        body += _attr(1, b"matchall\0")
        # TCA_OPTIONS > TCA_MATCHALL_ACT > [1] > TCA_ACT_KIND, TCA_ACT_OPTIONS
        opts_start = base + len(body) + 4 + 4 + 4
        act_ab = f"{OPT}.matchall.act"
        inner = _attr(1, kind.encode() + b"\0")
        opt_start = opts_start + len(inner) + 4
        opt = builder.attrs(
            fmt.attribute_set, f"{act_ab}.options.{field_name(kind)}", opt_start, 1, built
        )
        inner += _attr(2, opt)
        body += _attr(2, _attr(2, _attr(1, inner)))
        built.data = struct.pack("<IHHII", 16 + len(body), min(op.requests), 0x5, 1, 0) + body
        frame = _session_decode(reg, built.data)
        assert frame.messages[0].node.find(f"{act_ab}.options").display == f"({kind})"
        assert _check_built(frame, built) > 0, kind


# -- 3. the running kernel ------------------------------------------------------------------------------

# Run in a child process that has entered a network namespace of its own
# (nothing runs in the test's namespace): tc configures, nlsock dumps.
_CHILD = r"""
import json, os, socket, struct, subprocess, sys
sys.path.insert(0, sys.argv[1])
import nlsock as N
before = os.readlink("/proc/self/ns/net")
if not N._unshare_net() or os.readlink("/proc/self/ns/net") == before:
    sys.exit(77)
def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).returncode == 0
steps = {}
run("ip", "link", "add", "t0", "numtxqueues", "4", "type", "veth", "peer", "name", "t1", "numtxqueues", "4")
run("ip", "link", "set", "t0", "up"); run("ip", "link", "set", "t1", "up")
for name, cmd in [
    ("htb", "tc qdisc add dev t0 root handle 1: htb default 20 r2q 7"),
    ("htb-class", "tc class add dev t0 parent 1: classid 1:10 htb rate 30mbit ceil 80mbit prio 2"),
    ("pfifo", "tc qdisc add dev t0 parent 1:10 handle 10: pfifo limit 77"),
    ("clsact", "tc qdisc add dev t1 clsact"),
    ("chain", "tc chain add dev t1 ingress chain 7"),
    ("mirred", "tc actions add action mirred egress mirror dev t0 index 42"),
]:
    steps[name] = run(*cmd.split())
rec = N.Recorder()
idx = socket.if_nametoindex("t0")
with N.NlSock(N.NETLINK_ROUTE, rec) as s:
    tcmsg = struct.pack("=BxxxiIII", 0, 0, 0, 0, 0)
    s.dump(38, tcmsg)  # RTM_GETQDISC
    s.dump(42, struct.pack("=BxxxiIII", 0, idx, 0, 0, 0))  # RTM_GETTCLASS
    t1 = socket.if_nametoindex("t1")
    s.dump(102, struct.pack("=BxxxiIII", 0, t1, 0, 0xFFFFFFF2, 0))  # RTM_GETCHAIN
    kind = N.attr(1, N.strz("mirred"))
    s.dump(50, struct.pack("=Bxxx", 0) + N.nest(1, N.nest(1, kind)))  # RTM_GETACTION
json.dump({"steps": steps, "t0": idx, "frames": rec.dump()}, open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    if shutil.which("tc") is None:
        pytest.skip("tc (iproute2) is not installed")
    out = tmp_path_factory.mktemp("tc") / "tc.json"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(Path(__file__).parent), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode == 77 or (proc.returncode != 0 and "Operation not permitted" in proc.stderr):
        pytest.skip("cannot enter a new network namespace here")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    if not data["steps"]["htb"]:
        pytest.skip("this kernel has no htb qdisc")
    import nlsock as N

    pcap = out.with_suffix(".pcap")
    N.Recorder.load(data["frames"]).write_pcap(pcap)
    return data, list(dissect.read_capture(pcap))


def test_running_kernel_dumps_decode_clean(kernel):
    data, frames = kernel
    print("tc steps that the running kernel accepted:", data["steps"])
    msgs = [m for f in frames for m in f.messages]
    assert msgs
    for m in msgs:
        assert m.family == "rt-tc", m.type_name
        assert not bad_notes(m), (m.type_name, bad_notes(m))
    qdiscs = {
        (v(m.node, "rtnl.tc.kind"), v(m.node, "rtnl.tcmsg.tcm_handle"))
        for m in msgs
        if m.type_name == "RTM_NEWQDISC" and v(m.node, "rtnl.tcmsg.tcm_ifindex") == data["t0"]
    }
    assert ("htb", 0x10000) in qdiscs
    if data["steps"]["pfifo"]:
        assert ("pfifo", 0x100000) in qdiscs
        node = next(
            m.node
            for m in msgs
            if m.type_name == "RTM_NEWQDISC" and v(m.node, "rtnl.tc.kind") == "pfifo"
        )
        assert v(node, f"{OPT}.tc_fifo_qopt.limit") == 77
        assert v(node, "rtnl.tcmsg.tcm_parent") == 0x10010
    htb = next(
        m.node for m in msgs if m.type_name == "RTM_NEWQDISC" and v(m.node, "rtnl.tc.kind") == "htb"
    )
    assert v(htb, "rtnl.tc_htb_glob.rate2quantum") == 7
    assert v(htb, "rtnl.tc_htb_glob.defcls") == 0x20
    classes = [m for m in msgs if m.type_name == "RTM_NEWTCLASS"]
    if data["steps"]["htb-class"]:
        (cls,) = [m.node for m in classes if v(m.node, "rtnl.tcmsg.tcm_handle") == 0x10010]
        assert v(cls, "rtnl.tc_htb_opt.rate.rate") == 30_000_000 // 8
        assert v(cls, "rtnl.tc_htb_opt.prio") == 2
        assert cls.find("rtnl.tc.stats2.app.tc_htb_xstats.tokens") is not None
    if data["steps"]["chain"]:
        chains = {v(m.node, "rtnl.tc.chain") for m in msgs if m.type_name == "RTM_NEWCHAIN"}
        assert 7 in chains
    if data["steps"]["mirred"]:
        acts = [m for m in msgs if m.type_name == "RTM_GETACTION" and m.role == "reply"]
        els = [el for m in acts for el in m.node.find("rtnl.tc.act.tab").children]
        assert [v(el, f"{el.abbrev}.kind") for el in els] == ["mirred"]
        assert v(els[0], "rtnl.tc_mirred.index") == 42
        assert v(els[0], "rtnl.tc_mirred.ifindex") == data["t0"]


# -- the engine extensions rt-tc needs, on a small spec of their own ---------------------------------

_MINI = {
    "name": "mini",
    "protocol": "netlink-raw",
    "protonum": 0,
    "abbrev": "mini",
    "definitions": [
        {"name": "hdr", "type": "struct", "members": [{"name": "family", "type": "u32"}]},
        {"name": "elem", "type": "struct", "members": [{"name": "a", "type": "u16"}, {"name": "b", "type": "u16"}]},
        {
            "name": "sel",
            "type": "struct",
            "members": [
                {"name": "n", "type": "u32"},
                {"name": "items", "type": "binary", "struct": "elem", "flexible-array": True},
            ],
        },
        {
            "name": "blob",
            "type": "struct",
            "members": [{"name": "n", "type": "u8"}, {"name": "pad", "type": "pad", "len": 3},
                        {"name": "data", "type": "binary", "flexible-array": True}],
        },  # fmt: skip
        {"name": "app-x", "type": "struct", "members": [{"name": "x", "type": "u32"}]},
    ],
    "attribute-sets": [
        {
            "name": "top",
            "attributes": [
                {"name": "kind", "type": "string", "value": 1},
                {"name": "stats", "type": "nest", "value": 2, "nested-attributes": "stats"},
                {"name": "sel", "type": "binary", "value": 3, "struct": "sel"},
                {"name": "blob", "type": "binary", "value": 4, "struct": "blob"},
                {"name": "tab", "type": "indexed-array", "sub-type": "nest", "value": 5, "nested-attributes": "item"},
            ],
        },
        {
            "name": "stats",
            "attributes": [{"name": "app", "type": "sub-message", "value": 1, "sub-message": "app", "selector": "kind"}],
        },
        {
            "name": "item",
            "attributes": [
                {"name": "kind", "type": "string", "value": 1},
                {"name": "stats", "type": "nest", "value": 2, "nested-attributes": "stats"},
            ],
        },
    ],
    "sub-messages": [{"name": "app", "formats": [{"value": "x", "fixed-header": "app-x"}]}],
    "operations": {
        "enum-model": "directional",
        "list": [
            {
                "name": "newthing",
                "attribute-set": "top",
                "fixed-header": "hdr",
                "summary": ["{kind}", "first {tab.kind}"],
                "do": {"request": {"value": 200}},
            }
        ],
    },
}  # fmt: skip


def _mini(body: bytes):
    from dissect.schema.spec import spec_from_dict

    reg = Registry()
    reg.add(spec_from_dict(_MINI, "mini.yaml"))
    data = struct.pack("<IHHII", 20 + len(body), 200, 0x1, 1, 0) + struct.pack("<I", 0) + body
    return Session(reg, "little").decode(netlink_pseudo_header(0) + data).messages[0]


def test_engine_selector_inherited_from_the_enclosing_level():
    app = _attr(1, struct.pack("<I", 77))
    # TCA_KIND-like "kind" at the top selects the app inside the stats nest; inside
    # an item, the item's own kind decides ("y" is unknown there)
    item = _attr(1, b"y\0") + _attr(2, app)
    msg = _mini(_attr(1, b"x\0") + _attr(2, app) + _attr(5, _attr(1, item)))
    assert v(msg.node, "mini.top.stats.app.app_x.x") == 77
    notes = bad_notes(msg)
    assert len(notes) == 1 and "'y' is not known" in notes[0][1]
    assert msg.info == "x first y"


def test_engine_flexible_array_member():
    sel = struct.pack("<I", 2) + struct.pack("<HH", 1, 2) + struct.pack("<HH", 3, 4)
    blob = struct.pack("<B3x", 9) + b"\xde\xad\xbe"
    msg = _mini(_attr(3, sel) + _attr(4, blob))
    items = msg.node.find("mini.sel.items")
    assert [(v(e, "mini.sel.items.a"), v(e, "mini.sel.items.b")) for e in items.children] == [
        (1, 2),
        (3, 4),
    ]
    assert items.display == "2 x struct elem"
    assert v(msg.node, "mini.blob.data") == b"\xde\xad\xbe"
    assert not bad_notes(msg)
    # a short struct and a partial element are malformed, not fatal
    msg = _mini(_attr(3, struct.pack("<I", 1) + b"\1\0\2"))
    assert [t for _, t in bad_notes(msg)] == ["3 bytes left over after 0 elements of struct elem"]
    msg = _mini(_attr(3, b"\1\0"))
    assert "needs 4 bytes" in bad_notes(msg)[0][1]
