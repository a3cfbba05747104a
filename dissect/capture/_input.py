"""Chunked input: large reads, records sliced out of one buffer.

Readers parse records straight out of `buf` (a bytes object) with
``struct.Struct.unpack_from`` at `pos`, instead of issuing two small reads
per record.  When a record runs past the end of `buf`, `fill` drops the
consumed prefix and appends more input: one read of at least `CHUNK_SIZE`
bytes from a file, or whatever a pipe has ready (``read1``), so a live
``tcpdump -w - | nlshark -r -`` shows frames as they arrive instead of
waiting for a full chunk.  Memory stays at about one chunk plus the largest
record, whatever the size of the file.
"""

from __future__ import annotations

from collections.abc import Callable

CHUNK_SIZE = 1 << 20


class ChunkedInput:
    __slots__ = ("_read", "buf", "pos", "base")

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self.buf = b""  # buf[pos:] is input not consumed yet
        self.pos = 0
        self.base = 0  # file offset of buf[0]

    @property
    def offset(self) -> int:
        """File offset of the next unconsumed byte."""
        return self.base + self.pos

    def fill(self, need: int) -> int:
        """Make `need` unconsumed bytes available unless the input ends first.

        Returns how many are available; fewer than `need` means end of input.
        Resets `pos` to 0 (callers must reload `buf` and `pos`).
        """
        buf, pos = self.buf, self.pos
        avail = len(buf) - pos
        if avail >= need:
            return avail
        parts = [buf[pos:]]
        self.base += pos
        while avail < need:
            chunk = self._read(max(CHUNK_SIZE, need - avail))
            if not chunk:
                break
            parts.append(chunk)
            avail += len(chunk)
        self.buf = b"".join(parts)
        self.pos = 0
        return avail
