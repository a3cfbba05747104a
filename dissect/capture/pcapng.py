"""pcapng reading (IETF draft-ietf-opsawg-pcapng).

A pcapng file is a sequence of blocks: block type (u32), total length (u32),
body, total length again; lengths are multiples of 4.  A Section Header
Block (SHB, type 0x0A0D0D0A, a palindrome) opens each section; its
byte-order magic 0x1A2B3C4D fixes the byte order of everything up to the
next SHB, which may change it and forgets all interfaces.  Interface
Description Blocks (IDB) give each interface of the section, numbered from
0, its link type, snaplen and timestamp resolution (if_tsresol, default
microseconds) and offset (if_tsoffset).  Packets come in Enhanced Packet
Blocks (EPB), Simple Packet Blocks (SPB: interface 0, no timestamp,
captured length min(orig_len, snaplen)) or obsolete Packet Blocks (PB).
Name resolution, statistics, decryption secrets and unknown blocks are
skipped.  Options are (code u16, length u16, value padded to 4) up to code 0.

`PcapngParser` reads the first SHB on construction (so a bad byte-order
magic is reported as "not a capture" right away); `frames` walks the
remaining blocks over the chunk buffer of `ChunkedInput`, one
``unpack_from`` for the block header and one for the packet header, and
looks only at EPB options when the block has bytes after the packet data.
Interface timestamps are converted to nanoseconds with exact integer
arithmetic (units * mul // div + offset), precomputed per interface.
Malformed options are ignored past the first bad one: they are metadata,
and a frame is still worth decoding without its comment.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from ._input import ChunkedInput
from .errors import CaptureError, CorruptCaptureError, NotACaptureError, TruncatedCaptureError
from .frame import Interface, RawFrame

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
MAX_BLOCK = 256 << 20  # larger block: the file is corrupt

BT_SHB = 0x0A0D0D0A
BT_IDB = 1
BT_PB = 2
BT_SPB = 3
BT_EPB = 6
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
IF_NAME = 2
IF_DESCRIPTION = 3
IF_TSRESOL = 9
IF_TSOFFSET = 14


@dataclass(frozen=True, slots=True)
class _Layout:
    """Precompiled structs for one byte order."""

    byte_order: str
    u32: struct.Struct
    block: struct.Struct  # type, total length
    shb: struct.Struct  # major, minor (after the byte-order magic)
    idb: struct.Struct  # linktype, reserved, snaplen
    epb: struct.Struct  # interface, ts high, ts low, caplen, orig_len
    pb: struct.Struct  # interface, drops, ts high, ts low, caplen, orig_len
    option: struct.Struct  # code, length
    i64: struct.Struct


def _layout(prefix: str, byte_order: str) -> _Layout:
    return _Layout(
        byte_order,
        struct.Struct(prefix + "I"),
        struct.Struct(prefix + "II"),
        struct.Struct(prefix + "HH"),
        struct.Struct(prefix + "HHI"),
        struct.Struct(prefix + "IIIII"),
        struct.Struct(prefix + "HHIIII"),
        struct.Struct(prefix + "HH"),
        struct.Struct(prefix + "q"),
    )


_LAYOUTS = {
    b"\x4d\x3c\x2b\x1a": _layout("<", "little"),
    b"\x1a\x2b\x3c\x4d": _layout(">", "big"),
}


def _options(buf: bytes, start: int, end: int, lay: _Layout) -> list[tuple[int, bytes]]:
    """The options in buf[start:end], up to opt_endofopt or the first malformed one."""
    found = []
    unpack = lay.option.unpack_from
    while start + 4 <= end:
        code, length = unpack(buf, start)
        if code == OPT_ENDOFOPT:
            break
        value_end = start + 4 + length
        if value_end > end:
            break
        found.append((code, buf[start + 4 : value_end]))
        start += 4 + ((length + 3) & ~3)
    return found


def _text(value: bytes) -> str:
    # Some writers count a terminating NUL in string options.
    return value.rstrip(b"\0").decode("utf-8", "replace")


def _comment(options: list[tuple[int, bytes]]) -> str | None:
    comments = [_text(value) for code, value in options if code == OPT_COMMENT]
    return "\n".join(comments) if comments else None


def _timestamp_scale(tsresol: int) -> tuple[int, int]:
    """(mul, div) such that units * mul // div is nanoseconds."""
    exponent = tsresol & 0x7F
    if tsresol & 0x80:
        return 1_000_000_000, 1 << exponent
    if exponent <= 9:
        return 10 ** (9 - exponent), 1
    return 1, 10 ** (exponent - 9)


class PcapngParser:
    """Reads the first SHB on construction; `frames` yields the packets of all sections."""

    def __init__(self, src: ChunkedInput, name: str) -> None:
        self._src = src
        self._name = name
        self.interfaces: list[Interface] = []
        self.section_comments: list[str] = []
        # Per interface of the current section: (linktype, snaplen, mul, div, offset_ns).
        self._clocks: list[tuple[int, int, int, int, int]] = []
        avail = src.fill(12)
        magic = src.buf[src.pos + 8 : src.pos + 12]
        if avail < 12:
            raise TruncatedCaptureError(
                f"{name}: cut short in the pcapng section header (needs 28 bytes, {avail} left)",
                1,
                0,
            )
        if magic not in _LAYOUTS:
            raise NotACaptureError(
                f"{name}: not a pcap or pcapng capture (starts with 0a 0d 0d 0a "
                f"but has no pcapng byte-order magic)"
            )
        self._layout = _LAYOUTS[magic]
        self.byte_order = ""  # set by _start_section
        block_len = self._checked_block(src.buf, src.pos, avail, 1)
        self._start_section(src.buf, src.pos, block_len, 1)
        src.pos += block_len

    def frames(self) -> Iterator[RawFrame]:
        src = self._src
        lay = self._layout
        unpack_block = lay.block.unpack_from
        unpack_epb = lay.epb.unpack_from
        unpack_pb = lay.pb.unpack_from
        clocks = self._clocks
        number = 0
        buf, pos = src.buf, src.pos
        while True:
            avail = len(buf) - pos
            if avail < 12:
                src.pos = pos
                avail = src.fill(12)
                buf, pos = src.buf, src.pos
                if avail == 0:
                    return
                if avail < 12:
                    raise self._truncated(
                        src.base, number + 1, f"block needs at least 12 bytes, {avail} left"
                    )
            block_type, block_len = unpack_block(buf, pos)
            if (
                block_len > avail
                or block_len < 12
                or block_len & 3
                or block_type == BT_SHB
                or lay.u32.unpack_from(buf, pos + block_len - 4)[0] != block_len
            ):
                # Slow path: more input, a new section or an error.
                src.pos = pos
                block_len = self._checked_block(buf, pos, avail, number + 1)
                buf, pos = src.buf, src.pos
                if block_type == BT_SHB:
                    self._start_section(buf, pos, block_len, number + 1)
                    lay = self._layout
                    unpack_block = lay.block.unpack_from
                    unpack_epb = lay.epb.unpack_from
                    unpack_pb = lay.pb.unpack_from
                    clocks = self._clocks
                    pos += block_len
                    continue
            if block_type in (BT_EPB, BT_PB):
                if block_len < 32:
                    raise self._corrupt(pos, number + 1, f"packet block of {block_len} bytes")
                if block_type == BT_EPB:
                    iface, ts_high, ts_low, caplen, orig_len = unpack_epb(buf, pos + 8)
                else:
                    iface, _drops, ts_high, ts_low, caplen, orig_len = unpack_pb(buf, pos + 8)
                data_end = pos + 28 + caplen
                block_end = pos + block_len - 4
                if data_end > block_end:
                    raise self._corrupt(
                        pos, number + 1, f"captured length {caplen} overruns the block"
                    )
                if iface >= len(clocks):
                    raise self._corrupt(pos, number + 1, self._no_interface(iface))
                linktype, _snaplen, mul, div, offset_ns = clocks[iface]
                comment = None
                options_start = pos + 28 + ((caplen + 3) & ~3)
                if options_start < block_end:
                    comment = _comment(_options(buf, options_start, block_end, lay))
                number += 1
                yield RawFrame(
                    number,
                    ((ts_high << 32) | ts_low) * mul // div + offset_ns,
                    linktype,
                    buf[pos + 28 : data_end],
                    orig_len,
                    iface,
                    comment,
                )
            elif block_type == BT_IDB:
                self._add_interface(buf, pos, block_len, number + 1)
            elif block_type == BT_SPB:
                if block_len < 16:
                    raise self._corrupt(pos, number + 1, f"packet block of {block_len} bytes")
                if not clocks:
                    raise self._corrupt(pos, number + 1, self._no_interface(0))
                linktype, snaplen = clocks[0][:2]
                (orig_len,) = lay.u32.unpack_from(buf, pos + 8)
                caplen = min(orig_len, snaplen) if snaplen else orig_len
                if caplen > block_len - 16:
                    raise self._corrupt(
                        pos, number + 1, f"captured length {caplen} overruns the block"
                    )
                number += 1
                yield RawFrame(number, 0, linktype, buf[pos + 12 : pos + 12 + caplen], orig_len)
            pos += block_len

    def _checked_block(self, buf: bytes, pos: int, avail: int, number: int) -> int:
        """Validate the block at `pos` (reading more input if needed); return its length.

        Leaves the block complete in ``src.buf`` at ``src.pos``; switches the byte
        order when the block is a section header.
        """
        src = self._src
        offset = src.base + pos
        if buf[pos : pos + 4] == PCAPNG_MAGIC:
            magic = buf[pos + 8 : pos + 12]
            if magic not in _LAYOUTS:
                raise self._corrupt(pos, number, f"byte-order magic {magic.hex(' ')}")
            self._layout = _LAYOUTS[magic]
        lay = self._layout
        block_len: int = lay.block.unpack_from(buf, pos)[1]
        if block_len < 12 or block_len & 3 or block_len > MAX_BLOCK:
            raise self._corrupt(pos, number, f"block length {block_len}")
        if block_len > avail:
            avail = src.fill(block_len)
            buf, pos = src.buf, src.pos
            if avail < block_len:
                raise self._truncated(
                    offset, number, f"block needs {block_len} bytes, {avail} left"
                )
        (trailer,) = lay.u32.unpack_from(buf, pos + block_len - 4)
        if trailer != block_len:
            raise self._corrupt(
                pos, number, f"block length {block_len} at its start but {trailer} at its end"
            )
        return block_len

    def _start_section(self, buf: bytes, pos: int, block_len: int, number: int) -> None:
        lay = self._layout
        if block_len < 28:
            raise self._corrupt(pos, number, f"section header of {block_len} bytes")
        major, minor = lay.shb.unpack_from(buf, pos + 12)
        if major != 1:
            raise CaptureError(
                f"{self._name}: pcapng version {major}.{minor} at byte offset "
                f"{self._src.base + pos} is not supported (only 1.x)"
            )
        self.byte_order = lay.byte_order
        # A new section numbers its interfaces from 0 again.
        self.interfaces = []
        self._clocks = []
        for code, value in _options(buf, pos + 24, pos + block_len - 4, lay):
            if code == OPT_COMMENT:
                self.section_comments.append(_text(value))

    def _add_interface(self, buf: bytes, pos: int, block_len: int, number: int) -> None:
        lay = self._layout
        if block_len < 20:
            raise self._corrupt(pos, number, f"interface description of {block_len} bytes")
        linktype, _reserved, snaplen = lay.idb.unpack_from(buf, pos + 8)
        iface = Interface(linktype, snaplen)
        for code, value in _options(buf, pos + 16, pos + block_len - 4, lay):
            if code == IF_NAME:
                iface.name = _text(value)
            elif code == IF_DESCRIPTION:
                iface.description = _text(value)
            elif code == IF_TSRESOL and value:
                iface.tsresol = value[0]
            elif code == IF_TSOFFSET and len(value) == 8:
                (iface.tsoffset,) = lay.i64.unpack_from(value)
        mul, div = _timestamp_scale(iface.tsresol)
        self.interfaces.append(iface)
        self._clocks.append((linktype, snaplen, mul, div, iface.tsoffset * 1_000_000_000))

    def _no_interface(self, iface: int) -> str:
        return f"interface {iface} not described; the section has {len(self._clocks)}"

    def _corrupt(self, pos: int, number: int, why: str) -> CorruptCaptureError:
        offset = self._src.base + pos
        return CorruptCaptureError(
            f"{self._name}: corrupt block in frame {number} at byte offset {offset} ({why})",
            number,
            offset,
        )

    def _truncated(self, offset: int, number: int, why: str) -> TruncatedCaptureError:
        return TruncatedCaptureError(
            f"{self._name}: cut short in frame {number} at byte offset {offset} ({why})",
            number,
            offset,
        )
