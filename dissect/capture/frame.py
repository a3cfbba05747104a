"""What the capture readers hand out: raw frames and the interfaces they came from.

A `RawFrame` is one captured packet exactly as the file stored it: bytes,
timestamp, link type and the few per-packet facts a decoder or renderer
needs.  It is created once per frame on the hot path, hence a slotted data
class with plain ints (the timestamp in nanoseconds, exact) and derived
values as properties computed only on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

from .linktypes import linktype_name


@dataclass(slots=True)
class RawFrame:
    number: int  # 1-based, in file order
    ts_ns: int  # nanoseconds since the epoch (0 for pcapng simple packet blocks)
    linktype: int
    data: bytes  # the captured bytes
    orig_len: int  # length on the wire; more than len(data) when cut by the snaplen
    interface: int = 0  # pcapng interface id (0 for pcap)
    comment: str | None = None  # pcapng opt_comment(s) of the packet, joined by "\n"
    # (pid, comm) of the process that sent or received the frame, when a live
    # source knows it (tracing, socket ownership); from a file, only through
    # the packet comment ``nlshark trace`` writes (api.decode_frames).
    process: tuple[int, str] | None = None

    @property
    def ts(self) -> float:
        """Timestamp in seconds since the epoch (float; ``ts_ns`` is exact)."""
        return self.ts_ns / 1e9

    @property
    def truncated(self) -> bool:
        """True when the capture kept fewer bytes than the wire carried."""
        return self.orig_len > len(self.data)


@dataclass(slots=True)
class Interface:
    """A capture interface: pcapng IDB, or the pcap global header."""

    linktype: int
    snaplen: int  # 0: no limit
    name: str | None = None  # if_name
    description: str | None = None  # if_description
    # if_tsresol as stored: 10**-n seconds per unit, or 2**-(n & 0x7f) if the high
    # bit is set; 6 (microseconds) is the pcapng default, 9 a nanosecond pcap.
    tsresol: int = 6
    tsoffset: int = 0  # if_tsoffset, seconds added to every timestamp

    @property
    def linktype_name(self) -> str:
        return linktype_name(self.linktype)
