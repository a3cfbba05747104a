"""Capture files: pcap and pcapng reading and writing, without decoding.

Readers (`open_capture`) sniff the format, check that the link type can carry
netlink, and stream `RawFrame`s from large buffered reads; writers
(`PcapWriter`, `PcapngWriter`) produce files the readers and Wireshark read.
Problems with a file are `CaptureError`s with one-line messages.
"""

from .errors import (
    CaptureError,
    CorruptCaptureError,
    NotACaptureError,
    TruncatedCaptureError,
    UnsupportedLinkTypeError,
)
from .frame import Interface, RawFrame
from .linktypes import (
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NETLINK,
    SUPPORTED_LINKTYPES,
    linktype_name,
    netlink_pseudo_header,
)
from .reader import CaptureReader, open_capture
from .writer import PcapngWriter, PcapWriter

__all__ = [
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_NETLINK",
    "SUPPORTED_LINKTYPES",
    "CaptureError",
    "CaptureReader",
    "CorruptCaptureError",
    "Interface",
    "NotACaptureError",
    "PcapWriter",
    "PcapngWriter",
    "RawFrame",
    "TruncatedCaptureError",
    "UnsupportedLinkTypeError",
    "linktype_name",
    "netlink_pseudo_header",
    "open_capture",
]
