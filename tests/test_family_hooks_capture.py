"""trace_hooks_618: AUDIT, CONNECTOR and KOBJECT_UEVENT from a real kernel.

nlmon never mirrors these families, so this capture was made by ``nlshark
trace`` (strace) on a 6.18 kernel (captures/scripts/trace_hooks_618.sh).
The decode is checked against what the tools themselves printed, recorded in
captures/trace_hooks_618.commands.log:

- the rule ``auditctl -l`` listed is the rule of the AUDIT_LIST_RULES reply
  (and of the AUDIT_ADD_RULE/AUDIT_DEL_RULE requests), field by field; the
  ``auditctl -s`` values are those of the AUDIT_GET reply; the user message
  text is that of AUDIT_USER;
- the fork, exec and exit events trace_hooks_618_proc.py printed for its
  three children are the proc connector events of those pids, in order, and
  the acknowledgement it printed is the PROC_EVENT_NONE event;
- every uevent ``udevadm monitor --kernel --property`` printed (ACTION,
  DEVPATH, SUBSYSTEM, SEQNUM) is one decoded uevent datagram, in order.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cmdlog import bad_notes, find_command, messages_during, read_commands

import dissect

CAP = Path(__file__).resolve().parents[1] / "captures" / "trace_hooks_618.pcapng"
LOG = CAP.with_name("trace_hooks_618.commands.log")
RULE = "-F arch=b64 -S openat -F path=/nonexistent -k nlshark"
# Facts for the rule's values: linux/audit.h AUDIT_ARCH_X86_64 (EM_X86_64 62
# | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE) and x86_64's syscall table (openat
# is 257), which auditctl prints by name.
ARCH_B64 = 0xC000003E
OPENAT = 257


@pytest.fixture(scope="module")
def frames():
    return list(dissect.read_capture(CAP))


@pytest.fixture(scope="module")
def cmds():
    return read_commands(LOG)


def _children(node, name: str):
    return [n for n in node.walk() if n.name == name]


def _value(node, name: str):
    found = _children(node, name)
    assert found, f"no {name} under {node.abbrev}"
    return found[0].value


def test_every_message_decodes_cleanly(frames):
    families = {m.family for f in frames for m in f.messages}
    assert families == {"audit", "connector", "kobject_uevent", "rt-link"}
    for f in frames:
        for m in f.messages:
            assert not bad_notes(m), (f.number, m.type_name, bad_notes(m))
            assert m.type_name and not m.type_name.startswith("type ")


def test_audit_status_is_what_auditctl_printed(frames, cmds):
    cmd = find_command(cmds, "timeout 10 auditctl -s")
    printed = dict(line.split(" ", 1) for line in cmd.output)
    replies = [m for m in messages_during(frames, cmd, "audit", "AUDIT_GET") if m.role == "reply"]
    assert len(replies) == 1
    node = replies[0].node
    # auditctl prints struct audit_status members under their own names
    keys = set(printed) - {"loginuid_immutable"}  # from AUDIT_GET_FEATURE
    assert len(keys) == 9
    for key in keys:
        assert _value(node, key) == int(printed[key]), key
    assert printed["loginuid_immutable"] == "0 unlocked"
    (features,) = [
        m for m in messages_during(frames, cmd, "audit", "AUDIT_GET_FEATURE") if m.role == "reply"
    ]
    assert _value(features.node, "features") == 0 and _value(features.node, "lock") == 0


def _rule_fields(m) -> dict[str, object]:
    node = m.node
    out: dict[str, object] = {
        "flags": _children(node, "flags")[0].display,
        "action": _children(node, "action")[0].display,
        "mask": _value(node, "mask"),
    }
    fields = _children(node, "fields")[0]
    values = _children(node, "values")[0]
    for f, v in zip(fields.children, values.children):
        name = f.display.split(" ")[0]
        out[name] = v.value
    for s in _children(node, "buf")[0].children:
        out[s.name.split(" ", 1)[1]] = s.value
    return out


def test_the_listed_rule_is_the_rule_auditctl_printed(frames, cmds):
    add = find_command(cmds, f"timeout 10 auditctl -a exit,always {RULE}")
    listed = find_command(cmds, "timeout 10 auditctl -l", 1)
    delete = find_command(cmds, f"timeout 10 auditctl -d exit,always {RULE}")
    assert add.rc == listed.rc == delete.rc == 0
    # what auditctl printed: -a always,exit -F arch=b64 -S openat -F path=... -F key=...
    (line,) = listed.output
    printed = dict(re.findall(r"-F (\w+)=(\S+)", line))
    assert line.startswith("-a always,exit ") and " -S openat " in line
    assert printed == {"arch": "b64", "path": "/nonexistent", "key": "nlshark"}
    rules = [
        *messages_during(frames, add, "audit", "AUDIT_ADD_RULE"),
        *messages_during(frames, listed, "audit", "AUDIT_LIST_RULES"),
        *messages_during(frames, delete, "audit", "AUDIT_DEL_RULE"),
    ]
    rules = [m for m in rules if m.type != 3 and _children(m.node, "buflen")]
    assert [(m.type_name, m.role) for m in rules] == [
        ("AUDIT_ADD_RULE", "request"),
        ("AUDIT_LIST_RULES", "reply"),
        ("AUDIT_DEL_RULE", "request"),
    ]
    for m in rules:
        got = _rule_fields(m)
        assert got["flags"] == "exit (0x4)" and got["action"] == "always (2)"
        assert got["mask"] == [OPENAT] and got["arch"] == ARCH_B64
        assert got["watch"] == printed["path"] and got["key"] == printed["key"]
        assert m.info == (
            f"exit,always syscall={OPENAT} arch={ARCH_B64:x} watch=/nonexistent key=nlshark"
        )
    # before and after: the kernel answered the dump with no rule at all
    for nth in (0, 2):
        cmd = find_command(cmds, "timeout 10 auditctl -l", nth)
        assert cmd.output == ["No rules"]
        got = messages_during(frames, cmd, "audit")
        assert [m.type_name for m in got if m.role != "request"] == ["NLMSG_ERROR", "NLMSG_DONE"]


def test_user_message_text(frames, cmds):
    cmd = find_command(cmds, "timeout 10 auditctl -m nlshark trace_hooks_618 user message")
    (m,) = messages_during(frames, cmd, "audit", "AUDIT_USER")
    assert m.info.startswith("text=nlshark trace_hooks_618 user message ")
    assert 'exe="/usr/sbin/auditctl"' in m.info


def test_proc_events_are_what_the_program_printed(frames, cmds):
    cmd = find_command(cmds, "timeout 20 python3 captures/scripts/trace_hooks_618_proc.py")
    assert cmd.rc == 0
    children = [
        int(x) for x in re.findall(r"^child pid (\d+) exited 0$", "\n".join(cmd.output), re.M)
    ]
    assert len(children) == 3
    printed = [line for line in cmd.output if re.match(r"(fork|exec|exit) ", line)]
    msgs = messages_during(frames, cmd, "connector")
    ours = []
    for m in msgs:
        what = _children(m.node, "what")
        if not what or m.role == "request":
            continue
        fork, execd, exit_ = (_children(m.node, k) for k in ("fork", "exec", "exit"))
        if fork and _value(fork[0], "child_pid") in children:
            ours.append(
                f"fork parent {_value(fork[0], 'parent_pid')} child {_value(fork[0], 'child_pid')}"
            )
        elif execd and _value(execd[0], "process_pid") in children:
            ours.append(f"exec {_value(execd[0], 'process_pid')}")
        elif exit_ and _value(exit_[0], "process_pid") in children:
            e = exit_[0]
            ours.append(
                f"exit {_value(e, 'process_pid')} code {_value(e, 'exit_code')}"
                f" signal {_value(e, 'exit_signal')}"
            )
    assert ours == printed and len(ours) == 9
    # the parent of every fork is the program, the pid that sent the requests
    requests = [m for m in msgs if m.role == "request"]
    assert [m.info for m in requests] == [
        "proc listen events fork,exec,uid,gid,sid,ptrace,comm,nonzero_exit,coredump,exit",
        "proc ignore",
    ]
    (ack_line,) = [line for line in cmd.output if line.startswith("ack ")]
    seq, ack, err = map(int, re.fullmatch(r"ack seq (\d+) ack (\d+) err (\d+)", ack_line).groups())
    acks = [m for m in msgs if m.info.startswith("proc ack")]
    assert len(acks) == 1
    assert _value(acks[0].node, "seq") == seq and _value(acks[0].node, "ack") == ack
    assert _value(acks[0].node, "err") == err == 0


def _udev_events(log: Path) -> list[dict[str, str]]:
    """The property blocks of the background udevadm monitor output."""
    lines = log.read_text().splitlines()
    start = lines.index("# background(udev) output:")
    events: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in lines[start + 1 :]:
        if not line.startswith("#   "):
            break
        text = line[4:]
        if "=" in text and not text.startswith("KERNEL"):
            key, value = text.split("=", 1)
            cur[key] = value
        elif not text.strip() and cur:
            events.append(cur)
            cur = {}
    if cur:
        events.append(cur)
    return events


def test_uevents_are_what_udevadm_printed(frames):
    printed = _udev_events(LOG)
    ours = []
    for f in frames:
        for m in f.messages:
            if m.family != "kobject_uevent":
                continue
            # the KEY=VALUE property nodes of the datagram
            ours.append({n.name: str(n.value) for n in m.node.walk() if n.name.isupper()})
    assert len(printed) == len(ours) == 20
    for want, got in zip(printed, ours):
        for key in ("ACTION", "DEVPATH", "SUBSYSTEM", "SEQNUM"):
            assert got[key] == want[key], (key, want, got)
    devices = [e for e in printed if e["SUBSYSTEM"] == "net"]
    assert [(e["ACTION"], e["DEVPATH"]) for e in devices] == [
        ("add", "/devices/virtual/net/hv1"),
        ("add", "/devices/virtual/net/hv0"),
        ("remove", "/devices/virtual/net/hv0"),
        ("remove", "/devices/virtual/net/hv1"),
    ]
