"""The program behind tests/data/strace_sample.txt (see tests/test_trace_parser.py).

Recorded on a 6.18 kernel in a fresh network namespace with
    unshare -n nlshark trace -q --strace-log raw.txt -- /usr/bin/python3 tests/data/strace_sample.py
and trimmed to the netlink calls (with their dumps), successful execve
calls, exit lines and two reads of ordinary files.  Each step uses its own
netlink sequence number, which the test checks frame by frame.
"""

# ruff: noqa
import ctypes, os, socket, struct, threading, time


def msg(t, flags, seq, payload=b""):
    return struct.pack("=IHHII", 16 + len(payload), t, flags, seq, 0) + payload


GETADDR = lambda seq, flags=0x301: msg(22, flags, seq, struct.pack("=BBBBI", 2, 0, 0, 0, 0))
os.system("ip link set lo up")
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.bind((0, 0))
r = GETADDR(1)
s.sendmsg([r[:8], r[8:]])  # seq 1: one message in two iovecs
s.recv(8192, socket.MSG_PEEK)  # peeked: dropped
s.recvmsg_into([bytearray(20), bytearray(8192)])  # two buffers
s.recv(8192)  # DONE
os.write(s.fileno(), GETADDR(2))  # seq 2: write/read
os.read(s.fileno(), 8192)
os.read(s.fileno(), 8192)
fd2 = os.dup(s.fileno())
os.writev(fd2, [GETADDR(3)])  # seq 3 on a dup'd fd
os.readv(fd2, [bytearray(30), bytearray(8192)])
os.readv(fd2, [bytearray(8192)])
os.close(fd2)
s.sendto(GETADDR(4), (0, 0))  # seq 4: truncated by a small buffer
s.recvmsg(24)
s.recv(8192)
s.send(GETADDR(5))  # seq 5: recvfrom with MSG_TRUNC
s.recvfrom(24, socket.MSG_TRUNC)
s.recv(8192)
s.setblocking(False)
try:
    s.recv(8192)  # EAGAIN: no frame
except BlockingIOError:
    pass
s.setblocking(True)
g = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)  # not bound: strace shows only the inode


def rx():
    g.recv(8192)


t = threading.Thread(target=rx)
t.start()
time.sleep(0.2)  # recv unfinished/resumed
g.send(
    msg(16, 0x1, 6, struct.pack("=BBH", 3, 1, 0) + struct.pack("=HH", 11, 2) + b"nlctrl\0\0")
)  # seq 6
t.join()
libc = ctypes.CDLL(None, use_errno=True)


class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint),
        ("iov", ctypes.POINTER(iovec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]


ack = lambda seq: msg(
    18, 0x5, seq, struct.pack("=BxHiII", 0, 0, 999, 0, 0)
)  # RTM_GETLINK ifindex 999: ENODEV
bufs = [ctypes.create_string_buffer(ack(7 + i)) for i in range(2)]  # seq 7, 8 in one sendmmsg
iovs = [iovec(ctypes.cast(b, ctypes.c_void_p), 32) for b in bufs]
arr = (mmsghdr * 2)()
for i in range(2):
    arr[i].hdr.iov = ctypes.pointer(iovs[i])
    arr[i].hdr.iovlen = 1
libc.sendmmsg(s.fileno(), arr, 2, 0)
time.sleep(0.1)
rb = [ctypes.create_string_buffer(8192) for i in range(3)]
riovs = [iovec(ctypes.cast(b, ctypes.c_void_p), 8192) for b in rb]
rarr = (mmsghdr * 3)()
for i in range(3):
    rarr[i].hdr.iov = ctypes.pointer(riovs[i])
    rarr[i].hdr.iovlen = 1
libc.recvmmsg(s.fileno(), rarr, 3, socket.MSG_DONTWAIT, None)
pid = os.fork()
if pid == 0:  # a child process: seq 9
    c = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    c.send(ack(9))
    c.recv(8192)
    os._exit(0)
os.waitpid(pid, 0)
