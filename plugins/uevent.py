"""NETLINK_KOBJECT_UEVENT frames: kernel uevents and udev's re-broadcasts.

A uevent datagram carries no struct nlmsghdr, so the core hands the whole
payload to `frame` (the spec's ``frame-hook``), which returns one message
node per datagram:

- kernel form (lib/kobject_uevent.c): ``ACTION@DEVPATH\\0`` followed by
  ``KEY=VALUE\\0`` properties (ACTION, DEVPATH, SUBSYSTEM, SEQNUM, ...);
- udev form (systemd's sd-device/device-monitor.c, sent to group 2):
  ``libudev\\0`` then the rest of struct udev_monitor_netlink_header —
  u32 magic 0xfeedcafe (big-endian), u32 header_size, u32 properties_off,
  u32 properties_len (host order), u32 filter_subsystem_hash,
  u32 filter_devtype_hash, u32 filter_tag_bloom_hi, u32 filter_tag_bloom_lo
  (big-endian, for socket filters) — and the ``KEY=VALUE\\0`` properties at
  properties_off.

Each property becomes a child node named by its key.  Anything malformed
(no ``@``, no terminating NUL, a property without ``=``, a bad magic or
offsets outside the datagram) becomes a note; nothing here raises.
"""

from __future__ import annotations

import struct

from dissect.core.display import hexbytes
from dissect.core.tree import CHAT, ERROR, MALFORMED, NOTE, PROTOCOL, UNDECODED, WARN, Node
from dissect.schema.bodies import Choice, Const, Int, Layout, Properties, Text

LIBUDEV_PREFIX = b"libudev\0"
UDEV_MONITOR_MAGIC = 0xFEEDCAFE
UDEV_HEADER_SIZE = 40


def _properties(parent: Node, buf: bytes, start: int, end: int) -> dict[str, str]:
    """KEY=VALUE\\0 strings in ``buf[start:end]`` as children of `parent`."""
    props: dict[str, str] = {}
    p = start
    while p < end:
        nul = buf.find(b"\0", p, end)
        stop = end if nul < 0 else nul
        if stop == p:  # padding or empty strings: a run of NULs
            run = p
            while p < end and buf[p] == 0:
                p += 1
            if p - run > 1:
                parent.add(Node("uevent.padding", "NUL bytes", run, p - run, buf, None, None))
            continue
        raw = bytes(buf[p:stop])
        key, eq, value = raw.partition(b"=")
        k = key.decode("utf-8", "backslashreplace")
        v = value.decode("utf-8", "backslashreplace")
        node = Node(
            f"uevent.property.{k.lower()}" if eq else "uevent.property",
            k,
            p,
            stop - p,
            buf,
            v,
            None,
        )
        if not eq:
            node.name = "property"
            node.value = k
            node.note(WARN, MALFORMED, f"property {k!r} has no '='")
        else:
            props.setdefault(k, v)
        if nul < 0:
            node.note(NOTE, MALFORMED, "last property is not NUL-terminated")
        parent.add(node)
        p = stop + 1
    return props


def _summary(props: dict[str, str], action: str | None, devpath: str | None) -> str:
    """``add /devices/virtual/net/veth0 (net)``: the line reads ``uevent add
    ...`` after the message's type name."""
    action = action or props.get("ACTION", "?")
    devpath = devpath or props.get("DEVPATH", "?")
    sub = props.get("SUBSYSTEM")
    return f"{action} {devpath}" + (f" ({sub})" if sub else "")


def _kernel(buf: bytes, start: int, end: int) -> tuple[Node, str, str]:
    node = Node("uevent", "uevent", start, end - start, buf)
    nul = buf.find(b"\0", start, end)
    hend = end if nul < 0 else nul
    header = bytes(buf[start:hend])
    hnode = Node(
        "uevent.header",
        "ACTION@DEVPATH",
        start,
        hend - start,
        buf,
        header.decode("utf-8", "backslashreplace"),
        None,
    )
    node.add(hnode)
    action = devpath = None
    at = header.find(b"@")
    if at < 0:
        hnode.note(ERROR, MALFORMED, "no '@' between ACTION and DEVPATH: not a kernel uevent")
    else:
        action = header[:at].decode("utf-8", "backslashreplace")
        devpath = header[at + 1 :].decode("utf-8", "backslashreplace")
        hnode.add(Node("uevent.action", "action", start, at, buf, action, None))
        hnode.add(
            Node(
                "uevent.devpath",
                "devpath",
                start + at + 1,
                hend - start - at - 1,
                buf,
                devpath,
                None,
            )
        )
    if nul < 0:
        hnode.note(WARN, MALFORMED, "the ACTION@DEVPATH header is not NUL-terminated")
        return node, "uevent", _summary({}, action, devpath)
    props = _properties(node, buf, nul + 1, end)
    if action is not None and props.get("ACTION", action) != action:
        node.note(NOTE, PROTOCOL, f"ACTION={props['ACTION']} differs from the header's {action}")
    if devpath is not None and props.get("DEVPATH", devpath) != devpath:
        node.note(NOTE, PROTOCOL, f"DEVPATH={props['DEVPATH']} differs from the header's {devpath}")
    return node, "uevent", _summary(props, action, devpath)


def _udev(buf: bytes, start: int, end: int, bo: str) -> tuple[Node, str, str]:
    node = Node("uevent.udev", "udev event", start, end - start, buf)
    size = end - start
    if size < UDEV_HEADER_SIZE:
        bad = Node(
            "uevent.udev.header",
            "struct udev_monitor_netlink_header",
            start,
            size,
            buf,
            bytes(buf[start:end]),
            hexbytes,
        )
        bad.note(
            ERROR,
            MALFORMED,
            f"struct udev_monitor_netlink_header needs {UDEV_HEADER_SIZE} bytes, only {size} present",
        )
        node.add(bad)
        return node, "udev event", "(truncated)"
    (magic,) = struct.unpack_from(">I", buf, start + 8)
    header_size, props_off, props_len = struct.unpack_from(bo + "III", buf, start + 12)
    hashes = struct.unpack_from(">4I", buf, start + 24)
    h = Node(
        "uevent.udev.header", "struct udev_monitor_netlink_header", start, UDEV_HEADER_SIZE, buf
    )
    h.add(Node("uevent.udev.prefix", "prefix", start, 8, buf, "libudev", None))
    m = h.add(Node("uevent.udev.magic", "magic", start + 8, 4, buf, magic, lambda v: f"0x{v:08x}"))
    if magic != UDEV_MONITOR_MAGIC:
        m.note(ERROR, MALFORMED, f"magic 0x{magic:08x} is not 0x{UDEV_MONITOR_MAGIC:08x}")
    h.add(Node("uevent.udev.header_size", "header_size", start + 12, 4, buf, header_size, None))
    h.add(Node("uevent.udev.properties_off", "properties_off", start + 16, 4, buf, props_off, None))
    h.add(Node("uevent.udev.properties_len", "properties_len", start + 20, 4, buf, props_len, None))
    for i, name in enumerate(
        (
            "filter_subsystem_hash",
            "filter_devtype_hash",
            "filter_tag_bloom_hi",
            "filter_tag_bloom_lo",
        )
    ):
        h.add(
            Node(
                f"uevent.udev.{name}",
                name,
                start + 24 + 4 * i,
                4,
                buf,
                hashes[i],
                lambda v: f"0x{v:08x}",
            )
        )
    node.add(h)
    if props_off < UDEV_HEADER_SIZE or props_off + props_len > size:
        h.note(
            ERROR,
            MALFORMED,
            f"properties at offset {props_off}, {props_len} bytes, do not lie within the {size}-byte datagram after the header",
        )
        if size > UDEV_HEADER_SIZE:
            rest = Node(
                "uevent.udev.data",
                "data",
                start + UDEV_HEADER_SIZE,
                size - UDEV_HEADER_SIZE,
                buf,
                bytes(buf[start + UDEV_HEADER_SIZE : end]),
                hexbytes,
            )
            node.add(rest)
        return node, "udev event", "(bad properties offset)"
    if header_size != props_off:
        h.note(CHAT, PROTOCOL, f"header_size {header_size} differs from properties_off {props_off}")
    pstart = start + props_off
    if pstart > start + UDEV_HEADER_SIZE:
        gap = Node(
            "uevent.udev.gap",
            "header extension",
            start + UDEV_HEADER_SIZE,
            props_off - UDEV_HEADER_SIZE,
            buf,
            bytes(buf[start + UDEV_HEADER_SIZE : pstart]),
            hexbytes,
        )
        gap.note(NOTE, UNDECODED, "bytes between the known header and the properties")
        node.add(gap)
    props = _properties(node, buf, pstart, pstart + props_len)
    pend = pstart + props_len
    if pend < end:
        tail = Node(
            "uevent.udev.trailer",
            "trailing bytes",
            pend,
            end - pend,
            buf,
            bytes(buf[pend:end]),
            hexbytes,
        )
        tail.note(WARN, MALFORMED, f"{end - pend} bytes after properties_len")
        node.add(tail)
    return node, "udev event", _summary(props, None, None)


def frame(buf: bytes, start: int, end: int, bo: str) -> list[tuple[Node, str, str]]:
    """One uevent datagram: the kernel's form or udev's."""
    if start >= end:
        node = Node("uevent", "uevent", start, 0, buf)
        node.note(WARN, MALFORMED, "empty uevent datagram")
        return [(node, "uevent", "")]
    if bytes(buf[start : start + 8]) == LIBUDEV_PREFIX:
        return [_udev(buf, start, end, bo)]
    return [_kernel(buf, start, end)]


# -- the two forms, declared for the Scapy layers and the strategies
# (dissect.schema.bodies)

_HASHES = (
    "filter_subsystem_hash",
    "filter_devtype_hash",
    "filter_tag_bloom_hi",
    "filter_tag_bloom_lo",
)
KERNEL_FORM = Layout(
    "uevent",
    (Text("header", terminated=True, label="ACTION@DEVPATH"), Properties("properties")),
    type_name="uevent",
)
UDEV_FORM = Layout(
    "udev event",
    (
        Const("prefix", LIBUDEV_PREFIX),
        Int("magic", ">I", default=UDEV_MONITOR_MAGIC, choices=(UDEV_MONITOR_MAGIC,), hex=True),
        Int("header_size", "I", default=UDEV_HEADER_SIZE, choices=(UDEV_HEADER_SIZE,)),
        # the properties follow the header: properties_off is where they start
        Int("properties_off", "I", offset_of="properties"),
        Int("properties_len", "I", length_of="properties"),
        *(Int(h, ">I", hex=True) for h in _HASHES),
        Properties("properties", length="properties_len"),
    ),
    type_name="udev event",
)


def _form(values: object, to_kernel: bool, data: bytes) -> str:
    return "udev" if data[:8] == LIBUDEV_PREFIX else "kernel"


BODIES = {
    "frame": Layout(
        "uevent datagram", (Choice("event", _form, {"kernel": KERNEL_FORM, "udev": UDEV_FORM}),)
    )
}
