"""Text renderers: summary lines, the annotated tree, and hex.

* `summary_line` is the tshark-style one-liner per netlink message: frame
  number (``12.2`` for the second message of frame 12), relative time,
  direction, family, message type and an Info text built from the family's
  summary template.
* `tree_lines` renders a node tree (``-V``): one line per node, children
  indented, expert notes under the node they concern.  With `hex_bytes` each
  node also shows its offset and bytes (``-x``).
* `hexdump` prints a frame like ``tshark -x``.

Colour is decided by the caller (`Style`), never here: only on a TTY and
never with NO_COLOR set.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..core.netlink import Frame, Message
from ..core.tree import Node

SEVERITY_MARK = {"chat": "chat", "note": "note", "warn": "WARN", "error": "ERROR"}


class Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def _c(self, code: str, s: str) -> str:
        return f"\x1b[{code}m{s}\x1b[0m" if self.color else s

    def name(self, s: str) -> str:
        return self._c("1", s)

    def dim(self, s: str) -> str:
        return self._c("2", s)

    def severity(self, sev: str, s: str) -> str:
        code = {"error": "31;1", "warn": "33", "note": "36", "chat": "2"}.get(sev, "0")
        return self._c(code, s)

    def direction(self, s: str) -> str:
        return self._c("32" if s.startswith("user") else "34", s)


PLAIN = Style(False)


def summary_line(
    msg: Message,
    t0_ns: int,
    ts_ns: int,
    style: Style = PLAIN,
    process: tuple[int, str] | None = None,
) -> str:
    num = str(msg.frame) if msg.index <= 1 else f"{msg.frame}.{msg.index}"
    rel = (ts_ns - t0_ns) / 1e9
    worst = _worst_note(msg.node) if msg.noted else ""
    mark = (
        f" {style.severity(worst, '[' + SEVERITY_MARK[worst] + ']')}"
        if worst in ("warn", "error")
        else ""
    )
    fam = msg.family
    info = msg.info
    if process is not None:
        mark += f" [{process[1]} {process[0]}]"
    return f"{num:>7} {rel:11.6f} {style.direction(msg.direction):>12} {fam:<10} {style.name(msg.type_name)}{(' ' + info) if info else ''}{mark}"


def _worst_note(node: Node) -> str:
    rank = {"chat": 0, "note": 1, "warn": 2, "error": 3}
    worst = ""
    for _, n in node.all_notes():
        if not worst or rank[n.severity] > rank[worst]:
            worst = n.severity
    return worst


def frame_line(frame: Frame, t0_ns: int, style: Style = PLAIN) -> str:
    """A line for a frame without netlink messages (bad link header, empty)."""
    rel = (frame.ts_ns - t0_ns) / 1e9
    worst = _worst_note(frame.root)
    why = next((n.text for _, n in frame.root.all_notes()), "no netlink messages")
    return f"{frame.number:>7} {rel:11.6f} {'':>12} {'':<10} {style.severity(worst or 'note', why)}"


def tree_lines(
    node: Node, style: Style = PLAIN, hex_bytes: bool = False, indent: int = 0, max_hex: int = 64
) -> list[str]:
    """One line per node, children indented by four spaces, notes under
    their node; with `hex_bytes` each line ends with ``[offset+length]`` and
    the node's first `max_hex` bytes."""
    lines: list[str] = []
    append = lines.append
    pads = ["    " * i for i in range(indent, indent + 64)]
    stack: list[tuple[Node, int]] = [(node, 0)]
    pop = stack.pop
    while stack:
        n, depth = pop()
        pad = pads[depth] if depth < len(pads) else "    " * (indent + depth)
        d = n.display
        label = f"{n.name}: {d}" if d else n.name
        if hex_bytes:
            raw = n.buf[n.offset : n.offset + min(n.length, max_hex)]
            more = "…" if n.length > max_hex else ""
            label += "  " + style.dim(f"[{n.offset:04x}+{n.length}] " + bytes(raw).hex(" ") + more)
        append(pad + label)
        if n.notes:
            for note in n.notes:
                append(
                    f"{pad}    {style.severity(note.severity, f'[{note.group} {SEVERITY_MARK[note.severity]}] {note.text}')}"
                )
        kids = n.children
        if kids:
            stack.extend([(c, depth + 1) for c in reversed(kids)])
    return lines


def hexdump(data: bytes) -> Iterator[str]:
    for i in range(0, len(data), 16):
        chunk = data[i : i + 16]
        hx = (
            " ".join(f"{b:02x}" for b in chunk[:8]) + "  " + " ".join(f"{b:02x}" for b in chunk[8:])
        )
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        yield f"{i:04x}  {hx:<49}  {text}"
