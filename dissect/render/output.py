"""Frame output for every command: summary lines, trees, JSON or JSON lines.

Reading a file, capturing live, tracing a program and monitoring multicast
groups all end the same way: decoded `Frame`s go to stdout in the format the
user chose.  `FrameOutput` owns that choice so each command only produces
frames.  Live sources pass ``live=True``: the stream is flushed after every
frame, so a pipe (``| grep``) sees each message as it arrives.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from typing import IO, Any

from ..core.netlink import Frame
from . import text as tr
from .json import JsonDocumentWriter, jsonl_lines


def use_color(choice: str, stream: IO[str]) -> bool:
    """``--color auto|always|never``: auto means a terminal and no NO_COLOR."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


def add_output_options(p: argparse.ArgumentParser) -> None:
    """-V, -x, -T and --color, the same for every command that prints frames."""
    p.add_argument(
        "-V",
        dest="verbose",
        action="store_true",
        help="print the full annotated tree of every message",
    )
    p.add_argument(
        "-x",
        dest="hex",
        action="store_true",
        help="print the tree with each node's bytes, plus a hex dump of each frame",
    )
    p.add_argument(
        "-T", dest="format", choices=["text", "json", "jsonl"], default="text", help="output format"
    )
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour output (auto: on a terminal, unless NO_COLOR is set)",
    )


def output_from_args(
    args: argparse.Namespace, out: IO[str], meta: dict[str, Any], live: bool = False
) -> FrameOutput:
    """The `FrameOutput` that `add_output_options`' arguments ask for."""
    return FrameOutput(
        out,
        args.format,
        tree=args.verbose,
        hex_bytes=args.hex,
        style=tr.Style(use_color(args.color, out)),
        meta=meta,
        live=live,
    )


class FrameOutput:
    """Writes frames as ``text`` (summary lines, or trees with `tree`/`hex_bytes`),
    ``json`` (one document, streamed) or ``jsonl`` (one message per line)."""

    def __init__(
        self,
        out: IO[str],
        fmt: str = "text",
        *,
        tree: bool = False,
        hex_bytes: bool = False,
        style: tr.Style = tr.PLAIN,
        meta: dict[str, Any] | None = None,
        live: bool = False,
    ) -> None:
        if fmt not in ("text", "json", "jsonl"):
            raise ValueError(f"unknown output format {fmt!r}")
        self.out = out
        self.fmt = fmt
        self.tree = tree or hex_bytes
        self.hex_bytes = hex_bytes
        self.style = style
        self.live = live
        self.frames = 0
        self.t0: int | None = None
        self._doc = JsonDocumentWriter(out, meta or {}) if fmt == "json" else None

    def write(self, f: Frame) -> None:
        self.frames += 1
        if self._doc is not None:
            self._doc.write(f)
        elif self.fmt == "jsonl":
            self._write_jsonl(f)
        else:
            self._write_text(f)
        if self.live:
            self.out.flush()

    def write_all(self, frames: Iterable[Frame]) -> None:
        for f in frames:
            self.write(f)

    def close(self, trailer: dict[str, Any] | None = None) -> None:
        """End the output (closes the JSON document); safe to call twice."""
        if self._doc is not None:
            self._doc.close({"frames": self.frames, **(trailer or {})})
            self._doc = None
        self.out.flush()

    def _write_jsonl(self, f: Frame) -> None:
        w = self.out.write
        for line in jsonl_lines(f):
            w(line)
            w("\n")

    def _write_text(self, f: Frame) -> None:
        if self.t0 is None:
            self.t0 = f.ts_ns
        t0 = self.t0
        style = self.style
        w = self.out.write
        if not self.tree:
            if not f.messages:
                w(tr.frame_line(f, t0, style) + "\n")
            for m in f.messages:
                w(tr.summary_line(m, t0, f.ts_ns, style, f.process) + "\n")
            return
        for m in f.messages:
            w(tr.summary_line(m, t0, f.ts_ns, style, f.process) + "\n")
        w("\n".join(tr.tree_lines(f.root, style, self.hex_bytes)) + "\n")
        if f.comment:
            w("".join(f"    Comment: {line}\n" for line in f.comment.splitlines()))
        if self.hex_bytes:
            w("\n".join(tr.hexdump(f.data)) + "\n")
        w("\n")
