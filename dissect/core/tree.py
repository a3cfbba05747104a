"""The dissection tree: nodes and expert notes.

Every decoded piece of a frame is a `Node`: a field abbreviation (the stable
filter and export name, e.g. ``rtnl.link.ifname``), a human name (the kernel's
constant, e.g. ``IFLA_IFNAME``), an absolute byte range inside the frame, a
typed value and children.  Oddities are `Note`s attached to the node they
concern, grouped like Wireshark's expert info (``malformed``, ``undecoded``,
``protocol``, ...) and ranked by severity.

Display strings are built lazily: a node stores how to show its value
(`fmt`, a small callable chosen by the schema compiler) and only calls it when
a renderer asks for `display`.  This keeps the decode path to object
creation and `struct` unpacking.

Nodes reference the frame's bytes (`buf`) instead of copying their slice, so
`raw` costs nothing until somebody reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

# Note severities, weakest first (Wireshark: chat, note, warn, error).
CHAT = "chat"
NOTE = "note"
WARN = "warn"
ERROR = "error"
SEVERITIES = (CHAT, NOTE, WARN, ERROR)

# Note groups.
MALFORMED = "malformed"
UNDECODED = "undecoded"
PROTOCOL = "protocol"
SEQUENCE = "sequence"
COMMENT = "comment"
DEPRECATED = "deprecated"


# Counts every note ever made.  The decoder compares it before and after a
# message to know, without walking the tree, whether the message has notes.
NOTES_MADE = [0]


class Note:
    """One expert note: how bad, which kind, and what it says."""

    __slots__ = ("severity", "group", "text")

    def __init__(self, severity: str, group: str, text: str) -> None:
        self.severity = severity
        self.group = group
        self.text = text

    def as_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "group": self.group, "text": self.text}

    def __repr__(self) -> str:
        return f"Note({self.severity}, {self.group}, {self.text!r})"


def _default_display(value: Any) -> str:
    t = type(value)
    if t is int or t is str:
        return str(value)
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex(" ") if value else "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Node:
    """A decoded field or subtree.

    `offset` and `length` are absolute within the frame's bytes `buf`.
    `value` is typed (int, str, bytes, ipaddress objects, bool, None for pure
    containers).  `fmt` turns the value into the display string on demand;
    `display` may also be set directly with a ready string.
    """

    __slots__ = (
        "abbrev",
        "name",
        "offset",
        "length",
        "value",
        "children",
        "notes",
        "buf",
        "fmt",
        "_display",
    )

    def __init__(
        self,
        abbrev: str,
        name: str,
        offset: int,
        length: int,
        buf: bytes,
        value: Any = None,
        fmt: Callable[[Any], str] | None = None,
        children: list[Node] | None = None,
    ) -> None:
        self.abbrev = abbrev
        self.name = name
        self.offset = offset
        self.length = length
        self.buf = buf
        self.value = value
        self.fmt = fmt
        self.children = children
        self.notes: list[Note] | None = None
        self._display: str | None = None

    # -- construction helpers ------------------------------------------------
    def add(self, child: Node) -> Node:
        if self.children is None:
            self.children = [child]
        else:
            self.children.append(child)
        return child

    def note(self, severity: str, group: str, text: str) -> Node:
        NOTES_MADE[0] += 1
        n = Note(severity, group, text)
        if self.notes is None:
            self.notes = [n]
        else:
            self.notes.append(n)
        return self

    # -- reading -------------------------------------------------------------
    @property
    def raw(self) -> bytes:
        return bytes(self.buf[self.offset : self.offset + self.length])

    @property
    def display(self) -> str:
        d = self._display
        if d is None:
            fmt = self.fmt
            try:
                if fmt is None:
                    v = self.value
                    d = str(v) if type(v) is int else _default_display(v)
                else:
                    d = fmt(self.value)
            except Exception as exc:  # a display hint must never break rendering
                d = f"{_default_display(self.value)} (display failed: {exc})"
            self._display = d
        return d

    @display.setter
    def display(self, text: str) -> None:
        self._display = text

    @property
    def end(self) -> int:
        return self.offset + self.length

    def walk(self) -> Iterator[Node]:
        """Depth-first, pre-order walk over this node and its descendants."""
        stack = [self]
        while stack:
            n = stack.pop()
            yield n
            if n.children:
                stack.extend(reversed(n.children))

    def find(self, abbrev: str) -> Node | None:
        """First node (pre-order) with this abbreviation."""
        for n in self.walk():
            if n.abbrev == abbrev:
                return n
        return None

    def find_all(self, abbrev: str) -> list[Node]:
        return [n for n in self.walk() if n.abbrev == abbrev]

    def child(self, name: str) -> Node | None:
        """Direct child by kernel name (``IFLA_IFNAME``) or abbreviation."""
        for c in self.children or ():
            if c.name == name or c.abbrev == name:
                return c
        return None

    def all_notes(self) -> Iterator[tuple[Node, Note]]:
        for n in self.walk():
            if n.notes:
                for note in n.notes:
                    yield n, note

    def __repr__(self) -> str:
        return f"Node({self.abbrev!r}, {self.name!r}, off={self.offset}, len={self.length}, value={self.value!r})"


# A leaf described without a Node: (abbrev, name, offset, length, value, fmt).
LeafRow = tuple[str, str, int, int, Any, "Callable[[Any], str] | None"]


class LazyNode(Node):
    """A node whose children are built on first access.

    Large arrays (IFLA_INET6_CONF has some 80 entries) and wide structs
    (rtnl_link_stats64) are decoded and checked when the node is made, but
    their element nodes are only created when someone reads `children`:
    summaries never pay for them; trees, JSON and walks see every node.
    `build(node)` appends the children to ``node.children``.

    When the children are plain leaves, `rows()` may describe them without
    creating nodes: exporters that only format them (JSON) use `leaf_rows`.
    """

    __slots__ = ("_kids", "_build", "_rows")
    _kids: list[Node] | None

    def __init__(
        self,
        abbrev: str,
        name: str,
        offset: int,
        length: int,
        buf: bytes,
        build: Callable[[Node], None],
        rows: Callable[[], list[LeafRow]] | None = None,
    ) -> None:
        super().__init__(abbrev, name, offset, length, buf)  # children=None goes through the setter
        self._build: Callable[[Node], None] | None = build
        self._rows = rows

    def leaf_rows(self) -> list[LeafRow] | None:
        """(abbrev, name, offset, length, value, fmt) of each child, if the
        children are plain leaves not built yet; else None."""
        if self._build is not None and self._rows is not None:
            return self._rows()
        return None

    @property  # type: ignore[override]
    def children(self) -> list[Node] | None:
        build = self._build
        if build is not None:
            self._build = None
            self._kids = []
            build(self)
        return self._kids

    @children.setter
    def children(self, kids: list[Node] | None) -> None:
        self._build = None
        self._kids = kids
