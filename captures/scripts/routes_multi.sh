# routes_multi.sh - a short rtnetlink mix for a pcapng capture (dumpcap,
# nanosecond timestamps): a veth pair, a bridge with one port, an 802.1Q
# vlan, IPv4/IPv6 addresses, an IPv4 multipath route (weights), a route in
# table 100, permanent neighbours, a policy rule; then the dumps
# `ip -d link show`, `ip route show table all`, `ip neigh show`,
# `ip rule show`, and the rule is deleted again. A background `ip monitor`
# socket receives the notifications.
# Record (from the project root):
#   ../shared/tools/nlmon-vm/record --pcapng -o captures routes_multi captures/scripts/routes_multi.sh
modprobe veth; modprobe bridge; modprobe 8021q
bg mon ip -t monitor link address route neigh rule
run ip link add rm0 type veth peer name rm1
run ip link add br0 type bridge
run ip link set rm1 master br0
run ip link set rm0 up
run ip link set rm1 up
run ip link set br0 up
run ip link add link rm0 name rm0.10 type vlan id 10
run ip link set rm0.10 up
run ip addr add 192.0.2.1/24 dev rm0
run ip addr add 198.18.10.1/24 dev rm0.10
run ip addr add 198.18.20.1/24 dev br0
run ip -6 addr add 2001:db8:1::1/64 dev rm0
run ip route add 203.0.113.0/24 nexthop via 192.0.2.254 dev rm0 weight 1 nexthop via 198.18.10.254 dev rm0.10 weight 3
run ip route add default via 192.0.2.254 dev rm0 table 100
run ip neigh add 192.0.2.7 lladdr 02:00:5e:00:53:07 dev rm0
run ip -6 neigh add 2001:db8:1::7 lladdr 02:00:5e:00:53:07 dev rm0
run ip rule add from 192.0.2.0/24 lookup 100
run ip -d link show
run ip route show table all
run ip neigh show
run ip rule show
run ip rule del from 192.0.2.0/24 lookup 100
