"""NETLINK_AUDIT hooks: audit records as text, filter rules, signal info.

`plugins/audit.yaml` names the message types and describes the fixed-size
structs (struct audit_status, audit_features, audit_tty_status).  What a
struct cannot say is decoded here:

- Records (every type from 1100 up, and AUDIT_USER 1005) are text:
  ``audit(1700000000.123:45): arch=c000003e syscall=59 ... comm="ls"``.
  The kernel writes the ``audit(SECONDS.MILLIS:SERIAL):`` stamp; user space
  sends its messages without one (the kernel adds it when it logs them).
  The text becomes one node with a child per ``key=value`` pair (quoted
  values unquoted; a single-quoted ``msg='...'`` of a user message split
  into its own pairs) and per free word (AVC's ``avc:  denied  { read }``).
  Values the kernel writes as hex because they may hold spaces or control
  characters (audit_log_untrustedstring: comm, exe, name, cwd, key,
  proctitle, EXECVE's a0, a1, ...) are decoded to text; PROCTITLE's
  NUL-separated arguments are joined with spaces.
- struct audit_rule_data (linux/audit.h) is a fixed part with three arrays
  of AUDIT_MAX_FIELDS u32 (fields, values, fieldflags; the first
  field_count in use) and a buffer holding the string values in field
  order, each as long as its `values` entry says.
- AUDIT_SIGNAL_INFO's answer is the kernel's struct audit_sig_info
  (kernel/audit.h): uid, pid and the sender's security context.
- AUDIT_MAKE_EQUIV is two u32 sizes and then the two paths.
- An AUDIT_GET_FEATURE request is empty or (libaudit) a zeroed struct
  audit_features; the kernel reads neither.
- libaudit counts its NLMSG_ALIGN padding in nlmsg_len (NLMSG_SPACE): an
  audit_rule_data's buffer can be followed by up to 3 zero bytes.

Hooks are called as ``hook(msg, buf, start, end, bo)``, add nodes to
``msg.node`` and return the summary text.  They never raise on bad input:
short buffers, unterminated quotes and bad string lengths become notes.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from dissect.core.display import hexbytes
from dissect.core.tree import CHAT, MALFORMED, NOTE, PROTOCOL, WARN, Node
from dissect.schema.bodies import Int, Layout, Rest, Strings, Text

AUDIT_EXECVE = 1309
AUDIT_PROCTITLE = 1327
SUMMARY_MAX = 200

# Keys the kernel logs with audit_log_untrustedstring()/audit_log_n_hex():
# unquoted hex when the value holds a space, quote or control character.
HEX_KEYS = frozenset(
    {"comm", "exe", "name", "cwd", "key", "proctitle", "data", "cmd", "acct", "ocomm", "root_dir"}
)
_STAMP = re.compile(rb"audit\((\d+)\.(\d+):(\d+)\):\s*")
_HEX = re.compile(rb"(?:[0-9A-F]{2})+")
_EXECVE_ARG = re.compile(r"a\d+(?:\[\d+\])?")


def _hex_decoded(key: str, raw: bytes, msg_type: int) -> str | None:
    """The text a hex-encoded value stands for, or None when it is not one."""
    if not _HEX.fullmatch(raw):
        return None
    if key not in HEX_KEYS and not (msg_type == AUDIT_EXECVE and _EXECVE_ARG.fullmatch(key)):
        return None
    data = bytes.fromhex(raw.decode("ascii"))
    if key == "proctitle" or msg_type == AUDIT_PROCTITLE:
        data = data.rstrip(b"\0").replace(b"\0", b" ")
    return data.decode("utf-8", "backslashreplace")


def _fields(
    parent: Node, buf: bytes, raw: bytes, base: int, msg_type: int, prefix: str
) -> list[str]:
    """Split `raw` (at frame offset `base`) into key=value and word nodes
    under `parent`; returns the pieces for the summary."""
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        gap = i
        while i < n and raw[i] in b" \n":
            i += 1
        if i - gap > 4:  # keep every byte in a node: long runs of blanks get one
            parent.add(Node(f"{prefix}.blank", "blank", base + gap, i - gap, buf, None, None))
        if i >= n:
            break
        start = i
        eq = -1
        while i < n and raw[i] not in b" \n=":
            i += 1
        if i < n and raw[i] == ord("=") and i > start:
            eq = i
            i += 1
        if eq < 0:
            while i < n and raw[i] not in b" \n":  # a word (one may start with '=')
                i += 1
            word = raw[start:i].decode("utf-8", "backslashreplace")
            parent.add(Node(f"{prefix}.word", "text", base + start, i - start, buf, word, None))
            out.append(word)
            continue
        key = raw[start:eq].decode("utf-8", "backslashreplace")
        quote = raw[i : i + 1]
        if quote not in (b'"', b"'"):
            quote = b""
        unterminated = False
        if quote:
            close = raw.find(quote, i + 1)
            if close < 0:
                unterminated = True
                close = n
            vstart, vend = i + 1, close
            i = min(close + 1, n)
        else:
            vstart = i
            while i < n and raw[i] not in b" \n":
                i += 1
            vend = i
        vraw = raw[vstart:vend]
        node = Node(f"{prefix}.field", key, base + start, i - start, buf, None, None)
        if unterminated:
            node.note(WARN, MALFORMED, f"value of {key} has no closing {quote.decode()}")
        decoded = None if quote else _hex_decoded(key, vraw, msg_type)
        if decoded is not None:
            node.value = decoded
            node._display = f'"{decoded}" (hex {vraw.decode("ascii")})'
            out.append(f'{key}="{decoded}"')
        else:
            node.value = vraw.decode("utf-8", "backslashreplace")
            out.append(
                f"{key}={quote.decode()}{node.value}{quote.decode() if not unterminated else ''}"
            )
            if quote == b"'" and b"=" in vraw:
                # a user message's msg='op=... acct="root" res=success'
                node.add(Node(f"{prefix}.key", "key", base + start, eq - start, buf, key, None))
                _fields(node, buf, vraw, base + vstart, msg_type, prefix)
        parent.add(node)
    return out


def record(msg: Any, buf: bytes, start: int, end: int, bo: str) -> str:
    """An audit record: text, optionally NUL-terminated."""
    raw = bytes(buf[start:end])
    text_len = len(raw.split(b"\0", 1)[0])
    node = Node("audit.record", "record", start, end - start, buf, None, None)
    msg.node.add(node)
    if not raw:
        node.note(NOTE, PROTOCOL, "empty record")
        return ""
    text = raw[:text_len]
    node.value = text.decode("utf-8", "backslashreplace")
    if len(raw) - text_len > 1:
        tail = Node(
            "audit.trailer",
            "after the text",
            start + text_len,
            len(raw) - text_len,
            buf,
            raw[text_len:],
            hexbytes,
        )
        node.add(tail)
        if raw[text_len:].strip(b"\0"):
            tail.note(WARN, MALFORMED, f"{len(raw) - text_len} bytes after the NUL ending the text")
    parts: list[str] = []
    pos = 0
    stamp = _STAMP.match(text)
    if stamp:
        secs, millis, serial = (g.decode() for g in stamp.groups())
        node.add(
            Node("audit.timestamp", "timestamp", start, stamp.end(2), buf, f"{secs}.{millis}", None)
        )
        node.add(
            Node(
                "audit.serial",
                "serial",
                start + stamp.start(3),
                stamp.end(3) - stamp.start(3),
                buf,
                int(serial),
                None,
            )
        )
        parts.append(f"audit({secs}.{millis}:{serial})")
        pos = stamp.end()
    elif text.startswith(b"audit("):
        node.note(CHAT, PROTOCOL, "audit( stamp not in the form audit(SECONDS.MILLIS:SERIAL):")
    parts += _fields(node, buf, text[pos:], start + pos, msg.type, "audit")
    summary = " ".join(parts)
    return summary if len(summary) <= SUMMARY_MAX else summary[: SUMMARY_MAX - 3] + "..."


# -- struct audit_rule_data ----------------------------------------------------------

MAX_FIELDS = 64
BITMASK_WORDS = 64
RULE_FIXED = 4 * (3 + BITMASK_WORDS + 3 * MAX_FIELDS + 1)

FILTER_LISTS = {
    0: "user",
    1: "task",
    2: "entry",
    3: "watch",
    4: "exit",
    5: "exclude",
    6: "fs",
    7: "uring",
}
FILTER_PREPEND = 0x10
ACTIONS = {0: "never", 1: "possible", 2: "always"}
# linux/audit.h: AUDIT_FEATURE_ONLY_UNSET_LOGINUID 0, LOGINUID_IMMUTABLE 1 (bit numbers)
FEATURES = {1: "ONLY_UNSET_LOGINUID", 2: "LOGINUID_IMMUTABLE"}
FIELDS = {
    0: "pid", 1: "uid", 2: "euid", 3: "suid", 4: "fsuid", 5: "gid", 6: "egid", 7: "sgid",
    8: "fsgid", 9: "loginuid", 10: "pers", 11: "arch", 12: "msgtype", 13: "subj_user",
    14: "subj_role", 15: "subj_type", 16: "subj_sen", 17: "subj_clr", 18: "ppid", 19: "obj_user",
    20: "obj_role", 21: "obj_type", 22: "obj_lev_low", 23: "obj_lev_high", 24: "loginuid_set",
    25: "sessionid", 26: "fstype", 100: "devmajor", 101: "devminor", 102: "inode", 103: "exit",
    104: "success", 105: "watch", 106: "perm", 107: "dir", 108: "filetype", 109: "obj_uid",
    110: "obj_gid", 111: "field_compare", 112: "exe", 113: "saddr_fam", 200: "a0", 201: "a1",
    202: "a2", 203: "a3", 210: "key",
}  # fmt: skip
# Fields whose value is the length of a string in the rule's buffer.
STRING_FIELDS = frozenset({13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 105, 107, 112, 210})
OPERATORS = {
    0x08000000: "&", 0x10000000: "<", 0x20000000: ">", 0x30000000: "!=", 0x40000000: "=",
    0x48000000: "&=", 0x50000000: "<=", 0x60000000: ">=",
}  # fmt: skip
OPERATOR_MASK = 0x78000000


def _u32_array(buf: bytes, off: int, count: int, bo: str) -> tuple[int, ...]:
    return struct.unpack_from(f"{bo}{count}I", buf, off)


def rule(msg: Any, buf: bytes, start: int, end: int, bo: str) -> str:
    """struct audit_rule_data (AUDIT_ADD_RULE, AUDIT_DEL_RULE, AUDIT_LIST_RULES)."""
    node = Node("audit.rule", "struct audit_rule_data", start, end - start, buf)
    msg.node.add(node)
    if end - start < RULE_FIXED:
        node.value = bytes(buf[start:end])
        node.fmt = hexbytes
        node.note(
            WARN,
            MALFORMED,
            f"struct audit_rule_data needs {RULE_FIXED} bytes, only {end - start} present",
        )
        return ""
    flags, action, count = struct.unpack_from(bo + "3I", buf, start)
    lst = FILTER_LISTS.get(flags & ~FILTER_PREPEND, str(flags & ~FILTER_PREPEND))
    flag_text = lst + (",prepend" if flags & FILTER_PREPEND else "")
    n = Node("audit.rule.flags", "flags", start, 4, buf, flags, None)
    n._display = f"{flag_text} (0x{flags:x})"
    node.add(n)
    n = Node("audit.rule.action", "action", start + 4, 4, buf, action, None)
    n._display = f"{ACTIONS.get(action, '?')} ({action})"
    node.add(n)
    cnode = node.add(Node("audit.rule.field_count", "field_count", start + 8, 4, buf, count, None))
    if count > MAX_FIELDS:
        cnode.note(
            WARN, MALFORMED, f"field_count {count} is more than AUDIT_MAX_FIELDS ({MAX_FIELDS})"
        )
        count = MAX_FIELDS
    off = start + 12
    mask = _u32_array(buf, off, BITMASK_WORDS, bo)
    syscalls = [32 * w + b for w, word in enumerate(mask) for b in range(32) if word >> b & 1]
    mnode = Node("audit.rule.mask", "mask", off, 4 * BITMASK_WORDS, buf, syscalls, None)
    all_set = all(w == 0xFFFFFFFF for w in mask)
    mnode._display = "all syscalls" if all_set else (" ".join(map(str, syscalls)) or "none")
    node.add(mnode)
    off += 4 * BITMASK_WORDS
    fields = _u32_array(buf, off, MAX_FIELDS, bo)
    values = _u32_array(buf, off + 4 * MAX_FIELDS, MAX_FIELDS, bo)
    fflags = _u32_array(buf, off + 8 * MAX_FIELDS, MAX_FIELDS, bo)
    for abbrev, label, arr, base in (
        ("fields", "fields", fields, off),
        ("values", "values", values, off + 4 * MAX_FIELDS),
        ("fieldflags", "fieldflags", fflags, off + 8 * MAX_FIELDS),
    ):
        arr_node = Node(f"audit.rule.{abbrev}", label, base, 4 * MAX_FIELDS, buf)
        arr_node._display = f"{count} of {MAX_FIELDS} in use"
        for i in range(count):
            el = Node(f"audit.rule.{abbrev}", f"[{i}]", base + 4 * i, 4, buf, arr[i], None)
            if abbrev == "fields":
                el._display = f"{FIELDS.get(arr[i], '?')} ({arr[i]})"
            elif abbrev == "fieldflags":
                el._display = f"{OPERATORS.get(arr[i] & OPERATOR_MASK, '?')} (0x{arr[i]:x})"
            arr_node.add(el)
        if count < MAX_FIELDS:
            # the rest of the fixed array: zero in every rule a kernel or
            # auditctl writes; shown as one node so no byte is unaccounted
            rest = Node(
                f"audit.rule.{abbrev}.unused",
                "unused",
                base + 4 * count,
                4 * (MAX_FIELDS - count),
                buf,
            )
            rest._display = f"{MAX_FIELDS - count} entries" + (
                ", not all zero" if any(arr[count:]) else ", zero"
            )
            arr_node.add(rest)
        if any(arr[count:]):
            arr_node.note(NOTE, PROTOCOL, f"{label} beyond field_count are not zero")
        node.add(arr_node)
    off += 12 * MAX_FIELDS
    buflen = struct.unpack_from(bo + "I", buf, off)[0]
    node.add(Node("audit.rule.buflen", "buflen", off, 4, buf, buflen, None))
    off += 4
    pad = end - off - buflen
    padding = None
    if 0 < pad < 4 and not any(buf[off + buflen : end]):
        # NLMSG_SPACE: libaudit counts the alignment padding in nlmsg_len
        end = off + buflen
        padding = Node("audit.rule.padding", "padding", end, pad, buf, bytes(pad), hexbytes)
    strings = Node("audit.rule.buf", "buf", off, end - off, buf)
    strings._display = f"{end - off} bytes"
    node.add(strings)
    if padding is not None:
        node.add(padding)
    if buflen != end - off:
        strings.note(WARN, MALFORMED, f"buflen {buflen} but {end - off} bytes follow the struct")
    conds = []
    p = off
    for i in range(count):
        name = FIELDS.get(fields[i], str(fields[i]))
        op = OPERATORS.get(fflags[i] & OPERATOR_MASK, "?")
        if fields[i] in STRING_FIELDS:
            ln = values[i]
            if p + ln > end:
                strings.note(
                    WARN, MALFORMED, f"string of field [{i}] ({ln} bytes) runs past the buffer"
                )
                break
            s = bytes(buf[p : p + ln]).decode("utf-8", "backslashreplace")
            strings.add(Node("audit.rule.string", f"[{i}] {name}", p, ln, buf, s, None))
            conds.append(f"{name}{op}{s}")
            p += ln
        elif fields[i] == 11:  # AUDIT_ARCH
            conds.append(f"{name}{op}{values[i]:x}")
        else:
            conds.append(f"{name}{op}{values[i]}")
    sc = "all" if all_set else ",".join(map(str, syscalls))
    return " ".join(
        [f"{flag_text},{ACTIONS.get(action, action)}"]
        + ([f"syscall={sc}"] if syscalls else [])
        + conds
    )


def signal_info(msg: Any, buf: bytes, start: int, end: int, bo: str) -> str:
    """struct audit_sig_info { uid_t uid; pid_t pid; char ctx[]; }."""
    node = Node("audit.sig_info", "struct audit_sig_info", start, end - start, buf)
    msg.node.add(node)
    if end - start < 8:
        node.value = bytes(buf[start:end])
        node.fmt = hexbytes
        node.note(
            WARN, MALFORMED, f"struct audit_sig_info needs 8 bytes, only {end - start} present"
        )
        return ""
    uid, pid = struct.unpack_from(bo + "Ii", buf, start)
    node.add(Node("audit.sig_info.uid", "uid", start, 4, buf, uid, None))
    node.add(Node("audit.sig_info.pid", "pid", start + 4, 4, buf, pid, None))
    text = ""
    if end > start + 8:
        ctx = bytes(buf[start + 8 : end]).split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
        node.add(Node("audit.sig_info.ctx", "ctx", start + 8, end - start - 8, buf, ctx, None))
        text = f" ctx {ctx}"
    return f"uid {uid} pid {pid}{text}"


def make_equiv(msg: Any, buf: bytes, start: int, end: int, bo: str) -> str:
    """Two u32 sizes, then the two paths (kernel/audit.c AUDIT_MAKE_EQUIV)."""
    node = Node("audit.make_equiv", "paths", start, end - start, buf)
    msg.node.add(node)
    if end - start < 8:
        node.value = bytes(buf[start:end])
        node.fmt = hexbytes
        node.note(
            WARN, MALFORMED, f"AUDIT_MAKE_EQUIV needs 8 bytes of sizes, only {end - start} present"
        )
        return ""
    sizes = struct.unpack_from(bo + "2I", buf, start)
    node.add(Node("audit.make_equiv.sizes", "sizes", start, 8, buf, list(sizes), None))
    p = start + 8
    paths = []
    for i, size in enumerate(sizes):
        if p + size > end:
            node.note(WARN, MALFORMED, f"path {i} of {size} bytes runs past the message")
            break
        s = bytes(buf[p : p + size]).decode("utf-8", "backslashreplace")
        node.add(Node("audit.make_equiv.path", f"path[{i}]", p, size, buf, s, None))
        paths.append(s)
        p += size
    return " = ".join(paths)


AUDIT_FEATURES = (("vers", None), ("mask", FEATURES), ("features", FEATURES), ("lock", FEATURES))


def features_request(msg: Any, buf: bytes, start: int, end: int, bo: str) -> str:
    """AUDIT_GET_FEATURE request: nothing, or struct audit_features (4 u32)."""
    if end == start:
        return ""
    node = Node("audit.features", "struct audit_features", start, end - start, buf)
    msg.node.add(node)
    if end - start != 16:
        node.value = bytes(buf[start:end])
        node.fmt = hexbytes
        node.note(WARN, MALFORMED, f"struct audit_features has 16 bytes, not {end - start}")
        return ""
    for i, (name, names) in enumerate(AUDIT_FEATURES):
        v = struct.unpack_from(bo + "I", buf, start + 4 * i)[0]
        n = Node(f"audit.features.{name}", name, start + 4 * i, 4, buf, v, None)
        if names is not None:
            flags = [t for bit, t in names.items() if v & bit]
            rest = v & ~sum(names)
            n._display = f"0x{v:x} ({'|'.join(flags + ([f'0x{rest:x}'] if rest else [])) or 0})"
        node.add(n)
    return ""


# -- the layouts above, declared for the Scapy layers and the strategies
# (dissect.schema.bodies)

BODIES = {
    "record": Layout("audit record", (Text("text", style="audit", label="record"),)),
    "signal_info": Layout(
        "struct audit_sig_info",
        (Int("uid", "I"), Int("pid", "i"), Text("ctx", terminated=True)),
    ),
    "rule": Layout(
        "struct audit_rule_data",
        (
            Int("flags", "I", FILTER_LISTS, choices=tuple(FILTER_LISTS)),
            Int("action", "I", ACTIONS, choices=tuple(ACTIONS)),
            Int("field_count", "I", limit=MAX_FIELDS),
            Int("mask", "I", count=BITMASK_WORDS),
            # string fields take their length from `values` and bytes of buf
            Int("fields", "I", FIELDS, count=MAX_FIELDS,
                choices=tuple(f for f in FIELDS if f not in STRING_FIELDS)),
            Int("values", "I", count=MAX_FIELDS),
            Int("fieldflags", "I", count=MAX_FIELDS, choices=tuple(OPERATORS)),
            Int("buflen", "I", length_of="buf"),
            Rest("buf", length="buflen"),
            Rest("padding", pad=3),  # NLMSG_SPACE padding libaudit counts
        ),
    ),
    "features_request": Layout(
        "struct audit_features",
        tuple(Int(name, "I", names) for name, names in AUDIT_FEATURES),
    ),
    "make_equiv": Layout(
        "AUDIT_MAKE_EQUIV paths",
        (Int("sizes", "I", count=2, length_of="paths"), Strings("paths", "sizes", label="path")),
    ),
}  # fmt: skip
