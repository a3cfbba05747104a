# rtnl_full.sh - the rtnetlink message types the other captures miss:
# network namespace ids (`ip netns add/set/list-id`), IPv6 address labels,
# neighbour tables (`ip ntable show/change`), multicast addresses
# (`ip maddr`), IPv6 routes with lightweight-tunnel encapsulation (seg6,
# mpls, ip, ip6), nexthop objects and groups (a resilient group and its
# buckets), bridge ports, fdb, mdb, vlans (per port, global options, vlan
# tunnel ids), a VXLAN device with VNI filtering (`bridge vni`), link
# statistics (`ip stats`, `ip -s -d link`), `dcb` where a device allows it,
# alternative names (`ip link property add altname`), a router advertisement
# and a multicast routing cache miss (rtnl_full_ra.py: RTM_NEWPREFIX,
# RTM_NEWNDUSEROPT, RTM_NEWCACHEREPORT), with a background `ip monitor all`
# socket receiving the notifications.
# Record (from the project root):
#   ../shared/tools/nlmon-vm/record -t 180 -a captures/scripts/rtnl_full_ra.py -o captures rtnl_full captures/scripts/rtnl_full.sh
modprobe veth; modprobe bridge; modprobe vxlan; modprobe dummy
modprobe mpls_router; modprobe mpls_iptunnel
bg mon ip -t monitor all
# namespaces and their ids
run ip netns add nsa
run ip netns add nsb
run ip netns set nsa 7
run ip netns set nsb auto
run ip netns list-id
run ip netns list
# links: a veth pair, one end moved to nsa, a dummy with an alternative name
run ip link add rf0 type veth peer name rf1
run ip link set rf1 netns nsa
run ip link add rfd0 type dummy
run ip link property add dev rfd0 altname rf-dummy-long-name
run ip link set rf0 up
run ip link set rfd0 up
run ip link show rfd0
run ip link property del dev rfd0 altname rf-dummy-long-name
# addresses, labels, multicast
run ip addr add 192.0.2.1/24 dev rf0
run ip -6 addr add 2001:db8:f::1/64 dev rf0
run ip -6 addr add 2001:db8:e::1/64 dev rfd0
run ip addrlabel add prefix 2001:db8:f::/48 label 42
run ip addrlabel list
run ip addrlabel del prefix 2001:db8:f::/48 label 42
run ip maddr add 33:33:00:00:00:42 dev rf0
run ip maddr show dev rf0
run ip -6 maddr show dev rf0
run ip maddr del 33:33:00:00:00:42 dev rf0
# neighbour tables
run ip ntable show dev rf0
run ip ntable change name arp_cache dev rf0 queue 8 locktime 20
run ip ntable show name arp_cache dev rf0
# IPv6 routes with encapsulation
run ip -6 route add 2001:db8:100::/64 encap seg6 mode encap segs 2001:db8:aa::1,2001:db8:bb::1 dev rf0
run ip -6 route add 2001:db8:101::/64 encap seg6 mode inline segs 2001:db8:cc::1 dev rf0
run sysctl -w net.mpls.platform_labels=1000
run ip -6 route add 2001:db8:102::/64 encap mpls 100/200 via 2001:db8:f::2 dev rf0
run ip -6 route add 2001:db8:103::/64 encap ip6 dst 2001:db8:dd::1 hoplimit 64 dev rf0
run ip route add 198.51.100.0/24 encap ip id 77 dst 192.0.2.9 ttl 10 dev rf0
run ip -6 route show
run ip route show dev rf0
# nexthops: single, a plain group, a resilient group and its buckets
run ip addr add 198.18.0.1/24 dev rfd0
run ip nexthop add id 11 via 198.18.0.2 dev rfd0
run ip nexthop add id 12 via 198.18.0.3 dev rfd0
run ip nexthop add id 13 via 2001:db8:e::2 dev rfd0
run ip nexthop add id 20 group 11/12,3
run ip nexthop add id 21 group 11/12 type resilient buckets 8 idle_timer 60
run ip nexthop show
run ip nexthop get id 21
run ip nexthop bucket show id 21
run ip nexthop bucket get id 21 index 0
run ip route add 203.0.113.0/24 nhid 20
run ip nexthop del id 20
# bridge: ports, fdb, vlans, mdb
run ip link add rbr0 type bridge vlan_filtering 1 mcast_snooping 1
run ip link set rbr0 type bridge mcast_vlan_snooping 1
run ip link add rp0 type veth peer name rp1
run ip link add rvx0 type vxlan dstport 4789 local 192.0.2.1 external vnifilter
run ip link set rp0 master rbr0
run ip link set rvx0 master rbr0
run ip link set rbr0 up
run ip link set rp0 up
run ip link set rp1 up
run ip link set rvx0 up
run bridge link show
run bridge vlan add dev rp0 vid 10 pvid untagged
run bridge vlan add dev rp0 vid 20-22
run bridge vlan add dev rbr0 vid 10 self
run bridge vlan add dev rvx0 vid 30
run ip link set dev rvx0 type bridge_slave vlan_tunnel on
run bridge vlan add dev rvx0 vid 30 tunnel_info id 3000
run bridge vlan show
run bridge -d vlan show
run bridge vlan tunnelshow
run bridge vlan set dev rp0 vid 10 state learning
run bridge vlan global set dev rbr0 vid 10 mcast_snooping 1 mcast_query_interval 9000
run bridge vlan global show
run bridge -s vlan show
run bridge fdb add 02:00:5e:00:53:10 dev rp0 master static vlan 10
run bridge fdb show br rbr0
run bridge mdb add dev rbr0 port rp0 grp 239.1.1.1 permanent vid 10
run bridge mdb add dev rbr0 port rp0 grp ff0e::42 temp vid 10
run bridge mdb show
run bridge -d mdb show
run bridge mdb del dev rbr0 port rp0 grp 239.1.1.1 permanent vid 10
run bridge vni add dev rvx0 vni 3000
run bridge vni add dev rvx0 vni 4000-4002
run bridge vni add dev rvx0 vni 5000 group 198.51.100.7
run bridge vni show
run bridge -s vni show
run bridge vni del dev rvx0 vni 4001
run bridge vlan del dev rp0 vid 21
# statistics
run ip stats show dev rbr0 group link
run ip stats show dev rp0 group xstats_slave subgroup bridge
run ip stats show dev rbr0 group xstats subgroup bridge
run ip stats show group afstats
run ip stats show dev rf0 group offload subgroup cpu_hit
run ip stats show dev rf0 group offload subgroup hw_stats_info
run ip -s -d link show
# DCB (needs a driver with dcbnl_ops; the virtual devices refuse it)
if command -v dcb >/dev/null; then
  run dcb ets show dev rf0
  run dcb app show dev rf0
fi
# notifications without a command: a router advertisement (RTM_NEWPREFIX,
# RTM_NEWNDUSEROPT) and a multicast routing cache miss (RTM_NEWCACHEREPORT),
# made by rtnl_full_ra.py (shipped with -a)
run ip link add ra0 type veth peer name ra1
run ip addr add 198.18.9.1/24 dev ra0
run ip addr add 198.18.9.2/24 dev ra1
run ip link set ra0 up
run ip link set ra1 up
# ra0 and ra1 are in one namespace: ra1 must accept packets from a local source
run sysctl -w net.ipv6.conf.ra1.accept_ra=2 net.ipv4.conf.ra1.rp_filter=0 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.ra1.accept_local=1
sleep 1
# forwarding on rf0 adds the subnet-router anycast address of its prefix
run sysctl -w net.ipv6.conf.rf0.forwarding=1
run python3 $SCRIPT_DIR/rtnl_full_ra.py
run cat /proc/net/igmp6
run cat /proc/net/anycast6
run ip -6 route show dev ra1
run ip link del ra0
# netconf and namespace cleanup
run ip netconf show dev rf0
run ip netns del nsb
run ip netns list-id
run ip link del rfd0
run ip link del rbr0
