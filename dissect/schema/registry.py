"""The family registry: which spec decodes which message.

Classic families (``netlink-raw`` specs) are found by netlink protocol
number and message type; several spec files may share a protocol (rtnetlink
is split into link, address, route, ... files).  Generic netlink families
are found by name; the name comes from the capture session, which learns
family ids from controller messages.

One message type can belong to several operations and directions: type 16
is RTM_NEWLINK the request, the reply to RTM_GETLINK and the notification.
`MessageLayout` resolves (type, direction) to the operation, the fixed
header and the attribute set, compiled for a byte order and cached.

Spec sources are searched in a fixed order and a family defined twice keeps
its first definition: the project's own specs first, then each plugin
directory the user names (issue-level features add more).  Every loaded
spec remembers where it came from for ``nlshark -G families``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..core.attrs import CompiledAttrSet, StructAttr, StructLayout
from ..core.display import short_display
from ..core.tree import Node
from .compile import Compiler, load_hook
from .spec import OpSpec, Spec, SpecError, c_name, field_name, load_spec

VERB_KINDS = {"get": "get", "new": "new", "del": "del", "set": "set", "dump": "get"}


def op_kind(name: str) -> str | None:
    """``getlink`` -> ``get``; ``newroute`` -> ``new``; for request flags."""
    for verb, kind in VERB_KINDS.items():
        if name.startswith(verb):
            return kind
    return None


FieldPath = tuple[str, ...]


def find_path(node: Node, path: FieldPath) -> Node | None:
    """The descendant reached by following field abbreviations from `node`.

    The elements of an indexed array carry the array's own abbreviation; a
    path that goes on below such an array continues in its first element
    (``tab.kind`` is the kind of the first action of TCA_ROOT_TAB).
    """
    for ab in path:
        for c in node.children or ():
            if c.abbrev == ab:
                node = c
                break
        else:
            kids = node.children
            if not kids or kids[0].abbrev != node.abbrev:
                return None
            for c in kids[0].children or ():
                if c.abbrev == ab:
                    node = c
                    break
            else:
                return None
    return node


class Summary:
    """A compiled ``summary`` template (see docs/schema.md).

    Each placeholder is resolved once, at compile time, to the path of field
    abbreviations that leads to it in a message tree, and each alternative
    becomes a ``str.format`` template; rendering is one scan of the
    message's top-level nodes plus a short descent for nested fields.
    """

    __slots__ = ("segments", "top")

    def __init__(
        self, segments: list[list[tuple[str, list[tuple[FieldPath | None, str]]]]]
    ) -> None:
        self.segments = segments
        self.top = frozenset(p[0] for alts in segments for _, holes in alts for p, _ in holes if p)

    def render(self, msg_node: Node) -> str:
        top = self.top
        found: dict[str, Node] = {}
        for c in msg_node.children or ():
            if c.abbrev in top and c.abbrev not in found:
                found[c.abbrev] = c
        out = []
        for alternatives in self.segments:
            for text, holes in alternatives:
                vals = []
                for path, mod in holes:
                    node = found.get(path[0]) if path else None
                    if node is not None and len(path) > 1:  # type: ignore[arg-type]
                        node = find_path(node, path[1:])  # type: ignore[index]
                    if node is None or (mod == "nz" and not node.value):
                        break
                    if mod:
                        v = str(node.value)
                    elif node._display is None or getattr(node.fmt, "short", None) is not None:
                        # the short form (``esp``, not ``esp (50)``) even when
                        # a renderer already cached the node's full display
                        v = short_display(node.fmt, node.value)
                    else:
                        v = node.display
                    if v == "":
                        break
                    vals.append(v)
                else:
                    out.append(text.format(*vals))
                    break
        return " ".join(out)


def field_path(
    key: str, attrs: CompiledAttrSet | None, header: StructLayout | None
) -> FieldPath | None:
    """Resolve a summary placeholder (``ifname``, ``linkinfo.kind``,
    ``ifi-index``) to the abbreviations that lead to it.  A fixed-header
    member wins over an attribute of the same name (struct
    xfrm_usersa_id's ``proto`` and XFRMA_PROTO)."""
    hit = _header_path(key, header)
    if hit is not None:
        return hit
    first, *rest = key.split(".")
    if attrs is not None and first in attrs.by_name:
        dec = attrs.by_name[first]
        path = [dec.abbrev]
        # members of a binary attribute holding a struct are named after the
        # struct (rtnl.br_mdb_entry.vid), not after the attribute
        lay = dec.layout if isinstance(dec, StructAttr) else None
        for part in rest:
            if lay is not None:
                path.append(f"{lay.abbrev}.{field_name(part)}")
                lay = None
            else:
                path.append(f"{path[-1]}.{field_name(part)}")
        return tuple(path)
    # the bytes a member counts after the fixed header (its trailer), a
    # node of the message itself: nduseroptmsg's options
    if header is not None and header.trailer is not None and header.trailer.name == field_name(key):
        return (header.trailer.abbrev,)
    return None


def _header_path(key: str, header: StructLayout | None) -> FieldPath | None:
    """A fixed-header member, or one of a struct nested in it (``id.spi``)."""
    if header is None:
        return None
    lay: StructLayout | None = header
    path = []
    for part in key.split("."):
        if lay is None:
            return None
        ab = f"{lay.abbrev}.{field_name(part)}"
        m = next((m for m in lay.members if m.abbrev == ab), None)
        if m is None:
            return None
        path.append(ab)
        lay = m.sub if m.kind == "struct" else None
    return (header.abbrev, *path)


def compile_summary(
    tmpl: Any, attrs: CompiledAttrSet | None, header: StructLayout | None
) -> Summary | None:
    if not isinstance(tmpl, list):
        return None
    segs = []
    for seg in tmpl:
        alts = seg if isinstance(seg, list) else [seg]
        compiled = []
        for text in alts:
            if not isinstance(text, str):
                continue
            holes: list[tuple[FieldPath | None, str]] = []
            parts = []
            pos = 0
            while True:
                a = text.find("{", pos)
                b = text.find("}", a) if a >= 0 else -1
                if a < 0 or b < 0:
                    parts.append(text[pos:].replace("{", "{{").replace("}", "}}"))
                    break
                parts.append(text[pos:a].replace("{", "{{").replace("}", "}}"))
                key, _, mod = text[a + 1 : b].partition("!")
                parts.append("{" + str(len(holes)) + "}")
                holes.append((field_path(key, attrs, header), mod))
                pos = b + 1
            compiled.append(("".join(parts), holes))
        segs.append(compiled)
    return Summary(segs)


@dataclass
class MessageLayout:
    """How to decode the body of one message type in one direction."""

    spec: Spec
    op: OpSpec | None
    type_name: str
    kind: str | None
    header: StructLayout | None
    attrs: CompiledAttrSet | None
    summary: Summary | None
    role: str  # "request", "reply", "event"
    # A body whose layout depends on a member of its fixed header
    # (SOCK_DIAG_BY_FAMILY by sdiag_family): see `LayoutSelector`.
    selector: LayoutSelector | None = None
    # Python hooks (docs/schema.md): `hook(msg, buf, start, end, bo)`
    # decodes the body and may return the summary text; `summary_hook(msg)`
    # returns the summary text.
    hook: Any = None
    hook_name: str = ""
    hook_problem: str | None = None
    summary_hook: Any = None


class LayoutSelector:
    """The layouts of one message type chosen by a fixed-header member.

    The operation's ``fixed-header`` is the prefix every variant shares
    (``struct sock_diag_req``: family, protocol); the value of member
    ``selector``, by its enum name, picks a format of ``sub-message``,
    whose own fixed header and attribute set decode the whole body.
    """

    __slots__ = ("prefix", "member", "formats", "_resolve", "_cache")

    def __init__(
        self,
        prefix: StructLayout,
        member: Any,
        formats: set[str],
        resolve: Any,
    ) -> None:
        self.prefix = prefix
        self.member = member  # StructMember of `prefix`
        self.formats = formats
        self._resolve = resolve
        self._cache: dict[str, MessageLayout] = {}

    def key(self, buf: bytes, off: int, end: int) -> str | None:
        """The format key for a body at `off`, or None when it is too short."""
        m = self.member
        if m.st is None or end - off < m.offset + m.size:
            return None
        v = m.st.unpack_from(buf, off + m.offset)[0]
        short = getattr(m.fmt, "short", None)
        return str(short(v)) if short is not None else str(v)

    def layout(self, key: str) -> MessageLayout | None:
        if key not in self.formats:
            if "*" not in self.formats:
                return None
            key = "*"
        lay = self._cache.get(key)
        if lay is None:
            lay = self._cache[key] = self._resolve(key)
        return lay


@dataclass
class _RawFamily:
    protonum: int
    specs: list[Spec] = field(default_factory=list)
    requests: dict[int, tuple[Spec, OpSpec]] = field(default_factory=dict)
    # requests with NLM_F_DUMP: the first operation listing the number in
    # its ``dump`` block
    dump_requests: dict[int, tuple[Spec, OpSpec]] = field(default_factory=dict)
    replies: dict[int, tuple[Spec, OpSpec]] = field(default_factory=dict)
    events: dict[int, tuple[Spec, OpSpec]] = field(default_factory=dict)


def builtin_plugin_dir() -> Path:
    try:
        return Path(str(resources.files("dissect.plugins")))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - source checkout without install
        return Path(__file__).resolve().parents[2] / "plugins"


SPEC_PATH_ENV = "NLSHARK_SPEC_PATH"
SYSTEM_SPEC_DIRS = ("/usr/local/share/ynl/specs", "/usr/share/ynl/specs")


def user_plugin_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "nlshark" / "plugins"


def spec_sources(plugin_dirs: Iterable[str | os.PathLike[str]] = ()) -> list[tuple[Path, str]]:
    """Where family specs come from, highest precedence first.

    A family defined in several places is taken from the first; the others
    are listed as shadowed by ``nlshark -G families``.  What the user names
    explicitly wins over the project's own specs, which win over kernel specs
    installed on the system (the project's are more complete there):

    1. ``--plugin-dir DIR`` (each, in the order given)
    2. ``$NLSHARK_SPEC_PATH`` (a ``:``-separated list of folders, files or
       kernel source trees)
    3. ``~/.config/nlshark/plugins`` (``$XDG_CONFIG_HOME`` honoured)
    4. the specs shipped with nlshark (``builtin``)
    5. ``/usr/local/share/ynl/specs``, then ``/usr/share/ynl/specs``
    """
    out = [(Path(d), f"--plugin-dir {d}") for d in plugin_dirs]
    env = os.environ.get(SPEC_PATH_ENV, "")
    out += [(Path(d), f"{SPEC_PATH_ENV} {d}") for d in env.split(os.pathsep) if d]
    out.append((user_plugin_dir(), f"user {user_plugin_dir()}"))
    out.append((builtin_plugin_dir(), "builtin"))
    out += [(Path(d), f"system {d}") for d in SYSTEM_SPEC_DIRS]
    return out


class Registry:
    def __init__(self) -> None:
        self.specs: list[Spec] = []
        self.errors: list[str] = []
        self._raw: dict[int, _RawFamily] = {}
        self._genl: dict[str, Spec] = {}
        self._core: dict[str, Spec] = {}
        # specs not used because a source of higher precedence defines the family
        self.shadowed: list[tuple[Spec, str]] = []
        self._fixed_ids: dict[int, str] = {}
        self._compilers: dict[tuple[int, str], Compiler] = {}
        self._layouts: dict[tuple[Any, ...], MessageLayout | None] = {}
        self._reply_types: dict[tuple[int, str | None, int], frozenset[int]] = {}
        self._frame_hooks: dict[int, tuple[Any, str, str | None] | None] = {}

    # -- loading -----------------------------------------------------------------
    def add(self, spec: Spec) -> bool:
        """Register a spec; returns False when its family is already defined."""
        if spec.protocol == "netlink-core":
            if spec.name in self._core:
                return False
            self._core[spec.name] = spec
        elif spec.is_genl:
            if spec.name in self._genl:
                return False
            self._genl[spec.name] = spec
            if spec.fixed_id is not None:
                self._fixed_ids[spec.fixed_id] = spec.name
        else:
            fam = self._raw.setdefault(spec.protonum or 0, _RawFamily(spec.protonum or 0))
            if any(s.name == spec.name for s in fam.specs):
                return False
            fam.specs.append(spec)
            for op in spec.operations:
                for v in op.requests:
                    fam.requests.setdefault(v, (spec, op))
                for v in op.dump_requests:
                    fam.dump_requests.setdefault(v, (spec, op))
                for v in op.replies:
                    fam.replies.setdefault(v, (spec, op))
                for v in op.events:
                    fam.events.setdefault(v, (spec, op))
        self.specs.append(spec)
        self._layouts.clear()
        self._reply_types.clear()
        self._frame_hooks.clear()
        return True

    def load_file(self, path: Path, origin: str) -> None:
        try:
            spec = load_spec(path, origin)
        except SpecError as exc:
            self.errors.append(str(exc))
            return
        if not self.add(spec):
            winner = next(
                (s for s in self.specs if s.name == spec.name and s.protocol == spec.protocol), None
            )
            self.shadowed.append((spec, winner.origin if winner else "?"))

    def load_dir(self, path: str | os.PathLike[str], origin: str) -> None:
        """Load the specs of a plugin directory: ``DIR/*.yaml`` and one level
        of family folders ``DIR/*/*.yaml``; a kernel source tree is read from
        its ``Documentation/netlink/specs``; a file is loaded as it is."""
        p = Path(path)
        try:
            if p.is_file():
                self.load_file(p, origin)
                return
            if not p.is_dir():
                return
            kernel = p / "Documentation" / "netlink" / "specs"
            if kernel.is_dir():
                p = kernel
            files = sorted([*p.glob("*.yaml"), *p.glob("*/*.yaml")])
        except OSError as exc:
            # An unreadable folder (another user's HOME, a dead mount) is
            # reported like a broken spec, not fatal: the others still load.
            self.errors.append(f"{p}: {exc.strerror or exc}")
            return
        for f in files:
            self.load_file(f, origin)

    @classmethod
    def default(cls, plugin_dirs: Iterable[str | os.PathLike[str]] = ()) -> Registry:
        """The registry with every spec source, highest precedence first
        (see `spec_sources`)."""
        reg = cls()
        for path, origin in spec_sources(plugin_dirs):
            reg.load_dir(path, origin)
        return reg

    # -- lookups -----------------------------------------------------------------
    def core_set(
        self, spec_name: str, set_name: str, prefix: str, bo: str
    ) -> CompiledAttrSet | None:
        """An attribute set of a core (non-family) spec such as extended ACK."""
        spec = self._core.get(spec_name)
        return self.compiler(spec, bo).attr_set(set_name, prefix) if spec is not None else None

    def set_by_prefix(self, abbrev: str, bo: str) -> CompiledAttrSet | None:
        """The compiled set whose attributes sit under field name `abbrev`."""
        for (_, cbo), comp in self._compilers.items():
            if cbo != bo:
                continue
            for (_, pfx), cset in comp._sets.items():
                if pfx == abbrev:
                    return cset
        return None

    def reply_types(self, protonum: int, genl_family: str | None, asked: int) -> frozenset[int]:
        """Message types (or genl commands) that answer request `asked`."""
        key = (protonum, genl_family, asked)
        hit = self._reply_types.get(key)
        if hit is None:
            hit = self._reply_types[key] = frozenset(
                self._find_reply_types(protonum, genl_family, asked)
            )
        return hit

    def _find_reply_types(self, protonum: int, genl_family: str | None, asked: int) -> set[int]:
        if genl_family is not None:
            spec = self._genl.get(genl_family)
            ops = [o for o in spec.operations if asked in o.requests] if spec is not None else []
        else:
            fam = self._raw.get(protonum)
            hit = fam.requests.get(asked) if fam is not None else None
            ops = [hit[1]] if hit is not None else []
        return set().union(*(o.replies for o in ops)) if ops else set()

    def genl_spec(self, name: str) -> Spec | None:
        return self._genl.get(name)

    def fixed_genl_ids(self) -> dict[int, str]:
        return dict(self._fixed_ids)

    def raw_specs(self, protonum: int) -> list[Spec]:
        fam = self._raw.get(protonum)
        return list(fam.specs) if fam else []

    def compiler(self, spec: Spec, bo: str) -> Compiler:
        key = (id(spec), bo)
        c = self._compilers.get(key)
        if c is None:
            c = self._compilers[key] = Compiler(spec, bo)
        return c

    def _layout(
        self, spec: Spec, op: OpSpec, type_name: str, role: str, bo: str, fixed_header: str | None
    ) -> MessageLayout:
        comp = self.compiler(spec, bo)
        header = comp.struct_layout(fixed_header) if fixed_header else None
        attrs = comp.attr_set(op.attribute_set) if op.attribute_set else None
        lay = MessageLayout(
            spec,
            op,
            type_name,
            op.kind or op_kind(op.name),
            header,
            attrs,
            compile_summary(op.summary, attrs, header),
            role,
        )
        if op.hook:
            lay.hook, lay.hook_problem = load_hook(spec.source, op.hook)
            lay.hook_name = op.hook
        if op.summary_hook:
            lay.summary_hook = load_hook(spec.source, op.summary_hook)[0]
        formats = spec.sub_messages.get(op.sub_message or "")
        if header is not None and formats and op.selector:
            member = next(
                (m for m in header.members if m.name == op.selector.replace("-", "_")), None
            )
            if member is not None and member.kind == "int":
                lay.selector = LayoutSelector(
                    header,
                    member,
                    set(formats),
                    lambda key: self._format_layout(lay, formats[key], comp),
                )
        return lay

    @staticmethod
    def _format_layout(base: MessageLayout, fmt: Any, comp: Compiler) -> MessageLayout:
        """The layout of one format of a message-level sub-message."""
        header = comp.struct_layout(fmt.fixed_header) if fmt.fixed_header else None
        attrs = comp.attr_set(fmt.attribute_set) if fmt.attribute_set else None
        lay = MessageLayout(
            base.spec,
            base.op,
            base.type_name,
            base.kind,
            header,
            attrs,
            compile_summary(fmt.summary or (base.op.summary if base.op else None), attrs, header),
            base.role,
        )
        lay.summary_hook = (
            load_hook(base.spec.source, fmt.summary_hook)[0]
            if fmt.summary_hook
            else base.summary_hook
        )
        return lay

    def direction_by_pid(self, protonum: int) -> bool:
        """True when the protocol's spec says ``direction: pid``."""
        fam = self._raw.get(protonum)
        return fam is not None and any(s.direction_by_pid for s in fam.specs)

    def frame_hook(self, protonum: int) -> tuple[Any, str, str | None] | None:
        """(hook, name, problem) for a protocol whose frames are not
        nlmsghdr-framed (``frame-hook``), else None."""
        fam = self._raw.get(protonum)
        if fam is None:
            return None
        if protonum not in self._frame_hooks:
            spec = next((s for s in fam.specs if s.frame_hook), None)
            hit = None
            if spec is not None and spec.frame_hook:
                hook, problem = load_hook(spec.source, spec.frame_hook)
                hit = (hook, spec.frame_hook, problem)
            self._frame_hooks[protonum] = hit
        return self._frame_hooks[protonum]

    @staticmethod
    def _role_order(to_kernel: bool, event: bool) -> tuple[str, str, str]:
        """Which kind of operation a message type is looked up as first.

        Requests go to the kernel.  From the kernel, a message that answers a
        request seen in the capture is a reply, anything else is looked up as
        an event first (mptcp_pm's MPTCP_EVENT_CLOSED shares its number with
        the MPTCP_PM_CMD_GET_ADDR reply)."""
        if to_kernel:
            return ("request", "reply", "event")
        return ("event", "reply", "request") if event else ("reply", "event", "request")

    def dump_request_op(self, protonum: int, msg_type: int) -> OpSpec | None:
        """The operation that decodes a request of `msg_type` with
        NLM_F_DUMP, when one lists it in its ``dump`` block."""
        fam = self._raw.get(protonum)
        hit = fam.dump_requests.get(msg_type) if fam is not None else None
        return hit[1] if hit is not None else None

    def raw_layout(
        self,
        protonum: int,
        msg_type: int,
        to_kernel: bool,
        bo: str,
        type_names: dict[int, str] | None = None,
        event: bool = False,
        dump: bool = False,
    ) -> MessageLayout | None:
        """The layout of message type `msg_type`; `dump` for a request
        with NLM_F_DUMP, which an operation's ``dump`` block decodes
        (its fixed header may differ from the ``do`` request's)."""
        fam = self._raw.get(protonum)
        dump = dump and fam is not None and msg_type in fam.dump_requests
        key = ("raw", protonum, msg_type, to_kernel, bo, event, dump)
        if key in self._layouts:
            return self._layouts[key]
        lay = None
        if fam is not None:
            requests = fam.dump_requests if dump else fam.requests
            tables = {"request": requests, "reply": fam.replies, "event": fam.events}
            for role in self._role_order(to_kernel, event):
                hit = tables[role].get(msg_type)
                if hit is not None:
                    spec, op = hit
                    name = (type_names or {}).get(msg_type)
                    if name is None:
                        # named after the operation that owns the number: the
                        # request, else the notification (NFT_MSG_NEWGEN answers
                        # NFT_MSG_GETGEN and is never sent to the kernel)
                        req = fam.requests.get(msg_type) or fam.events.get(msg_type)
                        name = (
                            c_name(req[0].op_prefix, req[1].name)
                            if req
                            else c_name(spec.op_prefix, op.name)
                        )
                        if (req[1] if req else op).ranged:
                            name = f"{name} {msg_type}"
                    lay = self._layout(spec, op, name, role, bo, op.fixed_header)
                    break
        self._layouts[key] = lay
        return lay

    def genl_layout(
        self, family: str, cmd: int, to_kernel: bool, bo: str, event: bool = False
    ) -> MessageLayout | None:
        key = ("genl", family, cmd, to_kernel, bo, event)
        if key in self._layouts:
            return self._layouts[key]
        spec = self._genl.get(family)
        lay = None
        if spec is not None:
            found: tuple[OpSpec, str] | None = None
            sets = {"request": "requests", "reply": "replies", "event": "events"}
            for role in self._role_order(to_kernel, event):
                op_hit = next(
                    (op for op in spec.operations if cmd in getattr(op, sets[role])), None
                )
                if op_hit is not None:
                    found = (op_hit, role)
                    break
            if found is not None:
                op, role = found
                lay = self._layout(
                    spec, op, _genl_name(spec, op, role, cmd), role, bo, op.fixed_header
                )
        self._layouts[key] = lay
        return lay


def _genl_name(spec: Spec, op: OpSpec, role: str, cmd: int) -> str:
    """The command's constant name for this direction.

    Events take the name of their own operation (with the operation's own
    ``name-prefix`` where it differs, e.g. MPTCP_EVENT_*).  Directional
    families number replies in an enum of their own (ETHTOOL_MSG_*_REPLY).
    Otherwise a reply is named after the operation that owns its number:
    CTRL_CMD_GETFAMILY is answered with CTRL_CMD_NEWFAMILY."""
    if role == "event":
        return c_name(op.name_prefix or spec.op_prefix, op.name)
    if role == "reply" and spec.directional:
        return c_name(op.name_prefix or spec.op_prefix, op.name) + "_REPLY"
    owner = next((o for o in spec.operations if cmd in o.requests or cmd in o.events), op)
    return c_name(owner.name_prefix or spec.op_prefix, owner.name)
