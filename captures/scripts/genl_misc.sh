# genl_misc.sh - four small generic netlink families, each driven by its own
# tool: mptcp_pm (`ip mptcp`: limits, endpoints with flags, port and id,
# change flags, show, delete, flush), tcp_metrics (`ip tcp_metrics` after a
# short TCP exchange on 127.0.0.1: dump, get one address, delete it), fou
# (`ip fou`: add direct and GUE ports, one with local/peer addresses, show,
# delete) and wireguard (`wg`: set a private key, listen port, two peers
# with preshared key, IPv4 and IPv6 endpoints, allowed IPs; `wg show`,
# `wg showconf`). `genl ctrl list` first names every family id (fou and
# wireguard are loaded first so that the list holds them; every tool also
# looks its family up by name).
# Record (from the project root):
#   ../shared/tools/nlmon-vm/record -o captures genl_misc captures/scripts/genl_misc.sh
modprobe fou; modprobe wireguard
run genl ctrl list

# mptcp_pm
run ip mptcp limits set subflow 2 add_addr_accepted 2
run ip mptcp limits show
run ip mptcp endpoint add 192.0.2.1 dev lo signal
run ip mptcp endpoint add 2001:db8::1 id 5 subflow backup
run ip mptcp endpoint add 127.0.0.2 port 10000 signal     # a listening socket: the address must be local
run ip mptcp endpoint change id 5 nobackup
run ip mptcp endpoint show
run ip mptcp endpoint show id 5
run ip mptcp endpoint delete id 5
run ip mptcp endpoint flush
run ip mptcp endpoint show

# tcp_metrics: a TCP exchange on loopback, closed by the client, so the
# kernel stores metrics for 127.0.0.1
runsh 'python3 - <<EOF
import socket, threading
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def serve():
    c, _ = srv.accept(); d = c.recv(65536)
    while d:
        c.sendall(d); d = c.recv(65536)
    c.close()
t = threading.Thread(target=serve); t.start()
cl = socket.create_connection(srv.getsockname())
for _ in range(20):
    cl.sendall(b"x" * 4000); cl.recv(65536)
print("tcp exchange done, server port", srv.getsockname()[1])
cl.close(); t.join(); srv.close()
EOF'
run ip tcp_metrics show
run ip tcp_metrics show 127.0.0.1
run ip tcp_metrics delete 127.0.0.1
run ip tcp_metrics show

# fou
run ip fou add port 5555 ipproto 4
run ip fou add port 5556 gue
run ip fou add port 5557 ipproto 47 local 127.0.0.1 peer 127.0.0.2 peer_port 6000 dev lo
run ip fou show
run ip fou del port 5555
run ip fou show

# wireguard
run ip link add wg0 type wireguard
runsh 'umask 077; wg genkey > wg0.key; wg genkey > p1.key; wg genkey > p2.key; wg genpsk > p1.psk'
runsh 'wg pubkey < wg0.key; wg pubkey < p1.key; wg pubkey < p2.key'
runsh 'wg set wg0 private-key ./wg0.key listen-port 51820 peer "$(wg pubkey < p1.key)" preshared-key ./p1.psk allowed-ips 10.0.0.0/24,fd00::/64 endpoint 192.0.2.9:51820 persistent-keepalive 25'
runsh 'wg set wg0 peer "$(wg pubkey < p2.key)" allowed-ips 10.0.1.0/24 endpoint [2001:db8::9]:51821'
run wg show wg0
run wg showconf wg0
runsh 'wg set wg0 peer "$(wg pubkey < p2.key)" remove'
run wg show wg0 dump
run ip link del wg0
