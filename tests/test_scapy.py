"""dissect.scapy: generated layers against our own dissector.

Round trips drawn from `dissect.strategies` over every message type of every
family: build -> bytes -> our dissector gives the same values, and Scapy's
dissection of the bytes rebuilds them exactly and agrees with ours.  Every
capture read with rdpcap leaves no Raw layer, no undecoded body and no body
layer with unexplained `extra` bytes where our dissector decodes; malformed building survives; fuzz() builds every layer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.packet import Raw, fuzz

import dissect
from dissect import strategies as nst
from dissect.capture import netlink_pseudo_header
from dissect.core.netlink import Session
from dissect.scapy import (
    Netlink,
    NetlinkContext,
    NetlinkCooked,
    cooked,
    family,
    rdpcap,
    unknown_attr,
)
from dissect.scapy.hookbodies import NlHookBody, NlHookFrame, NlHookPart
from dissect.scapy.layers import (
    HOST_BO,
    NlAttr,
    NlBody,
    NlGenlUnknown,
    NlPacketField,
    NlRawBody,
    NlRecord,
    NlStruct,
    _field_size,
    _unknown_class,
    iter_layers,
)

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = sorted(
    [*ROOT.glob("captures/*.pcap*"), *(ROOT.parent / "shared" / "captures").glob("*.pcap*")]
)
TYPES = nst.message_types()
SETTINGS = settings(
    max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


# -- leaves: (offset in the frame, name, value) of a built or dissected message


def _member_name(field: str) -> str:
    """The struct member a field stands for (layers.pyname in reverse:
    ``from_`` is member ``from``, ``m_8021q`` is ``8021q``)."""
    import keyword

    if field.endswith("_") and keyword.iskeyword(field[:-1]):
        return field[:-1]
    if field.startswith("m_") and not field[2:].isidentifier():
        return field[2:]
    return field


def _struct_leaves(pkt, off, out):
    pos = off
    for f in pkt.fields_desc[:-1]:
        size = _field_size(f)
        v = pkt.getfieldval(f.name)
        if isinstance(f, NlPacketField) and v is not None:
            _struct_leaves(v, pos, out)
        elif not f.name.startswith("_gap") and isinstance(v, int):
            out.append((pos, _member_name(f.name), v))
        pos += size


def _attr_leaves(attrs, off, out):
    for a in attrs:
        raw = bytes(a)
        if isinstance(a, NlAttr) and a._nl_dec is not None:
            kind = a._nl_kind
            v = a.getfieldval("value") if "value" in a.fieldtype else None
            name = a._nl_dec.name if not a._nl_index else f"[{a.nla_type & 0x3FFF}]"
            if kind in ("int", "varint") and v is not None:
                out.append((off, name, int(v)))
            elif kind == "string":
                out.append((off, name, bytes(v).decode("utf-8", "backslashreplace")))
            elif kind == "flag":
                out.append((off, name, True))
            elif kind == "bytes":
                out.append((off, name, bytes(v)))
            elif kind == "struct" and isinstance(v, list):  # a struct-array (XFRMA_TMPL)
                pos = off + 4
                for el in v:
                    _struct_leaves(el, pos, out)
                    pos += len(bytes(el))
            elif kind == "struct" and v is not None:
                _struct_leaves(v, off + 4, out)
            elif kind == "records":
                _record_leaves(v or [], off + 4, out)
            elif kind in ("nest", "submsg", "indexed"):
                start = off + 4
                hdr = a.getfieldval("header") if "header" in a.fieldtype else None
                if hdr is not None:
                    _struct_leaves(hdr, start, out)
                    start += (hdr._nl_size + 3) & ~3
                _attr_leaves(v or [], start, out)
        off += len(raw)


def _record_leaves(records, off, out):
    for r in records:
        raw = bytes(r)
        if isinstance(r, NlRecord):
            pos = off
            for f in r._nl_header_fields:
                v = r.getfieldval(f.name)
                if isinstance(v, int) and f.name != r._nl_len_field:  # computed when built
                    out.append((pos, f.name, v))
                pos += _field_size(f)
            _attr_leaves(r.getfieldval("attrs") or [], off + ((r._nl_size + 3) & ~3), out)
        off += len(raw)


def leaves(msg: Netlink, base: int = 16) -> list[tuple[int, str, object]]:
    out: list[tuple[int, str, object]] = []
    if isinstance(msg, NlHookFrame):  # a datagram without nlmsghdr (a uevent)
        return [(base + off, name, v) for off, name, v in msg.values()]
    body = msg.payload
    if isinstance(body, NlHookBody):  # declared by the hook module
        return [(base + 16 + off, name, v) for off, name, v in body.values()]
    if not isinstance(body, NlBody):
        return out
    pos = base + 16
    for f in body._nl_header_fields:
        v = body.getfieldval(f.name)
        if isinstance(f, NlPacketField) and v is not None:
            _struct_leaves(v, pos, out)
        elif f.name not in ("cmd", "version", "reserved") and isinstance(v, int):
            out.append((pos, _member_name(f.name), v))
        pos += _field_size(f)
    hsize = pos - base - 16
    pos = base + 16 + ((hsize + 3) & ~3)
    _attr_leaves((body.getfieldval("attrs") if "attrs" in body.fieldtype else None) or [], pos, out)
    return out


def _our_nodes(frame):
    table = {}
    for n in frame.root.walk():
        table.setdefault((n.offset, n.name), n)
    return table


def _decode_ours(msg: Netlink, reg):
    """Our dissector on the message's bytes, a request decoded first when
    the message is a reply (as a capture would have it)."""
    body = msg.payload
    session = Session(reg, "little" if HOST_BO == "<" else "big")
    ctx = msg.context
    for fid, name in ctx.user.items():
        session.genl_overrides[fid] = name
    proto = msg.protocol
    req_data = None
    if body._nl_role == "reply" and body._nl_op.requests:
        req_cls = type(body)._nl_op
        from dissect.scapy.layers import body_class

        req = (
            Netlink(nlmsg_seq=msg.nlmsg_seq, nlmsg_flags=5, context=ctx)
            / body_class(body._nl_spec, req_cls, "request")()
        )
        req_data = netlink_pseudo_header(proto) + bytes(req)
        session.decode(req_data)
    data = netlink_pseudo_header(proto) + bytes(msg)
    return session.decode(data), data, req_data


def check_frame_round_trip(msg: NlHookFrame) -> None:
    """A datagram a frame-hook decodes (no nlmsghdr): our dissector gives
    the built values, Scapy dissects the bytes to the same form."""
    data = netlink_pseudo_header(msg.protocol) + bytes(msg)
    frame = Session(dissect.api.default_registry()).decode(data)
    where = msg.name
    assert [m.type_name for m in frame.messages] == [msg._nl_hook.type_name], where
    notes = [(n.name, note.text) for n, note in frame.root.all_notes()]
    assert not notes, (where, notes)
    built = leaves(msg)
    assert built, where
    nodes = _our_nodes(frame)
    for off, name, value in built:
        node = nodes.get((off, name))
        assert node is not None, (where, off, name, value)
        assert node.value == value, (where, name, node.value, value)
    again = NetlinkCooked(data)
    assert bytes(again) == data
    assert not any(isinstance(x, Raw) for x in iter_layers(again))
    assert type(again.payload) is type(msg), where
    assert leaves(again.payload) == built
    assert not again.payload.extra


def check_round_trip(msg: Netlink, reg=None) -> None:
    if isinstance(msg, NlHookFrame):
        check_frame_round_trip(msg)
        return
    reg = reg or dissect.api.default_registry()
    frame, data, req_data = _decode_ours(msg, reg)
    where = f"{msg.payload.name}"
    ours = frame.messages[0]
    assert ours.layout is not None, where
    assert ours.type_name == msg.payload.name, (ours.type_name, where)
    notes = [
        (n.name, note.text)
        for n, note in frame.root.all_notes()
        if note.group in ("malformed", "undecoded")
    ]
    assert not notes, (where, notes)
    built = leaves(msg)
    nodes = _our_nodes(frame)
    for off, name, value in built:
        node = nodes.get((off, name))
        assert node is not None, (where, off, name, value)
        assert node.value == value, (where, name, node.value, value)
    # Scapy's own dissection of the same bytes: same bytes, same leaves
    with NetlinkContext(msg.context.user, registry_=reg, host=False):
        if req_data is not None:
            NetlinkCooked(req_data)
        again = NetlinkCooked(data)
    assert bytes(again) == data
    assert not any(isinstance(x, Raw) for x in iter_layers(again))
    dmsg = again.payload
    # same layout (a reply nobody asked for reads as the event; a reply
    # number several operations share reads as the first one's, as ours)
    # (an empty body dissects as no payload at all)
    assert getattr(dmsg.payload, "_nl_cset", None) is msg.payload._nl_cset, (
        type(dmsg.payload),
        where,
    )
    assert leaves(dmsg) == built, where
    assert not any(
        x.getfieldval("extra") for x in iter_layers(dmsg) if isinstance(x, (NlBody, NlHookPart))
    ), where  # every byte in a field of its own, none left over


@pytest.mark.parametrize("mtype", TYPES, ids=str)
def test_round_trip_every_message_type(mtype):
    @SETTINGS
    @given(nst.message_of(mtype))
    def run(msg):
        check_round_trip(msg)

    run()


KERNEL_SPECS = sorted((ROOT.parent / "shared" / "ynl-specs" / "specs").glob("*.yaml"))


@pytest.mark.skipif(not KERNEL_SPECS, reason="../shared/ynl-specs is not here")
@pytest.mark.parametrize("path", KERNEL_SPECS, ids=lambda p: p.name)
def test_round_trip_kernel_specs(path):
    """Layers and strategies need no code for a kernel YNL spec either."""
    from dissect.schema import Registry, builtin_plugin_dir, load_spec

    spec = load_spec(path)
    if spec.protocol == "netlink-core" or not spec.operations:
        pytest.skip("no messages")
    reg = Registry()
    reg.add(spec)
    reg.load_file(builtin_plugin_dir() / "nlmsgerr.yaml", "builtin")

    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
    @given(nst.messages(registry=reg))
    def run(msg):
        check_round_trip(msg, reg)

    run()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(nst.messages())
def test_round_trip_any_message(msg):
    check_round_trip(msg)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(nst.malformed_messages())
def test_malformed_messages_survive_building(case):
    msg, kind = case
    data = netlink_pseudo_header(msg.protocol) + bytes(msg)
    again = NetlinkCooked(data)
    assert bytes(again) == data, kind
    frame = Session(dissect.api.default_registry()).decode(data)  # never raises
    assert frame.root.length == len(data)


# -- captures


def _unknown_counts(frame):
    return sum(
        1
        for _n, note in frame.root.all_notes()
        if "is not known" in note.text or "not known to the schema" in note.text
    )


def _bad_counts(frame):
    return sum(1 for _n, note in frame.root.all_notes() if note.group in ("undecoded", "malformed"))


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_rdpcap_leaves_no_raw(path):
    pkts = rdpcap(path)
    frames = list(dissect.read_capture(path))
    assert len(pkts) == len(frames)
    problems = []
    for pkt, frame in zip(pkts, frames):
        if bytes(pkt) != pkt.original:
            problems.append(f"frame {frame.number}: rebuilds to other bytes")
        layers = list(iter_layers(pkt))
        if any(isinstance(x, Raw) for x in layers):  # Padding is a Raw too
            problems.append(f"frame {frame.number}: Raw layer")
        msgs = [x for x in layers if isinstance(x, Netlink) and not x._nl_echo]
        for m, om in zip(msgs, frame.messages):
            body = m.payload
            if om.layout is not None and isinstance(body, (NlRawBody, NlGenlUnknown)):
                problems.append(f"frame {frame.number}: {om.type_name} left undecoded")
        # A message body, struct, attribute, declared hook body or part
        # whose bytes our dissector explains leaves nothing in `extra`
        # (AUDIT rules, proc connector events, uevents, runs of structs such
        # as NHA_GROUP and counted trailers such as an SRH's segments
        # included).  Only a frame where our dissector notes undecoded or
        # malformed bytes may keep some.
        body_extra = [type(x).__name__ for x in layers if "extra" in x.fields and x.fields["extra"]]
        if body_extra and not _bad_counts(frame):
            problems.append(f"frame {frame.number}: undecoded extra bytes in {body_extra}")
        unknown = sum(
            1
            for x in layers
            if isinstance(x, NlAttr) and x._nl_dec is None and x._nl_kind == "bytes"
        )
        if unknown > _unknown_counts(frame):
            problems.append(
                f"frame {frame.number}: {unknown} attributes left as bytes,"
                f" our dissector has {_unknown_counts(frame)} unknown"
            )
    assert not problems, problems[:20]


def test_wrpcap_read_by_nlshark_and_tshark(tmp_path):
    from scapy.utils import wrpcap

    rt = family("rt-link")
    msgs = [
        NetlinkCooked() / Netlink(nlmsg_seq=1, nlmsg_flags="REQUEST|ACK") / rt.getlink(ifname="lo"),
        NetlinkCooked()
        / Netlink(nlmsg_seq=2, nlmsg_flags="REQUEST|ACK|CREATE|EXCL")
        / rt.newlink(ifname="vlan10", link=1, linkinfo={"kind": "vlan", "data": {"id": 10}}),
        cooked(
            [Netlink(nlmsg_seq=3) / rt.getlink(ifname="a"), Netlink(nlmsg_seq=4) / rt.dellink()]
        ),
    ]
    out = tmp_path / "out.pcap"
    wrpcap(str(out), msgs)
    frames = list(dissect.read_capture(out))
    assert [m.type_name for f in frames for m in f.messages] == [
        "RTM_GETLINK",
        "RTM_NEWLINK",
        "RTM_GETLINK",
        "RTM_DELLINK",
    ]
    res = subprocess.run(
        [sys.executable, "-m", "dissect.cli", "-r", str(out)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert "RTM_NEWLINK" in res.stdout and "vlan10" in res.stdout
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    res = subprocess.run(["tshark", "-r", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.strip().splitlines()) == 3
    assert "malformed" not in res.stdout.lower()


# -- malformed building


def test_explicit_wrong_values_survive():
    rt = family("rt-link")
    attrs = rt.link_attrs
    msg = Netlink(nlmsg_len=1000, nlmsg_seq=3) / rt.newlink(
        attrs=[
            attrs.ifname("eth0", nla_len=3),
            attrs.mtu(1500, pad=b"\xff" * 3),
            unknown_attr(999, b"\x01\x02\x03"),
        ]
    )
    data = bytes(msg)
    assert data[:4] == (1000).to_bytes(4, sys.byteorder)
    assert data[32:36] == (3).to_bytes(2, sys.byteorder) + (3).to_bytes(2, sys.byteorder)
    assert b"\xff\xff\xff" in data
    frame = Session(dissect.api.default_registry()).decode(netlink_pseudo_header(0) + data)
    texts = [note.text for _n, note in frame.root.all_notes()]
    assert any("past the end" in t or "runs" in t for t in texts), texts
    again = Netlink(data, protocol=0)
    assert bytes(again) == data


def test_truncated_and_oversized_attributes_round_trip():
    rt = family("rt-link")
    a = rt.link_attrs.mtu(1500)
    full = bytes(a)
    for cut in range(len(full)):
        msg = Netlink(nlmsg_seq=1) / rt.newlink()
        data = bytes(msg) + full[:cut]
        data = (len(data)).to_bytes(4, sys.byteorder) + data[4:]
        again = Netlink(data, protocol=0)
        assert bytes(again) == data
    big = rt.link_attrs.mtu(1500, extra=b"\x00" * 4)
    msg = Netlink() / rt.newlink(attrs=[big])
    frame = Session(dissect.api.default_registry()).decode(netlink_pseudo_header(0) + bytes(msg))
    assert any("expected 4" in note.text for _n, note in frame.root.all_notes())


def test_operation_picks_message_type_not_last_binding():
    rt = family("rt-link")
    assert Netlink(bytes(Netlink() / rt.newlink()), protocol=0).nlmsg_type == 16
    assert Netlink(bytes(Netlink() / rt.getlink()), protocol=0).nlmsg_type == 18
    assert Netlink(bytes(Netlink() / rt.setlink()), protocol=0).nlmsg_type == 19


def test_directional_genl_requests_and_replies():
    # ETHTOOL_MSG_PRIVFLAGS_GET is 13 towards the kernel, its reply 14
    eth = family("ethtool")
    req = eth.privflags_get.request
    rep = eth.privflags_get.reply
    assert (req._nl_type, rep._nl_type) == (13, 14)
    assert req._name == "ETHTOOL_MSG_PRIVFLAGS_GET"
    assert rep._name == "ETHTOOL_MSG_PRIVFLAGS_GET_REPLY"
    ids = {"ethtool": 0x30}
    with NetlinkContext(ids, host=False):
        asked = Netlink(
            bytes(Netlink(nlmsg_seq=9, genl=ids) / req(header={"dev-name": "eth0"})), protocol=16
        )
        assert isinstance(asked.payload, req)
        answer = Netlink(nlmsg_seq=9, nlmsg_pid=77, genl=ids) / rep(header={"dev-name": "eth0"})
        again = Netlink(bytes(answer), protocol=16)
    assert isinstance(again.payload, rep)
    assert again.payload.attr("header").value[0].value == b"eth0"


# -- fuzz


def _all_layer_classes():
    """Every body, attribute (sub-message formats included) and struct
    class of every family, each once."""
    from dissect.scapy.layers import _ROLE_VALUES, attr_class, body_class, struct_class

    reg = dissect.api.default_registry()
    seen: dict[int, type] = {}
    for t in TYPES:
        spec = next(s for s in reg.specs if s.name == t.family and s.protocol != "netlink-core")
        if spec.frame_hook:  # a uevent form
            cls = family(spec.name).frame.kind(t.op)
            seen[id(cls)] = cls
            continue
        op = next(o for o in spec.operations if o.name == t.op and getattr(o, _ROLE_VALUES[t.role]))
        cls = body_class(spec, op, t.role)
        seen[id(cls)] = cls
        for key in cls.format_keys() if hasattr(cls, "format_keys") else ():
            f = cls.kind(key)  # every format of a header-selected body
            seen[id(f)] = f
    for spec in reg.specs:
        comp = reg.compiler(spec, HOST_BO)
        for sname in spec.structs:
            lay = comp.struct_layout(sname)
            if lay is not None:
                c = struct_class(spec, lay)
                seen[id(c)] = c
        for set_name in spec.attr_sets:
            cset = comp.attr_set(set_name)
            for dec in cset.by_type.values():
                c = attr_class(spec, cset, dec, HOST_BO)
                seen[id(c)] = c
                for key in c._nl_formats or ():
                    f = c._nl_formats[key]
                    seen[id(f)] = f
    return list(seen.values())


def test_fuzz_builds_every_layer_class():
    classes = [Netlink, NetlinkCooked, _unknown_class(HOST_BO, False), *_all_layer_classes()]
    assert len(classes) > 1000
    ids = nst.genl_test_ids()
    for cls in classes:
        pkt = fuzz(Netlink(genl=ids) / cls()) if issubclass(cls, NlBody) else fuzz(cls())
        assert isinstance(bytes(pkt), bytes), cls


def test_struct_layers_fuzz():
    rt = family("rt-link")
    s = rt.struct("ifinfomsg")
    assert issubclass(s, NlStruct)
    assert len(bytes(fuzz(s()))) == 16


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_dissection_never_raises_and_rebuilds(data):
    for proto in (0, 16):
        pkt = NetlinkCooked(netlink_pseudo_header(proto) + data)
        assert bytes(pkt) == netlink_pseudo_header(proto) + data


def test_lazy_import_and_no_scapy_in_the_read_path():
    code = (
        "import sys, dissect, dissect.api\n"
        "list(dissect.read_capture('captures/quickstart.pcap'))\n"
        "assert not [m for m in sys.modules if m.startswith('scapy')], 'scapy in read path'\n"
        "dissect.api._default_registry = None\n"
        "import dissect.scapy\n"
        "assert dissect.api._default_registry is None, 'specs loaded at import'\n"
        "assert isinstance(dissect.scapy.family('rt-link').newlink(), dissect.scapy.NlBody)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr


def _doc_blocks():
    text = (ROOT / "docs" / "scapy.md").read_text()
    parts = text.split("```python\n")[1:]
    return [p.split("```", 1)[0] for p in parts]


@pytest.mark.parametrize("code", _doc_blocks(), ids=lambda c: c.splitlines()[0][:40])
def test_docs_examples_run(code, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = code.replace('"copy.pcap"', repr(str(tmp_path / "copy.pcap")))
    exec(compile(code, "docs/scapy.md", "exec"), {"__name__": "docs_example"})


def test_readme_scapy_example_runs():
    text = (ROOT / "README.md").read_text()
    block = text.split("## Scapy layers", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    res = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr


def test_big_endian_and_linux_cooked_headers():
    from scapy.layers.l2 import CookedLinux

    from dissect.scapy import netlink_class

    rt = family("rt-link", bo=">")
    msg = netlink_class(">")(nlmsg_seq=5, nlmsg_flags="REQUEST|ACK") / rt.newlink(
        ifname="be0", mtu=1500, linkinfo={"kind": "vlan", "data": {"id": 7}}
    )
    data = netlink_pseudo_header(0) + bytes(msg)
    assert data[16:20] == len(bytes(msg)).to_bytes(4, "big")
    again = NetlinkCooked(data)
    assert type(again.payload).__name__ == "NetlinkBE"
    assert again.payload.payload.attr("mtu").value == 1500
    assert bytes(again) == data
    frame = dissect.decode_frame(data)
    assert frame.messages[0].type_name == "RTM_NEWLINK"
    assert not list(frame.root.all_notes())
    # LINKTYPE_LINUX_SLL with ARPHRD_NETLINK carries the same messages
    sll = CookedLinux(bytes(CookedLinux(lladdrtype=824, proto=0, pkttype=4) / msg))
    assert isinstance(sll.payload, Netlink)
    assert sll.payload.payload.attr("ifname").value == b"be0"


def test_plain_scapy_rdpcap_gives_netlink_layers():
    from scapy.utils import rdpcap as scapy_rdpcap

    path = ROOT / "captures" / "quickstart.pcap"
    pkts = scapy_rdpcap(str(path))
    assert all(isinstance(p, NetlinkCooked) for p in pkts)
    assert not any(isinstance(x, Raw) for p in pkts for x in iter_layers(p))


# -- bodies a header member selects, bodies and frames a hook decodes


def _ours(proto, data):
    frame = Session(dissect.api.default_registry()).decode(netlink_pseudo_header(proto) + data)
    return frame, {(n.name): n.value for n in frame.root.walk()}


def test_sock_diag_inet_request_by_name_and_by_format():
    sd = family("sock-diag")
    by_value = Netlink(nlmsg_flags="REQUEST|DUMP", nlmsg_seq=3) / sd.sock_diag_by_family(
        sdiag_family="inet", sdiag_protocol="tcp", idiag_states=0xFFF, id={"idiag_dport": 80}
    )
    inet = sd.sock_diag_by_family.request.kind("inet")
    by_format = Netlink(nlmsg_flags="REQUEST|DUMP", nlmsg_seq=3) / inet(
        sdiag_protocol="tcp", idiag_states=0xFFF, id={"idiag_dport": 80}
    )
    assert type(by_value.payload) is inet
    data = bytes(by_value)
    assert data == bytes(by_format) and len(data) == 16 + 56  # struct inet_diag_req_v2
    frame, values = _ours(4, data)
    assert frame.messages[0].info == "inet tcp states all dump"
    assert values["sdiag_family"] == 2 and values["idiag_dport"] == 80
    again = NetlinkCooked(netlink_pseudo_header(4) + data)
    assert type(again.payload.payload) is inet and not again.payload.payload.extra
    # the legacy request names its family member idiag_family
    legacy = sd.tcpdiag_getsock(sdiag_family="inet6")
    assert legacy.idiag_family == 10 and legacy._nl_format == "inet6"
    with pytest.raises(KeyError):
        sd.sock_diag_by_family.request.kind("bluetooth")


def test_audit_record_text_and_parsed_view():
    au = family("audit")
    body = au.syscall.event(
        fields={"arch": "c000003e", "syscall": 59, "comm": "a b"}, stamp=(1, 2, 3)
    )
    assert body.text == b'audit(1.002:3): arch=c000003e syscall=59 comm="a b"'
    assert body.pairs() == [("arch", "c000003e"), ("syscall", "59"), ("comm", "a b")]
    data = bytes(Netlink() / body)
    frame, values = _ours(9, data)
    assert frame.messages[0].type_name == "AUDIT_SYSCALL"
    assert values["record"] == body.text.decode() and values["serial"] == 3
    rule = au.add_rule(
        flags="exit", action="always", field_count=1, fields=[11], values=[0xC000003E]
    )
    frame, values = _ours(9, bytes(Netlink() / rule))
    assert values["buflen"] == 0 and not list(frame.root.all_notes())


def test_uevent_kernel_and_udev_forms():
    ue = family("kobject-uevent")
    kernel = ue.frame.kind("kernel")(
        header="add@/devices/virtual/net/v0", properties={"SUBSYSTEM": "net", "SEQNUM": "7"}
    )
    assert bytes(kernel) == b"add@/devices/virtual/net/v0\0SUBSYSTEM=net\0SEQNUM=7\0"
    frame, values = _ours(15, bytes(kernel))
    assert frame.messages[0].info == "add /devices/virtual/net/v0 (net)"
    assert values["SEQNUM"] == "7" and not list(frame.root.all_notes())
    assert ("SUBSYSTEM", "net") in kernel.pairs()
    udev = ue.frame.kind("udev")(properties={"ACTION": "add", "DEVPATH": "/devices/x"})
    data = netlink_pseudo_header(15) + bytes(udev)
    frame, values = _ours(15, bytes(udev))
    assert values["properties_off"] == 40 and values["properties_len"] == 30
    assert not list(frame.root.all_notes())
    again = NetlinkCooked(data)
    assert type(again.payload) is type(udev) and bytes(again) == data


def test_connector_proc_event_and_request():
    cn = family("connector")
    event = cn.msg.event.part("data", "event")
    fork = event.part("event_data", "fork")
    msg = Netlink() / cn.msg.event(data=event(cpu=1, event_data=fork(parent_pid=1, child_pid=42)))
    data = bytes(msg)
    frame, values = _ours(11, data)
    assert frame.messages[0].info.startswith("proc fork parent 1/0 -> child 42/0")
    assert values["idx"] == 1 and values["what"] == 1 and values["len"] == 32
    again = NetlinkCooked(netlink_pseudo_header(11) + data)
    assert again.payload.payload.data.event_data.child_pid == 42
    listen = cn.msg.request.part("data", "input")
    req = Netlink(nlmsg_pid=77) / cn.msg.request(data=listen(mcast_op="PROC_CN_MCAST_LISTEN"))
    frame, values = _ours(11, bytes(req))
    assert frame.messages[0].info.startswith("proc listen") and values["mcast_op"] == 1


def test_declared_bodies_keep_wrong_lengths():
    cn = family("connector")
    event = cn.msg.event.part("data", "event")
    bad = Netlink() / cn.msg.event(len=200, data=event(what=2, event_data=b"\x01\x02"))
    data = bytes(bad)
    assert int.from_bytes(data[32:34], sys.byteorder) == 200  # survives building
    frame, _ = _ours(11, data)
    assert any("runs" in note.text for _, note in frame.root.all_notes())
    again = NetlinkCooked(netlink_pseudo_header(11) + data)
    assert bytes(again) == netlink_pseudo_header(11) + data
    ue = family("kobject-uevent")
    udev = ue.frame.kind("udev")(properties_len=999, properties={"A": "1"})
    frame, _ = _ours(15, bytes(udev))
    assert any(note.group == "malformed" for _, note in frame.root.all_notes())
    cut = ue.frame.kind("kernel")(bytes(ue.frame.kind("kernel")(header="add@/x"))[:-1])
    assert bytes(cut) == b"add@/x" and cut.header_nul == b""


def test_struct_runs_and_counted_trailers():
    """A run of structs (NHA_GROUP) and bytes a member counts (an SRH's
    segments) dissect and build as our dissector reads them."""
    nh = family("rt-nexthop")
    # the spec does not mark NHA_GROUP an array: a list inside the list
    msg = Netlink() / nh.newnexthop(id=20, group=[[{"id": 11}, {"id": 12, "weight": 1}]])
    data = bytes(msg)
    frame = dissect.decode_frame(netlink_pseudo_header(0) + data)
    grp = next(n for n in frame.root.walk() if n.name == "NHA_GROUP")
    assert grp.display == "2 x struct nexthop_grp"
    back = Netlink(data, protocol=0)
    ids = [g.id for g in back.payload.attr("group").value]
    assert ids == [11, 12] and bytes(back) == data
    # a plain list still repeats the attribute
    two = Netlink() / nh.newnexthop(group=[{"id": 1}, {"id": 2}])
    assert len([a for a in two.payload.attrs if a.name == "NHA_GROUP"]) == 2

    rr = family("rt-route")
    segs = [bytes.fromhex("20010db800bb0000000000000000000" + str(i)) for i in (1, 2)]
    srh = rr.attrs("lwt-seg6-attrs").srh(
        {"mode": "encap", "hdrlen": 4, "type": 4, "segments_left": 1, "first_segment": 1,
         "segments": segs}
    )  # fmt: skip
    raw = bytes(srh)
    again = type(srh)(raw)
    assert again.value.segments == segs and again.extra == b""
    assert "2001:db8:bb::2" in again.value.fieldtype["segments"].i2repr(again.value, segs)


def test_keyword_member_names_round_trip():
    """A struct member named like a Python keyword (ifla_vlan_qos_mapping's
    ``from``) is field ``from_`` in the layers and ``from`` in our tree."""
    rt = family("rt-link")
    data = {"id": 5, "egress-qos": [{"mapping": {"from_": 1, "to": 2}}]}
    msg = Netlink(nlmsg_flags="REQUEST") / rt.newlink(
        ifname="v", linkinfo={"kind": "vlan", "data": data}
    )
    check_round_trip(msg)
    assert ("from", 1) in [(name, v) for _, name, v in leaves(msg)]
