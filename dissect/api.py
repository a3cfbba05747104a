"""The Python API: read captures and decode frames.

    import dissect
    for frame in dissect.read_capture("captures/quickstart.pcap"):
        for msg in frame.messages:
            print(frame.number, msg.direction, msg.type_name, msg.info)

`read_capture` streams frames (memory stays flat) through one `Session`, so
generic netlink ids learned from controller replies and requests seen earlier
serve the frames after them.  `decode_frame` decodes raw bytes on their own.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator

from .capture import open_capture
from .capture.frame import RawFrame
from .capture.strace import process_from_comment
from .core.constants import GENL_ID_CTRL, NETLINK_GENERIC
from .core.netlink import Frame, Session
from .schema import Registry

_default_registry: Registry | None = None


def default_registry() -> Registry:
    global _default_registry
    if _default_registry is None:
        _default_registry = Registry.default()
    return _default_registry


def read_capture(
    path: str | os.PathLike[str],
    *,
    byte_order: str | None = None,
    genl: dict[int, str] | None = None,
    registry: Registry | None = None,
    prescan: bool = True,
) -> Iterator[Frame]:
    """Yield decoded `Frame`s of a pcap or pcapng file.

    Raises `dissect.capture.CaptureError` (after the complete frames) for
    files that are not captures, use another link type or are cut short.
    """
    reg = registry or default_registry()
    session = Session(reg, byte_order)
    if genl:
        session.genl_overrides.update(genl)
    if prescan:
        session.genl_names.update(prescan_genl(path, reg, byte_order))
    yield from decode_capture(session, path)


def decode_capture(
    session: Session, path: str | os.PathLike[str], count: int | None = None
) -> Iterator[Frame]:
    """Decode a capture's frames (the first `count` only, if given) through
    an existing session."""
    with open_capture(path) as reader:
        yield from decode_frames(session, reader, count)


def decode_frames(
    session: Session, raws: Iterable[RawFrame], count: int | None = None
) -> Iterator[Frame]:
    """Decode raw frames from any source (a file, a live interface, a trace)
    through `session`, stopping after `count` frames if given."""
    if count is not None:
        raws = itertools.islice(raws, count)
    for raw in raws:
        f = session.decode(raw.data, raw.linktype, raw.number, raw.ts_ns, raw.orig_len)
        f.comment = raw.comment
        # A frame written by ``nlshark trace`` names its process in its comment.
        f.process = raw.process or (process_from_comment(raw.comment) if raw.comment else None)
        yield f


def decode_frame(
    data: bytes,
    linktype: int = 253,
    *,
    session: Session | None = None,
    byte_order: str | None = None,
) -> Frame:
    """Decode one frame's bytes (with its link-layer header)."""
    s = session or Session(default_registry(), byte_order)
    return s.decode(data, linktype)


def prescan_genl(
    path: str | os.PathLike[str], registry: Registry, byte_order: str | None = None
) -> dict[int, str]:
    """First pass: generic netlink family ids named anywhere in the file.

    Only controller messages sent by the kernel are decoded, so the pass
    costs little; ids named after their first use then name earlier
    messages too.  A broken file yields what was learned before the break.
    """
    from .capture import CaptureError

    session = Session(registry, byte_order)
    try:
        with open_capture(path) as reader:
            for raw in reader:
                d = raw.data
                if (
                    len(d) < 36
                    or raw.linktype not in (253, 113)
                    or d[14:16] != NETLINK_GENERIC.to_bytes(2, "big")
                ):
                    continue
                t_le = int.from_bytes(d[20:22], "little")
                t_be = int.from_bytes(d[20:22], "big")
                if GENL_ID_CTRL in (t_le, t_be):
                    session.decode(d, raw.linktype, raw.number, raw.ts_ns)
    except (CaptureError, OSError):
        pass
    fixed = registry.fixed_genl_ids()
    return {k: v for k, v in session.genl_names.items() if k not in fixed}
