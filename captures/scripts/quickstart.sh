# quickstart.sh - a small tour of NETLINK_ROUTE and NETLINK_GENERIC: a dummy
# link, IPv4/IPv6 addresses, a route, the dumps that show them, two generic
# netlink family lookups (nlctrl, ethtool) and three requests the kernel
# refuses with an extended ACK message. dummy devices have no MTU limit, so
# the MTU failure uses a veth (max MTU 65535). A background `ip monitor`
# socket receives the link/address/route notifications.
# Record (from the project root):
#   ../shared/tools/nlmon-vm/record -o captures quickstart captures/scripts/quickstart.sh
#   ../shared/tools/nlmon-vm/record --nano -o captures quickstart_ns captures/scripts/quickstart.sh
modprobe dummy; modprobe 8021q; modprobe veth
bg mon ip -t monitor link address route
run ip link add d0 type dummy
run ip link set d0 up mtu 1400
run ip addr add 192.0.2.1/24 dev d0
run ip -6 addr add 2001:db8::1/64 dev d0
run ip route add 198.51.100.0/24 via 192.0.2.254
run ip route show
run ip -br link
run ip addr show dev d0
run genl ctrl get name nlctrl
run genl ctrl get name ethtool
run ethtool -k d0                                     # ETHTOOL_MSG_FEATURES_GET
run ip link add v0 link d0 type vlan id 5000          # ERANGE: Invalid VLAN id
run ip route add 203.0.113.0/24 via 10.9.9.9          # ENETUNREACH: gateway not reachable
run ip link add q0 type veth peer name q1
run ip link set q0 mtu 70000                          # EINVAL: mtu greater than device maximum
run ip link del q0
run ip link del d0
