"""Display filters (``-Y``): a small Wireshark-like language over field abbreviations.

A filter is compiled once (`compile_filter`) into a tree of Python closures
and then evaluated per message (`DisplayFilter.match`).  The grammar::

    expr    := or
    or      := and  (("||" | "or")  and)*
    and     := not  (("&&" | "and") not)*
    not     := ("!" | "not") not | primary
    primary := "(" expr ")" | FIELD [test]
    test    := OP value | "contains" value | "matches" STRING | "in" "{" value* "}"
    OP      := "==" | "!=" | "<" | "<=" | ">" | ">=" | eq ne lt le gt ge

A field alone tests presence.  Fields are the abbreviations of the decoded
tree (``nlshark -G fields``); a field also names every node below it, so
``rtnl.link`` is true for any message carrying a link attribute.  Besides the
tree there are a few message-level fields: ``frame``, ``frame.number``,
``netlink.direction`` ("user->kernel"/"kernel->user"), ``netlink.family``
("rt-link", "nlctrl" ...), ``netlink.type_name`` and ``netlink.role``.

Values are typed when the field's value is: integers (decimal, 0x hex, 0o,
0b) compare numerically, IP addresses compare as addresses and a prefix
``10.0.0.0/8`` as membership, MAC addresses as bytes, strings as text.  A
bare word that is no number or address (``RTM_NEWLINK``, ``up``) is a name:
it equals an integer field whose display names that value (``nlmsg_type:
RTM_NEWLINK (16)``), and ``contains`` finds a flag name (``netlink.flags
contains DUMP``).  Like Wireshark, a comparison holds when any occurrence of
the field in the message satisfies it, so ``!=`` means "some occurrence
differs" and ``!(a == b)`` means "no occurrence equals".

Unknown first components (``rtml.link``) and syntax errors raise
`FilterError` with the column of the problem; `FilterError.render` shows the
filter with a caret under it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

from ..core.tree import Node

# Message-level pseudo-fields, resolved from the Message and Frame rather than
# the tree.
_MESSAGE_FIELDS = {
    "frame": lambda m, f: [f.number if f is not None else m.frame],
    "frame.number": lambda m, f: [f.number if f is not None else m.frame],
    "netlink.direction": lambda m, f: [m.direction],
    "netlink.family": lambda m, f: [m.family],
    "netlink.type_name": lambda m, f: [m.type_name],
    "netlink.role": lambda m, f: [m.role],
}

_OPS = {
    "==": "==",
    "eq": "==",
    "!=": "!=",
    "ne": "!=",
    "<": "<",
    "lt": "<",
    "<=": "<=",
    "le": "<=",
    ">": ">",
    "gt": ">",
    ">=": ">=",
    "ge": ">=",
}

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*"?)
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!(){},])
    | (?P<word>[A-Za-z0-9_.:/\-+*]+)
    )""",
    re.VERBOSE,
)

_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2})+$")


class FilterError(ValueError):
    """A filter that does not compile; `column` is 0-based into the text."""

    def __init__(self, message: str, text: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.text = text
        self.column = column

    def render(self, prefix: str = "nlshark: -Y") -> str:
        """The message (with its column, counted from 1), the filter, a caret."""
        return (
            f"{prefix}: {self.message} (column {self.column + 1})\n"
            f"    {self.text}\n    {' ' * self.column}^"
        )


class _Tok:
    __slots__ = ("kind", "text", "pos")

    def __init__(self, kind: str, text: str, pos: int) -> None:
        self.kind = kind
        self.text = text
        self.pos = pos


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    n = len(text)
    while pos < n:
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            start = pos + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise FilterError(f"unexpected character {text[start]!r}", text, start)
        kind = m.lastgroup or "word"
        start = m.start(kind)
        tok = m.group(kind)
        if kind == "str" and (len(tok) < 2 or not tok.endswith('"') or _odd_escapes(tok)):
            raise FilterError("string is not closed", text, start)
        toks.append(_Tok(kind, tok, start))
        pos = m.end()
    toks.append(_Tok("end", "", len(text)))
    return toks


def _odd_escapes(tok: str) -> bool:
    """True when the closing quote of `tok` is itself escaped."""
    k = 0
    i = len(tok) - 2
    while i >= 1 and tok[i] == "\\":
        k += 1
        i -= 1
    return k % 2 == 1


def _unquote(tok: str) -> str:
    body = tok[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


# -- values ----------------------------------------------------------------


class _Value:
    """A literal of the filter, with every reading of it prepared once."""

    __slots__ = ("text", "quoted", "int", "ip", "net", "mac", "name")

    def __init__(self, text: str, quoted: bool) -> None:
        self.text = text
        self.quoted = quoted
        self.int: int | None = None
        self.ip: Any = None
        self.net: Any = None
        self.mac: bytes | None = None
        self.name = text
        if quoted:
            return
        try:
            self.int = int(text, 0)
        except ValueError:
            if re.fullmatch(r"-?\d+", text):
                self.int = int(text, 10)  # leading zeros: "010"
        if self.int is None:
            try:
                self.ip = ipaddress.ip_address(text)
            except ValueError:
                with contextlib.suppress(ValueError):
                    self.net = ipaddress.ip_network(text, strict=False)
            if _MAC.match(text):
                self.mac = bytes(int(p, 16) for p in re.split("[:-]", text))


def _display_name(node: Node) -> str:
    """The name part of a display such as ``RTM_NEWLINK (16)``."""
    d = node.display
    i = d.find(" (")
    return d[:i] if i > 0 else d


def _value_names(node: Node) -> set[str]:
    """The names an integer's display gives it: ``RTM_NEWLINK (16)`` and
    ``-19 (ENODEV: No such device)`` both name one value; a flag set
    ``0x0301 (REQUEST|DUMP)`` names none as a whole."""
    d = node.display
    names = {_display_name(node)}
    if "(" in d and d.endswith(")"):
        inner = d[d.find("(") + 1 : -1].split(":")[0].strip()
        if "|" not in inner:
            names.add(inner)
    return names


def _as_ip(node: Node | None, b: bytes) -> Any:
    if len(b) not in (4, 16):
        return None
    try:
        return ipaddress.ip_address(b)
    except ValueError:
        return None


def _flag_names(node: Node) -> set[str]:
    d = node.display
    if "(" in d:
        d = d[d.find("(") + 1 : d.rfind(")")]
    return {w for w in re.split(r"[|,\s]+", d) if w}


def _cmp(a: Any, b: Any, op: str) -> bool:
    try:
        if op == "==":
            return bool(a == b)
        if op == "!=":
            return bool(a != b)
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)
    except TypeError:
        return False


def _compare(node_or_value: Any, lit: _Value, op: str) -> bool:
    """One occurrence against one literal."""
    if isinstance(node_or_value, Node):
        node = node_or_value
        v = node.value
    else:
        node = None
        v = node_or_value
    if isinstance(v, bool):
        if lit.int is not None:
            return _cmp(int(v), lit.int, op)
        word = lit.text.lower()
        if word in ("true", "false"):
            return _cmp(v, word == "true", op)
        return False
    if isinstance(v, int):
        if lit.int is not None:
            return _cmp(v, lit.int, op)
        if node is not None and op in ("==", "!="):
            same = lit.name in _value_names(node)
            return same if op == "==" else not same
        return False
    if isinstance(v, str):
        return _cmp(v, lit.text, op)
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        if lit.ip is not None:
            return _cmp(v, lit.ip, op) if v.version == lit.ip.version else op == "!="
        if lit.net is not None and op in ("==", "!="):
            inside = v.version == lit.net.version and v in lit.net
            return inside if op == "==" else not inside
        return False
    if isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        other = lit.net if lit.net is not None else lit.ip
        if other is None or other.version != v.version:
            return op == "!=" and other is not None
        if isinstance(other, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            return _cmp(v, other, op)
        inside = other in v
        return inside if op == "==" else (not inside if op == "!=" else False)
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        if lit.ip is not None or lit.net is not None:
            addr = _as_ip(node, b)
            return False if addr is None else _compare(addr, lit, op)
        if lit.mac is not None:
            return _cmp(b, lit.mac, op)
        if lit.quoted:
            return _cmp(b.rstrip(b"\0"), lit.text.encode(), op)
        if lit.int is not None and len(b) <= 8:
            return _cmp(int.from_bytes(b, "big"), lit.int, op)
        return False
    if node is not None:
        return _cmp(_display_name(node), lit.text, op)
    return _cmp(str(v), lit.text, op)


def _contains(occ: Any, lit: _Value) -> bool:
    v = occ.value if isinstance(occ, Node) else occ
    if isinstance(v, str):
        return lit.text in v
    if isinstance(v, (bytes, bytearray, memoryview)):
        needle = lit.mac if lit.mac is not None else lit.text.encode()
        return needle in bytes(v)
    if isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return lit.ip is not None and lit.ip.version == v.version and lit.ip in v
    if isinstance(occ, Node):
        if isinstance(v, int) and not isinstance(v, bool) and lit.name in _value_names(occ):
            return True
        if isinstance(v, int) and not isinstance(v, bool) and lit.name in _flag_names(occ):
            return True
        return lit.text in occ.display
    return lit.text in str(v)


def _text_of(occ: Any) -> str:
    if isinstance(occ, Node):
        v = occ.value
        return v if isinstance(v, str) else occ.display
    return str(occ)


# -- compiled filter ---------------------------------------------------------

_Pred = Callable[["_Ctx"], bool]


class _Ctx:
    """Per-message evaluation state: occurrences of each field, found lazily
    in one walk of the message's tree (plus the frame's pseudo-header)."""

    __slots__ = ("msg", "frame", "fields", "prefixes", "_occ")

    def __init__(self, msg: Any, frame: Any, fields: frozenset[str]) -> None:
        self.msg = msg
        self.frame = frame
        self.fields = fields
        self._occ: dict[str, list[Any]] | None = None

    def occurrences(self, field: str) -> list[Any]:
        get = _MESSAGE_FIELDS.get(field)
        if get is not None:
            return list(get(self.msg, self.frame))
        if self._occ is None:
            self._occ = self._collect()
        return self._occ.get(field, [])

    def _collect(self) -> dict[str, list[Any]]:
        wanted = self.fields
        occ: dict[str, list[Any]] = {}
        roots: list[Node] = [self.msg.node]
        if self.frame is not None and self.frame.root is not None:
            # The frame's own nodes (nlmon pseudo-header), not other messages.
            msg_nodes = {id(m.node) for m in self.frame.messages}
            roots += [c for c in self.frame.root.children or () if id(c) not in msg_nodes]
        for root in roots:
            for n in root.walk():
                ab = n.abbrev
                if ab in wanted:
                    occ.setdefault(ab, []).append(n)
                # a field also names the nodes below it (presence of "rtnl.link")
                dot = ab.rfind(".")
                while dot > 0:
                    ab = ab[:dot]
                    if ab in wanted:
                        lst = occ.setdefault(ab, [])
                        if not lst or lst[-1] is not n:
                            lst.append(n)
                    dot = ab.rfind(".")
        return occ


class DisplayFilter:
    """A compiled display filter."""

    def __init__(self, text: str, pred: _Pred, fields: frozenset[str]) -> None:
        self.text = text
        self._pred = pred
        self.fields = fields

    def match(self, msg: Any, frame: Any = None) -> bool:
        """True when message `msg` (of `frame`, for frame-level fields) matches."""
        return self._pred(_Ctx(msg, frame, self.fields))

    def match_frame(self, frame: Any) -> bool:
        """True when any message of `frame` matches (a frame without messages
        is tested on its own nodes)."""
        if not frame.messages:
            return self._pred(_Ctx(_FrameOnly(frame), frame, self.fields))
        return any(self.match(m, frame) for m in frame.messages)

    def __repr__(self) -> str:
        return f"DisplayFilter({self.text!r})"


class _FrameOnly:
    """Stands in for a message when a frame holds none (a cut frame)."""

    def __init__(self, frame: Any) -> None:
        self.node = Node("frame.empty", "", 0, 0, b"")
        self.frame = frame.number
        self.direction = frame.direction or ""
        self.family = ""
        self.type_name = ""
        self.role = ""


# -- parser ----------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, known: Callable[[str], bool] | None) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.known = known
        self.fields: set[str] = set()

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def fail(self, message: str, tok: _Tok | None = None) -> FilterError:
        t = tok or self.peek()
        return FilterError(message, self.text, t.pos)

    def _is(self, tok: _Tok, *words: str) -> bool:
        return tok.kind in ("op", "word") and tok.text in words

    def parse(self) -> _Pred:
        if self.peek().kind == "end":
            raise self.fail("empty filter")
        pred = self.or_()
        if self.peek().kind != "end":
            raise self.fail(f"unexpected {self.peek().text!r}: expected && || or the end")
        return pred

    def or_(self) -> _Pred:
        parts = [self.and_()]
        while self._is(self.peek(), "||", "or"):
            self.take()
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]
        return lambda c: any(p(c) for p in parts)

    def and_(self) -> _Pred:
        parts = [self.not_()]
        while self._is(self.peek(), "&&", "and"):
            self.take()
            parts.append(self.not_())
        if len(parts) == 1:
            return parts[0]
        return lambda c: all(p(c) for p in parts)

    def not_(self) -> _Pred:
        if self._is(self.peek(), "!", "not"):
            self.take()
            inner = self.not_()
            return lambda c: not inner(c)
        return self.primary()

    def primary(self) -> _Pred:
        tok = self.take()
        if tok.kind == "op" and tok.text == "(":
            inner = self.or_()
            close = self.take()
            if not (close.kind == "op" and close.text == ")"):
                raise self.fail("expected ')'", close)
            return inner
        if tok.kind != "word" or tok.text in _OPS or tok.text in ("and", "or", "not"):
            what = "the end of the filter" if tok.kind == "end" else repr(tok.text)
            raise self.fail(f"expected a field name, got {what}", tok)
        field = tok.text
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*", field):
            raise self.fail(f"{field!r} is not a field name", tok)
        if field not in _MESSAGE_FIELDS and self.known is not None and not self.known(field):
            raise self.fail(f"unknown field {field!r} (see nlshark -G fields)", tok)
        self.fields.add(field)
        nxt = self.peek()
        if nxt.kind in ("op", "word") and nxt.text in _OPS:
            op = _OPS[self.take().text]
            lit = self.value()
            return lambda c: any(_compare(o, lit, op) for o in c.occurrences(field))
        if self._is(nxt, "contains"):
            self.take()
            lit = self.value()
            return lambda c: any(_contains(o, lit) for o in c.occurrences(field))
        if self._is(nxt, "matches"):
            self.take()
            vt = self.peek()
            lit = self.value()
            try:
                rx = re.compile(lit.text)
            except re.error as exc:
                raise self.fail(f"bad regular expression: {exc}", vt) from None
            return lambda c: any(rx.search(_text_of(o)) for o in c.occurrences(field))
        if self._is(nxt, "in"):
            self.take()
            brace = self.take()
            if not (brace.kind == "op" and brace.text == "{"):
                raise self.fail("expected '{' after 'in'", brace)
            lits: list[_Value] = []
            while not (self.peek().kind == "op" and self.peek().text == "}"):
                if self.peek().kind == "op" and self.peek().text == ",":
                    self.take()
                    continue
                if self.peek().kind == "end":
                    raise self.fail("expected '}' to close the set")
                lits.append(self.value())
            self.take()
            if not lits:
                raise self.fail("empty set", brace)
            return lambda c: any(
                _compare(o, lit, "==") for o in c.occurrences(field) for lit in lits
            )
        return lambda c: bool(c.occurrences(field))

    def value(self) -> _Value:
        tok = self.take()
        if tok.kind == "str":
            return _Value(_unquote(tok.text), True)
        if tok.kind == "word" and tok.text not in ("and", "or", "not", "&&", "||"):
            return _Value(tok.text, False)
        what = "the end of the filter" if tok.kind == "end" else repr(tok.text)
        raise self.fail(f"expected a value, got {what}", tok)


# -- known fields ----------------------------------------------------------

_KNOWN_CACHE: dict[int, tuple[set[str], set[str]]] = {}


def field_checker(registry: Any) -> Callable[[str], bool]:
    """A test for field names: catalogued fields and their prefixes are known,
    and so is anything under a known protocol prefix (``rtnl.``, ``genl.``
    ...), since the catalogue lists attribute fields but not every node the
    tree holds (struct headers, extack, nested repeats)."""
    key = id(registry)
    if key not in _KNOWN_CACHE:
        from ..schema.catalog import CORE_FIELDS, spec_fields

        names: set[str] = {ab for ab, _, _ in CORE_FIELDS}
        for s in registry.specs:
            names.update(ab for ab, _, _ in spec_fields(s))
        prefixes: set[str] = set()
        for ab in names:
            parts = ab.split(".")
            for k in range(1, len(parts)):
                prefixes.add(".".join(parts[:k]))
        roots = {ab.split(".")[0] for ab in names} | {"netlink", "nlmon", "genl", "frame"}
        _KNOWN_CACHE[key] = (names | prefixes, roots)
    known, roots = _KNOWN_CACHE[key]
    return lambda f: f in known or f.split(".")[0] in roots


def compile_filter(text: str, registry: Any = None) -> DisplayFilter:
    """Compile `text`; raises `FilterError`.  With a `registry`, field names
    are checked against its catalogue."""
    known = field_checker(registry) if registry is not None else None
    p = _Parser(text, known)
    pred = p.parse()
    return DisplayFilter(text, pred, frozenset(p.fields))


def filter_frames(frames: Iterable[Any], flt: DisplayFilter) -> Iterable[Any]:
    """The frames of which at least one message matches."""
    return (f for f in frames if flt.match_frame(f))


__all__ = [
    "DisplayFilter",
    "FilterError",
    "compile_filter",
    "field_checker",
    "filter_frames",
    "filtered_output",
]


def filtered_output(
    frames: Iterable[Any], flt: DisplayFilter, sink: Any, output: Any
) -> Iterable[Any]:
    """``nlshark -r FILE -Y FILTER``: keep the frames with a matching message,
    showing only the matching messages (the tree still shows the whole
    frame); `sink` (the -w file, with ``write(RawFrame)``) gets the matching
    frames as they were captured.  Relative times count from the capture's
    first frame, shown or not."""
    from ..capture.frame import RawFrame

    first = True
    for f in frames:
        if first and output is not None and getattr(output, "t0", 0) is None:
            output.t0 = f.ts_ns
        first = False
        if f.messages:
            keep = [m for m in f.messages if flt.match(m, f)]
            if not keep:
                continue
            f.messages = keep
        elif not flt.match_frame(f):
            continue
        if sink is not None:
            sink.write(RawFrame(f.number, f.ts_ns, f.linktype, f.data, f.orig_len, 0, f.comment))
        if output is not None:
            output.write(f)
        yield f
