"""Messages from a Scapy expression or a JSON/YAML description.

Theory of operation.  ``nlshark craft`` and ``nlshark fuzz --craft`` take a
message the way a user writes one, and both ways end in the same generated
layers (`dissect.scapy`), so whatever a description says, the Scapy
expression can say too, and the other way round for everything but
hand-made layers.

An *expression* is Python evaluated with the layer names in scope
(`Netlink`, `NetlinkBatch`, `family`, `unknown_attr`, every family as an
identifier such as ``rt_link`` or ``nl80211``): a `Netlink` message, a
`NetlinkBatch` (several messages in one buffer), a list of either, or bytes.

A *description* is a mapping (or a list of them, one per message):

    family: rt-link            # spec name; a generic netlink family by name
    op: newlink                # operation; role: request (default), reply or event
    flags: [REQUEST, ACK, CREATE, EXCL]   # or "REQUEST|ACK"; default: REQUEST
    seq: 1                     # pid:, type:, len: also override the header
    header: {ifi_index: 0}     # fixed-header (and genl header) members
    attrs:                     # {name: value}, or a list for full control
      ifname: vlan10
      linkinfo: {kind: vlan, data: {id: 10}}

In list form each item is ``{NAME: VALUE}`` plus any of ``nla_len``,
``nla_type``, ``pad`` and ``extra`` (hex bytes) written as given, however
wrong; ``{type: N, data: HEX}`` is an attribute the set does not have.  A
nest's value may be such a list too.  ``raw: HEX`` gives the whole body as
bytes.  Every mistake is a `CraftError` naming the item it is in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .layers import (
    Family,
    Netlink,
    NetlinkBatch,
    NetlinkCooked,
    NlAttr,
    NlBody,
    families,
    family,
    raw_body_class,
    unknown_attr,
)

OVERRIDES = ("nla_len", "nla_type", "pad", "extra")
_HEADER_KEYS = {
    "seq": "nlmsg_seq",
    "pid": "nlmsg_pid",
    "type": "nlmsg_type",
    "len": "nlmsg_len",
    "flags": "nlmsg_flags",
}
_KNOWN_KEYS = {"family", "op", "role", "header", "attrs", "raw", *_HEADER_KEYS}


class CraftError(Exception):
    """The expression or description cannot make a message; the text says why."""


# ---------------------------------------------------------------------------
# Expressions


class _Names(dict):  # type: ignore[type-arg]
    """Globals for an expression: the layer names, and every family as an
    identifier (``rt_link``, ``nl80211``), made when first named."""

    def __init__(self) -> None:
        super().__init__(
            Netlink=Netlink,
            NetlinkBatch=NetlinkBatch,
            NetlinkCooked=NetlinkCooked,
            family=family,
            unknown_attr=unknown_attr,
        )
        self._families = {n.replace("-", "_").replace(".", "_"): n for n in families()}

    def __missing__(self, key: str) -> Any:
        name = self._families.get(key)
        if name is None:
            raise KeyError(key)
        fam = self[key] = family(name)
        return fam


def expression_names() -> dict[str, Any]:
    return _Names()


def from_expression(text: str) -> list[Any]:
    """The messages an expression makes (see the module docstring)."""
    names = _Names()
    try:
        code = compile(text, "<craft expression>", "eval")
    except SyntaxError as exc:
        raise CraftError(
            f"the expression is not valid Python: {exc.msg} (column {exc.offset})"
        ) from None
    try:
        value = eval(code, names)  # noqa: S307 - the user's own expression, like Scapy's shell
    except NameError as exc:
        raise CraftError(
            f"{exc}: the expression sees Netlink, NetlinkBatch, family, unknown_attr "
            "and the families by name (rt_link, nl80211, ...)"
        ) from None
    except (AttributeError, ValueError, TypeError, KeyError) as exc:
        raise CraftError(f"the expression failed: {_text(exc)}") from None
    return _messages(value)


def _messages(value: Any) -> list[Any]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out: list[Any] = []
    for i, v in enumerate(items, 1):
        if isinstance(v, NetlinkCooked):
            v = v.payload
        if isinstance(v, (bytes, bytearray)):
            out.append(bytes(v))
        elif isinstance(v, (Netlink, NetlinkBatch)):
            out.append(v)
        elif isinstance(v, NlBody):
            out.append(Netlink() / v)  # a body alone gets a computed header
        else:
            where = f"item {i} of the list" if len(items) > 1 else "the expression"
            raise CraftError(
                f"{where} is a {type(v).__name__}, not a netlink message "
                "(Netlink()/body, NetlinkBatch, or bytes)"
            )
    if not out:
        raise CraftError("the expression made no message")
    return out


# ---------------------------------------------------------------------------
# Descriptions


def load_description(text: str) -> Any:
    """Parse JSON or YAML text (YAML reads JSON too)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CraftError(f"the description is neither JSON nor YAML: {exc}") from None


def from_description(desc: Any) -> list[Any]:
    """The messages a description makes (see the module docstring)."""
    if isinstance(desc, Mapping):
        desc = [desc]
    if not isinstance(desc, list) or not desc:
        raise CraftError("a description is a mapping (one message) or a list of them")
    return [_message(d, i) for i, d in enumerate(desc, 1)]


def _hex(value: Any, where: str) -> bytes:
    if isinstance(value, bytes):
        return value
    text = "".join(str(value).split()).replace(":", "")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise CraftError(f"{where}: {value!r} is not hex bytes") from None


def _message(d: Any, index: int) -> Any:
    where = f"message {index}"
    if not isinstance(d, Mapping):
        raise CraftError(f"{where}: not a mapping")
    unknown = set(d) - _KNOWN_KEYS
    if unknown:
        raise CraftError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
            f"(known: {', '.join(sorted(_KNOWN_KEYS))})"
        )
    hdr: dict[str, Any] = {}
    for key, field in _HEADER_KEYS.items():
        if key in d and d[key] is not None:
            v = d[key]
            if key == "flags" and isinstance(v, list):
                v = "|".join(str(x) for x in v)
            hdr[field] = v
    if d.get("role", "request") == "request":
        hdr.setdefault("nlmsg_flags", "REQUEST")
    if "raw" in d:
        body: Any = raw_body_class()(data=_hex(d["raw"], f"{where}: raw"))
    elif "family" in d:
        body = _body(d, where)
    else:
        body = None
    try:
        msg = Netlink(**hdr)
    except ValueError as exc:
        raise CraftError(f"{where}: {exc}") from None
    return msg / body if body is not None else msg


def _family(name: Any, where: str) -> Family:
    try:
        return family(str(name))
    except (KeyError, ValueError, AttributeError):
        known = ", ".join(families())
        raise CraftError(f"{where}: no family {name!r} (families: {known})") from None


def _op_names(fam: Family) -> list[str]:
    return sorted({o.name for o in fam.spec.operations})


def _body(d: Mapping[str, Any], where: str) -> NlBody:
    fam = _family(d["family"], where)
    if "op" not in d:
        raise CraftError(f"{where}: 'family' needs 'op' (one of: {', '.join(_op_names(fam))})")
    try:
        op = fam.op(str(d["op"]))
    except AttributeError:
        raise CraftError(
            f"{where}: {fam.spec.name} has no operation {d['op']!r} "
            f"(operations: {', '.join(_op_names(fam))})"
        ) from None
    role = str(d.get("role", "request"))
    if role not in op.roles():
        raise CraftError(
            f"{where}: {d['op']} has no {role} (it has: {', '.join(op.roles()) or 'none'})"
        )
    cls = getattr(op, role)
    header = d.get("header") or {}
    if not isinstance(header, Mapping):
        raise CraftError(f"{where}: 'header' is a mapping of member names to values")
    try:
        # a header member may choose the layout (SOCK_DIAG's sdiag_family)
        pick = getattr(cls, "dispatch_hook", None)
        if pick is not None:
            cls = pick(None, **header)
    except (ValueError, KeyError) as exc:
        raise CraftError(f"{where}: {_text(exc)}") from None
    names = cls.fieldtype_names()
    bad = [k for k in header if k not in names]
    if bad:
        members = [f.name for f in cls._nl_header_fields] or ["none"]
        formats = getattr(cls, "format_keys", None)
        hint = (
            f"; its formats ({', '.join(formats())}) add members: give "
            f"{cls._nl_selector.name.replace('-', '_')} to choose one"
            if formats is not None and getattr(cls, "_nl_selector", None) is not None
            else ""
        )
        raise CraftError(
            f"{where}: the {d['op']} {role} has no header member {bad[0]!r} "
            f"(members: {', '.join(members)}){hint}"
        )
    attrs = d.get("attrs")
    items = attrs if isinstance(attrs, list) else None
    if "attrs" not in names:
        if attrs:
            raise CraftError(f"{where}: the {d['op']} {role} carries no attributes")
        try:
            return cls(**header)  # type: ignore[no-any-return]
        except (AttributeError, ValueError, TypeError, KeyError) as exc:
            raise CraftError(f"{where}: {_text(exc)}") from None
    if attrs is not None and not isinstance(attrs, (list, Mapping)):
        raise CraftError(f"{where}: 'attrs' is a mapping or a list of items")
    try:
        if items is None:
            body = cls(**header, attrs=dict(attrs or {}))
        else:
            body = cls(**header, attrs=_plain(items, f"{where}: attrs"))
            _apply(body.getfieldval("attrs") or [], items, f"{where}: attrs")
    except CraftError:
        raise
    except (AttributeError, ValueError, TypeError, KeyError) as exc:
        raise CraftError(f"{where}: {_text(exc)}") from None
    return body


def _text(exc: Exception) -> str:
    """An exception's message (a KeyError's without the quotes repr adds)."""
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def _item(it: Any, where: str) -> tuple[str | None, Any, dict[str, Any]]:
    """(name, value, overrides) of one list item; name None for ``{type, data}``."""
    if not isinstance(it, Mapping):
        raise CraftError(f"{where}: an item is a mapping {{NAME: VALUE}}, not {it!r}")
    over = {k: it[k] for k in OVERRIDES if k in it}
    rest = {k: v for k, v in it.items() if k not in OVERRIDES}
    if "type" in rest and set(rest) <= {"type", "data"}:
        return None, rest, over
    if len(rest) != 1:
        raise CraftError(
            f"{where}: an item names one attribute ({{NAME: VALUE}}, plus "
            f"{', '.join(OVERRIDES)}), or is {{type: N, data: HEX}}; got {sorted(rest)}"
        )
    name, value = next(iter(rest.items()))
    return str(name), value, over


def _plain(items: list[Any], where: str) -> list[Any]:
    """List items as (name, value) pairs and layers, overrides left for `_apply`."""
    out: list[Any] = []
    for i, it in enumerate(items, 1):
        w = f"{where}[{i}]"
        name, value, _ = _item(it, w)
        if name is None:
            try:
                out.append(unknown_attr(int(value["type"]), _hex(value.get("data", ""), w)))
            except (TypeError, ValueError) as exc:
                raise CraftError(f"{w}: {exc}") from None
            continue
        if isinstance(value, list) and value and all(isinstance(x, Mapping) for x in value):
            value = _plain(value, w)  # a nest's items, in the same list form
        out.append((name, value))
    return out


def _apply(layers: list[Any], items: list[Any], where: str) -> None:
    """Write each item's overrides on the layer it made, nests included."""
    if len(layers) != len(items):
        raise CraftError(
            f"{where}: {len(items)} items made {len(layers)} attributes; "
            "give a repeated attribute as one item each"
        )
    for i, (layer, it) in enumerate(zip(layers, items), 1):
        w = f"{where}[{i}]"
        name, value, over = _item(it, w)
        for k, v in over.items():
            if k in ("pad", "extra"):
                v = _hex(v, f"{w}: {k}")
            elif isinstance(v, str) and k == "nla_type":
                v = layer.fieldtype["nla_type"].any2i(layer, v)
            layer.setfieldval(k, v)
        sub = layer.getfieldval("value") if isinstance(layer, NlAttr) else None
        if (
            name is not None
            and isinstance(value, list)
            and isinstance(sub, list)
            and all(isinstance(x, Mapping) for x in value)
        ):
            _apply(sub, value, w)


# ---------------------------------------------------------------------------
# What a message is sent on, and a reproducer


def message_protocol(msg: Any, default: int | None = None) -> int | None:
    """The netlink protocol a built message belongs to (None for bytes)."""
    first = msg.msgs[0] if isinstance(msg, NetlinkBatch) and msg.msgs else msg
    if isinstance(first, Netlink):
        body = first.payload
        if isinstance(body, NlBody) and body._nl_protocol is not None:
            return int(body._nl_protocol)
        return first.protocol if first._nl_proto_value is not None else default
    return default


def socket_family(msg: Any, protocol: int | None) -> Any:
    """What `NetlinkSocket` is opened with to send `msg`: a generic
    netlink family's name, else the protocol number."""
    first = msg.msgs[0] if isinstance(msg, NetlinkBatch) and msg.msgs else msg
    body = first.payload if isinstance(first, Netlink) else None
    spec = getattr(body, "_nl_spec", None)
    if isinstance(body, NlBody) and body._nl_genl and spec is not None:
        return spec.name
    from ..core.constants import PROTOCOLS

    proto = protocol if protocol is not None else 0
    return PROTOCOLS.get(proto, str(proto)).lower() if proto in PROTOCOLS else proto


def reproducer(
    *,
    expression: str | None = None,
    description: Any = None,
    hex_messages: list[bytes],
    family_arg: Any,
    netns: str | None,
) -> str:
    """A Python script that builds the same messages, checks them against
    the bytes built now, sends them and prints the answers."""
    import pprint

    lines = [
        "#!/usr/bin/env python3",
        '"""Reproducer written by nlshark craft: builds the message(s), sends them',
        "and prints every answer.  Needs nlshark (pip install nlshark) and Scapy.",
        "Generic netlink ids are looked up on the kernel it runs on; the bytes",
        'below were built where the reproducer was written."""',
        "",
        "from dissect.scapy import *  # noqa: F403",
        "from dissect.scapy.craft import expression_names, from_description",
        "",
    ]
    if expression is not None:
        lines += [
            "EXPRESSION = " + repr(expression),
            "messages = [eval(EXPRESSION, expression_names())]  # noqa: S307",
            "if isinstance(messages[0], list):",
            "    messages = messages[0]",
        ]
    else:
        lines += [
            "DESCRIPTION = " + pprint.pformat(description, width=88, sort_dicts=False),
            "messages = from_description(DESCRIPTION)",
        ]
    lines += [
        "",
        "BUILT = [",
        *[f"    bytes.fromhex({m.hex()!r})," for m in hex_messages],
        "]",
        "",
        "# 'new': a fresh network namespace, deleted at the end; None: the host's own",
        "# (the messages can change this machine); else an existing namespace's name.",
        f"NETNS = {netns!r}",
        "",
        "",
        "def run(netns):",
        f"    with NetlinkSocket({family_arg!r}, netns=netns) as nl:",
        "        for msg, built in zip(messages, BUILT):",
        "            if isinstance(msg, bytes) or 'nlmsg_seq' in msg.fields:",
        "                same = (msg if isinstance(msg, bytes) else bytes(msg)) == built",
        "                print('built as before' if same else 'built differently here')",
        "            ans, unans = nl.sr(msg, timeout=2)",
        "            for _, reply in ans:",
        "                print(reply.summary())",
        "            for q in unans:",
        "                print('no answer to', q.summary())",
        "",
        "",
        'if __name__ == "__main__":',
        '    if NETNS == "new":',
        "        from dissect.analysis.netns import ScratchNetns",
        "",
        '        with ScratchNetns("repro") as scratch:',
        "            run(scratch.name)",
        "    else:",
        "        run(NETNS)",
        "",
    ]
    return "\n".join(lines)


__all__ = [
    "CraftError",
    "expression_names",
    "from_description",
    "from_expression",
    "load_description",
    "message_protocol",
    "reproducer",
    "socket_family",
]
