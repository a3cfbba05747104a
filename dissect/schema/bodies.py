"""Declared layouts of the bodies that Python hooks decode.

A spec says most layouts as data; where a hook decodes a body in Python
(audit records, struct cn_msg, uevents), the hook module declares that
body's layout next to the hook, in the small vocabulary below, as
``BODIES = {"function": Layout(...)}`` keyed by the hook function's name.
The hook itself reads the same tables where it can (connector.py's member
lists), so the layout is written once.  The Scapy layer generator
(`dissect.scapy.hookbodies`) builds and dissects these bodies from the
declaration, and `dissect.strategies` draws them; the dissector never reads
it.

An item's ``name`` is the Scapy field name; ``label`` (default: the name)
is the name of the node our hook gives the same bytes, so a built value can
be checked against the dissected one.  Integers are in the message's byte
order unless their code starts with ``>``.  Plain data only: no Scapy and no
Hypothesis here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Int:
    """An integer, or `count` of them back to back (an array).

    ``length_of``/``offset_of`` name an item whose byte length (for an
    array over a `Strings` item: each string's) or offset from the start
    of the layout the member holds; it is computed when built unless
    given.  ``choices``/``limit`` are what a well-formed message holds
    (for arrays, each element)."""

    name: str
    code: str  # struct code: "I", "i", "H", "Q"; ">I" is big-endian always
    names: Mapping[int, str] | None = None
    count: int = 1
    length_of: str | None = None
    offset_of: str | None = None
    default: int = 0
    choices: tuple[int, ...] | None = None
    limit: int | None = None
    label: str | None = None
    hex: bool = False

    @property
    def size(self) -> int:
        return struct.calcsize(self.code) * self.count


@dataclass(frozen=True)
class Const:
    """Bytes that mark the form (``libudev\\0``)."""

    name: str
    value: bytes
    label: str | None = None


@dataclass(frozen=True)
class Chars:
    """A fixed-size string, NUL-padded (``char comm[16]``)."""

    name: str
    size: int
    label: str | None = None


@dataclass(frozen=True)
class Text:
    """Text up to a NUL (the NUL, when there, is field ``<name>_nul``);
    ``terminated``: a built message ends the text with a NUL."""

    name: str
    terminated: bool = False
    style: str = "plain"  # "audit": audit(...) stamp and key=value words
    label: str | None = None


@dataclass(frozen=True)
class Properties:
    """``KEY=VALUE\\0`` strings, `length` bytes of them (a member's value)
    or up to the end."""

    name: str
    length: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class Strings:
    """Strings back to back, as long as the elements of array member
    `lengths` say (no NULs); each is a node labelled ``<label>[i]``."""

    name: str
    lengths: str
    label: str | None = None


@dataclass(frozen=True)
class Rest:
    """The bytes up to the end of the body, or `length` bytes.  With `pad`,
    padding: up to `pad` zero bytes in a well-formed body (alignment, or the
    rest of a union after a smaller member)."""

    name: str
    length: str | None = None
    label: str | None = None
    pad: int = 0


@dataclass(frozen=True)
class Choice:
    """A part whose layout is selected: ``select(values, to_kernel, data)``
    (the values read before it, the direction, the part's own bytes)
    returns a key of `cases` (None, or a key not there: the part stays
    bytes); building, the key is that of the part's layout.  The part is
    `length` bytes (a member's value) or the rest of the body."""

    name: str
    select: Callable[[Mapping[str, Any], bool, bytes], Any]
    cases: Mapping[Any, Layout]
    length: str | None = None
    label: str | None = None


Item = Int | Const | Chars | Text | Properties | Strings | Rest | Choice


@dataclass(frozen=True)
class Layout:
    """A body (or a part of one): `title` names it, `items` in order.

    ``type_name`` is the message type name our hook gives a frame of this
    form (frame hooks, whose frames carry no message type).  ``implies``:
    as a case of a `Choice`, the values of the enclosing layout's members
    that select it, used when building leaves them unset (``what`` =
    PROC_EVENT_FORK for the fork case)."""

    title: str
    items: tuple[Item, ...]
    type_name: str | None = None
    doc: str = ""
    implies: dict[str, Any] = field(default_factory=dict)


def label_of(item: Item) -> str:
    return item.label or item.name


def declared(hook: Any) -> Layout | None:
    """The layout a hook module declares for hook function `hook`."""
    if hook is None:
        return None
    table = getattr(hook, "__globals__", {}).get("BODIES")
    if not isinstance(table, Mapping):
        return None
    lay = table.get(getattr(hook, "__name__", ""))
    return lay if isinstance(lay, Layout) else None
