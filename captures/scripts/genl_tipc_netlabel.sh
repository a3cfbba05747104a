# genl_tipc_netlabel.sh - TIPC (family "TIPCv2", driven by iproute2's `tipc`)
# and NetLabel (NLBL_MGMT, NLBL_CIPSOv4, NLBL_CALIPSO, NLBL_UNLBL, driven by
# `netlabelctl` from netlabel-tools). TIPC: set the node identity, enable a
# UDP bearer on 127.0.0.1, list bearers, links, nodes, media, the name table
# and sockets (one TIPC socket is opened so the list holds something), read
# and change link and media properties, monitor and network settings, then
# disable the bearer. NetLabel: version, protocols, domain mappings,
# unlabeled accept flag and static labels, CIPSOv4 and CALIPSO DOIs, with a
# CIPSOv4 DOI and a domain mapping added and removed. `genl ctrl list` first
# names every family id.
# Record (from the project root):
#   ../shared/tools/nlmon-vm/record -o captures genl_tipc_netlabel captures/scripts/genl_tipc_netlabel.sh
modprobe tipc
run genl ctrl list

# TIPC
run tipc node set identity 0x1234
run tipc node get identity
run tipc node get address
run tipc node set netid 4712
run tipc node get netid
run tipc bearer enable media udp name b1 localip 127.0.0.1
run tipc bearer list
run tipc bearer get tolerance media udp name b1
run tipc bearer get media udp name b1 localip
run tipc bearer set priority 12 media udp name b1
run tipc media list
run tipc media get mtu media udp
run tipc media set tolerance 2000 media udp
run tipc link list
run tipc link get tolerance link broadcast-link
run tipc link get broadcast
run tipc link set window 100 link broadcast-link
run tipc link get window link broadcast-link
run tipc link stat show
run tipc link stat reset link broadcast-link
run tipc link monitor get threshold
run tipc link monitor set threshold 16
run tipc link monitor summary
run tipc link monitor list
run tipc node list
run tipc nametable show
runsh 'python3 - <<PYEOF
import socket
s = socket.socket(socket.AF_TIPC, socket.SOCK_RDM)
s.bind((socket.TIPC_ADDR_NAMESEQ, 1000, 1, 10))
import subprocess
print(subprocess.run(["tipc", "socket", "list"], capture_output=True, text=True).stdout)
print(subprocess.run(["tipc", "nametable", "show"], capture_output=True, text=True).stdout)
s.close()
PYEOF'
run tipc socket list
run tipc peer remove address 1.1.2
run tipc bearer disable media udp name b1
run tipc bearer list

# NetLabel
run netlabelctl -p mgmt version
run netlabelctl -p mgmt protocols
run netlabelctl -p map list
run netlabelctl -p unlbl list
run netlabelctl -p cipsov4 list
run netlabelctl -p calipso list
run netlabelctl unlbl accept off
run netlabelctl unlbl accept on
run netlabelctl -p unlbl list
run netlabelctl unlbl add interface:lo address:192.0.2.0/24 label:system_u:object_r:netlabel_peer_t:s0
run netlabelctl -p unlbl list
run netlabelctl unlbl del interface:lo address:192.0.2.0/24
run netlabelctl cipsov4 add pass doi:16 tags:1
run netlabelctl -p cipsov4 list
run netlabelctl -p cipsov4 list doi:16
run netlabelctl cipsov4 add trans doi:18 tags:1 levels:0=0,1=1 categories:0=0,1=1
run netlabelctl -p cipsov4 list doi:18
run netlabelctl cipsov4 add local doi:19
run netlabelctl -p cipsov4 list
run netlabelctl map add domain:lab protocol:cipsov4,16
run netlabelctl map add domain:lab2 address:192.0.2.0/24 protocol:unlbl
run netlabelctl -p map list
run netlabelctl map del domain:lab
run netlabelctl map del domain:lab2
run netlabelctl cipsov4 del doi:16
run netlabelctl cipsov4 del doi:18
run netlabelctl cipsov4 del doi:19
run netlabelctl calipso add pass doi:17
run netlabelctl -p calipso list
run netlabelctl calipso del doi:17
run netlabelctl -p map list
