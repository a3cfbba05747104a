# tc.sh - traffic control over rtnetlink with iproute2 6.1 `tc`: qdiscs
# (pfifo, bfifo, pfifo_fast, fq_codel, fq, codel, htb, hfsc, tbf, netem,
# prio, mq, mqprio, sfq, red, cake, ingress, clsact, multiq, plug, taprio,
# ets, drr, qfq) on dummy and veth links with add/change/replace and
# `tc -s -d qdisc show`; htb, hfsc, ets and drr classes; filters u32,
# flower, bpf (classic BPF bytecode), matchall, basic, fw, route, cgroup and
# flow, with actions gact, mirred, pedit, vlan, skbedit, police, csum,
# tunnel_key, ct, bpf, nat, sample, connmark, ctinfo, mpls, skbmod and gate;
# `tc -s -d filter show`; `tc actions add/ls/get/del/flush`; `tc chain`; a qdisc
# shared block; failing commands (extended ACK); deletions. Background
# `tc monitor`.
# Record (from the project root):
#   ../shared/tools/nlmon-vm/record -t 180 -o captures tc captures/scripts/tc.sh
for m in dummy veth sch_fq_codel sch_fq sch_codel sch_htb sch_hfsc sch_tbf \
         sch_netem sch_prio sch_mqprio sch_sfq sch_red sch_cake sch_ingress \
         sch_multiq sch_plug sch_taprio sch_ets sch_drr sch_qfq cls_u32 \
         cls_flower cls_bpf cls_matchall cls_basic cls_fw cls_route cls_cgroup \
         cls_flow act_gact act_mirred act_pedit act_vlan act_skbedit \
         act_police act_csum act_tunnel_key act_ct act_bpf act_nat act_sample \
         act_connmark act_ctinfo act_mpls act_skbmod act_gate psample; do
    modprobe $m 2>/dev/null
done
ip link add d0 type dummy
ip link add d1 numtxqueues 4 type dummy
ip link add v0 numtxqueues 4 type veth peer name v1 numtxqueues 4
for l in d0 d1 v0 v1; do ip link set $l up; done
ip addr add 192.0.2.1/24 dev d0
ip addr add 198.51.100.1/24 dev v0

bg mon tc monitor

# --- qdiscs: root on d0, replaced one after the other
run tc qdisc add dev d0 root handle 10: pfifo limit 100
run tc -s -d qdisc show dev d0
run tc qdisc replace dev d0 root handle 11: bfifo limit 30000
run tc -s -d qdisc show dev d0
run tc qdisc replace dev d0 root handle 12: pfifo_fast
run tc -s -d qdisc show dev d0
run tc qdisc del dev d0 root
run tc qdisc add dev d0 root handle 8001: fq_codel limit 2000 target 4ms interval 90ms quantum 1400 flows 512 ecn ce_threshold 3ms memory_limit 16Mb drop_batch 32
run tc qdisc change dev d0 root handle 8001: fq_codel limit 3000 noecn
python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(bytes(200), ("192.0.2.99", 9)) for _ in range(5)]'
run tc -s -d qdisc show dev d0
run tc -s -d class show dev d0
run tc qdisc replace dev d0 root handle 13: fq limit 5000 flow_limit 50 quantum 3028 initial_quantum 15140 maxrate 100mbit buckets 512 orphan_mask 511 refill_delay 50ms low_rate_threshold 500kbit ce_threshold 2ms timer_slack 20us horizon 5s horizon_drop
run tc -s -d qdisc show dev d0
run tc qdisc replace dev d0 root handle 14: codel limit 800 target 6ms interval 120ms ce_threshold 4ms ecn
run tc -s -d qdisc show dev d0
run tc qdisc replace dev d0 root handle 15: tbf rate 8mbit burst 20kb latency 70ms peakrate 10mbit mtu 2000
run tc -s -d qdisc show dev d0
run tc qdisc replace dev d0 root handle 16: netem delay 20ms 5ms 25% loss 1.5% duplicate 0.5% reorder 10% 50% corrupt 0.1% rate 5mbit limit 900 slot 1ms 2ms packets 4
run tc -s -d qdisc show dev d0
run tc qdisc replace dev d0 root handle 17: sfq perturb 10 quantum 1600 limit 100 divisor 512 headdrop
run tc -s -d qdisc show dev d0
run tc qdisc replace dev d0 root handle 18: red limit 400000 min 30000 max 90000 avpkt 1000 burst 55 probability 0.03 bandwidth 10mbit ecn adaptive
run tc -s -d qdisc show dev d0
run tc qdisc replace dev d0 root handle 19: cake bandwidth 20mbit rtt 50ms diffserv4 dual-srchost nat wash ack-filter split-gso overhead 18 mpu 64 memlimit 4000000 fwmark 0xff00
run tc -s -d qdisc show dev d0
run tc qdisc replace dev d0 root handle 1a: plug limit 10000
run tc qdisc change dev d0 root plug release_indefinite
run tc -s -d qdisc show dev d0
run tc qdisc replace dev d0 root handle 1b: prio bands 4 priomap 1 2 2 2 3 3 3 3 1 1 1 1 1 1 1 1
run tc -s -d qdisc show dev d0
run tc qdisc del dev d0 root
run tc qdisc add dev d0 root handle 1: ets bands 4 strict 1 quanta 3000 2000 1000 priomap 0 1 2 3
run tc qdisc add dev d0 parent 1:2 handle 20: pfifo limit 50
run tc class change dev d0 classid 1:3 ets quantum 2500
run tc -s -d qdisc show dev d0
run tc -s -d class show dev d0
run tc qdisc del dev d0 root

# --- multiqueue qdiscs on d1 (4 tx queues)
run tc qdisc add dev d1 root handle 1: mq
run tc -s -d qdisc show dev d1
run tc qdisc replace dev d1 root handle 2: mqprio num_tc 2 map 0 0 0 0 1 1 1 1 queues 2@0 2@2 hw 0
run tc -s -d qdisc show dev d1
run tc qdisc replace dev d1 root handle 3: multiq
run tc -s -d qdisc show dev d1
run tc qdisc replace dev d1 root handle 4: taprio num_tc 2 map 0 0 0 0 1 1 1 1 queues 2@0 2@2 base-time 1000000000 sched-entry S 01 300000 sched-entry S 02 200000 clockid CLOCK_TAI
run tc -s -d qdisc show dev d1
run tc qdisc del dev d1 root

# --- classful: htb, hfsc, drr, qfq
run tc qdisc add dev v0 root handle 1: htb default 20 r2q 5
run tc class add dev v0 parent 1: classid 1:1 htb rate 100mbit ceil 100mbit burst 15k
run tc class add dev v0 parent 1:1 classid 1:10 htb rate 30mbit ceil 80mbit prio 1 quantum 3000
run tc class add dev v0 parent 1:1 classid 1:20 htb rate 10mbit ceil 100mbit prio 2
run tc class change dev v0 classid 1:20 htb rate 20mbit ceil 90mbit prio 3
run tc qdisc add dev v0 parent 1:10 handle 110: fq_codel
run tc qdisc add dev v0 parent 1:20 handle 120: sfq perturb 10
python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(bytes(200), ("198.51.100.2", 9)) for _ in range(5)]'
run tc -s -d qdisc show dev v0
run tc -s -d class show dev v0
run tc class add dev v0 parent 1:1 classid 1:30 htb ceil 10mbit
run tc class del dev v0 classid 1:20
run tc -s -d class show dev v0
run tc qdisc del dev v0 root
run tc qdisc add dev v0 root handle 1: hfsc default 11
run tc class add dev v0 parent 1: classid 1:1 hfsc sc rate 50mbit ul rate 80mbit
run tc class add dev v0 parent 1:1 classid 1:11 hfsc rt m1 10mbit d 10ms m2 5mbit ls rate 20mbit
run tc -s -d class show dev v0
run tc qdisc del dev v0 root
run tc qdisc add dev v0 root handle 1: drr
run tc class add dev v0 parent 1: classid 1:1 drr quantum 1600
run tc -s -d class show dev v0
run tc qdisc del dev v0 root
run tc qdisc add dev v0 root handle 1: qfq
run tc class add dev v0 parent 1: classid 1:1 qfq weight 10 maxpkt 2000
run tc -s -d class show dev v0
run tc qdisc del dev v0 root

# --- filters and actions on v0's clsact hooks and a prio qdisc
run tc qdisc add dev v0 clsact
run tc qdisc add dev v1 ingress
run tc -s -d qdisc show dev v0
run tc -s -d qdisc show dev v1
run tc filter add dev v0 ingress pref 10 protocol ip flower src_ip 192.0.2.0/24 dst_ip 198.51.100.7 ip_proto tcp dst_port 80 src_port 1000-2000 action gact drop
run tc filter add dev v0 ingress pref 11 protocol 802.1q flower vlan_id 100 vlan_prio 3 vlan_ethtype ipv4 action vlan pop action mirred egress redirect dev d0
run tc filter add dev v0 ingress pref 12 protocol ipv6 flower dst_mac 02:00:00:00:00:01 dst_ip 2001:db8::/32 ip_proto udp ip_tos 0x10/0xf0 ip_ttl 64 skip_hw action pedit ex munge ip ttl set 10 pipe action csum ip and udp
run tc filter add dev v0 ingress pref 13 protocol ip flower ip_proto udp enc_key_id 42 enc_dst_ip 10.0.0.2 enc_dst_port 4789 action tunnel_key unset
run tc filter add dev v0 egress pref 14 protocol ip flower ip_proto tcp tcp_flags 0x2/0x3f action tunnel_key set src_ip 10.0.0.1 dst_ip 10.0.0.2 id 42 dst_port 4789 ttl 64 tos 0x20 nocsum action mirred egress redirect dev v1
run tc filter add dev v0 ingress pref 15 protocol ip flower ct_state +trk+est action ct commit zone 3 mark 0x10/0xff nat src addr 192.0.2.1-192.0.2.9 port 2000-3000 pipe action gact ok
run tc filter add dev v0 ingress pref 16 protocol ip flower ct_state -trk action ct zone 3 pipe action goto chain 5
run tc filter add dev v0 ingress pref 17 chain 5 protocol ip flower ip_flags frag/nofirstfrag action skbedit mark 0x33 priority 1:5 queue_mapping 1 ptype host
run tc filter add dev v0 ingress pref 20 protocol ip u32 match ip src 192.0.2.0/24 match ip dport 53 0xffff action police rate 1mbit burst 10k mtu 2k conform-exceed drop/pipe action nat ingress 192.0.2.5 198.51.100.5
run tc filter add dev v0 ingress pref 21 protocol ip u32 match ip protocol 17 0xff match u32 0x00350000 0xffff0000 at 20 classid 1:10 action sample rate 50 group 7 trunc 128
run tc filter add dev v0 ingress pref 22 protocol all matchall skip_hw action connmark zone 4 pipe action ctinfo dscp 0xfc000000 0x01000000 cpmark 0xff zone 4
run tc filter add dev v0 egress pref 23 protocol ip basic match 'meta(priority eq 7)' action mpls push label 100 tc 3 ttl 32 bos 1
run tc filter add dev v0 egress pref 24 protocol ip basic match 'cmp(u8 at 9 layer network eq 6)' action skbmod set dmac 02:00:00:00:00:02 set smac 02:00:00:00:00:03 action mpls pop protocol ip
run tc filter add dev v0 egress pref 25 protocol ip matchall action gate base-time 0 sched-entry open 200000000 -1 -1 sched-entry close 100000000 -1 -1 clockid CLOCK_TAI
run tc filter add dev v0 egress pref 26 protocol all bpf bytecode '1,6 0 0 4294967295,' flowid 1:1 action bpf bytecode '1,6 0 0 4294967295,' action gact reclassify random determ pass 5
run tc filter add dev v0 egress pref 27 protocol ip matchall action skbmod swap mac action police pkts_rate 1000 pkts_burst 100 conform-exceed drop
run tc filter add dev v0 egress pref 28 protocol ip flower ip_proto icmp code 0 type 8 action vlan push id 200 priority 5 protocol 802.1ad action vlan modify id 201
run tc -s -d filter show dev v0 ingress
run tc -s -d filter show dev v0 egress
run tc filter add dev v0 ingress pref 30 protocol ip flower unknown_key 1 action drop
run tc filter add dev v0 ingress pref 10 protocol ip flower dst_ip 203.0.113.1 action drop
run tc filter add dev v0 ingress pref 31 protocol ip u32 match ip dst 1.2.3.4/32 action mirred egress redirect dev nonexist0
run tc filter replace dev v0 ingress pref 10 protocol ip flower src_ip 192.0.2.0/24 dst_ip 198.51.100.8 ip_proto tcp dst_port 80 action gact drop
run tc filter del dev v0 ingress pref 11
run tc qdisc add dev d0 root handle 1: prio
run tc filter add dev d0 parent 1: pref 1 protocol ip handle 5 fw classid 1:2
run tc filter add dev d0 parent 1: pref 2 protocol ip route to 10 classid 1:3
run tc filter add dev d0 parent 1: pref 3 protocol ip handle 3: cgroup
run tc filter add dev d0 parent 1: pref 4 protocol ip handle 4 flow hash keys src,dst,proto divisor 16 baseclass 1:1 perturb 30
run tc filter add dev d0 parent 1: pref 5 protocol ip handle 6 flow map key mark and 0xff addend 10 divisor 4
run tc -s -d filter show dev d0
run tc filter del dev d0 parent 1: pref 3
run tc -s -d filter show dev d0

# --- chains
run tc chain add dev v0 ingress chain 7
run tc chain add dev v0 ingress protocol ip chain 8 flower ip_proto tcp
run tc chain show dev v0 ingress
run tc chain get dev v0 ingress chain 8
run tc chain del dev v0 ingress chain 7

# --- standalone actions
run tc actions add action gact drop index 100
run tc actions add action police rate 2mbit burst 20k drop index 101
run tc actions add action mirred egress mirror dev d0 index 102 cookie 0102030405060708
run tc actions add action skbedit mark 7 index 103
run tc actions add action tunnel_key set src_ip 2001:db8::1 dst_ip 2001:db8::2 id 7 dst_port 6081 geneve_opts 0102:80:00880022 index 104
run tc actions add action ct commit zone 9 index 105
run tc -s actions ls action gact
run tc -s actions ls action police
run tc -s actions get action mirred index 102
run tc -s actions ls action tunnel_key
run tc actions change action gact pass index 100
run tc actions del action skbedit index 103
run tc actions del action gact index 999
run tc actions add action nonexistent_act
run tc actions flush action ct

# --- shared block, unknown kind, failures
run tc qdisc add dev d1 ingress_block 21 clsact
run tc filter add block 21 pref 1 protocol ip matchall action gact pass
run tc -s -d filter show block 21
run tc qdisc add dev d1 root handle 5: htb default 99
run tc class add dev d1 parent 5: classid 5:1 htb rate 0bit
run tc qdisc replace dev d1 root handle 6: no_such_qdisc
run tc qdisc replace dev d0 root handle 7: taprio num_tc 2 map 0 0 0 0 1 1 1 1 queues 1@0 1@1 base-time 0 sched-entry S 01 300000 clockid CLOCK_TAI
run tc qdisc add dev nonexist0 root fq_codel
run tc -s -d qdisc show
run tc -s class show dev d1
run tc qdisc del dev d1 clsact
run tc qdisc del dev d1 root
run tc qdisc del dev d0 root
run tc qdisc del dev v0 clsact
run tc qdisc del dev v1 ingress
run tc qdisc del dev v1 ingress
