# trace_hooks_618.sh - the netlink families nlmon never mirrors (AUDIT,
# CONNECTOR, KOBJECT_UEVENT) on a 6.18 kernel, captured by `nlshark trace`
# (strace):
# - AUDIT (initial network namespace: the kernel's audit socket exists only
#   there): `auditctl -s`, `auditctl -l`, a rule added, listed and deleted
#   again (the rule list ends as it began), a user message (`auditctl -m`);
# - CONNECTOR (initial namespaces: needs CAP_NET_ADMIN there):
#   trace_hooks_618_proc.py subscribes to the process events connector,
#   runs `true` three times and unsubscribes;
# - KOBJECT_UEVENT in a fresh network namespace (`unshare -n`): a background
#   `udevadm monitor --kernel --property` while a veth pair hv0/hv1 is
#   created and deleted there (net device uevents go to the listeners of the
#   device's namespace only).
# Record (from the project root, as root; nlshark, strace, auditd's
# auditctl, udev's udevadm, iproute2, python3 installed; the audit daemon
# need not run):
#   nlshark trace -q -w captures/trace_hooks_618.pcapng -- \
#       sh captures/scripts/trace_hooks_618.sh captures/trace_hooks_618
# It writes captures/trace_hooks_618.commands.log (same format as the
# nlmon-vm logs; the wall clock there is the capture's clock) and an empty
# captures/trace_hooks_618.genl_families.tsv (no generic netlink traffic).
set -u
OUT=$1
LOG=$OUT.commands.log
HERE=$(dirname "$0")
log() { echo "### [$(date +%s.%6N)] $*" >>"$LOG"; }
run() {
    log "\$ $*"
    "$@" >>"$LOG" 2>&1
    log "rc=$?"
}

if [ "${2:-}" = "--netns" ]; then
    # Second half, run by the first inside `unshare -n`.
    TMP=$(mktemp)
    log "background(udev): udevadm monitor --kernel --property"
    env --default-signal=INT timeout 30 udevadm monitor --kernel --property >"$TMP" 2>&1 &
    BG=$!
    sleep 1
    run ip link add hv0 type veth peer name hv1
    run ip link set hv0 up
    run ip link del hv0
    sleep 1
    kill -INT "$BG"
    wait "$BG"
    echo "# background(udev) output:" >>"$LOG"
    sed 's/^/#   /' "$TMP" >>"$LOG"
    rm -f "$TMP"
    exit 0
fi

: >"$LOG"
echo "# capture $(basename "$OUT") with nlshark trace (strace), kernel $(uname -r)" >>"$LOG"
log "script trace_hooks_618.sh starts"
RULE="-F arch=b64 -S openat -F path=/nonexistent -k nlshark"
run timeout 10 auditctl -s
run timeout 10 auditctl -l
run timeout 10 auditctl -a exit,always $RULE
run timeout 10 auditctl -l
run timeout 10 auditctl -d exit,always $RULE
run timeout 10 auditctl -l
run timeout 10 auditctl -m "nlshark trace_hooks_618 user message"
run timeout 20 python3 "$HERE/trace_hooks_618_proc.py"
log "network namespace part starts: unshare -n"
timeout 60 unshare -n sh "$0" "$OUT" --netns
log "script ends"
# No generic netlink traffic: the family table stays empty.
: >"$OUT.genl_families.tsv"
