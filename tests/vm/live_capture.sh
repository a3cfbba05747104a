#!/bin/bash
# Guest side of tests/test_live_vm.py: capture the same traffic on nlmon0
# with nlshark and with tcpdump, side by side.
#
# job.env gives PROJECT (the nlshark source tree, on the read-only host root)
# and PYTHON (the interpreter that runs the tests, so its site-packages
# provide PyYAML).  nlshark starts first and tcpdump second, both are stopped
# with SIGINT, tcpdump first: nlshark's file therefore holds tcpdump's frames
# as one contiguous run, which is what the test checks.  Then nlshark
# --create-nlmon makes its own nlmon1, captures for a few seconds (-a
# duration) into a pcapng and must remove nlmon1 when it ends.
# Everything lands in /run/out: nlshark.pcap/.out/.err/.rc,
# tcpdump.pcap/.err/.rc, create.pcapng/.err/.rc/.during/.after, guest.log.
set -u
OUT=/run/out
. "$OUT/job.env"
exec >"$OUT/guest.log" 2>&1
set -m  # own process groups: background jobs keep their SIGINT disposition
cd /run/tmp || exit 1

# wait_for FILE TEXT SECONDS: until FILE contains TEXT
wait_for() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$2' in $1"
    return 1
}

ip link set lo up
ip link add nlmon0 type nlmon || exit 90
ip link set nlmon0 up || exit 90

PYTHONPATH=$PROJECT "$PYTHON" -m dissect.cli -i nlmon0 -w "$OUT/nlshark.pcap" \
    >"$OUT/nlshark.out" 2>"$OUT/nlshark.err" &
NLSHARK=$!
wait_for "$OUT/nlshark.err" "Capturing on" 60 || exit 91
echo "### nlshark capturing $(date +%s.%N)"
tcpdump -i nlmon0 -s 0 --time-stamp-precision=nano -w "$OUT/tcpdump.pcap" 2>"$OUT/tcpdump.err" &
TCPDUMP=$!
wait_for "$OUT/tcpdump.err" "listening on" 30 || exit 92
sleep 1

echo "### workload $(date +%s.%N)"
ip link add d0 type dummy
ip link set d0 up
ip addr add 192.0.2.1/24 dev d0
ip route add 198.51.100.0/24 via 192.0.2.254 dev d0
ip -6 addr add 2001:db8::1/64 dev d0 nodad
ip route show
ip link del d0
echo "### done $(date +%s.%N)"
sleep 1

kill -INT "$TCPDUMP"
wait "$TCPDUMP"
echo $? >"$OUT/tcpdump.rc"
sleep 0.5
kill -INT "$NLSHARK"
wait "$NLSHARK"
echo $? >"$OUT/nlshark.rc"
echo "### stopped $(date +%s.%N)"

PYTHONPATH=$PROJECT "$PYTHON" -m dissect.cli --create-nlmon -i nlmon1 -a duration:6 -q \
    -w "$OUT/create.pcapng" 2>"$OUT/create.err" &
CREATE=$!
wait_for "$OUT/create.err" "Capturing on" 60 || exit 93
ip -o link show nlmon1 >"$OUT/create.during" 2>&1
ip addr add 192.0.2.77/32 dev lo
wait "$CREATE"
echo $? >"$OUT/create.rc"
ip -o link show nlmon1 >"$OUT/create.after" 2>&1
echo "rc=$?" >>"$OUT/create.after"
echo "### end $(date +%s.%N)"
exit 0
