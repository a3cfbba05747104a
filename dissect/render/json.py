"""JSON and JSON Lines export.

Lossless: every node becomes an object with ``abbrev``, ``name``,
``offset``, ``length``, ``raw`` (hex), ``value``, ``display``, ``notes``
(each with ``severity``, ``group``, ``text``) and ``children``.  Integers
stay integers (64-bit values exact); bytes become hex strings.

``-T json`` writes one document, streamed frame by frame so memory stays flat;
``-T jsonl`` writes one object per netlink message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, Any

from ..core.constants import protocol_name
from ..core.netlink import Frame, Message
from ..core.tree import LazyNode, Node

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def json_value(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str, float)):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    return str(v)


def node_dict(node: Node) -> dict[str, Any]:
    v = node.value
    if not (v is None or type(v) in (int, str, bool)):
        v = json_value(v)
    d: dict[str, Any] = {
        "abbrev": node.abbrev,
        "name": node.name,
        "offset": node.offset,
        "length": node.length,
        "raw": node.buf[node.offset : node.offset + node.length].hex(),
        "value": v,
        "display": node.display,
        "notes": [n.as_dict() for n in node.notes] if node.notes else [],
        "children": [node_dict(c) for c in node.children] if node.children else [],
    }
    return d


try:  # the C encoder when present: one quoted, escaped JSON string
    from json.encoder import c_encode_basestring as _quote  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    from json.encoder import py_encode_basestring as _quote

_PREFIX: dict[tuple[str, str], str] = {}


def _value_json(v: Any) -> str:
    t = type(v)
    if t is int:
        return str(v)
    if v is None:
        return "null"
    if t is str:
        return _quote(v)
    if t is bool:
        return "true" if v else "false"
    if t is bytes:
        return '"' + v.hex() + '"'
    return _dumps(json_value(v))


# (abbrev, name, bytes, formatter, value) -> (text before the offset, text after it)
_LEAF2: dict[tuple[str, str, bytes, Any, Any], tuple[str, str]] = {}
_LEAF_MAX = 1 << 18


def node_json(node: Node, out: list[str]) -> None:
    """Append `node` as JSON text to `out`; the same document as
    ``json.dumps(node_dict(node))`` with compact separators, built without
    intermediate dicts (this is the export's hot path).

    A small leaf without notes or a display set by the decoder is a function
    of its field, its bytes, its value and its formatter, so its text after
    the offset is cached: real
    captures repeat the same values (flags, counters, conf arrays) often.
    Leaves are written inline by their parent's loop, without a call each.
    """
    o = node.offset
    rows = node.leaf_rows() if type(node) is LazyNode else None
    kids = node.children if rows is None else None
    notes = node.notes
    if rows is None and not kids and not notes and node._display is None and node.length <= 16:
        out.append(_leaf_json(node))
        return
    out.append(
        _prefix(node)
        + str(o)
        + _tail(
            node.length,
            node.buf[o : o + node.length],
            node.value,
            node.fmt,
            node,
            "[" + ",".join(_dumps(x.as_dict()) for x in notes) + "]" if notes else "[]",
        )
    )
    if rows:
        buf = node.buf
        leaf_get = _LEAF2.get
        for ab, name, co, n, v, fmt in rows:
            raw = buf[co : co + n]
            hit = leaf_get((ab, name, raw, fmt, v))
            if hit is None:
                hit = _leaf_text(ab, name, n, raw, v, fmt)
            out.append(hit[0] + str(co) + hit[1])
            out.append(",")
        out[-1] = "]}"
    elif kids:
        leaf_get = _LEAF2.get
        append = out.append
        for c in kids:
            if c.notes is None and c._display is None and c.length <= 16 and not c.children:
                co = c.offset
                hit = leaf_get((c.abbrev, c.name, c.buf[co : co + c.length], c.fmt, c.value))
                if hit is not None:
                    append(hit[0] + str(co) + hit[1])
                else:
                    append(_leaf_json(c))
            else:
                node_json(c, out)
            append(",")
        out[-1] = "]}"
    else:
        out.append("]}")


def _prefix(node: Node) -> str:
    key = (node.abbrev, node.name)
    pre = _PREFIX.get(key)
    if pre is None:
        pre = _PREFIX[key] = (
            '{"abbrev":' + _quote(node.abbrev) + ',"name":' + _quote(node.name) + ',"offset":'
        )
    return pre


def _leaf_json(node: Node) -> str:
    """A small leaf without notes, through the cache."""
    o = node.offset
    raw = node.buf[o : o + node.length]
    hit = _LEAF2.get((node.abbrev, node.name, raw, node.fmt, node.value))
    if hit is None:
        hit = _leaf_text(node.abbrev, node.name, node.length, raw, node.value, node.fmt)
    return hit[0] + str(o) + hit[1]


def _leaf_text(
    abbrev: str, name: str, length: int, raw: bytes, value: Any, fmt: Any
) -> tuple[str, str]:
    """Text before and after the offset of a leaf without notes, cached."""
    pre = _PREFIX.get((abbrev, name))
    if pre is None:
        pre = _PREFIX[(abbrev, name)] = (
            '{"abbrev":' + _quote(abbrev) + ',"name":' + _quote(name) + ',"offset":'
        )
    hit = (pre, _tail(length, raw, value, fmt, None, "[]") + "]}")
    if len(_LEAF2) >= _LEAF_MAX:
        _LEAF2.clear()
    _LEAF2[(abbrev, name, raw, fmt, value)] = hit
    return hit


def _tail(length: int, raw: bytes, v: Any, fmt: Any, node: Node | None, notes: str) -> str:
    """Everything of a node's JSON after its offset, up to its children."""
    if type(v) is int and fmt is None and (node is None or node._display is None):
        vs = str(v)
        ds = '"' + vs + '"'
    else:
        vs = _value_json(v)
        if node is not None:
            ds = _quote(node.display)
        else:
            ds = _quote(_display_of(v, fmt))
    return f',"length":{length},"raw":"{raw.hex()}","value":{vs},"display":{ds},"notes":{notes},"children":['


def _display_of(v: Any, fmt: Any) -> str:
    probe = Node("", "", 0, 0, b"", v, fmt)
    return probe.display


def tree_json(node: Node) -> str:
    out: list[str] = []
    node_json(node, out)
    return "".join(out)


def message_dict(msg: Message, frame: Frame, tree: bool = True) -> dict[str, Any]:
    d: dict[str, Any] = {
        "frame": msg.frame,
        "index": msg.index,
        "time": frame.ts_ns / 1e9,
        "time_ns": frame.ts_ns,
        "protocol": f"NETLINK_{_proto(msg.protocol)}",
        "family": msg.family,
        "direction": msg.direction,
        "role": msg.role,
        "type_name": msg.type_name,
        "info": msg.info,
        "netlink": {
            "len": msg.len,
            "type": msg.type,
            "flags": msg.flags,
            "seq": msg.seq,
            "pid": msg.pid,
        },
    }
    if msg.error is not None:
        d["error"] = msg.error
    if msg.ext_msg is not None:
        d["extack_msg"] = msg.ext_msg
    if msg.ext_path is not None:
        d["extack_path"] = msg.ext_path
    if tree:
        d["tree"] = node_dict(msg.node)
    return d


def _proto(p: int) -> str:
    return protocol_name(p)


def frame_dict(frame: Frame, tree: bool = True) -> dict[str, Any]:
    d: dict[str, Any] = {
        "frame": frame.number,
        "time": frame.ts_ns / 1e9,
        "time_ns": frame.ts_ns,
        "linktype": frame.linktype,
        "captured_len": len(frame.data),
        "orig_len": frame.orig_len,
        "protocol": f"NETLINK_{_proto(frame.protocol)}" if frame.protocol is not None else None,
        "direction": frame.direction,
        "comment": frame.comment,
        "process": _process_dict(frame.process),
        "messages": [message_dict(m, frame, tree=False) for m in frame.messages],
    }
    if tree:
        d["tree"] = node_dict(frame.root)
    return d


def _process_dict(process: tuple[int, str] | None) -> dict[str, Any] | None:
    return None if process is None else {"pid": process[0], "comm": process[1]}


def message_head_json(msg: Message, t: str, ts_ns: int) -> str:
    """``message_dict(msg, frame, tree=False)`` as JSON text, without the
    dict (`t` is the frame time already in JSON form)."""
    text = (
        f'{{"frame":{msg.frame},"index":{msg.index},"time":{t},"time_ns":{ts_ns},'
        f'"protocol":"NETLINK_{protocol_name(msg.protocol)}","family":{_quote(msg.family)},'
        f'"direction":"{msg.direction}","role":"{msg.role}","type_name":{_quote(msg.type_name)},'
        f'"info":{_quote(msg.info)},"netlink":{{"len":{msg.len},"type":{msg.type},'
        f'"flags":{msg.flags},"seq":{msg.seq},"pid":{msg.pid}}}'
    )
    if msg.error is not None:
        text += f',"error":{msg.error}'
    if msg.ext_msg is not None:
        text += ',"extack_msg":' + _quote(msg.ext_msg)
    if msg.ext_path is not None:
        text += ',"extack_path":' + _quote(msg.ext_path)
    return text + "}"


def _with_tree(head: str, node: Node) -> str:
    """A JSON object's text with a ``tree`` member appended."""
    return head[:-1] + ',"tree":' + tree_json(node) + "}"


def message_json(msg: Message, frame: Frame) -> str:
    return _with_tree(message_head_json(msg, repr(frame.ts_ns / 1e9), frame.ts_ns), msg.node)


def frame_json(frame: Frame) -> str:
    """``frame_dict(frame)`` as JSON text."""
    t = repr(frame.ts_ns / 1e9)
    proto = f'"NETLINK_{protocol_name(frame.protocol)}"' if frame.protocol is not None else "null"
    direction = f'"{frame.direction}"' if frame.direction is not None else "null"
    comment = _quote(frame.comment) if frame.comment is not None else "null"
    process = _dumps(_process_dict(frame.process))
    messages = ",".join([message_head_json(m, t, frame.ts_ns) for m in frame.messages])
    head = (
        f'{{"frame":{frame.number},"time":{t},"time_ns":{frame.ts_ns},"linktype":{frame.linktype},'
        f'"captured_len":{len(frame.data)},"orig_len":{frame.orig_len},"protocol":{proto},'
        f'"direction":{direction},"comment":{comment},"process":{process},"messages":[{messages}]}}'
    )
    return _with_tree(head, frame.root)


def jsonl_lines(frame: Frame) -> list[str]:
    """A frame's JSON lines: one per message, or one for a frame without
    messages (its tree carries the notes saying why)."""
    if not frame.messages:
        head = {
            "frame": frame.number,
            "time": frame.ts_ns / 1e9,
            "time_ns": frame.ts_ns,
            "family": None,
            "direction": None,
            "netlink": None,
        }
        return [_with_tree(_dumps(head), frame.root)]
    lines = [message_json(msg, frame) for msg in frame.messages]
    if frame.process is not None:
        extra = ',"process":' + _dumps(_process_dict(frame.process)) + "}"
        lines = [line[:-1] + extra for line in lines]
    return lines


def write_jsonl(frames: Iterable[Frame], out: IO[str]) -> int:
    """Write JSON lines; returns the number of messages written."""
    n = 0
    for frame in frames:
        for line in jsonl_lines(frame):
            out.write(line)
            out.write("\n")
        n += len(frame.messages)
    return n


class JsonDocumentWriter:
    """Streams ``{"nlshark": ..., "capture": ..., "frames": [...], "end": ...}``."""

    def __init__(self, out: IO[str], meta: dict[str, Any]) -> None:
        self.out = out
        self.first = True
        out.write('{"nlshark":' + _dumps(meta) + ',"frames":[\n')

    def write(self, frame: Frame) -> None:
        if not self.first:
            self.out.write(",\n")
        self.first = False
        self.out.write(frame_json(frame))

    def close(self, trailer: dict[str, Any]) -> None:
        self.out.write('\n],"end":' + _dumps(trailer) + "}\n")
