# nl80211_hwsim.sh - the nl80211 generic netlink family (cfg80211), driven by
# iw against two simulated radios (mac80211_hwsim radios=2: phy0/wlan0 and
# phy1/wlan1). Wiphy dump (`iw list`, once: it is the big one), interface
# dump, one wiphy, regulatory domain get/set, monitor interface add/delete,
# interface type changes, RTS threshold, power save, a scan that finds the
# IBSS started on wlan1, survey, station dump, IBSS join on both radios.
# `iw event -t` listens in the background (config, scan, regulatory, mlme,
# vendor, nan multicast groups).
# Record (from the project root):
#   ../shared/tools/nlmon-vm/record -o captures nl80211_hwsim captures/scripts/nl80211_hwsim.sh
# every iw call is bounded (a command that waits for an event must not hang
# the VM); `run iw ...` still logs the plain command line
iw() { timeout 40 /usr/sbin/iw "$@"; }
log "modprobe mac80211_hwsim radios=2"
modprobe mac80211_hwsim radios=2
sleep 1
bg event iw event -t

run iw list
run iw dev
run iw phy phy0 info
run iw reg get
run iw reg set DE
sleep 1
run iw reg get

# interface types: monitor and back, an extra monitor interface
run iw dev wlan0 set type monitor
run iw dev wlan0 info
run iw dev wlan0 set type managed
run iw phy phy0 interface add mon0 type monitor
run iw dev mon0 info
run iw dev mon0 del
run iw phy phy0 set rts 500
run iw phy phy0 set rts off

# an IBSS on wlan1, so that the scan on wlan0 finds a BSS
run iw dev wlan1 set type ibss
run ip link set wlan1 up
run iw dev wlan1 ibss join nlshark-ibss 2412 fixed-freq 02:11:22:33:44:55

run ip link set wlan0 up
run iw dev wlan0 set power_save on
run iw dev wlan0 get power_save
run iw dev wlan0 scan
run iw dev wlan0 scan dump
run iw dev wlan0 info
run iw dev wlan0 station dump
run iw dev wlan0 survey dump
run iw dev wlan0 link

# wlan0 joins the same IBSS: a peer in the station dump
run ip link set wlan0 down
run iw dev wlan0 set type ibss
run ip link set wlan0 up
run iw dev wlan0 ibss join nlshark-ibss 2412 fixed-freq 02:11:22:33:44:55
sleep 3
run iw dev wlan0 station dump
run iw dev wlan1 station dump
run iw dev wlan0 ibss leave
run iw dev wlan1 ibss leave
