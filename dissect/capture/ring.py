"""Saving frames while they are captured: one file or a ring of files.

`CaptureSink` writes `RawFrame`s to a pcap (nanosecond) or pcapng file and
flushes after every frame, so the file on disk is complete up to the last
frame at any moment (a reader or ``tail -f`` sees each one; a killed
process loses at most the frame being written).  With a ring buffer
(tshark's ``-b filesize:KB -b files:N``) it starts a new file once the
current one has reached the size, naming the files the way tshark does,
``PREFIX_NNNNN_YYYYmmddHHMMSS.EXT`` (the local time of the file's first
frame), and deletes the oldest so that only the newest N remain.

`parse_conditions` reads ``-a``/``-b`` arguments (``KEY:VALUE``) into a
dict, with one-line errors for anything else.  Sizes are in kB of 1000
bytes, as in tshark.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .frame import RawFrame
from .linktypes import LINKTYPE_NETLINK
from .writer import DEFAULT_SNAPLEN, PcapngWriter, PcapWriter


class ConditionError(ValueError):
    """A ``-a``/``-b`` argument that cannot be used; the text says why."""


def parse_conditions(
    items: list[str], allowed: dict[str, type], option: str
) -> dict[str, int | float]:
    """``["duration:10", "files:3"]`` -> ``{"duration": 10.0, "files": 3}``."""
    out: dict[str, int | float] = {}
    for item in items:
        key, sep, text = item.partition(":")
        kind = allowed.get(key)
        if not sep or kind is None:
            names = ", ".join(f"{k}:N" for k in allowed)
            raise ConditionError(f"{option} expects one of {names}; got {item!r}")
        try:
            value = kind(text)
        except ValueError:
            value = -1
        if not value > 0 or value != value or value == float("inf"):
            raise ConditionError(f"{option} {key} needs a positive number, got {text!r}")
        out[key] = value
    return out


def is_pcapng_name(path: str) -> bool:
    return path.lower().endswith((".pcapng", ".ntar"))


@dataclass
class CaptureSink:
    """Writes frames to `path` (``-`` for stdout), or to a ring of files
    when `ring_filesize_kb` is set (`ring_files` of them at most)."""

    path: str
    pcapng: bool = False
    interface_name: str | None = None
    section_comment: str | None = None  # pcapng only
    linktype: int = LINKTYPE_NETLINK
    snaplen: int = DEFAULT_SNAPLEN
    ring_filesize_kb: int | None = None
    ring_files: int | None = None
    files: list[str] = field(default_factory=list)  # the ring's files still on disk
    files_opened: int = 0
    _writer: PcapWriter | PcapngWriter | None = None
    _file: BinaryIO | None = None

    def __post_init__(self) -> None:
        if self.ring_filesize_kb is None:
            self._open(self.path)

    @property
    def current_size(self) -> int:
        """Bytes written to the current file (headers included; 0 on a pipe)."""
        if self._file is None or self._file is sys.stdout.buffer:
            return 0
        return self._file.tell()

    @property
    def rotation_due(self) -> bool:
        """True when the next frame will start a new file of the ring."""
        return self.ring_filesize_kb is not None and (
            self._writer is None or self.current_size >= self.ring_filesize_kb * 1000
        )

    def _ring_name(self, number: int, ts_ns: int) -> str:
        p = Path(self.path)
        stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(ts_ns // 1_000_000_000))
        name = f"{p.stem if p.suffix else p.name}_{number:05d}_{stamp}{p.suffix}"
        return str(p.with_name(name))

    def _open(self, path: str) -> None:
        self.files_opened += 1
        f = sys.stdout.buffer if path == "-" else open(path, "wb")  # noqa: SIM115
        w: PcapWriter | PcapngWriter
        if self.pcapng:
            w = PcapngWriter(f, section_comment=self.section_comment)
            w.add_interface(self.linktype, self.interface_name, self.snaplen)
        else:
            w = PcapWriter(f, self.linktype, nanosecond=True, snaplen=self.snaplen)
        w.flush()
        self._writer, self._file = w, f

    def _rotate(self, ts_ns: int) -> None:
        self.close()
        name = self._ring_name(self.files_opened + 1, ts_ns)
        self._open(name)
        self.files.append(name)
        while self.ring_files is not None and len(self.files) > self.ring_files:
            old = self.files.pop(0)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old)

    def write(self, raw: RawFrame) -> None:
        if self.rotation_due:
            self._rotate(raw.ts_ns)
        w = self._writer
        assert w is not None
        if isinstance(w, PcapngWriter):
            w.write(raw.data, raw.ts_ns, orig_len=raw.orig_len, comment=raw.comment)
        else:
            w.write(raw.data, raw.ts_ns, raw.orig_len)
        w.flush()

    def close(self) -> None:
        """Flush and close the current file (stdout is only flushed)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file is not None:
            if self._file is not sys.stdout.buffer:
                self._file.close()
            self._file = None
