"""Tiny byte builders for tests: attributes, messages, frames (little-endian)."""

from __future__ import annotations

import struct

from dissect.capture import netlink_pseudo_header


def attr(
    t: int,
    payload: bytes,
    *,
    nested: bool = False,
    length: int | None = None,
    pad: bytes | None = None,
) -> bytes:
    n = 4 + len(payload) if length is None else length
    raw = struct.pack("<HH", n, t | (0x8000 if nested else 0)) + payload
    padding = pad if pad is not None else b"\0" * ((4 - len(raw) % 4) % 4)
    return raw + padding


def u32(t: int, v: int) -> bytes:
    return attr(t, struct.pack("<I", v))


def string(t: int, s: str, nul: bool = True) -> bytes:
    return attr(t, s.encode() + (b"\0" if nul else b""))


def nest(t: int, *children: bytes) -> bytes:
    return attr(t, b"".join(children), nested=True)


def msg(
    mtype: int, flags: int, body: bytes, seq: int = 1, pid: int = 0, length: int | None = None
) -> bytes:
    n = 16 + len(body) if length is None else length
    raw = struct.pack("<IHHII", n, mtype, flags, seq, pid) + body
    return raw + b"\0" * ((4 - len(raw) % 4) % 4)


def ifinfomsg(index: int = 0, flags: int = 0, family: int = 0, change: int = 0) -> bytes:
    return struct.pack("<BxHiII", family, 0, index, flags, change)


def genlhdr(cmd: int, version: int = 1) -> bytes:
    return struct.pack("<BBH", cmd, version, 0)


def frame(proto: int, *msgs: bytes) -> bytes:
    return netlink_pseudo_header(proto) + b"".join(msgs)
