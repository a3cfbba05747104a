"""nl80211 hooks: 802.11 frames and information elements.

nl80211 carries raw 802.11 data that a YAML spec cannot describe: whole
management frames (NL80211_ATTR_FRAME) and runs of information elements
(NL80211_ATTR_IE, NL80211_BSS_INFORMATION_ELEMENTS, ...).  These hooks split
them into nodes with exact offsets (802.11 header fields, fixed parameters,
one node per element: ``u8 id, u8 length, data``) and, when Scapy is
installed, let Scapy's 802.11 layers describe each element and frame.

The spec names the hooks (``hook: nl80211.information_elements``); the
engine calls ``hook(node, buf, start, end)`` with the attribute's node and
the payload's range in the frame.
"""

from __future__ import annotations

import contextlib
import struct
from typing import Any

from dissect.core.display import hexbytes, mac
from dissect.core.tree import MALFORMED, NOTE, WARN, Node

# IEEE 802.11 element IDs (the common ones; Scapy knows more when present).
ELEMENT_NAMES = {
    0: "SSID", 1: "Supported Rates", 3: "DS Parameter Set", 4: "CF Parameter Set",
    5: "TIM", 6: "IBSS Parameter Set", 7: "Country", 11: "BSS Load", 32: "Power Constraint",
    35: "TPC Report", 37: "Channel Switch Announcement", 42: "ERP", 45: "HT Capabilities",
    48: "RSN", 50: "Extended Supported Rates", 54: "Mobility Domain", 59: "Supported Operating Classes",
    61: "HT Operation", 70: "RM Enabled Capabilities", 71: "Multiple BSSID",
    74: "Overlapping BSS Scan Parameters", 107: "Interworking", 127: "Extended Capabilities",
    191: "VHT Capabilities", 192: "VHT Operation", 195: "Transmit Power Envelope",
    221: "Vendor Specific", 255: "Element ID Extension",
}  # fmt: skip

_scapy: Any = None


def _scapy_dot11() -> Any:
    """Scapy's 802.11 module, imported on first use (it costs a quarter of
    a second); False when Scapy is not installed."""
    global _scapy
    if _scapy is None:
        try:
            from scapy.layers import dot11

            _scapy = dot11
        except Exception:
            _scapy = False
    return _scapy


def _element_text(eid: int, data: bytes) -> str:
    if eid == 0:
        return repr(data.decode("utf-8", "backslashreplace")) if data else "(hidden)"
    if eid in (1, 50):
        rates = [f"{(b & 0x7F) / 2:g}{'*' if b & 0x80 else ''}" for b in data]
        return " ".join(rates) + " Mbit/s"
    if eid == 3 and len(data) == 1:
        return f"channel {data[0]}"
    if eid == 221 and len(data) >= 3:
        return f"OUI {data[:3].hex(':')} {hexbytes(data[3:])}"
    dot11 = _scapy_dot11()
    if dot11:
        try:
            elt = dot11.Dot11Elt(bytes([eid, len(data)]) + data)
            fields = {k: v for k, v in elt.fields.items() if k not in ("ID", "len", "info")}
            if fields:
                return ", ".join(f"{k}={v}" for k, v in fields.items())[:200]
        except Exception:
            pass
    return hexbytes(data)


def _element_name(eid: int) -> str:
    name = ELEMENT_NAMES.get(eid)
    if name is None:
        dot11 = _scapy_dot11()
        if dot11:
            name = getattr(dot11, "_dot11_id_enum", {}).get(eid)
    return name or f"Element {eid}"


def information_elements(node: Node, buf: bytes, start: int, end: int) -> None:
    """One child per element: ``u8 id, u8 length, data``."""
    abbrev = node.abbrev.rsplit(".", 1)[0] + ".element"
    off = start
    count = 0
    while off < end:
        if end - off < 2:
            tail = Node(abbrev, "trailing byte", off, end - off, buf, bytes(buf[off:end]), hexbytes)
            tail.note(WARN, MALFORMED, "1 byte left, too short for an element header")
            node.add(tail)
            break
        eid, ln = buf[off], buf[off + 1]
        size = min(2 + ln, end - off)
        data = bytes(buf[off + 2 : off + size])
        el = Node(abbrev, _element_name(eid), off, size, buf, data, hexbytes)
        el.display = _element_text(eid, data)
        if 2 + ln > end - off:
            el.note(
                WARN,
                MALFORMED,
                f"element length {ln} runs {2 + ln - (end - off)} bytes past the attribute",
            )
        node.add(el)
        count += 1
        off += size
    node.display = f"{count} elements"


_MGMT_SUBTYPES = {
    0: "Association Request", 1: "Association Response", 2: "Reassociation Request",
    3: "Reassociation Response", 4: "Probe Request", 5: "Probe Response", 8: "Beacon",
    9: "ATIM", 10: "Disassociation", 11: "Authentication", 12: "Deauthentication", 13: "Action",
    14: "Action No Ack",
}  # fmt: skip
# Fixed parameters before the elements of each management subtype: (name, size).
_FIXED = {
    0: [("capability", 2), ("listen interval", 2)],
    1: [("capability", 2), ("status", 2), ("association id", 2)],
    2: [("capability", 2), ("listen interval", 2), ("current AP", 6)],
    3: [("capability", 2), ("status", 2), ("association id", 2)],
    4: [],
    5: [("timestamp", 8), ("beacon interval", 2), ("capability", 2)],
    8: [("timestamp", 8), ("beacon interval", 2), ("capability", 2)],
    10: [("reason", 2)],
    11: [("algorithm", 2), ("transaction", 2), ("status", 2)],
    12: [("reason", 2)],
}


def frame(node: Node, buf: bytes, start: int, end: int) -> None:
    """An 802.11 frame: header fields, fixed parameters, elements."""
    ab = node.abbrev
    if end - start < 24:
        node.note(NOTE, MALFORMED, f"{end - start} bytes: shorter than an 802.11 management header")
        return
    fc = struct.unpack_from("<H", buf, start)[0]
    ftype = (fc >> 2) & 3
    subtype = (fc >> 4) & 15
    kind = (
        _MGMT_SUBTYPES.get(subtype, f"subtype {subtype}")
        if ftype == 0
        else f"type {ftype} subtype {subtype}"
    )
    fields = [
        ("frame control", 2, fc, f"0x{fc:04x} ({kind})"),
        ("duration", 2, struct.unpack_from("<H", buf, start + 2)[0], None),
        ("receiver", 6, bytes(buf[start + 4 : start + 10]), None),
        ("transmitter", 6, bytes(buf[start + 10 : start + 16]), None),
        ("BSSID", 6, bytes(buf[start + 16 : start + 22]), None),
        ("sequence control", 2, struct.unpack_from("<H", buf, start + 22)[0], None),
    ]
    off = start
    for name, size, value, text in fields:
        n = Node(
            f"{ab}.{name.replace(' ', '_').lower()}",
            name,
            off,
            size,
            buf,
            value,
            mac if size == 6 else None,
        )
        if text:
            n.display = text
        node.add(n)
        off += size
    if ftype == 0 and subtype in _FIXED:
        for name, size in _FIXED[subtype]:
            if end - off < size:
                break
            raw = bytes(buf[off : off + size])
            value: Any = int.from_bytes(raw, "little") if size in (2, 8) else raw
            node.add(
                Node(
                    f"{ab}.{name.replace(' ', '_')}",
                    name,
                    off,
                    size,
                    buf,
                    value,
                    mac if size == 6 else None,
                )
            )
            off += size
        if off < end:
            ies = Node(f"{ab}.elements", "elements", off, end - off, buf)
            information_elements(ies, buf, off, end)
            node.add(ies)
    elif off < end:
        node.add(Node(f"{ab}.body", "body", off, end - off, buf, bytes(buf[off:end]), hexbytes))
    dot11 = _scapy_dot11()
    summary = kind
    if dot11:
        with contextlib.suppress(Exception):
            summary = dot11.Dot11(bytes(buf[start:end])).summary()
    node.display = summary
