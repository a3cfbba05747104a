"""rtnl_full_ra.py - make the kernel send the rtnetlink notifications no
iproute2 command asks for: RTM_NEWPREFIX and RTM_NEWNDUSEROPT (a router
advertisement with a prefix and an RDNSS option, sent from ra0 to its veth
peer ra1) and RTM_NEWCACHEREPORT (a multicast routing socket with a vif on
ra1 and a multicast datagram arriving there with no cache entry).  A
netlink socket joined to RTNLGRP_IPV6_PREFIX, RTNLGRP_ND_USEROPT and
RTNLGRP_IPV4_MROUTE_R receives them (nlmon copies each delivery) and the
script prints their types.  Then it dumps the IPv6 multicast and anycast
addresses (RTM_GETMULTICAST, RTM_GETANYCAST: no iproute2 command asks for
them, `ip maddr` reads /proc).  Run by rtnl_full.sh in the nlmon VM.
"""

import socket
import struct
import time

SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 270, 1
GROUPS = {18: "RTNLGRP_IPV6_PREFIX", 20: "RTNLGRP_ND_USEROPT", 30: "RTNLGRP_IPV4_MROUTE_R"}
MRT_INIT, MRT_ADD_VIF, VIFF_USE_IFINDEX = 200, 202, 0x8

nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
nl.bind((0, 0))
for g in GROUPS:
    nl.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g)
nl.settimeout(0.5)

ra0, ra1 = socket.if_nametoindex("ra0"), socket.if_nametoindex("ra1")
with open("/sys/class/net/ra0/address") as f:
    mac = bytes.fromhex(f.read().strip().replace(":", ""))

# Router advertisement (RFC 4861): hop limit 64, lifetime 1800 s; options:
# source link-layer address, prefix information 2001:db8:5a::/64 (on-link,
# autonomous, valid 86400 s, preferred 14400 s), RDNSS 2001:db8::53 (RFC 8106).
ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
ra += struct.pack("!BB6s", 1, 1, mac)
ra += struct.pack(
    "!BBBBIII16s",
    3,
    4,
    64,
    0xC0,
    86400,
    14400,
    0,
    socket.inet_pton(socket.AF_INET6, "2001:db8:5a::"),
)
ra += struct.pack("!BBHI16s", 25, 3, 0, 600, socket.inet_pton(socket.AF_INET6, "2001:db8::53"))
icmp = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
icmp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
icmp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ra0)
icmp.sendto(ra, ("ff02::1", 0, 0, ra0))
print("sent a router advertisement on ra0")

# Multicast routing: a vif on ra1, then a datagram to 239.9.9.9 from ra0.
mr = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
mr.setsockopt(socket.IPPROTO_IP, MRT_INIT, 1)
vifctl = struct.pack("=HBBIiI", 0, VIFF_USE_IFINDEX, 1, 0, ra1, 0)
mr.setsockopt(socket.IPPROTO_IP, MRT_ADD_VIF, vifctl)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("198.18.9.1"))
udp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 5)
udp.sendto(b"nlshark cache report", ("239.9.9.9", 5000))
print("sent a datagram to 239.9.9.9 from ra0")

seen = []
deadline = time.time() + 3
while time.time() < deadline:
    try:
        data = nl.recv(65536)
    except TimeoutError:
        continue
    off = 0
    while off + 16 <= len(data):
        ln, typ = struct.unpack_from("=IH", data, off)
        seen.append(typ)
        off += (ln + 3) & ~3 if ln >= 16 else len(data)
print("notifications received (nlmsg_type):", " ".join(str(t) for t in seen))

# IPv6 multicast and anycast address dumps (struct ifaddrmsg, AF_INET6)
RTM_GETMULTICAST, RTM_GETANYCAST, NLM_F_REQUEST, NLM_F_DUMP = 58, 62, 0x1, 0x300
dump = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
dump.bind((0, 0))
for seq, typ in enumerate((RTM_GETMULTICAST, RTM_GETANYCAST), 1):
    body = struct.pack("=BBBBi", socket.AF_INET6, 0, 0, 0, 0)
    dump.send(struct.pack("=IHHII", 16 + len(body), typ, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
    count, done = 0, False
    while not done:
        data = dump.recv(65536)
        off = 0
        while off + 16 <= len(data):
            ln, t = struct.unpack_from("=IH", data, off)
            if t in (2, 3):  # NLMSG_ERROR, NLMSG_DONE
                done = True
            else:
                count += 1
            off += (ln + 3) & ~3 if ln >= 16 else len(data)
    print(f"dump of type {typ}: {count} messages")
