"""Errors raised while reading capture files.

Every problem the reader meets in a file becomes a `CaptureError` whose
``str()`` is one line a user can act on, starting with the file's name, so a
command-line front end can print it as is.  Subclasses let callers tell the
cases apart: the input is no capture at all (`NotACaptureError`), it holds
frames of a link type nlshark does not decode (`UnsupportedLinkTypeError`),
a record or block contradicts itself (`CorruptCaptureError`), or the file
ends inside a record (`TruncatedCaptureError`, raised only after every
complete frame before the cut has been handed out, so a capture copied while
it was still being written is read as far as it goes).
"""

from __future__ import annotations


class CaptureError(Exception):
    """A capture file cannot be read (further); ``str(e)`` is a one-line message."""


class NotACaptureError(CaptureError):
    """The input starts with neither a pcap nor a pcapng magic number."""


class UnsupportedLinkTypeError(CaptureError):
    """The capture carries no link type that holds netlink messages."""


class CorruptCaptureError(CaptureError):
    """A record or block header contradicts itself (length out of bounds, ...)."""

    def __init__(self, message: str, frame_number: int, offset: int) -> None:
        super().__init__(message)
        self.frame_number = frame_number  # the frame the bad record is (or precedes)
        self.offset = offset  # file offset where the bad record or block starts


class TruncatedCaptureError(CaptureError):
    """The input ends inside a record; all complete frames were yielded before."""

    def __init__(self, message: str, frame_number: int, offset: int) -> None:
        super().__init__(message)
        self.frame_number = frame_number  # number the cut frame would have had
        self.offset = offset  # file offset where the cut record starts
