# genl_devlink.sh - the devlink generic netlink family, driven by iproute2's
# `devlink` against netdevsim: a netdevsim device with two ports
# (netdevsim10), then `devlink dev show`, `dev info`, `port show`,
# `dev param show` and `param set`, `resource show`, `health show` and
# `health diagnose` (a formatted message, FMSG), `trap show`,
# `dev eswitch show`, region snapshots (new, show, read, a second `new` with
# the same id that fails with an extended ACK, del), failures: `port split`
# (EOPNOTSUPP, no message) and `port function set ... hw_addr` (extended
# ACK), a `dev reload` (ports and traps go and come back, seen by the
# monitor) and `devlink -j dev show`; `devlink mon` listens in the background
# from the start. `genl ctrl list` names every family id first (the 6.1 guest kernel
# has no `netdev` family, registered since 6.3).
#
# Debian's kernel is built without CONFIG_NETDEVSIM, so the module is built
# out of tree from the same kernel's source (Debian packages linux-source-6.1
# and linux-headers-6.1.0-56-amd64, kernel 6.1.192-2) and shipped with -a:
#   tar -xJf /usr/src/linux-source-6.1.tar.xz \
#       --wildcards 'linux-source-6.1/drivers/net/netdevsim/*'
#   make -C /lib/modules/6.1.0-56-amd64/build \
#       M=$PWD/linux-source-6.1/drivers/net/netdevsim CONFIG_NETDEVSIM=m modules
# Record (from the project root, netdevsim.ko in the current folder):
#   ../shared/tools/nlmon-vm/record -a netdevsim.ko -o captures genl_devlink captures/scripts/genl_devlink.sh
modprobe psample
insmod "$SCRIPT_DIR/netdevsim.ko"
run genl ctrl list
bg mon devlink mon
run sh -c 'echo "10 2" > /sys/bus/netdevsim/new_device'
sleep 1
run devlink dev show
run devlink dev info
run devlink port show
run devlink dev param show
run devlink resource show netdevsim/netdevsim10
run devlink health show
runsh 'devlink trap show | head -n 12'
run devlink dev eswitch show netdevsim/netdevsim10
run devlink dev param set netdevsim/netdevsim10 name max_macs value 16 cmode driverinit
run devlink dev param show netdevsim/netdevsim10 name max_macs
run devlink health diagnose netdevsim/netdevsim10 reporter dummy
run devlink region new netdevsim/netdevsim10/dummy snapshot 1
run devlink region show
run devlink region read netdevsim/netdevsim10/dummy snapshot 1 address 0 length 16
run devlink region new netdevsim/netdevsim10/dummy snapshot 1
run devlink region del netdevsim/netdevsim10/dummy snapshot 1
run devlink port split netdevsim/netdevsim10/0 count 4
run devlink port function set netdevsim/netdevsim10/0 hw_addr 02:00:00:00:00:01
run devlink dev reload netdevsim/netdevsim10
sleep 1
run devlink -j dev show
