# The shaped link: two network namespaces made by the benchmark, joined by a
# veth pair whose both ends are limited to 100 Mbit/s by tbf. The server side
# runs nginx behind the delaying proxy (delayproxy.py, 20 ms before each
# response). The client side runs curl, nidofs, httpdirfs and the VMs' QEMU.
# Nothing on this link reaches the host's own interfaces.
# shellcheck shell=bash

B_LINK_RATE=${B_LINK_RATE:-100mbit}

# netns_up SUFFIX: creates the namespaces and exports BENCH_NETNS_S,
# BENCH_NETNS_C and BENCH_SHAPED_ADDR.
netns_up() {
	local s="nbench-s-$1" c="nbench-c-$1" vs="nbs$1" vc="nbc$1"
	ip netns add "$s" || return 1
	ip netns add "$c" || { ip netns del "$s"; return 1; }
	export BENCH_NETNS_S=$s BENCH_NETNS_C=$c BENCH_SHAPED_ADDR=10.251.0.1
	ip link add "$vs" type veth peer name "$vc" &&
		ip link set "$vs" netns "$s" &&
		ip link set "$vc" netns "$c" &&
		ip -n "$s" addr add 10.251.0.1/30 dev "$vs" &&
		ip -n "$c" addr add 10.251.0.2/30 dev "$vc" &&
		ip -n "$s" link set lo up &&
		ip -n "$c" link set lo up &&
		ip -n "$s" link set "$vs" up &&
		ip -n "$c" link set "$vc" up &&
		ip netns exec "$s" tc qdisc add dev "$vs" root tbf rate "$B_LINK_RATE" burst 128kb latency 50ms &&
		ip netns exec "$c" tc qdisc add dev "$vc" root tbf rate "$B_LINK_RATE" burst 128kb latency 50ms
}

# netns_down: deletes the namespaces (and with them the veth pair).
netns_down() {
	[ -n "${BENCH_NETNS_S:-}" ] && ip netns del "$BENCH_NETNS_S" 2>/dev/null
	[ -n "${BENCH_NETNS_C:-}" ] && ip netns del "$BENCH_NETNS_C" 2>/dev/null
	return 0
}
