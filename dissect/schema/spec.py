"""Family specs: the YNL YAML dialect read into plain objects.

A spec file describes one netlink family the way the kernel's YNL specs do
(``Documentation/netlink/specs``): definitions (enums, flags, structs),
attribute sets, sub-messages, operations and multicast groups.  This module
only *reads* the dialect and fills in what YNL leaves implicit (numbering of
enum entries, attributes and operations, constant-name prefixes); turning a
spec into fast decode tables is `dissect.schema.compile`'s job.

Numbering rules (as YNL): enum entries count from ``value-start`` (0), flag
entries are bit numbers counting from ``value-start`` (0) and mean
``1 << n``; attributes count from 1 and an attribute without ``value`` is
the previous one plus one; operations count from 1 the same way.

Loading never trusts the file: a malformed spec raises `SpecError` with the
file and the path of the offending item, so a broken plugin is reported and
skipped rather than crashing the dissector.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml is several times faster when present
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader


class SpecError(Exception):
    """A spec file that cannot be used; the message names file and item."""


SCALAR_SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "s8": 1, "s16": 2, "s32": 4, "s64": 8}


def c_name(prefix: str, name: str) -> str:
    """Kernel-style constant name: ``ifla-`` + ``ifname`` -> ``IFLA_IFNAME``."""
    return (prefix + name).upper().replace("-", "_").replace(".", "_")


def field_name(name: str) -> str:
    """Field-abbreviation part of a spec name: ``ifi-index`` -> ``ifi_index``."""
    return name.replace("-", "_").replace(".", "_")


@dataclass
class EnumDef:
    """An ``enum`` or ``flags`` definition. For flags, keys are masks."""

    name: str
    is_flags: bool
    entries: dict[int, str]
    name_prefix: str
    docs: dict[int, str] = field(default_factory=dict)

    def const(self, value: int) -> str | None:
        n = self.entries.get(value)
        return None if n is None else c_name(self.name_prefix, n)


@dataclass
class MemberSpec:
    name: str
    type: str
    len: int | None = None
    byte_order: str | None = None
    display_hint: str | None = None
    enum: str | None = None
    enum_as_flags: bool = False
    struct: str | None = None
    units: str | None = None
    doc: str | None = None
    # nlshark: a union shown by the value of another member
    # (member name, [(value, length, display hint)])
    union_by: tuple[str, list[tuple[int, int, str | None]]] | None = None
    flexible: bool = False  # nlshark: a trailing flexible array member


@dataclass
class StructDef:
    name: str
    members: list[MemberSpec]
    # nlshark: bytes right after the struct whose count a member gives
    # (``trailer: {name: options, length: nduseropt-opts-len}``)
    trailer: dict[str, Any] | None = None


@dataclass
class AttrSpec:
    name: str
    value: int
    type: str
    props: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.props.get(key, default)


@dataclass
class AttrSetSpec:
    name: str
    name_prefix: str
    abbrev: str
    attrs: dict[int, AttrSpec]
    by_name: dict[str, AttrSpec]
    subset_of: str | None = None


@dataclass
class SubMessageFormat:
    value: str
    attribute_set: str | None
    fixed_header: str | None
    abbrev: str | None
    # nlshark extensions for formats selected at message level (see OpSpec)
    summary: list[Any] | None = None
    summary_hook: str | None = None


@dataclass
class OpSpec:
    """One operation.  `msg_values` maps a role to the message type or
    command number: ``request``, ``reply``, ``notify``/``event``."""

    name: str
    attribute_set: str | None
    fixed_header: str | None
    requests: set[int]
    replies: set[int]
    events: set[int]
    summary: list[Any] | None
    doc: str | None = None
    name_prefix: str | None = None  # nlshark extension: this operation's own constant prefix
    # nlshark extensions: the body's layout chosen by a member of the fixed
    # header (sub-message + selector), a Python hook that decodes the body,
    # a Python hook that writes the summary line
    sub_message: str | None = None
    selector: str | None = None
    hook: str | None = None
    summary_hook: str | None = None
    # nlshark extension: the kind of request (get/new/del/set) when the
    # operation's name does not start with its verb (SOCK_DIAG_BY_FAMILY)
    kind: str | None = None
    # nlshark extension: the operation covers ranges of numbers (``last``);
    # each message is named after the operation and its number
    ranged: bool = False
    # the request numbers of the operation's ``dump`` block: a request with
    # NLM_F_DUMP is looked up among these first (XFRM_MSG_GETSA has a fixed
    # header, its dump request has none)
    dump_requests: set[int] = field(default_factory=set)


@dataclass
class Spec:
    name: str
    protocol: str
    protonum: int | None
    abbrev: str
    fixed_id: int | None
    enums: dict[str, EnumDef]
    structs: dict[str, StructDef]
    consts: dict[str, Any]
    attr_sets: dict[str, AttrSetSpec]
    sub_messages: dict[str, dict[str, SubMessageFormat]]
    operations: list[OpSpec]
    fixed_header: str | None
    mcast_groups: dict[str, int | None]
    op_prefix: str = ""
    directional: bool = False  # requests and replies numbered separately
    source: str = ""
    origin: str = "builtin"
    doc: str | None = None
    # nlshark extension: frames of this protocol are not nlmsghdr-framed; a
    # Python hook decodes each frame's payload (NETLINK_KOBJECT_UEVENT)
    frame_hook: str | None = None
    # nlshark extension `direction: pid`: a message with a non-zero
    # nlmsg_pid comes from user space (NETLINK_CONNECTOR sets no flags)
    direction_by_pid: bool = False

    @property
    def is_genl(self) -> bool:
        return self.protocol.startswith("genetlink")


def _err(where: str, what: str) -> SpecError:
    return SpecError(f"{where}: {what}")


def _int(v: Any, where: str, consts: dict[str, Any]) -> int:
    if isinstance(v, bool):
        raise _err(where, f"expected a number, got {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        if v in consts and isinstance(consts[v], int):
            return consts[v]
        try:
            return int(v, 0)
        except ValueError:
            pass
    raise _err(where, f"expected a number, got {v!r}")


def _list(v: Any, where: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise _err(where, f"expected a list, got {type(v).__name__}")
    return v


def _map(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _err(where, f"expected a mapping, got {type(v).__name__}")
    return v


def _name(d: dict[str, Any], where: str) -> str:
    n = d.get("name")
    if not isinstance(n, str) or not n:
        raise _err(where, "missing 'name'")
    return n


def _load_enum(d: dict[str, Any], where: str, consts: dict[str, Any]) -> EnumDef:
    name = _name(d, where)
    is_flags = d.get("type") == "flags"
    start = _int(d.get("value-start", 0), where, consts)
    prefix = d.get("name-prefix")
    if not isinstance(prefix, str):
        prefix = name + "-"
    entries: dict[int, str] = {}
    docs: dict[int, str] = {}
    nxt = start
    for i, e in enumerate(_list(d.get("entries"), where)):
        w = f"{where}.entries[{i}]"
        if isinstance(e, str):
            ename, val, doc = e, nxt, None
        else:
            e = _map(e, w)
            ename = _name(e, w)
            val = _int(e["value"], w, consts) if "value" in e else nxt
            doc = e.get("doc")
        nxt = val + 1
        if is_flags and not 0 <= val < 64:
            raise _err(
                w, f"flag {ename!r} has bit number {val}; flags values are bit numbers 0..63"
            )
        key = (1 << val) if is_flags else val
        entries[key] = ename
        if isinstance(doc, str):
            docs[key] = doc.strip()
    return EnumDef(name, is_flags, entries, prefix, docs)


def _load_struct(d: dict[str, Any], where: str, consts: dict[str, Any]) -> StructDef:
    name = _name(d, where)
    members = []
    for i, m in enumerate(_list(d.get("members"), where)):
        w = f"{where}.members[{i}]"
        m = _map(m, w)
        ln = m.get("len")
        union_by = None
        if m.get("union-by") is not None:
            u = _map(m["union-by"], f"{w}.union-by")
            fmts = []
            for j, f in enumerate(_list(u.get("formats"), f"{w}.union-by")):
                f = _map(f, f"{w}.union-by.formats[{j}]")
                fmts.append(
                    (
                        _int(f.get("value"), w, consts),
                        _int(f.get("len", ln), w, consts),
                        f.get("display-hint"),
                    )
                )
            if not isinstance(u.get("member"), str):
                raise SpecError(f"{w}.union-by: 'member' must name a member of the struct")
            union_by = (u["member"], fmts)
        members.append(
            MemberSpec(
                name=_name(m, w),
                type=str(m.get("type", "binary")),
                len=_int(ln, w, consts) if ln is not None else None,
                byte_order=m.get("byte-order"),
                display_hint=m.get("display-hint"),
                enum=m.get("enum"),
                enum_as_flags=bool(m.get("enum-as-flags", False)),
                struct=m.get("struct"),
                units=m.get("units"),
                doc=m.get("doc"),
                union_by=union_by,
                flexible=bool(m.get("flexible-array", False)),
            )
        )
    trailer = None
    t = d.get("trailer")
    if t is not None:
        t = _map(t, f"{where}.trailer")
        length = t.get("length")
        if not isinstance(length, str) or length not in {m.name for m in members}:
            raise SpecError(f"{where}.trailer: 'length' must name a member of the struct")
        scale = _int(t.get("length-scale", 1), f"{where}.trailer", consts)
        elem = t.get("element-len")
        trailer = {
            "name": _name(t, f"{where}.trailer"),
            "length": length,
            "scale": scale,
            "element-len": _int(elem, f"{where}.trailer", consts) if elem is not None else None,
            "display-hint": t.get("display-hint"),
            "hook": t.get("hook") if isinstance(t.get("hook"), str) else None,
        }
    return StructDef(name, members, trailer)


def _default_abbrev(doc: dict[str, Any], name: str, protocol: str, protonum: int | None) -> str:
    if isinstance(doc.get("abbrev"), str):
        return doc["abbrev"]
    if protocol.startswith("genetlink"):
        return "genl." + field_name(name)
    if protonum == 0 and name.startswith("rt-"):
        return "rtnl"
    return "netlink." + field_name(name)


def _set_abbrev(name: str) -> str:
    for suffix in ("-attrs", "-attributes"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return field_name(name)


def _op_values(block: Any, where: str, consts: dict[str, Any]) -> tuple[set[int], set[int]]:
    req: set[int] = set()
    rsp: set[int] = set()
    if not isinstance(block, dict):
        return req, rsp
    for role, out in (("request", req), ("reply", rsp)):
        part = block.get(role)
        if isinstance(part, dict) and "value" in part:
            out |= _block_values(part, f"{where}.{role}", consts)
    return req, rsp


MAX_RANGE = 1000


def _block_values(part: dict[str, Any], where: str, consts: dict[str, Any]) -> set[int]:
    """``value``, or with nlshark's ``last`` every number from ``value`` to
    ``last`` (message types named by range: AUDIT's 1100-1199 user messages)."""
    first = _int(part["value"], f"{where}.value", consts)
    if "last" not in part:
        return {first}
    last = _int(part["last"], f"{where}.last", consts)
    if not first <= last < first + MAX_RANGE:
        raise _err(where, f"range {first}..{last} is empty or longer than {MAX_RANGE}")
    return set(range(first, last + 1))


def spec_from_dict(doc: Any, source: str = "<dict>", origin: str = "builtin") -> Spec:
    """Build a `Spec` from an already-parsed YAML document."""
    where = source
    doc = _map(doc, where)
    name = _name(doc, where)
    protocol = str(doc.get("protocol", "genetlink"))
    consts: dict[str, Any] = {}
    enums: dict[str, EnumDef] = {}
    structs: dict[str, StructDef] = {}
    for i, d in enumerate(_list(doc.get("definitions"), where)):
        w = f"{where}: definitions[{i}]"
        d = _map(d, w)
        kind = d.get("type")
        if kind == "const":
            consts[_name(d, w)] = d.get("value")
        elif kind in ("enum", "flags"):
            e = _load_enum(d, w, consts)
            enums[e.name] = e
        elif kind == "struct":
            s = _load_struct(d, w, consts)
            structs[s.name] = s
    protonum = doc.get("protonum")
    if protonum is not None:
        protonum = _int(protonum, f"{where}: protonum", consts)
    if protocol == "netlink-raw" and protonum is None:
        raise _err(where, "netlink-raw spec without 'protonum'")

    attr_sets: dict[str, AttrSetSpec] = {}
    raw_sets = _list(doc.get("attribute-sets"), where)
    pending_subsets: list[tuple[AttrSetSpec, list[dict[str, Any]], str]] = []
    for i, raw_set in enumerate(raw_sets):
        w = f"{where}: attribute-sets[{i}]"
        sdoc = _map(raw_set, w)
        sname = _name(sdoc, w)
        prefix = sdoc.get("name-prefix")
        if not isinstance(prefix, str):
            prefix = f"{name}-a-{sname}-" if protocol.startswith("genetlink") else ""
        aset = AttrSetSpec(
            name=sname,
            name_prefix=prefix,
            abbrev=sdoc["abbrev"] if isinstance(sdoc.get("abbrev"), str) else _set_abbrev(sname),
            attrs={},
            by_name={},
            subset_of=sdoc.get("subset-of"),
        )
        attrs = [
            _map(a, f"{w}.attributes[{j}]") for j, a in enumerate(_list(sdoc.get("attributes"), w))
        ]
        if aset.subset_of:
            pending_subsets.append((aset, attrs, w))
        else:
            nxt = 1
            for j, a in enumerate(attrs):
                aw = f"{w}.attributes[{j}]"
                aname = _name(a, aw)
                val = _int(a["value"], aw, consts) if "value" in a else nxt
                nxt = val + 1
                spec = AttrSpec(aname, val, str(a.get("type", "binary")), a)
                aset.attrs[val] = spec
                aset.by_name[aname] = spec
        attr_sets[sname] = aset
    for aset, attrs, w in pending_subsets:
        parent = attr_sets.get(aset.subset_of or "")
        if parent is None:
            raise _err(w, f"subset-of unknown set {aset.subset_of!r}")
        for j, a in enumerate(attrs):
            aname = _name(a, f"{w}.attributes[{j}]")
            base = parent.by_name.get(aname)
            if base is None:
                raise _err(w, f"attribute {aname!r} not in {parent.name!r}")
            props = dict(base.props)
            props.update(a)
            spec = AttrSpec(aname, base.value, str(props.get("type", "binary")), props)
            aset.attrs[spec.value] = spec
            aset.by_name[aname] = spec
        if not aset.name_prefix:
            aset.name_prefix = parent.name_prefix

    sub_messages: dict[str, dict[str, SubMessageFormat]] = {}
    for i, sm in enumerate(_list(doc.get("sub-messages"), where)):
        w = f"{where}: sub-messages[{i}]"
        sm = _map(sm, w)
        fmts: dict[str, SubMessageFormat] = {}
        for j, raw_fmt in enumerate(_list(sm.get("formats"), w)):
            f = _map(raw_fmt, f"{w}.formats[{j}]")
            key = str(f.get("value"))
            fmts[key] = SubMessageFormat(
                key,
                f.get("attribute-set"),
                f.get("fixed-header"),
                f.get("abbrev"),
                f.get("summary"),
                _opt_str(f.get("summary-hook")),
            )
        sub_messages[_name(sm, w)] = fmts

    ops_doc = doc.get("operations") or {}
    ops_doc = _map(ops_doc, f"{where}: operations")
    fixed_header = ops_doc.get("fixed-header")
    operations: list[OpSpec] = []
    directional = ops_doc.get("enum-model") == "directional" or protocol == "netlink-raw"
    nxt = rq_next = rsp_next = 1
    for i, o in enumerate(_list(ops_doc.get("list"), f"{where}: operations")):
        w = f"{where}: operations.list[{i}]"
        o = _map(o, w)
        oname = _name(o, w)
        requests: set[int] = set()
        replies: set[int] = set()
        events: set[int] = set()
        dump_requests: set[int] = set()
        for kind in ("do", "dump"):
            rq, rp = _op_values(o.get(kind), f"{w}.{kind}", consts)
            requests |= rq
            replies |= rp
            if kind == "dump":
                dump_requests = rq
        for kind in ("notify", "event"):
            blk = o.get(kind)
            if isinstance(blk, dict) and "value" in blk:
                events |= _block_values(blk, f"{w}.{kind}", consts)
        if not directional:
            val = _int(o["value"], w, consts) if "value" in o else nxt
            nxt = val + 1
            has_req = any(isinstance(o.get(k), dict) and "request" in o[k] for k in ("do", "dump"))
            has_rsp = any(isinstance(o.get(k), dict) and "reply" in o[k] for k in ("do", "dump"))
            if has_req or not (has_rsp or "event" in o or "notify" in o):
                requests.add(val)
            if has_rsp:
                replies.add(val)
            if "event" in o or "notify" in o:
                events.add(val)
        elif protocol.startswith("genetlink"):
            # YNL's directional numbering: requests and replies count
            # separately; a notification takes the next reply number.
            if "notify" in o or "event" in o:
                ev = (
                    _int(o["value"], w, consts)
                    if "value" in o
                    else (min(events) if events else rsp_next)
                )
                events.add(ev)
                rsp_next = ev + 1
            else:
                mode = o.get("do") if isinstance(o.get("do"), dict) else o.get("dump")
                if isinstance(mode, dict):
                    rq = requests or ({rq_next} if "request" in mode else set())
                    rp = replies or ({rsp_next} if "reply" in mode else set())
                    requests |= rq
                    replies |= rp
                    if rq:
                        rq_next = max(rq) + 1
                    if rp:
                        rsp_next = max(rp) + 1
        elif "value" in o and not (requests or replies or events):
            requests.add(_int(o["value"], w, consts))
        op_set: str | None = o.get("attribute-set")
        if op_set is None and isinstance(o.get("notify"), str):
            # YNL "notify: other-op" reuses another operation's layout
            for prev in operations:
                if prev.name == o["notify"]:
                    op_set = prev.attribute_set
        operations.append(
            OpSpec(
                name=oname,
                attribute_set=op_set,
                fixed_header=o.get("fixed-header", fixed_header),
                requests=requests,
                replies=replies,
                events=events,
                summary=o.get("summary"),
                doc=o.get("doc"),
                name_prefix=o.get("name-prefix") if isinstance(o.get("name-prefix"), str) else None,
                sub_message=_opt_str(o.get("sub-message")),
                selector=_opt_str(o.get("selector")),
                hook=_opt_str(o.get("hook")),
                summary_hook=_opt_str(o.get("summary-hook")),
                kind=_opt_str(o.get("kind")),
                dump_requests=dump_requests,
                ranged=any(
                    isinstance(b, dict) and "last" in b
                    for k in ("do", "dump", "event", "notify")
                    for b in (
                        [o.get(k)]
                        + [o[k].get(r) for r in ("request", "reply") if isinstance(o.get(k), dict)]
                    )
                ),
            )
        )

    mcast: dict[str, int | None] = {}
    mc = doc.get("mcast-groups")
    if isinstance(mc, dict):
        for i, g in enumerate(_list(mc.get("list"), f"{where}: mcast-groups")):
            g = _map(g, f"{where}: mcast-groups.list[{i}]")
            v = g.get("value")
            mcast[_name(g, where)] = _int(v, where, consts) if v is not None else None

    fixed_id = doc.get("fixed-id")
    return Spec(
        name=name,
        protocol=protocol,
        protonum=protonum,
        abbrev=_default_abbrev(doc, name, protocol, protonum),
        fixed_id=_int(fixed_id, where, consts) if fixed_id is not None else None,
        enums=enums,
        structs=structs,
        consts=consts,
        attr_sets=attr_sets,
        sub_messages=sub_messages,
        operations=operations,
        fixed_header=fixed_header,
        mcast_groups=mcast,
        directional=directional,
        op_prefix=str(
            ops_doc.get("name-prefix")
            or (f"{name}-cmd-" if protocol.startswith("genetlink") else "")
        ),
        source=source,
        origin=origin,
        doc=doc.get("doc") if isinstance(doc.get("doc"), str) else None,
        frame_hook=_opt_str(doc.get("frame-hook")),
        direction_by_pid=doc.get("direction") == "pid",
    )


def _opt_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def load_spec(path: str | Path, origin: str = "builtin") -> Spec:
    """Read one spec file.  Raises `SpecError` with a one-line reason.

    Parsed specs are kept in a cache (``$XDG_CACHE_HOME/nlshark/specs``,
    keyed by the file's path, size and modification time and by this
    module's own version) because YAML parsing dominates start-up;
    ``NLSHARK_NO_CACHE=1`` turns it off.  A cache that cannot be read or
    written is ignored.
    """
    p = Path(path)
    try:
        st = p.stat()
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{p}: cannot read: {exc.strerror or exc}") from None
    cached = _cache_file(p, st)
    if cached is not None:
        try:
            with cached.open("rb") as fh:
                spec = pickle.load(fh)
            if isinstance(spec, Spec):
                spec.origin = origin
                return spec
        except Exception:  # a missing, stale or foreign cache file: parse again
            pass
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise SpecError(f"{p}:{at} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    try:
        spec = spec_from_dict(doc, str(p), origin)
    except SpecError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{p}: unusable spec: {exc}") from None
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as fh:
                pickle.dump(spec, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, cached)
        except OSError:
            pass
    return spec


def _cache_file(p: Path, st: os.stat_result) -> Path | None:
    if os.environ.get("NLSHARK_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    me = Path(__file__).stat()
    key = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}|{me.st_size}|{me.st_mtime_ns}"
    return Path(base) / "nlshark" / "specs" / (hashlib.sha1(key.encode()).hexdigest() + ".pickle")
