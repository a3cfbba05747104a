# genl_batch.sh - generic netlink families that iproute2, libteam's teamnl,
# dropwatch or a small python3 client drive: SEG6 (`ip sr tunsrc`, `ip sr
# hmac`), IOAM6 (`ip ioam namespace/schema`), l2tp (`ip l2tp` tunnel and
# session over UDP), macsec (`ip macsec` TX SA, RX SC and RX SA with keys),
# team (`teamnl` options, ports, get/set option), NET_DM (`dropwatch -l kas`
# while UDP datagrams to a closed port are dropped), and through the python3
# client below: TASKSTATS (get by pid and by tgid), psample (group dump and
# the sampled packets of a tc `sample` action on lo), thermal (zone and
# cooling device dumps; temperature, trips and governor of each zone) and
# gtp (PDP dump, empty). `genl ctrl list` first names every family id.
# Record (from the project root):
#   ../shared/tools/nlmon-vm/record -o captures genl_batch captures/scripts/genl_batch.sh
for m in l2tp_netlink l2tp_eth macsec team team_mode_activebackup drop_monitor \
         psample act_sample gtp dummy; do modprobe $m; done
cat > gn.py <<'PYEOF'
import os, socket, struct, sys
# minimal generic netlink client: resolve a family, send one command, print replies
def attr(t, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, t) + payload + b"\0" * ((4 - n % 4) % 4)
def attrs(buf):
    while len(buf) >= 4:
        n, t = struct.unpack_from("=HH", buf)
        if n < 4: break
        yield t & 0x3fff, buf[4:n]
        buf = buf[(n + 3) & ~3:]
class Genl:
    def __init__(self):
        self.s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
        self.s.bind((0, 0)); self.seq = 1
    def xfer(self, fam, cmd, payload=b"", dump=False, ver=1, raw=False):
        self.seq += 1
        flags = 0x5 | (0x300 if dump else 0)
        body = struct.pack("=BBH", cmd, ver, 0) + payload
        self.s.send(struct.pack("=IHHII", 16 + len(body), fam, flags, self.seq, 0) + body)
        out = []
        while True:
            data = self.s.recv(65536)
            while data:
                n, t, f, _, _ = struct.unpack_from("=IHHII", data)
                msg, data = data[:n], data[(n + 3) & ~3:]
                if t == 2:
                    err = struct.unpack_from("=i", msg, 16)[0]
                    if err: print("error", err)
                    return out
                if t == 3: return out
                out.append(dict(attrs(msg[20:])) if not raw else list(attrs(msg[20:])))
    def family(self, name):
        r = self.xfer(16, 3, attr(2, name.encode() + b"\0"))
        if not r: return None
        gid = {}
        for _, g in attrs(r[0].get(7, b"")):
            d = dict(attrs(g)); gid[d[1][:-1].decode()] = struct.unpack("=I", d[2])[0]
        return struct.unpack("=H", r[0][1])[0], gid
g = Genl()
what = sys.argv[1]
if what == "taskstats":
    fid, _ = g.family("TASKSTATS")
    pid = os.getpid()
    for kind, t in (("pid", 1), ("tgid", 2)):
        for reply in g.xfer(fid, 1, attr(t, struct.pack("=I", pid))):
            nest = dict(attrs(reply[4 if kind == "pid" else 5]))
            st = nest[3]
            ver, = struct.unpack_from("=H", st)
            comm = st[80:112].split(b"\0")[0].decode()
            print(f"taskstats {kind} {pid} version {ver} stats_len {len(st)} comm {comm!r}")
elif what == "psample":
    fid, grp = g.family("psample")
    print("psample groups", grp)
    for r in g.xfer(fid, 1, dump=True):
        print("group", {k: v.hex() for k, v in r.items()})
elif what == "psample-listen":
    fid, grp = g.family("psample")
    g.s.setsockopt(270, 1, grp["packets"]); g.s.settimeout(float(sys.argv[2]))
    open("psample.ready", "w").close()
    try:
        d = g.s.recv(65536); print("psample sample", len(d), "bytes")
    except socket.timeout:
        print("psample: no sample")
elif what == "thermal":
    fid, grps = g.family("thermal")
    print("thermal groups", grps)
    ids = []
    for r in g.xfer(fid, 1, dump=True, raw=True):
        for t, v in r:
            for tt, vv in attrs(v):
                if tt == 2: ids.append(struct.unpack("=I", vv)[0])
                print("thermal zone attr", tt, vv.rstrip(b"\0").decode() if tt == 10 else vv.hex())
    for tzid in ids:
        for cmd in (3, 2, 4):
            for rr in g.xfer(fid, cmd, attr(2, struct.pack("=I", tzid))):
                print("  zone", tzid, "cmd", cmd, {k: v.hex() for k, v in rr.items()})
    for r in g.xfer(fid, 6, dump=True, raw=True):
        for t, v in r:
            for tt, vv in attrs(v):
                print("cooling device attr", tt, vv.rstrip(b"\0").decode() if tt == 18 else vv.hex())
elif what == "gtp":
    fid, _ = g.family("gtp")
    print("gtp pdps", len(g.xfer(fid, 2, dump=True, ver=0)))
PYEOF
run genl ctrl list

# SEG6
run ip sr tunsrc show
run ip sr tunsrc set 2001:db8::1
run ip sr tunsrc show
run ip sr hmac show

# IOAM6
run ip ioam namespace add 1 data 7
run ip ioam namespace add 2 data 0x11 wide 0x2222
run ip ioam namespace show
run ip ioam schema add 2 "abc"
run ip ioam schema show
run ip ioam namespace set 1 schema 2
run ip ioam namespace show
run ip ioam namespace del 2

# l2tp
run ip l2tp add tunnel tunnel_id 1 peer_tunnel_id 1 encap udp local 127.0.0.1 remote 127.0.0.1 udp_sport 5000 udp_dport 5001
run ip l2tp add session tunnel_id 1 session_id 1 peer_session_id 1
run ip l2tp show tunnel
run ip l2tp show session
run ip l2tp del session tunnel_id 1 session_id 1
run ip l2tp del tunnel tunnel_id 1

# macsec
run ip link add d0 type dummy
run ip link add link d0 macsec0 type macsec port 11 encrypt on
run ip macsec add macsec0 tx sa 0 pn 1 on key 01 81818181818181818181818181818181
run ip macsec add macsec0 rx port 1234 address c6:19:52:8f:e6:a0
run ip macsec add macsec0 rx port 1234 address c6:19:52:8f:e6:a0 sa 0 pn 1 on key 00 82828282828282828282828282828282
run ip macsec show
run ip -s macsec show macsec0
run ip link del macsec0

# team
run ip link add t0 type team
run teamnl t0 options
run teamnl t0 setoption mode activebackup
run ip link add d1 type dummy
run ip link set d1 master t0
run teamnl t0 ports
run teamnl t0 getoption mode
run teamnl -p d1 t0 getoption enabled
run ip link del t0

# NET_DM: dropwatch in summary (alert) mode while a few datagrams to a
# closed UDP port on lo are dropped
runsh 'python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
time.sleep(2)
for _ in range(5): s.sendto(b\"x\" * 32, (\"127.0.0.1\", 9)); time.sleep(0.1)
" & printf "set alertlimit 2\nshow\nstart\n" | timeout -s INT 6 dropwatch -l kas; wait'

# python3 genl client: TASKSTATS, psample, thermal, gtp
run python3 -u gn.py taskstats
run tc qdisc add dev lo clsact
run tc filter add dev lo ingress matchall action sample rate 1 group 5 trunc 64
bg psample python3 -u gn.py psample-listen 30
runsh 'for i in $(seq 60); do [ -e psample.ready ] && break; sleep 0.5; done; python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b\"sampled\", (\"127.0.0.1\", 9))
"'
run python3 -u gn.py psample
bg_stop
run tc qdisc del dev lo clsact
run python3 -u gn.py thermal
run python3 -u gn.py gtp
