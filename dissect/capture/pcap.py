"""Classic pcap reading (libpcap format, version 2.4).

Layout: a 24-byte global header (magic, version 2.4, thiszone, sigfigs,
snaplen, linktype), then records of a 16-byte header (ts_sec, ts_usec or
ts_nsec, incl_len, orig_len) followed by incl_len captured bytes.  The magic
number, read in either byte order, tells the file's byte order and whether
the second timestamp field counts micro- or nanoseconds.  The low 16 bits of
the linktype field are the link type; the upper bits carry FCS information,
which netlink frames never have.

`PcapParser.frames` walks the records with one precompiled ``unpack_from``
per record over the chunk buffer of `ChunkedInput`, and refills only when a
record crosses the end of the buffer.  An incl_len beyond the snaplen (or
beyond 256 MiB) means the file is corrupt or misaligned, and reading on
would only produce garbage, so it stops there with `CorruptCaptureError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from ._input import ChunkedInput
from .errors import CaptureError, CorruptCaptureError, TruncatedCaptureError
from .frame import Interface, RawFrame

MAX_RECORD = 256 << 20  # larger incl_len: the file is corrupt, not a big packet

# Magic as the first four bytes of the file -> (byte order, nanosecond timestamps).
PCAP_MAGICS: dict[bytes, tuple[str, bool]] = {
    b"\xd4\xc3\xb2\xa1": ("little", False),
    b"\xa1\xb2\xc3\xd4": ("big", False),
    b"\x4d\x3c\xb2\xa1": ("little", True),
    b"\xa1\xb2\x3c\x4d": ("big", True),
}

_FILE_HEADER = {"little": struct.Struct("<4xHHiIII"), "big": struct.Struct(">4xHHiIII")}
_RECORD_HEADER = {"little": struct.Struct("<IIII"), "big": struct.Struct(">IIII")}
FILE_HEADER_LEN = 24
RECORD_HEADER_LEN = 16


class PcapParser:
    """Parses the global header on construction; `frames` yields the records."""

    def __init__(self, src: ChunkedInput, name: str) -> None:
        self._src = src
        self._name = name
        avail = src.fill(FILE_HEADER_LEN)
        magic = src.buf[src.pos : src.pos + 4]
        self.byte_order, self.nanosecond = PCAP_MAGICS[magic]
        if avail < FILE_HEADER_LEN:
            raise TruncatedCaptureError(
                f"{name}: cut short in the pcap file header "
                f"(needs {FILE_HEADER_LEN} bytes, {avail} left)",
                1,
                0,
            )
        major, minor, _thiszone, _sigfigs, snaplen, linktype = _FILE_HEADER[
            self.byte_order
        ].unpack_from(src.buf, src.pos)
        if major != 2:
            raise CaptureError(f"{name}: pcap version {major}.{minor} is not supported (only 2.x)")
        src.pos += FILE_HEADER_LEN
        self.snaplen = snaplen
        self.linktype = linktype & 0xFFFF
        self.interface = Interface(self.linktype, snaplen, tsresol=9 if self.nanosecond else 6)

    def frames(self) -> Iterator[RawFrame]:
        src = self._src
        unpack_header = _RECORD_HEADER[self.byte_order].unpack_from
        limit = self.snaplen if 0 < self.snaplen < MAX_RECORD else MAX_RECORD
        frac_ns = 1 if self.nanosecond else 1000
        linktype = self.linktype
        number = 0
        incl_len = 0
        buf, pos = src.buf, src.pos
        while True:
            size = len(buf)
            while pos + RECORD_HEADER_LEN <= size:
                ts_sec, ts_frac, incl_len, orig_len = unpack_header(buf, pos)
                if incl_len > limit:
                    raise self._corrupt(
                        number + 1,
                        src.base + pos,
                        f"captured length {incl_len} exceeds the snaplen {limit}"
                        if limit == self.snaplen
                        else f"absurd captured length {incl_len}",
                    )
                end = pos + RECORD_HEADER_LEN + incl_len
                if end > size:
                    break
                number += 1
                yield RawFrame(
                    number,
                    ts_sec * 1_000_000_000 + ts_frac * frac_ns,
                    linktype,
                    buf[pos + RECORD_HEADER_LEN : end],
                    orig_len,
                )
                pos = end
            # The next record is not complete in `buf`: fetch more input.
            avail = size - pos
            if avail < RECORD_HEADER_LEN:
                need, what = RECORD_HEADER_LEN, "record header"
            else:
                need, what = RECORD_HEADER_LEN + incl_len, "record"
            src.pos = pos
            got = src.fill(need)
            buf, pos = src.buf, src.pos
            if got == 0:
                return
            if got < need:
                raise TruncatedCaptureError(
                    f"{self._name}: cut short in frame {number + 1} at byte offset "
                    f"{src.base + pos} ({what} needs {need} bytes, {got} left)",
                    number + 1,
                    src.base + pos,
                )

    def _corrupt(self, number: int, offset: int, why: str) -> CorruptCaptureError:
        return CorruptCaptureError(
            f"{self._name}: corrupt record in frame {number} at byte offset {offset} ({why})",
            number,
            offset,
        )
