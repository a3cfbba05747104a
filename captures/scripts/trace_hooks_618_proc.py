"""Process events connector client for trace_hooks_618.sh.

Subscribes to the process events connector (NETLINK_CONNECTOR, callback
CN_IDX_PROC) for every event type, runs `true` three times, reads the events
for a second (and until the three children's exit events came), then
unsubscribes.  It prints each child's pid, the fork, exec and exit events it
read for those pids and the acknowledgement of its LISTEN request, so the
capture can be checked against its output.

The LISTEN request is the 8-byte struct proc_input with the filter
PROC_EVENT_ALL, the IGNORE request the older 4-byte form (a bare op): both
forms the kernel accepts.  The kernel passes its acks through the socket's
event filter too (a PROC_EVENT_NONE event), so a LISTEN for every event type
is acknowledged and an IGNORE is not: after it the socket gets nothing.

Facts from the kernel's uapi headers:
- linux/netlink.h: NETLINK_CONNECTOR 11; struct nlmsghdr (16 bytes);
  NLMSG_DONE 3, the message type connector users send.
- linux/connector.h: CN_IDX_PROC 1, CN_VAL_PROC 1; struct cn_msg
  { struct cb_id { u32 idx, val }; u32 seq, ack; u16 len, flags; data[] }.
- linux/cn_proc.h: enum proc_cn_mcast_op LISTEN 1, IGNORE 2; since 6.6
  struct proc_input { u32 mcast_op; u32 event_type } (a filter of
  PROC_EVENT_* bits: FORK 1, EXEC 2, EXIT 0x80000000); struct proc_event
  { u32 what, cpu; u64 timestamp_ns; union event_data } with fork
  (parent_pid, parent_tgid, child_pid, child_tgid), exec (process_pid,
  process_tgid), exit (process_pid, process_tgid, exit_code, exit_signal,
  parent_pid, parent_tgid); PROC_EVENT_NONE 0 is the ack { u32 err }.
The socket binds to multicast group CN_IDX_PROC (the connector's group is
its callback index).  Needs CAP_NET_ADMIN in the initial namespaces.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import sys
import time

NETLINK_CONNECTOR = 11
NLMSG_DONE = 3
CN_IDX_PROC = CN_VAL_PROC = 1
LISTEN, IGNORE = 1, 2
FORK, EXEC, EXIT, NONE = 0x1, 0x2, 0x80000000, 0x0
# PROC_EVENT_ALL: FORK|EXEC|UID 4|GID 0x40|SID 0x80|PTRACE 0x100|COMM 0x200|
# NONZERO_EXIT 0x20000000|COREDUMP 0x40000000|EXIT
EVENT_ALL = 0xE00003C7
NLMSGHDR = struct.Struct("=IHHII")
CN_MSG = struct.Struct("=IIIIHH")
EVENT_HEAD = struct.Struct("=IIQ")


def request(sock: socket.socket, seq: int, op: int, events: int | None) -> None:
    # struct proc_input, or the bare enum proc_cn_mcast_op without a filter
    data = struct.pack("=I", op) if events is None else struct.pack("=II", op, events)
    cn = CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, seq, 0, len(data), 0) + data
    hdr = NLMSGHDR.pack(NLMSGHDR.size + len(cn), NLMSG_DONE, 0, seq, os.getpid())
    sock.send(hdr + cn)


def events(buf: bytes):
    """(what, cn_msg seq and ack, event data) of each proc_event in one datagram."""
    off = 0
    while off + NLMSGHDR.size <= len(buf):
        length = NLMSGHDR.unpack_from(buf, off)[0]
        if length < NLMSGHDR.size + CN_MSG.size:
            break
        idx, _val, seq, ack, dlen, _flags = CN_MSG.unpack_from(buf, off + NLMSGHDR.size)
        data = buf[off + NLMSGHDR.size + CN_MSG.size :][:dlen]
        if idx == CN_IDX_PROC and len(data) >= EVENT_HEAD.size:
            what = EVENT_HEAD.unpack_from(data)[0]
            yield what, seq, ack, data[EVENT_HEAD.size :]
        off += (length + 3) & ~3


def main() -> int:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    sock.bind((0, CN_IDX_PROC))
    request(sock, 1, LISTEN, EVENT_ALL)
    children = []
    for _ in range(3):
        p = subprocess.Popen(["true"])
        p.wait()
        children.append(p.pid)
        print(f"child pid {p.pid} exited {p.returncode}")
    seen: dict[int, list[str]] = {pid: [] for pid in children}
    acks = []
    deadline = time.monotonic() + 1.0
    hard = time.monotonic() + 5.0

    def read() -> int:
        r, _, _ = select.select([sock], [], [], 0.1)
        if not r:
            return 0
        n = 0
        for what, seq, ack, d in events(sock.recv(65536)):
            n += 1
            if what == FORK:
                ppid, _ptgid, cpid, _ctgid = struct.unpack_from("=iiii", d)
                if cpid in seen:
                    seen[cpid].append(f"fork parent {ppid} child {cpid}")
            elif what == EXEC:
                pid = struct.unpack_from("=i", d)[0]
                if pid in seen:
                    seen[pid].append(f"exec {pid}")
            elif what == EXIT:
                pid, _tgid, code, sig = struct.unpack_from("=iiII", d)
                if pid in seen:
                    seen[pid].append(f"exit {pid} code {code} signal {sig}")
            elif what == NONE:
                err = struct.unpack_from("=I", d)[0]
                # the kernel numbers every event (seq) and answers our ack + 1
                acks.append(f"ack seq {seq} ack {ack} err {err}")
        return n

    while time.monotonic() < hard:
        read()
        done = all(any(e.startswith("exit") for e in v) for v in seen.values())
        if done and time.monotonic() >= deadline:
            break
    request(sock, 2, IGNORE, None)
    after = 0
    stop = time.monotonic() + 0.3
    while time.monotonic() < stop:
        after += read()
    sock.close()
    for pid in children:
        for line in seen[pid]:
            print(line)
    for line in acks:
        print(line)
    print(f"events after IGNORE: {after}")
    return 0 if all(len(v) == 3 for v in seen.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
