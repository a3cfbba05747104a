# genl_ovs_batadv.sh - the Open vSwitch kernel datapath families
# (ovs_datapath, ovs_vport, ovs_flow, ovs_packet) driven by ovs-dpctl, which
# talks to the kernel directly without ovsdb or ovs-vswitchd, plus a small
# Python upcall listener (ovs_upcall.py, shipped with -a) that points a
# port's upcall pid at its own socket, injects UDP frames on the port's veth
# peer and receives OVS_PACKET_CMD_MISS and OVS_PACKET_CMD_ACTION upcalls,
# then sends one OVS_PACKET_CMD_EXECUTE; and batman-adv (batadv) driven by
# batctl: mesh and hard interfaces, routing algorithm, settings, the debug
# tables and JSON queries.
# Record (from the project root):
#   ../shared/tools/nlmon-vm/record -o captures genl_ovs_batadv captures/scripts/genl_ovs_batadv.sh
cat > ovs_upcall.py <<'PYEOF'
# Minimal OVS upcall listener: bind a generic netlink socket to port id 4242,
# point vport ovsp1's upcall pid at it, inject frames on the peer, print the
# OVS_PACKET_CMD_MISS / _ACTION upcalls and execute one packet back out.
import socket, struct, sys, time
NLM_F_REQUEST, NLM_F_ACK = 1, 4
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
s.bind((4242, 0))
s.settimeout(3)
seq = [100]
def attr(t, data):
    l = 4 + len(data)
    return struct.pack("=HH", l, t) + data + b"\0" * ((4 - l % 4) % 4)
def send(fid, cmd, ver, body, flags=NLM_F_REQUEST):
    seq[0] += 1
    payload = struct.pack("=BBH", cmd, ver, 0) + body
    s.send(struct.pack("=IHHII", 16 + len(payload), fid, flags, seq[0], 0) + payload)
def recv():
    d = s.recv(65536)
    out = []
    while len(d) >= 16:
        l, t, f, sq, pid = struct.unpack_from("=IHHII", d)
        out.append((t, d[16:l]))
        d = d[(l + 3) & ~3:]
    return out
def attrs(b):
    r = {}
    while len(b) >= 4:
        l, t = struct.unpack_from("=HH", b)
        r[t & 0x3fff] = b[4:l]
        b = b[(l + 3) & ~3:]
    return r
def family(name):
    send(16, 3, 1, attr(2, name.encode() + b"\0"))
    for t, p in recv():
        if t == 16:
            return struct.unpack("=H", attrs(p[4:])[1])[0]
    raise SystemExit("no family " + name)
def reply():
    for t, p in recv():
        return t, (p[:4].hex() if t == 2 else p[4:8].hex())
vport, packet = family("ovs_vport"), family("ovs_packet")
dp = socket.if_nametoindex("dp0")
ECHO = NLM_F_REQUEST | NLM_F_ACK | 8
# the datapath dispatches misses per CPU (OVS_DP_F_DISPATCH_UPCALL_PER_CPU):
# every CPU's upcall port id becomes ours
dpfam = family("ovs_datapath")
send(dpfam, 4, 2, struct.pack("=i", 0) + attr(1, b"dp0\0") + attr(5, struct.pack("=I", 9))
     + attr(8, struct.pack("=4I", 4242, 4242, 4242, 4242)), ECHO)
print("dp set:", reply())
send(vport, 4, 1, struct.pack("=i", dp) + attr(3, b"ovsp1\0") + attr(5, struct.pack("=I", 4242)), ECHO)
print("vport set:", reply())
tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
tx.bind(("ovsp1b", 0))
def frame(dport):
    udp = struct.pack("!HHHH", 4000, dport, 12, 0) + b"ping"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     socket.inet_aton("198.51.100.1"), socket.inet_aton("198.51.100.2"))
    return bytes.fromhex("020000000002020000000001") + b"\x08\x00" + ip + udp
def upcall(dport):
    tx.send(frame(dport))
    end = time.time() + 3
    while time.time() < end:
        for t, p in recv():
            if t == packet:
                a = attrs(p[8:])
                print("upcall cmd", p[0], "dp_ifindex", struct.unpack_from("=i", p, 4)[0],
                      "len", len(a.get(1, b"")), "userdata", a.get(4, b"").hex())
                return p[0], a
    return None, {}
cmd, a = upcall(5000)           # no flow: OVS_PACKET_CMD_MISS
if cmd == 1:
    # OVS_PACKET_CMD_EXECUTE: the missed packet with its key, out of port 2
    send(packet, 3, 1, struct.pack("=i", dp) + attr(1, a[1]) + attr(2, a[2])
         + attr(3, attr(1, struct.pack("=I", 2))), NLM_F_REQUEST | NLM_F_ACK)
    print("execute:", reply())
if len(sys.argv) > 1:
    cmd, a = upcall(int(sys.argv[1]))   # a flow with a userspace action: OVS_PACKET_CMD_ACTION
PYEOF
modprobe openvswitch; modprobe batman-adv
run genl ctrl list
ip link add ovsp0 type veth peer name ovsp0b
ip link add ovsp1 type veth peer name ovsp1b
for i in ovsp0 ovsp0b ovsp1 ovsp1b; do ip link set $i up; done

# Open vSwitch datapath (each ovs-dpctl run first probes every netdev with
# OVS_VPORT_CMD_GET, so the runs are few)
cat > flows.txt <<'FLOWEOF'
in_port(2),eth(src=02:00:00:00:00:0a,dst=02:00:00:00:00:02),eth_type(0x0800),ipv4(src=192.0.2.1,dst=192.0.2.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=1234,dst=80),tcp_flags(0) 2
in_port(2),eth(src=02:00:00:00:00:03,dst=ff:ff:ff:ff:ff:ff),eth_type(0x0806),arp(sip=192.0.2.3,tip=192.0.2.4,op=1,sha=02:00:00:00:00:03,tha=00:00:00:00:00:00) push_vlan(vid=100,pcp=0),1
in_port(2),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),ipv4(src=198.51.100.1,dst=198.51.100.2,proto=17,tos=0,ttl=64,frag=no),udp(src=4000,dst=6000) userspace(pid=4242,userdata(01020304)),set(ipv4(src=198.51.100.1,dst=198.51.100.9,proto=17,tos=0,ttl=63,frag=no)),1
in_port(2),eth(src=02:00:00:00:00:05,dst=02:00:00:00:00:06),eth_type(0x86dd),ipv6(src=2001:db8::1,dst=2001:db8::2,label=0,proto=17,tclass=0,hlimit=64,frag=no),udp(src=53,dst=53) set(udp(src=5353,dst=53)),1
FLOWEOF
run ovs-dpctl add-dp dp0
run ovs-dpctl add-if dp0 ovsp0 ovsp1
run ovs-dpctl -s show dp0
run ovs-dpctl add-flows dp0 flows.txt
run ovs-dpctl dump-flows dp0
run ovs-dpctl mod-flow dp0 "in_port(2),eth(src=02:00:00:00:00:0a,dst=02:00:00:00:00:02),eth_type(0x0800),ipv4(src=192.0.2.1,dst=192.0.2.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=1234,dst=80),tcp_flags(0)" "pop_vlan,2"
run python3 ovs_upcall.py 6000
run ovs-dpctl dump-flows -s dp0
run ovs-dpctl del-flow dp0 "in_port(2),eth(src=02:00:00:00:00:0a,dst=02:00:00:00:00:02),eth_type(0x0800),ipv4(src=192.0.2.1,dst=192.0.2.2,proto=6,tos=0,ttl=64,frag=no),tcp(src=1234,dst=80),tcp_flags(0)"
run ovs-dpctl del-flows dp0
run ovs-dpctl del-if dp0 ovsp1
run ovs-dpctl del-dp dp0

# batman-adv
ip link add batp0 type veth peer name batp0b
ip link set batp0 up; ip link set batp0b up
run batctl routing_algo
run batctl routing_algo BATMAN_V
run ip link add bat0 type batadv
run ip link set batp0 master bat0
run ip link set bat0 up
run batctl meshif bat0 interface
run batctl meshif bat0 interface add batp0b
run batctl meshif bat0 interface
run batctl routing_algo
run batctl meshif bat0 originators
run batctl meshif bat0 neighbors
run batctl meshif bat0 translocal
run batctl meshif bat0 transglobal
run batctl meshif bat0 gateways
run batctl meshif bat0 gw_mode
run batctl meshif bat0 gw_mode server 10000/2000
run batctl meshif bat0 gw_mode
run batctl meshif bat0 orig_interval 2000
run batctl meshif bat0 aggregation 0
run batctl meshif bat0 bridge_loop_avoidance 1
run batctl meshif bat0 bonding
run batctl meshif bat0 claimtable
run batctl meshif bat0 backbonetable
run batctl meshif bat0 dat_cache
run batctl meshif bat0 mcast_flags
run batctl hardif batp0 elp_interval 700
run batctl hardif batp0 throughput_override 100
run batctl hardif batp0 hop_penalty
run batctl meshif bat0 mesh_json
run batctl meshif bat0 hardifs_json
run batctl hardif batp0 hardif_json
run batctl meshif bat0 originators_json
run batctl meshif bat0 transtable_local_json
run batctl meshif bat0 interface del batp0b
run ip link del bat0
