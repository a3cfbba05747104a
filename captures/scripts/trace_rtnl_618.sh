# trace_rtnl_618.sh - rtnetlink, tc, sock_diag and the genl controller on a
# 6.18 kernel without nlmon, captured by `nlshark trace` (strace) in a fresh
# network namespace: veth pair tv0/tv1, bridge tbr0 with port tv1, vxlan vx0
# (this kernel has no dummy or vlan driver), links up, `ip -d link show`;
# IPv4/IPv6 addresses and `ip addr show`; IPv4 routes (via a gateway, in
# table 100), an IPv6 route, `ip route show table all`, `ip -6 route`; a
# permanent neighbour, a rule, a nexthop, `ip netconf show`; `bridge link`,
# `bridge fdb`, `bridge vlan`; an htb qdisc with one class, `tc qdisc show`,
# `tc class show`; `ss -a`; `genl ctrl list`; two failures (mtu beyond the
# veth maximum, a link that exists) and the links deleted.
# Record (from the project root, as root; nlshark, strace, iproute2 installed):
#   unshare -n nlshark trace -q -w captures/trace_rtnl_618.pcapng -- \
#       sh captures/scripts/trace_rtnl_618.sh captures/trace_rtnl_618
# It writes captures/trace_rtnl_618.commands.log (same format as the nlmon-vm
# logs; the wall clock there is the capture's clock) and
# captures/trace_rtnl_618.genl_families.tsv (from the `genl ctrl list` output).
set -u
OUT=$1
LOG=$OUT.commands.log
: >"$LOG"
log() { echo "### [$(date +%s.%6N)] $*" >>"$LOG"; }
run() {
    log "\$ $*"
    "$@" >>"$LOG" 2>&1
    log "rc=$?"
}
echo "# capture $(basename "$OUT") with nlshark trace (strace), kernel $(uname -r)" >>"$LOG"
log "script trace_rtnl_618.sh starts"
run ip link set lo up
run ip link add tv0 type veth peer name tv1
run ip link add tbr0 type bridge
run ip link set tv1 master tbr0
run ip link add vx0 type vxlan id 42 dstport 4789 local 192.0.2.1 dev tv0
run ip link set tv0 up
run ip link set tv1 up
run ip link set tbr0 up
run ip link set vx0 up
run ip -d link show
run ip addr add 192.0.2.1/24 dev tv0
run ip -6 addr add 2001:db8::1/64 dev tv0 nodad
run ip addr add 198.18.20.1/24 dev tbr0
run ip addr show
run ip route add 198.51.100.0/24 via 192.0.2.254
run ip route add default via 192.0.2.254 dev tv0 table 100
run ip -6 route add 2001:db8:1::/64 via 2001:db8::fe dev tv0
run ip route show table all
run ip -6 route
run ip neigh add 192.0.2.7 lladdr 02:00:5e:00:53:07 dev tv0
run ip neigh show
run ip rule add from 192.0.2.0/24 lookup 100
run ip rule show
run ip nexthop add id 1 via 192.0.2.254 dev tv0
run ip nexthop show
run ip netconf show
run bridge link show
run bridge fdb show
run bridge vlan show
run tc qdisc add dev tv0 root handle 1: htb default 10
run tc class add dev tv0 parent 1: classid 1:10 htb rate 1mbit
run tc qdisc show
run tc class show dev tv0
run ss -a
run genl ctrl list
run ip link set tv0 mtu 70000
run ip link add tv0 type veth peer name tv2
run ip link del vx0
run ip link del tbr0
run ip link del tv0
log "script ends"
# The generic netlink ids, from the `genl ctrl list` output in the log.
sed -n 's/^Name: //p; s/^\tID: \(0x[0-9a-f]*\).*/\1/p' "$LOG" | paste - - |
    while read -r name id; do printf '%d\t%s\n' "$id" "$name"; done >"$OUT.genl_families.tsv"
