"""Writing captures: classic pcap and pcapng.

Both writers emit each record with a single ``write`` on a buffered file,
headers packed by precompiled structs.  Their output is what the readers in
this package (and Wireshark) expect; they exist to save forged or filtered
frames and to build test captures, so they check arguments (ValueError)
but do not second-guess odd-but-representable values such as an orig_len
smaller than the data, which a fuzzer may want on disk.

`PcapWriter` writes the 24-byte global header at once, then 16-byte record
headers; data longer than the snaplen is cut to it, keeping orig_len.
`PcapngWriter` writes one little-endian section: the SHB at once (with
shb_userappl and an optional comment), an IDB whenever `add_interface` is
called (interfaces can be added between packets), and one Enhanced Packet
Block per frame, with the comment as opt_comment.  Writing to interface 0
before any was added adds a LINKTYPE_NETLINK one.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from types import TracebackType
from typing import BinaryIO

from .linktypes import LINKTYPE_NETLINK
from .pcapng import BT_EPB, BT_IDB, BT_SHB, BYTE_ORDER_MAGIC, IF_NAME, IF_TSRESOL, OPT_COMMENT

DEFAULT_SNAPLEN = 262144
_NS = 1_000_000_000
_U32_MAX = 0xFFFFFFFF
_U64_MAX = (1 << 64) - 1

SHB_USERAPPL = 4


def _open_for_write(file_or_path: str | os.PathLike[str] | BinaryIO) -> tuple[BinaryIO, bool]:
    """The stream to write to, and whether closing the writer closes it."""
    if file_or_path == "-":
        return sys.stdout.buffer, False
    if isinstance(file_or_path, (str, os.PathLike)):
        return open(file_or_path, "wb"), True  # noqa: SIM115
    return file_or_path, False


def _now_or(ts_ns: int | None) -> int:
    return time.time_ns() if ts_ns is None else ts_ns


class _Writer:
    _file: BinaryIO
    _owned: bool

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Flush, and close the file if the writer opened it."""
        if self._file.closed:
            return
        self._file.flush()
        if self._owned:
            self._file.close()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class PcapWriter(_Writer):
    """Classic pcap (version 2.4) with one link type."""

    def __init__(
        self,
        file_or_path: str | os.PathLike[str] | BinaryIO,
        linktype: int = LINKTYPE_NETLINK,
        *,
        nanosecond: bool = False,
        snaplen: int = DEFAULT_SNAPLEN,
        byte_order: str = "little",
    ) -> None:
        if byte_order not in ("little", "big"):
            raise ValueError(f"byte_order must be 'little' or 'big', not {byte_order!r}")
        if not 0 <= linktype <= 0xFFFF or not 0 <= snaplen <= _U32_MAX:
            raise ValueError(f"linktype {linktype} or snaplen {snaplen} out of range")
        prefix = "<" if byte_order == "little" else ">"
        self._record = struct.Struct(prefix + "IIII")
        self._nanosecond = nanosecond
        self._snaplen = snaplen or _U32_MAX
        self._file, self._owned = _open_for_write(file_or_path)
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        self._file.write(struct.pack(prefix + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, data: bytes, ts_ns: int | None = None, orig_len: int | None = None) -> None:
        """Append a record; `ts_ns` defaults to now, `orig_len` to len(data)."""
        ts_sec, frac = divmod(_now_or(ts_ns), _NS)
        if not 0 <= ts_sec <= _U32_MAX:
            raise ValueError(f"timestamp {ts_ns} ns does not fit a pcap record")
        if not self._nanosecond:
            frac //= 1000
        wire_len = len(data) if orig_len is None else orig_len
        if not 0 <= wire_len <= _U32_MAX:
            raise ValueError(f"orig_len {wire_len} out of range")
        if len(data) > self._snaplen:
            data = data[: self._snaplen]
        self._file.write(self._record.pack(ts_sec, frac, len(data), wire_len) + data)

    def __enter__(self) -> PcapWriter:
        return self


def _pad4(n: int) -> bytes:
    return bytes(-n & 3)


def _options(options: list[tuple[int, bytes]]) -> bytes:
    """Encoded options followed by opt_endofopt, or nothing when there are none."""
    if not options:
        return b""
    parts: list[bytes] = []
    for code, value in options:
        if len(value) > 0xFFFF:
            raise ValueError(f"pcapng option {code} is {len(value)} bytes, more than 65535")
        parts += (struct.pack("<HH", code, len(value)), value, _pad4(len(value)))
    parts.append(bytes(4))
    return b"".join(parts)


_BLOCK_HEADER = struct.Struct("<II")
_U32 = struct.Struct("<I")
_EPB_HEADER = struct.Struct("<IIIIIII")  # block type, length, then the EPB fields


class PcapngWriter(_Writer):
    """pcapng: one little-endian section; interfaces are added on demand."""

    def __init__(
        self,
        file_or_path: str | os.PathLike[str] | BinaryIO,
        *,
        section_comment: str | None = None,
        application: str = "nlshark",
    ) -> None:
        # Per interface: (snaplen, nanosecond timestamps).
        self._interfaces: list[tuple[int, bool]] = []
        options = []
        if section_comment is not None:
            options.append((OPT_COMMENT, section_comment.encode()))
        if application:
            options.append((SHB_USERAPPL, application.encode()))
        body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _options(options)
        self._file, self._owned = _open_for_write(file_or_path)
        self._write_block(BT_SHB, body)

    def _write_block(self, block_type: int, body: bytes) -> None:
        total = 12 + len(body)
        self._file.write(_BLOCK_HEADER.pack(block_type, total) + body + _U32.pack(total))

    def add_interface(
        self,
        linktype: int = LINKTYPE_NETLINK,
        name: str | None = None,
        snaplen: int = DEFAULT_SNAPLEN,
        tsresol_ns: bool = True,
    ) -> int:
        """Describe an interface (IDB) and return its id, counted from 0."""
        if not 0 <= linktype <= 0xFFFF or not 0 <= snaplen <= _U32_MAX:
            raise ValueError(f"linktype {linktype} or snaplen {snaplen} out of range")
        options = []
        if name is not None:
            options.append((IF_NAME, name.encode()))
        if tsresol_ns:
            options.append((IF_TSRESOL, b"\x09"))  # 10**-9 s; absent means 10**-6
        self._write_block(BT_IDB, struct.pack("<HHI", linktype, 0, snaplen) + _options(options))
        self._interfaces.append((snaplen, tsresol_ns))
        return len(self._interfaces) - 1

    def write(
        self,
        data: bytes,
        ts_ns: int | None = None,
        *,
        interface: int = 0,
        orig_len: int | None = None,
        comment: str | None = None,
    ) -> None:
        """Append an Enhanced Packet Block; `ts_ns` defaults to now, `orig_len` to len(data)."""
        if interface == 0 and not self._interfaces:
            self.add_interface()
        if not 0 <= interface < len(self._interfaces):
            raise ValueError(f"interface {interface} was not added")
        snaplen, nanosecond = self._interfaces[interface]
        ts = _now_or(ts_ns)
        if not nanosecond:
            ts //= 1000
        if not 0 <= ts <= _U64_MAX:
            raise ValueError(f"timestamp {ts_ns} ns does not fit a pcapng block")
        wire_len = len(data) if orig_len is None else orig_len
        if not 0 <= wire_len <= _U32_MAX:
            raise ValueError(f"orig_len {wire_len} out of range")
        if snaplen and len(data) > snaplen:
            data = data[:snaplen]
        options = _options([(OPT_COMMENT, comment.encode())]) if comment is not None else b""
        caplen = len(data)
        total = 32 + caplen + (-caplen & 3) + len(options)
        header = _EPB_HEADER.pack(
            BT_EPB, total, interface, ts >> 32, ts & _U32_MAX, caplen, wire_len
        )
        self._file.write(b"".join((header, data, _pad4(caplen), options, _U32.pack(total))))

    def __enter__(self) -> PcapngWriter:
        return self
