"""NETLINK_CONNECTOR hook: struct cn_msg and the process events connector.

linux/connector.h: ``struct cn_msg { struct cb_id { u32 idx; u32 val; } id;
u32 seq; u32 ack; u16 len; u16 flags; u8 data[]; }`` (20 bytes, host
order).  The callback index names the user: CN_IDX_PROC (1) is the process
events connector of linux/cn_proc.h, decoded here; the others (CIFS, w1,
uvesafb, DRBD, Hyper-V KVP/VSS, ...) are named and their data shown as
bytes.

Process events: user space sends ``enum proc_cn_mcast_op`` (LISTEN 1,
IGNORE 2) — since Linux 6.6 as ``struct proc_input { u32 mcast_op; u32
event_type; }``, a filter of PROC_EVENT_* bits — and the kernel multicasts
``struct proc_event``: u32 what, u32 cpu, u64 timestamp_ns (aligned to 8),
then the member of its union that `what` selects (fork, exec, uid/gid, sid,
ptrace, comm, coredump, exit; NONE is the ack of a LISTEN/IGNORE).
"""

from __future__ import annotations

import struct
from typing import Any

from dissect.core.display import hexbytes
from dissect.core.tree import MALFORMED, NOTE, PROTOCOL, UNDECODED, WARN, Node
from dissect.schema.bodies import Chars, Choice, Int, Layout, Rest

# struct cn_msg's members before data[] (host order)
CN_MSG_MEMBERS = (
    ("idx", "I"),
    ("val", "I"),
    ("seq", "I"),
    ("ack", "I"),
    ("len", "H"),
    ("flags", "H"),
)
CN_MSG_SIZE = 20
# struct proc_event's members before its union
PROC_EVENT_HEAD = (("what", "I"), ("cpu", "I"), ("timestamp_ns", "Q"))
CN_IDX_PROC = 1
CALLBACKS = {
    1: "CN_IDX_PROC", 2: "CN_IDX_CIFS", 3: "CN_W1_IDX", 4: "CN_IDX_V86D", 5: "CN_IDX_BB",
    6: "CN_DST_IDX", 7: "CN_IDX_DM", 8: "CN_IDX_DRBD", 9: "CN_KVP_IDX", 10: "CN_VSS_IDX",
}  # fmt: skip
MCAST_OPS = {1: "PROC_CN_MCAST_LISTEN", 2: "PROC_CN_MCAST_IGNORE"}
EVENTS = {
    0x00000000: "none", 0x00000001: "fork", 0x00000002: "exec", 0x00000004: "uid",
    0x00000040: "gid", 0x00000080: "sid", 0x00000100: "ptrace", 0x00000200: "comm",
    0x20000000: "nonzero_exit", 0x40000000: "coredump", 0x80000000: "exit",
}  # fmt: skip
# union event_data members: (member names, summary) by `what`; pids are s32.
_PAIR = ("process_pid", "process_tgid")
LAYOUTS: dict[int, tuple[str, tuple[tuple[str, str], ...]]] = {
    0x00000000: ("ack", (("err", "I"),)),
    0x00000001: ("fork", (("parent_pid", "i"), ("parent_tgid", "i"), ("child_pid", "i"), ("child_tgid", "i"))),
    0x00000002: ("exec", (("process_pid", "i"), ("process_tgid", "i"))),
    0x00000004: ("id", (("process_pid", "i"), ("process_tgid", "i"), ("ruid", "I"), ("euid", "I"))),
    0x00000040: ("id", (("process_pid", "i"), ("process_tgid", "i"), ("rgid", "I"), ("egid", "I"))),
    0x00000080: ("sid", (("process_pid", "i"), ("process_tgid", "i"))),
    0x00000100: ("ptrace", (("process_pid", "i"), ("process_tgid", "i"), ("tracer_pid", "i"), ("tracer_tgid", "i"))),
    0x00000200: ("comm", (("process_pid", "i"), ("process_tgid", "i"), ("comm", "16s"))),
    0x40000000: ("coredump", (("process_pid", "i"), ("process_tgid", "i"), ("parent_pid", "i"), ("parent_tgid", "i"))),
    0x80000000: ("exit", (("process_pid", "i"), ("process_tgid", "i"), ("exit_code", "I"), ("exit_signal", "I"), ("parent_pid", "i"), ("parent_tgid", "i"))),
    0x20000000: ("exit", (("process_pid", "i"), ("process_tgid", "i"), ("exit_code", "I"), ("exit_signal", "I"), ("parent_pid", "i"), ("parent_tgid", "i"))),
}  # fmt: skip


def _flags_text(v: int) -> str:
    names = [n for bit, n in EVENTS.items() if bit and v & bit]
    rest = v & ~sum(b for b in EVENTS)
    if rest:
        names.append(f"0x{rest:x}")
    return ",".join(names) or "none"


def _proc_input(parent: Node, buf: bytes, off: int, size: int, bo: str) -> str:
    if size not in (4, 8):
        parent.note(WARN, MALFORMED, f"proc connector request of {size} bytes, expected 4 or 8")
        return "proc request"
    op = struct.unpack_from(bo + "I", buf, off)[0]
    n = Node("cn.proc.mcast_op", "mcast_op", off, 4, buf, op, None)
    n._display = f"{MCAST_OPS.get(op, '?')} ({op})"
    parent.add(n)
    text = f"proc {'listen' if op == 1 else 'ignore' if op == 2 else f'op {op}'}"
    if size == 8:
        ev = struct.unpack_from(bo + "I", buf, off + 4)[0]
        e = Node("cn.proc.event_type", "event_type", off + 4, 4, buf, ev, None)
        e._display = f"{_flags_text(ev)} (0x{ev:08x})"
        parent.add(e)
        text += f" events {_flags_text(ev)}"
    return text


def _proc_event(parent: Node, buf: bytes, off: int, size: int, bo: str) -> str:
    if size < 16:
        parent.note(WARN, MALFORMED, f"struct proc_event needs at least 16 bytes, has {size}")
        return "proc event (truncated)"
    what, cpu, ts = struct.unpack_from(bo + "".join(c for _, c in PROC_EVENT_HEAD), buf, off)
    name = EVENTS.get(what)
    w = Node("cn.proc.what", "what", off, 4, buf, what, None)
    w._display = f"PROC_EVENT_{name.upper()} (0x{what:08x})" if name else f"0x{what:08x}"
    parent.add(w)
    parent.add(Node("cn.proc.cpu", "cpu", off + 4, 4, buf, cpu, None))
    t = Node("cn.proc.timestamp_ns", "timestamp_ns", off + 8, 8, buf, ts, None)
    t._display = f"{ts} ns ({ts / 1e9:.6f} s since boot)"
    parent.add(t)
    layout = LAYOUTS.get(what)
    p = off + 16
    end = off + size
    if layout is None:
        if p < end:
            rest = Node("cn.proc.data", "event_data", p, end - p, buf, bytes(buf[p:end]), hexbytes)
            rest.note(
                NOTE, UNDECODED, f"proc event 0x{what:08x} is not known; {end - p} bytes shown raw"
            )
            parent.add(rest)
        return f"proc event 0x{what:08x}"
    member, fields = layout
    data = Node(f"cn.proc.{member}", member, p, end - p, buf)
    parent.add(data)
    vals: dict[str, Any] = {}
    for fname, code in fields:
        st = struct.Struct(bo + code)
        if p + st.size > end:
            # older kernels send shorter exit events (no parent_pid/tgid)
            if fname.startswith("parent") and member == "exit":
                break
            data.note(WARN, MALFORMED, f"{member}.{fname} cut short")
            break
        v = st.unpack_from(buf, p)[0]
        if isinstance(v, bytes):
            v = v.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
        data.add(Node(f"cn.proc.{member}.{fname}", fname, p, st.size, buf, v, None))
        vals[fname] = v
        p += st.size
    if p < end:
        extra = Node("cn.proc.padding", "padding", p, end - p, buf, bytes(buf[p:end]), hexbytes)
        if bytes(buf[p:end]).strip(b"\0"):
            extra.note(NOTE, PROTOCOL, f"{end - p} bytes after the {member} event")
        data.add(extra)
    return _event_summary(name or "?", vals)


def _pt(vals: dict[str, Any], a: str = "process_pid", b: str = "process_tgid") -> str:
    return f"{vals.get(a, '?')}/{vals.get(b, '?')}"


def _event_summary(name: str, v: dict[str, Any]) -> str:
    if name == "fork":
        return f"proc fork parent {_pt(v, 'parent_pid', 'parent_tgid')} -> child {_pt(v, 'child_pid', 'child_tgid')}"
    if name in ("exit", "nonzero_exit"):
        return f"proc {name} {v.get('process_pid', '?')} code {v.get('exit_code', '?')} signal {v.get('exit_signal', '?')}"
    if name == "uid":
        return f"proc uid {_pt(v)} ruid {v.get('ruid', '?')} euid {v.get('euid', '?')}"
    if name == "gid":
        return f"proc gid {_pt(v)} rgid {v.get('rgid', '?')} egid {v.get('egid', '?')}"
    if name == "ptrace":
        return f"proc ptrace {_pt(v)} tracer {_pt(v, 'tracer_pid', 'tracer_tgid')}"
    if name == "comm":
        return f"proc comm {_pt(v)} {v.get('comm', '')}"
    if name == "none":
        return f"proc ack err {v.get('err', '?')}"
    return f"proc {name} {_pt(v)}"


def message(msg: Any, buf: bytes, start: int, end: int, bo: str) -> str:
    size = end - start
    node = Node("cn.msg", "struct cn_msg", start, size, buf)
    msg.node.add(node)
    if size < CN_MSG_SIZE:
        node.value = bytes(buf[start:end])
        node.fmt = hexbytes
        node.note(WARN, MALFORMED, f"struct cn_msg needs {CN_MSG_SIZE} bytes, only {size} present")
        return "connector (truncated)"
    values = struct.unpack_from(bo + "".join(c for _, c in CN_MSG_MEMBERS), buf, start)
    idx, val, seq, ack, length, flags = values
    p = start
    nodes = {}
    for (mname, code), v in zip(CN_MSG_MEMBERS, values):
        size = struct.calcsize(code)
        nodes[mname] = node.add(Node(f"cn.{mname}", mname, p, size, buf, v, None))
        p += size
    nodes["idx"]._display = f"{CALLBACKS.get(idx, 'unknown')} ({idx})"
    ln = nodes["len"]
    data = start + CN_MSG_SIZE
    avail = end - data
    if length > avail:
        ln.note(WARN, MALFORMED, f"len {length} runs {length - avail} bytes past the message")
        length = avail
    elif length < avail and bytes(buf[data + length : end]).strip(b"\0"):
        ln.note(NOTE, PROTOCOL, f"{avail - length} bytes after the {length} bytes of data")
    if idx != CN_IDX_PROC:
        if length:
            node.add(
                Node(
                    "cn.data", "data", data, length, buf, bytes(buf[data : data + length]), hexbytes
                )
            )
        return f"{CALLBACKS.get(idx, f'idx {idx}')} val {val} len {length}"
    holder = Node("cn.proc", "proc connector", data, length, buf)
    node.add(holder)
    if msg.direction == "user->kernel":
        holder.name = "struct proc_input"
        return _proc_input(holder, buf, data, length, bo)
    holder.name = "struct proc_event"
    return _proc_event(holder, buf, data, length, bo)


# -- the layouts above, declared for the Scapy layers and the strategies
# (dissect.schema.bodies): the same member tables the hook reads.


def _union_member(fname: str, code: str) -> Int | Chars:
    return Chars(fname, struct.calcsize(code)) if code.endswith("s") else Int(fname, code)


def _proc_part(v: Any, to_kernel: bool, data: bytes) -> str | None:
    if v.get("idx") != CN_IDX_PROC:
        return None
    return "input" if to_kernel else "event"


_EVENT_NAMES = {k: f"PROC_EVENT_{n.upper()}" for k, n in EVENTS.items()}
# the union's size (its largest member, exit) less its smallest (ack)
UNION_PAD = max(struct.calcsize("=" + "".join(c for _, c in f)) for _, f in LAYOUTS.values()) - 4
PROC_INPUT = Layout(
    "struct proc_input",
    (
        Int("mcast_op", "I", MCAST_OPS, choices=tuple(MCAST_OPS)),
        Int("event_type", "I", _EVENT_NAMES, hex=True),
    ),
    implies={"idx": CN_IDX_PROC},
)
PROC_EVENT = Layout(
    "struct proc_event",
    (
        Int("what", "I", _EVENT_NAMES, choices=tuple(LAYOUTS), hex=True),
        Int("cpu", "I"),
        Int("timestamp_ns", "Q"),
        Choice(
            "event_data",
            lambda v, to_kernel, data: v.get("what"),
            {
                # the kernel sends the whole union (sizeof(struct proc_event)):
                # the bytes after a smaller member are its padding
                what: Layout(
                    member,
                    (*(_union_member(f, c) for f, c in fields), Rest("padding", pad=UNION_PAD)),
                    implies={"what": what},
                )
                for what, (member, fields) in LAYOUTS.items()
            },
        ),
    ),
    implies={"idx": CN_IDX_PROC},
)
BODIES = {
    "message": Layout(
        "struct cn_msg",
        (
            *(
                Int(
                    m,
                    c,
                    CALLBACKS if m == "idx" else None,
                    choices=tuple(CALLBACKS) if m == "idx" else None,
                    length_of="data" if m == "len" else None,
                )
                for m, c in CN_MSG_MEMBERS
            ),
            Choice("data", _proc_part, {"input": PROC_INPUT, "event": PROC_EVENT}, length="len"),
        ),
    )
}
