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

from ..core.netlink import Frame, Message
from ..core.tree import Node

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
    from ..core.constants import protocol_name

    return protocol_name(p)


def frame_dict(frame: Frame) -> dict[str, Any]:
    return {
        "frame": frame.number,
        "time": frame.ts_ns / 1e9,
        "time_ns": frame.ts_ns,
        "linktype": frame.linktype,
        "captured_len": len(frame.data),
        "orig_len": frame.orig_len,
        "protocol": f"NETLINK_{_proto(frame.protocol)}" if frame.protocol is not None else None,
        "direction": frame.direction,
        "comment": frame.comment,
        "messages": [message_dict(m, frame, tree=False) for m in frame.messages],
        "tree": node_dict(frame.root),
    }


def write_jsonl(frames: Iterable[Frame], out: IO[str]) -> int:
    n = 0
    for frame in frames:
        for msg in frame.messages:
            out.write(_dumps(message_dict(msg, frame)))
            out.write("\n")
            n += 1
        if not frame.messages:
            out.write(
                _dumps(
                    {
                        "frame": frame.number,
                        "time": frame.ts_ns / 1e9,
                        "time_ns": frame.ts_ns,
                        "family": None,
                        "direction": None,
                        "netlink": None,
                        "tree": node_dict(frame.root),
                    }
                )
            )
            out.write("\n")
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
        self.out.write(_dumps(frame_dict(frame)))

    def close(self, trailer: dict[str, Any]) -> None:
        self.out.write('\n],"end":' + _dumps(trailer) + "}\n")
