"""Opening captures: sniff the format, check the link type, stream the frames.

`open_capture` accepts a path, ``"-"`` for standard input, or a binary file
object, and sniffs the first four bytes: one of the four pcap magics or the
pcapng section header type.  The file is never read whole: a `ChunkedInput`
feeds the format parser, whose `frames` generator yields `RawFrame`s one by
one, so memory stays flat and a pipe is decoded as it flows.

Link types are checked at open, before any frame is decoded: a pcap has one
for the whole file; a pcapng file may mix interfaces, so its first packet is
read ahead (which reads every interface described before it) and the file is
refused only when none of those interfaces is netlink.  Frames of other
interfaces are still yielded; the decoder notes them.  Should that read-ahead
hit a corrupt or cut block, the error is kept and raised in iteration, in
its place after the frames before it.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import BinaryIO

from ._input import ChunkedInput
from .errors import CaptureError, NotACaptureError, UnsupportedLinkTypeError
from .frame import Interface, RawFrame
from .linktypes import SUPPORTED_LINKTYPES, linktype_name, supported_linktypes_text
from .pcap import PCAP_MAGICS, PcapParser
from .pcapng import PCAPNG_MAGIC, PcapngParser

CaptureSource = str | os.PathLike[str] | BinaryIO


def _raise(error: CaptureError) -> Iterator[RawFrame]:
    raise error
    yield  # makes this a generator: the error surfaces on the first next()


class CaptureReader:
    """A pcap or pcapng capture, iterated once as `RawFrame`s in file order."""

    def __init__(self, source: CaptureSource, *, check_linktype: bool = True) -> None:
        self._owned: BinaryIO | None = None
        if source == "-":
            stream: BinaryIO = sys.stdin.buffer
            self.path = "<stdin>"
        elif isinstance(source, (str, os.PathLike)):
            self.path = os.fspath(source)
            try:
                # Unbuffered: ChunkedInput does the buffering, in large reads.
                stream = self._owned = open(self.path, "rb", buffering=0)  # noqa: SIM115
            except OSError as e:
                raise CaptureError(f"{self.path}: {e.strerror or e}") from e
        else:
            stream = source
            name = getattr(source, "name", None)
            self.path = name if isinstance(name, str) else "<stream>"
        try:
            self._open(stream, check_linktype)
        except BaseException:
            self.close()
            raise

    def _open(self, stream: BinaryIO, check_linktype: bool) -> None:
        src = ChunkedInput(getattr(stream, "read1", stream.read))
        avail = src.fill(4)
        magic = src.buf[:4]
        self._parser: PcapParser | PcapngParser
        if magic in PCAP_MAGICS:
            self.format = "pcap"
            pcap = self._parser = PcapParser(src, self.path)
            self.nanosecond = pcap.nanosecond
            self._interfaces = [pcap.interface]
            if check_linktype and pcap.linktype not in SUPPORTED_LINKTYPES:
                raise UnsupportedLinkTypeError(
                    f"{self.path}: {_describe_linktypes([pcap.linktype])} not netlink; "
                    f"nlshark reads {supported_linktypes_text()}"
                )
            self._frames: Iterator[RawFrame] = pcap.frames()
        elif magic == PCAPNG_MAGIC:
            self.format = "pcapng"
            self.nanosecond = False
            pcapng = self._parser = PcapngParser(src, self.path)
            self._frames = self._read_ahead(pcapng.frames())
            linktypes = list(dict.fromkeys(iface.linktype for iface in pcapng.interfaces))
            if check_linktype and linktypes and not SUPPORTED_LINKTYPES.keys() & linktypes:
                raise UnsupportedLinkTypeError(
                    f"{self.path}: {_describe_linktypes(linktypes)} not netlink; "
                    f"nlshark reads {supported_linktypes_text()}"
                )
        else:
            detail = f"starts with {magic.hex(' ')}" if avail else "empty file"
            raise NotACaptureError(f"{self.path}: not a pcap or pcapng capture ({detail})")

    @staticmethod
    def _read_ahead(frames: Iterator[RawFrame]) -> Iterator[RawFrame]:
        try:
            first = next(frames)
        except StopIteration:
            return iter(())
        except CaptureError as e:
            return _raise(e)
        return itertools.chain((first,), frames)

    @property
    def byte_order(self) -> str:
        """The byte order of the file header (pcapng: of the current section)."""
        return self._parser.byte_order

    @property
    def interfaces(self) -> list[Interface]:
        """pcap: the one interface; pcapng: those of the current section seen so far."""
        if isinstance(self._parser, PcapngParser):
            return self._parser.interfaces
        return self._interfaces

    @property
    def section_comments(self) -> list[str]:
        """pcapng: opt_comment of the section headers seen so far, in order."""
        if isinstance(self._parser, PcapngParser):
            return self._parser.section_comments
        return []

    def __iter__(self) -> Iterator[RawFrame]:
        return self._frames

    def close(self) -> None:
        """Close the file if this reader opened it (not a caller's file object or stdin)."""
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<CaptureReader {self.path!r} {self.format}>"


def _describe_linktypes(linktypes: list[int]) -> str:
    described = ", ".join(f"{n} ({linktype_name(n)})" for n in linktypes)
    return f"link type {described} is" if len(linktypes) == 1 else f"link types {described} are"


def open_capture(source: CaptureSource, *, check_linktype: bool = True) -> CaptureReader:
    """Open a pcap or pcapng capture: a path, ``"-"`` for stdin, or a binary file object.

    Raises `CaptureError` (one of its subclasses) when the input is no capture,
    carries no netlink link type (unless `check_linktype` is false), or is
    broken before its first frame.
    """
    return CaptureReader(source, check_linktype=check_linktype)
