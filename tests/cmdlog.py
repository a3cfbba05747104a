"""The commands log the nlmon VM writes beside each capture.

``### [epoch] $ command`` starts a command, its output follows, and
``### [epoch] rc=N`` ends it; the epoch is the guest clock, the same clock as
the capture's timestamps, so frames can be matched to the command that made
them.
"""

from __future__ import annotations

import re
from pathlib import Path

_CMD = re.compile(r"^### \[(\d+\.\d+)\] \$ (.*)$")
_RC = re.compile(r"^### \[(\d+\.\d+)\] rc=(\d+)$")


class Command:
    def __init__(self, line: str, start: float) -> None:
        self.line = line
        self.start_ns = round(start * 1e9)
        self.end_ns = self.start_ns
        self.rc: int | None = None
        self.output: list[str] = []


def read_commands(log: Path) -> list[Command]:
    cmds: list[Command] = []
    cur: Command | None = None
    for line in log.read_text().splitlines():
        m = _CMD.match(line)
        if m:
            cur = Command(m.group(2), float(m.group(1)))
            cmds.append(cur)
            continue
        m = _RC.match(line)
        if m and cur is not None:
            cur.end_ns = round(float(m.group(1)) * 1e9)
            cur.rc = int(m.group(2))
            cur = None
            continue
        if cur is not None and not line.startswith("#"):
            cur.output.append(line)
    return cmds


def find_command(cmds: list[Command], text: str, nth: int = 0) -> Command:
    """The `nth` command whose line is `text` (or starts with it, for a
    multi-line script)."""
    hits = [c for c in cmds if c.line == text or c.line.startswith(text + "\n")]
    assert len(hits) > nth, f"command not in the log: {text}"
    return hits[nth]


def messages_during(frames, cmd: Command, family: str, type_name: str | None = None) -> list:
    """Messages of `family` captured while `cmd` ran."""
    return [
        m
        for f in frames
        if cmd.start_ns <= f.ts_ns <= cmd.end_ns
        for m in f.messages
        if m.family == family and (type_name is None or m.type_name == type_name)
    ]


def genl_ids(tsv: Path) -> dict[str, int]:
    """The guest's generic netlink family ids (NAME.genl_families.tsv)."""
    out = {}
    for line in tsv.read_text().splitlines():
        fid, name = line.split("\t")
        out[name] = int(fid)
    return out


def genl_types_seen(frames, families: set[str]) -> dict[str, set[int]]:
    """The nlmsg_type (family id) each of `families` used in the capture."""
    seen: dict[str, set[int]] = {}
    for f in frames:
        for m in f.messages:
            if m.family in families and m.type >= 16:
                seen.setdefault(m.family, set()).add(m.type)
    return seen


def bad_notes(msg) -> list[tuple[str, str]]:
    """(field, text) of every `undecoded` or `malformed` note of a message."""
    return [
        (n.abbrev, note.text)
        for n, note in msg.node.all_notes()
        if note.group in ("undecoded", "malformed")
    ]


def named_and_clean(frames, families: set[str]) -> tuple[set[tuple[str, str]], int]:
    """Assert every message of `families` has a command name, a layout and no
    `undecoded`/`malformed` note; return the (family, name) pairs and the count."""
    names: set[tuple[str, str]] = set()
    count = 0
    for f in frames:
        for m in f.messages:
            if m.family not in families:
                continue
            count += 1
            names.add((m.family, m.type_name))
            assert m.type_name and not re.search(r"cmd \d+$|^\d+$", m.type_name), (
                f"frame {f.number}: unnamed {m.type_name!r}"
            )
            if m.type >= 16:
                assert m.layout is not None, f"frame {f.number}: no layout for {m.type_name}"
            bad = bad_notes(m)
            assert not bad, f"frame {f.number} {m.type_name}: {bad}"
    return names, count


def assert_family_ids(frames, tsv: Path, families: set[str]) -> None:
    """The family ids in the capture are the guest's (NAME.genl_families.tsv)."""
    ids = genl_ids(tsv)
    seen = genl_types_seen(frames, families)
    assert set(seen) == families
    for name, types in seen.items():
        assert types == {ids[name]}, name
