"""nfnetlink summaries: batches, nf_tables rules and conntrack entries.

The specs (plugins/nfnetlink.yaml, nftables.yaml, ctnetlink.yaml) decode
every attribute; what a template cannot say lives here:

- a batch message's nfgenmsg res_id is the subsystem the batch is for
  (NFNL_SUBSYS_*, linux/netfilter/nfnetlink.h), named here;
- a rule's summary lists its expressions the way ``nft --debug=netlink``
  prints them (``payload load 4b @ network header + 16 => reg 1``,
  ``cmp eq reg 1 0xc6120a00``, ``immediate reg 0 accept``), one per
  NFTA_LIST_ELEM, in order;
- a conntrack entry is summarised like a line of ``conntrack -L``:
  protocol, timeout, TCP state, both tuples, status flags, mark and use.
"""

from __future__ import annotations

from typing import Any

from dissect.core.tree import Node

# NFNL_SUBSYS_* (linux/netfilter/nfnetlink.h)
SUBSYSTEMS = {
    0: "none", 1: "ctnetlink", 2: "ctnetlink_exp", 3: "queue", 4: "ulog", 5: "osf",
    6: "ipset", 7: "acct", 8: "cttimeout", 9: "cthelper", 10: "nftables", 11: "nft_compat",
    12: "hook",
}  # fmt: skip
# NFPROTO_* (linux/netfilter.h) as nft names table families
FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}
# enum nft_payload_bases, as nft --debug=netlink names them
PAYLOAD_BASES = {0: "link", 1: "network", 2: "transport", 3: "inner"}


def _leaf(ab: str) -> str:
    return ab.rsplit(".", 1)[-1]


def _kids(node: Node | None) -> dict[str, Node]:
    """Children by the last part of their field name (first one wins)."""
    out: dict[str, Node] = {}
    for c in (node.children or ()) if node is not None else ():
        out.setdefault(_leaf(c.abbrev), c)
    return out


def _name(node: Node | None) -> str:
    """An enum value's name without its number (``eq (0)`` -> ``eq``)."""
    if node is None:
        return "?"
    text = node.display
    return text.rsplit(" (", 1)[0] if text.endswith(")") and " (" in text else text


def _reg(node: Node | None) -> str:
    return f"reg {node.value}" if node is not None and isinstance(node.value, int) else "reg ?"


def _data(node: Node | None) -> str:
    """NFTA_DATA_*: a value in hex as nft prints it, or a verdict."""
    k = _kids(node)
    if "value" in k:
        v = k["value"].value
        return "0x" + (v.hex() if isinstance(v, (bytes, bytearray)) else str(v))
    if "verdict" in k:
        vk = _kids(k["verdict"])
        code = _name(vk.get("code"))
        chain = vk.get("chain")
        return f"{code} -> {chain.value}" if chain is not None else code
    return "?"


def expression_text(elem: Node) -> str:
    """One NFTA_LIST_ELEM as ``nft --debug=netlink`` writes it."""
    k = _kids(elem)
    name = k["name"].value if "name" in k else "?"
    d = _kids(k.get("data"))
    if name == "payload":
        where = f"{d['len'].value if 'len' in d else '?'}b @ " + (
            f"{_name(d.get('base'))} header + {d['offset'].value if 'offset' in d else '?'}"
        )
        if "sreg" in d:
            return f"payload write {_reg(d['sreg'])} => {where}"
        return f"payload load {where} => {_reg(d.get('dreg'))}"
    if name in ("meta", "ct", "rt", "socket"):
        if "sreg" in d:
            return f"{name} set {_name(d.get('key'))} with {_reg(d['sreg'])}"
        return f"{name} load {_name(d.get('key'))} => {_reg(d.get('dreg'))}"
    if name == "cmp":
        return f"cmp {_name(d.get('op'))} {_reg(d.get('sreg'))} {_data(d.get('data'))}"
    if name == "immediate":
        return f"immediate {_reg(d.get('dreg'))} {_data(d.get('data'))}"
    if name == "counter":
        pk = d["packets"].value if "packets" in d else 0
        by = d["bytes"].value if "bytes" in d else 0
        return f"counter pkts {pk} bytes {by}"
    if name == "lookup":
        out = f"lookup {_reg(d.get('sreg'))} set {d['set'].value if 'set' in d else '?'}"
        return out + (f" dreg {d['dreg'].value}" if "dreg" in d else "")
    if name == "bitwise":
        if "mask" in d:
            return (
                f"bitwise {_reg(d.get('dreg'))} = ({_reg(d.get('sreg'))} & "
                f"{_data(d['mask'])} ) ^ {_data(d.get('xor'))}"
            )
        return f"bitwise {_reg(d.get('dreg'))} = ({_reg(d.get('sreg'))} {_name(d.get('op'))} {_data(d.get('data'))})"
    if name == "range":
        return (
            f"range {_name(d.get('op'))} {_reg(d.get('sreg'))} "
            f"{_data(d.get('from_data'))} {_data(d.get('to_data'))}"
        )
    # other expressions: their attributes by name
    parts = [name]
    for c in k["data"].children or () if "data" in k else ():
        if not c.children:
            parts.append(f"{_leaf(c.abbrev)} {_name(c)}")
    return " ".join(parts)


def rule_summary(msg: Any) -> str:
    """``inet mx out handle 2: meta load nfproto => reg 1; cmp eq ...``"""
    k = _kids(msg.node)
    hdr = _kids(k.get("nfgenmsg"))
    fam = hdr.get("nfgen_family")
    head = [FAMILIES.get(fam.value, "") if fam is not None else ""]
    head += [k[n].display for n in ("table", "chain") if n in k]
    if "handle" in k:
        head.append(f"handle {k['handle'].value}")
    text = " ".join(h for h in head if h)
    exprs = k.get("expressions")
    if exprs is not None and exprs.children:
        text += ": " + "; ".join(expression_text(e) for e in exprs.children)
    return text


def batch_summary(msg: Any) -> str:
    """``nftables (10)``: the subsystem of the batch, and its genid if any."""
    k = _kids(msg.node)
    hdr = _kids(k.get("nfgenmsg"))
    res = hdr.get("res_id")
    out = []
    if res is not None and isinstance(res.value, int):
        out.append(f"{SUBSYSTEMS.get(res.value, 'subsystem')} ({res.value})")
    if "genid" in k:
        out.append(f"genid {k['genid'].value}")
    return " ".join(out)


def _tuple_text(node: Node | None) -> str:
    t = _kids(node)
    ip = _kids(t.get("ip"))
    proto = _kids(t.get("proto"))
    out = []
    for side in ("src", "dst"):
        a = ip.get(f"v4_{side}") or ip.get(f"v6_{side}")
        if a is not None:
            out.append(f"{side}={a.display}")
    for name, label in (
        ("src_port", "sport"),
        ("dst_port", "dport"),
        ("icmp_type", "type"),
        ("icmp_code", "code"),
        ("icmp_id", "id"),
        ("icmpv6_type", "type"),
        ("icmpv6_code", "code"),
        ("icmpv6_id", "id"),
    ):
        if name in proto:
            out.append(f"{label}={proto[name].value}")
    return " ".join(out)


def conntrack_summary(msg: Any) -> str:
    """Like a line of ``conntrack -L``: ``tcp 6 431999 ESTABLISHED src=...
    dst=... sport=... dport=... src=... dst=... [ASSURED] mark=0 use=1``."""
    k = _kids(msg.node)
    out = []
    orig = _kids(k.get("tuple_orig"))
    proto = _kids(orig.get("proto")).get("num")
    if proto is not None:
        out.append(f"{_name(proto)} {proto.value}")
    if "timeout" in k:
        out.append(str(k["timeout"].value))
    tcp = _kids(_kids(k.get("protoinfo")).get("tcp")).get("state")
    if tcp is not None:
        out.append(_name(tcp).upper().replace("-", "_"))
    if "tuple_orig" in k:
        out.append(_tuple_text(k["tuple_orig"]))
    status = k.get("status")
    seen_reply = isinstance(status.value, int) and status.value & 2 if status is not None else True
    if not seen_reply:
        out.append("[UNREPLIED]")
    if "tuple_reply" in k:
        out.append(_tuple_text(k["tuple_reply"]))
    if status is not None and isinstance(status.value, int) and status.value & 4:
        out.append("[ASSURED]")
    for name in ("mark", "zone", "use"):
        if name in k:
            out.append(f"{name}={k[name].value}")
    if not out:
        # a request (conntrack -L dumps one family, or all with NFPROTO_UNSPEC)
        fam = _kids(k.get("nfgenmsg")).get("nfgen_family")
        if fam is not None:
            out.append(_name(fam))
    return " ".join(o for o in out if o)
