"""Tests for dissect.capture: pcap and pcapng reading and writing.

pcapng blocks the writers never produce (SPB, PB, NRB, ISB, big-endian and
multi-section files, unusual if_tsresol) are built here by hand from the
format's layouts, which also checks the reader against an encoder that is
not its own.
"""

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissect.capture import (
    SUPPORTED_LINKTYPES,
    CaptureError,
    CaptureReader,
    CorruptCaptureError,
    NotACaptureError,
    PcapngWriter,
    PcapWriter,
    RawFrame,
    TruncatedCaptureError,
    UnsupportedLinkTypeError,
    linktype_name,
    netlink_pseudo_header,
    open_capture,
)

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "captures"

T0 = 1_700_000_000_123_456_789  # a timestamp in ns with all digits significant

NLMSG = netlink_pseudo_header(0) + bytes.fromhex("14000000030002004a0100000000000000000000")


def frames_of(data: bytes, **kwargs: bool) -> list[RawFrame]:
    return list(open_capture(io.BytesIO(data), **kwargs))


def read_until_error(data: bytes) -> tuple[list[RawFrame], CaptureError]:
    got: list[RawFrame] = []
    with pytest.raises(CaptureError) as info:
        for frame in open_capture(io.BytesIO(data)):
            got.append(frame)
    return got, info.value


# --- hand-built pcap and pcapng pieces ------------------------------------------------


def pcap_header(
    linktype: int = 253, snaplen: int = 262144, e: str = "<", ns: bool = False
) -> bytes:
    magic = 0xA1B23C4D if ns else 0xA1B2C3D4
    return struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(data: bytes, sec: int = 1, frac: int = 0, orig: int | None = None) -> bytes:
    return struct.pack("<IIII", sec, frac, len(data), len(data) if orig is None else orig) + data


def block(block_type: int, body: bytes, e: str = "<") -> bytes:
    body += bytes(-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(e + "II", block_type, total) + body + struct.pack(e + "I", total)


def options(*pairs: tuple[int, bytes], e: str = "<") -> bytes:
    out = b"".join(
        struct.pack(e + "HH", code, len(value)) + value + bytes(-len(value) % 4)
        for code, value in pairs
    )
    return out + bytes(4) if pairs else b""


def shb(e: str = "<", opts: bytes = b"", major: int = 1) -> bytes:
    return block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, major, 0, -1) + opts, e)


def idb(linktype: int = 253, snaplen: int = 0, opts: bytes = b"", e: str = "<") -> bytes:
    return block(1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts, e)


def epb(
    data: bytes,
    ts: int = 0,
    iface: int = 0,
    orig: int | None = None,
    opts: bytes = b"",
    e: str = "<",
) -> bytes:
    orig = len(data) if orig is None else orig
    header = struct.pack(e + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), orig)
    return block(6, header + data + bytes(-len(data) % 4) + opts, e)


def spb(data: bytes, orig: int, e: str = "<") -> bytes:
    return block(3, struct.pack(e + "I", orig) + data, e)


def pb(data: bytes, ts: int = 0, iface: int = 0, e: str = "<") -> bytes:
    header = struct.pack(e + "HHIIII", iface, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
    return block(2, header + data, e)


# --- link types and the pseudo-header -------------------------------------------------


def test_netlink_pseudo_header() -> None:
    assert netlink_pseudo_header(16) == bytes.fromhex("0004 0338 0000 0000000000000000 0010")
    assert netlink_pseudo_header(0, pkttype=0)[:2] == b"\0\0"
    assert len(netlink_pseudo_header(12)) == 16


def test_linktype_names() -> None:
    assert SUPPORTED_LINKTYPES == {253: "NETLINK", 113: "LINUX_SLL", 276: "LINUX_SLL2"}
    expected = {
        0: "NULL",
        1: "ETHERNET",
        101: "RAW",
        105: "IEEE802_11",
        113: "LINUX_SLL",
        127: "IEEE802_11_RADIOTAP",
        189: "USB_LINUX",
        201: "BLUETOOTH_HCI_H4_WITH_PHDR",
        228: "IPV4",
        229: "IPV6",
        253: "NETLINK",
        276: "LINUX_SLL2",
    }
    for number, name in expected.items():
        assert linktype_name(number) == name
    assert linktype_name(9999) == "unknown"


def test_raw_frame_properties() -> None:
    frame = RawFrame(1, 1_500_000_000, 253, b"abc", 10)
    assert frame.ts == 1.5
    assert frame.truncated
    assert not RawFrame(1, 0, 253, b"abc", 3).truncated
    assert frame.interface == 0 and frame.comment is None


# --- pcap round trips -----------------------------------------------------------------


@pytest.mark.parametrize("nanosecond", [False, True])
@pytest.mark.parametrize("byte_order", ["little", "big"])
def test_pcap_round_trip(nanosecond: bool, byte_order: str) -> None:
    out = io.BytesIO()
    payloads = [NLMSG, b"", bytes(range(256)) * 3, b"x"]
    with PcapWriter(out, 253, nanosecond=nanosecond, byte_order=byte_order) as writer:
        for i, payload in enumerate(payloads):
            writer.write(payload, ts_ns=T0 + i, orig_len=len(payload) + i)
    assert not out.closed  # a caller's file object stays open
    reader = open_capture(io.BytesIO(out.getvalue()))
    assert (reader.format, reader.nanosecond, reader.byte_order) == ("pcap", nanosecond, byte_order)
    assert [(i.linktype, i.snaplen, i.tsresol) for i in reader.interfaces] == [
        (253, 262144, 9 if nanosecond else 6)
    ]
    assert reader.section_comments == []
    frames = list(reader)
    assert [f.number for f in frames] == [1, 2, 3, 4]
    assert [f.data for f in frames] == payloads
    assert [f.orig_len for f in frames] == [len(p) + i for i, p in enumerate(payloads)]
    assert [f.truncated for f in frames] == [False, True, True, True]
    expected_ts = [T0 + i if nanosecond else (T0 + i) // 1000 * 1000 for i in range(4)]
    assert [f.ts_ns for f in frames] == expected_ts
    assert {(f.linktype, f.interface, f.comment) for f in frames} == {(253, 0, None)}


def test_pcap_header_bytes() -> None:
    out = io.BytesIO()
    PcapWriter(out, 113, snaplen=65535, byte_order="big").close()
    assert out.getvalue() == bytes.fromhex("a1b2c3d4 0002 0004 00000000 00000000 0000ffff 00000071")
    out = io.BytesIO()
    PcapWriter(out, nanosecond=True).close()
    assert out.getvalue()[:4] == bytes.fromhex("4d3cb2a1")


def test_pcap_writer_cuts_at_snaplen_and_uses_path(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    with PcapWriter(path, snaplen=20) as writer:
        writer.write(NLMSG, ts_ns=T0)
        writer.write(b"short", ts_ns=None)
    with open_capture(path) as reader:
        assert reader.path == str(path)
        first, second = list(reader)
    assert first.data == NLMSG[:20] and first.orig_len == len(NLMSG) and first.truncated
    assert second.data == b"short" and second.ts_ns > T0  # "now"


def test_pcap_writer_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        PcapWriter(io.BytesIO(), byte_order="middle")
    writer = PcapWriter(io.BytesIO())
    with pytest.raises(ValueError):
        writer.write(b"", ts_ns=-1)
    with pytest.raises(ValueError):
        writer.write(b"", ts_ns=(1 << 40) * 10**9)


def test_pcap_with_only_a_header_has_no_frames() -> None:
    assert frames_of(pcap_header()) == []


def test_pcap_linktype_upper_bits_are_fcs_info() -> None:
    data = pcap_header(linktype=253 | 0x1000_0000) + pcap_record(NLMSG)
    [frame] = frames_of(data)
    assert frame.linktype == 253


def test_pcap_with_sll_and_sll2_is_accepted() -> None:
    for linktype in (113, 276):
        [frame] = frames_of(pcap_header(linktype) + pcap_record(NLMSG))
        assert frame.linktype == linktype


def test_large_record_and_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    big = bytes(range(256)) * 12_000  # ~3 MiB, more than one read chunk
    out = io.BytesIO()
    with PcapWriter(out, snaplen=0) as writer:
        for i in range(50):
            writer.write(NLMSG[: i + 1], ts_ns=T0)
        writer.write(big, ts_ns=T0)
    assert [f.data for f in frames_of(out.getvalue())][-1] == big
    # Tiny chunks put a record boundary at every possible place in the buffer.
    monkeypatch.setattr("dissect.capture._input.CHUNK_SIZE", 7)
    frames = frames_of(out.getvalue())
    assert [f.data for f in frames] == [NLMSG[: i + 1] for i in range(50)] + [big]


class Trickle(io.RawIOBase):
    """A pipe that hands out a few bytes per read, like a slow writer's."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self.sizes = [1, 5, 3, 16, 2]

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = min(len(b), self.sizes[self._pos % len(self.sizes)], len(self._data) - self._pos)
        b[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def test_short_reads_from_a_pipe() -> None:
    out = io.BytesIO()
    with PcapngWriter(out) as writer:
        for i in range(20):
            writer.write(NLMSG[:i], ts_ns=T0 + i, comment=f"c{i}" if i % 3 else None)
    expected = frames_of(out.getvalue())
    assert list(open_capture(Trickle(out.getvalue()))) == expected  # type: ignore[arg-type]
    assert list(open_capture(io.BufferedReader(Trickle(out.getvalue())))) == expected  # type: ignore[type-var]


def test_read_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = pcap_header() + pcap_record(NLMSG) * 3

    class Stdin:
        buffer = io.BufferedReader(Trickle(data))  # type: ignore[type-var]

    monkeypatch.setattr(sys, "stdin", Stdin)
    reader = open_capture("-")
    assert reader.path == "<stdin>"
    assert [f.data for f in reader] == [NLMSG] * 3


def test_write_to_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdout:
        buffer = io.BytesIO()

    monkeypatch.setattr(sys, "stdout", Stdout)
    with PcapWriter("-") as writer:
        writer.write(NLMSG, ts_ns=T0)
    assert not Stdout.buffer.closed
    assert [f.data for f in frames_of(Stdout.buffer.getvalue())] == [NLMSG]


# --- pcapng round trips ---------------------------------------------------------------


def test_pcapng_round_trip_with_several_interfaces() -> None:
    out = io.BytesIO()
    with PcapngWriter(out, section_comment="nlmon test\nsecond line") as writer:
        assert writer.add_interface(253, name="nlmon0") == 0
        assert writer.add_interface(1, name="eth0", snaplen=8, tsresol_ns=False) == 1
        writer.write(NLMSG, T0, comment="first")
        writer.write(bytes(range(20)), T0 + 1, interface=1)
        assert writer.add_interface(276) == 2  # added between packets
        writer.write(b"sll2", T0 + 2, interface=2, orig_len=100, comment="")
        writer.write(NLMSG, T0 + 3, comment="é\nmulti")
    reader = open_capture(io.BytesIO(out.getvalue()))
    assert (reader.format, reader.byte_order, reader.nanosecond) == ("pcapng", "little", False)
    assert reader.section_comments == ["nlmon test\nsecond line"]
    frames = list(reader)
    assert [(i.linktype, i.name, i.snaplen, i.tsresol) for i in reader.interfaces] == [
        (253, "nlmon0", 262144, 9),
        (1, "eth0", 8, 6),
        (276, None, 262144, 9),
    ]
    assert reader.interfaces[1].linktype_name == "ETHERNET"
    assert [(f.number, f.interface, f.linktype) for f in frames] == [
        (1, 0, 253),
        (2, 1, 1),
        (3, 2, 276),
        (4, 0, 253),
    ]
    assert [f.ts_ns for f in frames] == [T0, (T0 + 1) // 1000 * 1000, T0 + 2, T0 + 3]
    assert [f.data for f in frames] == [NLMSG, bytes(range(8)), b"sll2", NLMSG]
    assert [f.orig_len for f in frames] == [len(NLMSG), 20, 100, len(NLMSG)]
    assert [f.comment for f in frames] == ["first", None, "", "é\nmulti"]


def test_pcapng_writer_adds_a_netlink_interface_on_demand(tmp_path: Path) -> None:
    path = tmp_path / "auto.pcapng"
    with PcapngWriter(path, application="") as writer:
        writer.write(NLMSG, T0)
        with pytest.raises(ValueError):
            writer.write(NLMSG, T0, interface=1)
    reader = open_capture(path)
    assert [f.data for f in reader] == [NLMSG]
    assert reader.interfaces[0].linktype == 253
    reader.close()


def test_pcapng_reads_spb_pb_and_skips_other_blocks() -> None:
    nrb = block(4, struct.pack("<HH", 0, 0))
    isb = block(5, struct.pack("<III", 0, 0, 0))
    dsb = block(10, struct.pack("<II", 0x544C534B, 0))
    unknown = block(0x40000BAD, b"vendor stuff")
    data = (
        shb()
        + idb(253, snaplen=8)
        + nrb
        + spb(NLMSG[:8], orig=len(NLMSG))  # captured length min(orig_len, snaplen)
        + spb(b"abc", orig=3)
        + isb
        + pb(b"old", ts=5_000_000)
        + dsb
        + unknown
        + epb(b"new", ts=6_000_000)
    )
    frames = frames_of(data)
    assert [(f.data, f.orig_len, f.ts_ns) for f in frames] == [
        (NLMSG[:8], len(NLMSG), 0),
        (b"abc", 3, 0),
        (b"old", 3, 5_000_000_000),
        (b"new", 3, 6_000_000_000),
    ]
    assert [f.number for f in frames] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("tsresol", "units", "ns"),
    [
        (b"\x06", 1_234_567, 1_234_567_000),  # microseconds, stated explicitly
        (b"\x03", 1_234, 1_234_000_000),  # milliseconds
        (b"\x00", 7, 7_000_000_000),  # seconds
        (b"\x0c", 1_234_567, 1_234),  # picoseconds: floor to ns
        (b"\x8a", 1024 * 3 + 512, 3_500_000_000),  # 2**-10 s
        (b"\x9e", 1 << 30, 1_000_000_000),  # 2**-30 s
    ],
)
def test_pcapng_if_tsresol(tsresol: bytes, units: int, ns: int) -> None:
    data = shb() + idb(opts=options((9, tsresol))) + epb(NLMSG, ts=units)
    reader = open_capture(io.BytesIO(data))
    [frame] = list(reader)
    assert frame.ts_ns == ns
    assert reader.interfaces[0].tsresol == tsresol[0]


def test_pcapng_default_tsresol_and_tsoffset() -> None:
    offset = struct.pack("<q", -100)
    data = shb() + idb(opts=options((14, offset), (3, b"desc\0"))) + epb(NLMSG, ts=150_000_000)
    reader = open_capture(io.BytesIO(data))
    [frame] = list(reader)
    assert frame.ts_ns == 50 * 10**9
    assert reader.interfaces[0].tsoffset == -100
    assert reader.interfaces[0].description == "desc"


def test_pcapng_big_endian_and_new_sections() -> None:
    data = (
        shb(">", options((1, b"section one"), e=">"))
        + idb(253, opts=options((2, b"nlmon0"), (9, b"\x09"), e=">"), e=">")
        + epb(b"be", ts=T0, e=">")
        + shb("<", options((1, b"section two"), (1, b"more")))
        + idb(1)
        + idb(113)
        + epb(b"le", ts=1, iface=1, opts=options((1, b"one"), (1, b"two\0")))
    )
    reader = open_capture(io.BytesIO(data))
    assert reader.byte_order == "big"
    frames = list(reader)
    assert [(f.data, f.linktype, f.interface, f.comment) for f in frames] == [
        (b"be", 253, 0, None),
        (b"le", 113, 1, "one\ntwo"),
    ]
    assert frames[0].ts_ns == T0
    assert frames[1].ts_ns == 1000
    assert reader.byte_order == "little"
    assert [i.linktype for i in reader.interfaces] == [1, 113]  # the new section's
    assert reader.section_comments == ["section one", "section two", "more"]


def test_pcapng_new_section_forgets_interfaces() -> None:
    data = shb() + idb() + idb() + epb(b"a", iface=1) + shb() + idb() + epb(b"b", iface=1)
    got, error = read_until_error(data)
    assert [f.data for f in got] == [b"a"]
    assert isinstance(error, CorruptCaptureError)
    assert "interface 1 not described; the section has 1" in str(error)


def test_pcapng_without_packets() -> None:
    assert frames_of(shb()) == []
    assert frames_of(shb() + idb()) == []


def test_pcapng_malformed_options_are_ignored() -> None:
    bad = struct.pack("<HH", 1, 200) + b"short"  # option longer than the block
    [frame] = frames_of(shb() + idb() + epb(NLMSG, opts=bad))
    assert frame.data == NLMSG and frame.comment is None


# --- link type checks -----------------------------------------------------------------


def test_pcap_unsupported_linktype(tmp_path: Path) -> None:
    path = tmp_path / "eth.pcap"
    path.write_bytes(pcap_header(linktype=1) + pcap_record(b"x"))
    with pytest.raises(UnsupportedLinkTypeError) as info:
        open_capture(path)
    assert str(info.value) == (
        f"{path}: link type 1 (ETHERNET) is not netlink; "
        "nlshark reads 253 NETLINK, 113 LINUX_SLL, 276 LINUX_SLL2"
    )
    [frame] = open_capture(path, check_linktype=False)
    assert frame.linktype == 1


def test_pcapng_without_netlink_interface() -> None:
    data = shb() + idb(1) + idb(105) + idb(1) + epb(b"x")
    with pytest.raises(UnsupportedLinkTypeError) as info:
        open_capture(io.BytesIO(data))
    assert str(info.value) == (
        "<stream>: link types 1 (ETHERNET), 105 (IEEE802_11) are not netlink; "
        "nlshark reads 253 NETLINK, 113 LINUX_SLL, 276 LINUX_SLL2"
    )
    assert [f.linktype for f in frames_of(data, check_linktype=False)] == [1]


def test_pcapng_mixed_interfaces_yield_all_frames() -> None:
    data = shb() + idb(1) + idb(253) + epb(b"eth") + epb(NLMSG, iface=1)
    assert [(f.linktype, f.data) for f in frames_of(data)] == [(1, b"eth"), (253, NLMSG)]


def test_pcapng_interfaces_after_the_first_packet_are_not_checked() -> None:
    data = shb() + idb(253) + epb(NLMSG) + idb(1) + epb(b"eth", iface=1)
    assert len(frames_of(data)) == 2


# --- not a capture, corrupt, truncated ------------------------------------------------


def test_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(b"<html><body>")
    with pytest.raises(NotACaptureError) as info:
        open_capture(path)
    assert str(info.value) == f"{path}: not a pcap or pcapng capture (starts with 3c 68 74 6d)"
    with pytest.raises(NotACaptureError) as info:
        open_capture(io.BytesIO(b""))
    assert str(info.value) == "<stream>: not a pcap or pcapng capture (empty file)"
    with pytest.raises(NotACaptureError) as info:
        open_capture(io.BytesIO(b"\xd4\xc3"))
    assert str(info.value) == "<stream>: not a pcap or pcapng capture (starts with d4 c3)"
    with pytest.raises(NotACaptureError) as info:
        open_capture(io.BytesIO(b"\n\r\r\n\x1c\x00\x00\x00garbage-here-and-more-bytes"))
    assert "not a pcap or pcapng capture" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as info:
        open_capture(tmp_path / "nope.pcap")
    assert str(info.value) == f"{tmp_path / 'nope.pcap'}: No such file or directory"


def test_unsupported_versions() -> None:
    header = bytearray(pcap_header())
    header[4] = 3
    with pytest.raises(CaptureError, match=r"pcap version 3\.4 is not supported"):
        open_capture(io.BytesIO(bytes(header)))
    with pytest.raises(CaptureError, match=r"pcapng version 2\.0 .* is not supported"):
        open_capture(io.BytesIO(shb(major=2)))


def test_corrupt_pcap_record_beyond_snaplen() -> None:
    data = pcap_header(snaplen=100) + pcap_record(b"ok") + pcap_record(b"x" * 101)
    got, error = read_until_error(data)
    assert [f.data for f in got] == [b"ok"]
    assert isinstance(error, CorruptCaptureError)
    assert (error.frame_number, error.offset) == (2, 42)
    assert str(error) == (
        "<stream>: corrupt record in frame 2 at byte offset 42 "
        "(captured length 101 exceeds the snaplen 100)"
    )


def test_corrupt_pcap_record_absurd_length() -> None:
    data = pcap_header(snaplen=0) + struct.pack("<IIII", 0, 0, 0x7FFFFFFF, 0) + b"tail"
    got, error = read_until_error(data)
    assert got == []
    assert str(error) == (
        "<stream>: corrupt record in frame 1 at byte offset 24 (absurd captured length 2147483647)"
    )


def test_truncated_pcap_record_header() -> None:
    data = pcap_header() + pcap_record(b"a" * 10) + pcap_record(b"b") + b"\0" * 7
    got, error = read_until_error(data)
    assert [f.data for f in got] == [b"a" * 10, b"b"]
    assert isinstance(error, TruncatedCaptureError)
    assert (error.frame_number, error.offset) == (3, 24 + 26 + 17)
    assert str(error) == (
        "<stream>: cut short in frame 3 at byte offset 67 (record header needs 16 bytes, 7 left)"
    )


def test_truncated_pcap_record_body() -> None:
    data = pcap_header() + pcap_record(b"a") + pcap_record(b"b" * 100)[:50]
    got, error = read_until_error(data)
    assert [f.data for f in got] == [b"a"]
    assert str(error) == (
        "<stream>: cut short in frame 2 at byte offset 41 (record needs 116 bytes, 50 left)"
    )


def test_truncated_pcapng_section_header() -> None:
    with pytest.raises(TruncatedCaptureError) as info:
        open_capture(io.BytesIO(shb()[:9]))
    assert str(info.value) == (
        "<stream>: cut short in the pcapng section header (needs 28 bytes, 9 left)"
    )
    with pytest.raises(TruncatedCaptureError) as info:
        open_capture(io.BytesIO(shb()[:20]))
    assert str(info.value) == (
        "<stream>: cut short in frame 1 at byte offset 0 (block needs 28 bytes, 20 left)"
    )


def test_truncated_pcap_file_header() -> None:
    with pytest.raises(TruncatedCaptureError) as info:
        open_capture(io.BytesIO(pcap_header()[:10]))
    assert str(info.value) == (
        "<stream>: cut short in the pcap file header (needs 24 bytes, 10 left)"
    )


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_every_cut_yields_all_complete_frames(fmt: str) -> None:
    out = io.BytesIO()
    writer = PcapWriter(out) if fmt == "pcap" else PcapngWriter(out)
    if isinstance(writer, PcapngWriter):
        writer.add_interface()
    ends = [len(out.getvalue())]
    for i in range(5):
        writer.write(NLMSG[: 8 * i], ts_ns=T0)
        ends.append(len(out.getvalue()))
    data = out.getvalue()
    for cut in range(ends[0], len(data)):
        complete = sum(1 for end in ends[1:] if end <= cut)
        stream = io.BytesIO(data[:cut])
        if cut in ends:
            assert len(list(open_capture(stream))) == complete
            continue
        got: list[RawFrame] = []
        with pytest.raises(TruncatedCaptureError) as info:
            got.extend(open_capture(stream))
        assert len(got) == complete
        assert info.value.frame_number == complete + 1
        assert info.value.offset == ends[complete]
        assert str(info.value).startswith(f"<stream>: cut short in frame {complete + 1} ")


def test_truncated_pcapng_block() -> None:
    data = shb() + idb() + epb(b"one") + epb(b"two" * 10)[:30]
    got, error = read_until_error(data)
    assert [f.data for f in got] == [b"one"]
    offset = len(shb() + idb() + epb(b"one"))
    assert isinstance(error, TruncatedCaptureError)
    assert str(error) == (
        f"<stream>: cut short in frame 2 at byte offset {offset} (block needs 64 bytes, 30 left)"
    )


def test_truncated_first_pcapng_packet_is_raised_in_iteration() -> None:
    data = shb() + idb() + epb(b"one")[:-1]
    reader = open_capture(io.BytesIO(data))  # the read-ahead keeps the error for later
    assert reader.interfaces[0].linktype == 253
    with pytest.raises(TruncatedCaptureError):
        next(iter(reader))


def test_corrupt_pcapng_blocks() -> None:
    good = shb() + idb() + epb(b"ok")
    bad_trailer = bytearray(epb(b"x"))
    bad_trailer[-4] ^= 0xFF
    cases = {
        bytes(bad_trailer): "block length 36 at its start but 219 at its end",
        struct.pack("<II", 6, 14) + bytes(10): "block length 14",
        struct.pack("<II", 6, 8) + bytes(8): "block length 8",
        struct.pack("<II", 6, 1 << 30) + bytes(8): "block length 1073741824",
        block(6, struct.pack("<IIIII", 0, 0, 0, 99, 99)): "captured length 99 overruns the block",
        block(6, bytes(8)): "packet block of 20 bytes",
        epb(b"x", iface=5): "interface 5 not described; the section has 1",
        block(1, b""): "interface description of 12 bytes",
        block(3, b""): "packet block of 12 bytes",
        spb(b"", 99): "captured length 99 overruns the block",
        block(2, bytes(8)): "packet block of 20 bytes",
        pb(b"x", iface=5): "interface 5 not described; the section has 1",
        block(
            2, struct.pack("<HHIIII", 0, 0, 0, 0, 99, 99)
        ): "captured length 99 overruns the block",
        block(0x0A0D0D0A, b"\x4d\x3c\x2b\x1a" + bytes(8)): "section header of 24 bytes",
        block(0x0A0D0D0A, b"nope" + bytes(16)): "byte-order magic 6e 6f 70 65",
    }
    offset = len(good)
    for tail, why in cases.items():
        got, error = read_until_error(good + tail + epb(b"never"))
        assert [f.data for f in got] == [b"ok"]
        assert isinstance(error, CorruptCaptureError)
        assert str(error) == f"<stream>: corrupt block in frame 2 at byte offset {offset} ({why})"


def test_spb_without_interface_is_corrupt() -> None:
    got, error = read_until_error(shb() + spb(b"x", 1))
    assert got == [] and "interface 0 not described" in str(error)


# --- real captures --------------------------------------------------------------------

REAL_COUNTS = {
    "link_kinds.pcap": 397,
    "addr_route_neigh.pcap": 351,
    "genl_ethtool.pcap": 150,
    "extack_errors.pcap": 125,
    "sock_diag.pcap": 47,
    "mixed_families.pcapng": 113,
}


@pytest.mark.skipif(not CAPTURES.is_dir(), reason="shared captures absent")
@pytest.mark.parametrize(("name", "count"), REAL_COUNTS.items())
def test_real_captures(name: str, count: int) -> None:
    with open_capture(CAPTURES / name) as reader:
        frames = list(reader)
        assert reader.format == name.rsplit(".", 1)[1]
        assert reader.byte_order == "little"
    assert len(frames) == count
    assert [f.number for f in frames] == list(range(1, count + 1))
    for frame in frames:
        assert frame.linktype == 253 and not frame.truncated
        assert frame.data[:4] == b"\x00\x04\x03\x38"  # PACKET_OUTGOING, ARPHRD_NETLINK
    stamps = [f.ts_ns for f in frames]
    assert stamps == sorted(stamps) and stamps[0] > 1_600_000_000 * 10**9


@pytest.mark.skipif(not CAPTURES.is_dir(), reason="shared captures absent")
def test_real_pcapng_metadata_and_rewrite(tmp_path: Path) -> None:
    reader = open_capture(CAPTURES / "mixed_families.pcapng")
    frames = list(reader)
    [iface] = reader.interfaces
    assert (iface.name, iface.linktype, iface.tsresol) == ("nlmon0", 253, 9)
    assert frames[0].ts_ns % 1000 != 0 or frames[1].ts_ns % 1000 != 0  # nanoseconds kept
    for writer_cls in (PcapWriter, PcapngWriter):
        path = tmp_path / f"copy.{writer_cls.__name__}"
        with writer_cls(path) as writer:
            for frame in frames:
                writer.write(frame.data, frame.ts_ns)
        again = list(open_capture(path))
        assert [f.data for f in again] == [f.data for f in frames]


# --- totality -------------------------------------------------------------------------

PREFIXES = [
    b"",
    pcap_header(),
    pcap_header(e=">", ns=True, snaplen=64),
    shb(),
    shb(">") + idb(253, e=">"),
    shb() + idb(253, snaplen=16) + idb(1),
]


def read_all(data: bytes) -> None:
    try:
        for _ in open_capture(io.BytesIO(data), check_linktype=False):
            pass
    except CaptureError as e:
        assert "\n" not in str(e)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(PREFIXES), tail=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_capture_errors(prefix: bytes, tail: bytes) -> None:
    read_all(prefix + tail)


def _sample_capture(fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "pcap":
        pcap_writer = PcapWriter(out, snaplen=64)
        for i in range(4):
            pcap_writer.write(NLMSG[: 10 * i], ts_ns=T0 + i)
    else:
        pcapng_writer = PcapngWriter(out, section_comment="s")
        pcapng_writer.add_interface(253, name="nlmon0", snaplen=64)
        pcapng_writer.add_interface(1, tsresol_ns=False)
        for i in range(4):
            pcapng_writer.write(NLMSG[: 10 * i], ts_ns=T0 + i, interface=i % 2, comment="c")
        out.write(spb(b"abc", 3) + pb(b"pb", iface=1))
    return out.getvalue()


SAMPLES = {fmt: _sample_capture(fmt) for fmt in ("pcap", "pcapng")}


@settings(max_examples=400)
@given(
    fmt=st.sampled_from(sorted(SAMPLES)),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 10_000),
)
def test_mutated_captures_raise_only_capture_errors(
    fmt: str, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(SAMPLES[fmt])
    for where, value in edits:
        data[where % len(data)] = value
    read_all(bytes(data[: max(cut, len(data) // 2)]))


def test_reader_is_a_single_pass_iterable() -> None:
    reader = open_capture(io.BytesIO(pcap_header() + pcap_record(b"a") + pcap_record(b"b")))
    assert isinstance(reader, CaptureReader)
    iterator = iter(reader)
    assert next(iterator).data == b"a"
    assert [f.data for f in reader] == [b"b"]
    assert "pcap" in repr(reader)
