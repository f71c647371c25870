#!/usr/bin/env bash
# shim_net_test.sh BIN_DIR SOURCE_DIR: cocoon containers on a CNI bridge network, through
# `ctr run --cni` against a private containerd and the real CNI plugins (bridge, host-local,
# portmap): a busybox httpd in a VM answers the host, reaches the gateway and another cocoon
# container, answers on a host port published by portmap; SIGKILL to its QEMU ends the task and
# leaves no tap, tc or namespace state; a namespace made beforehand (--with-ns, as CRI makes one)
# is used as is and keeps nothing of cocoon after delete.
set -euo pipefail
bin_dir=$(cd "$1" && pwd)
src_dir=$(cd "$2" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in curl iptables python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps.sh)"
done
# shellcheck source=../../../scripts/lib/cni-bridge.sh
. "$src_dir/scripts/lib/cni-bridge.sh"
subnet_prefix=10.231.7
cni_setup cocoon-it cocoon-it0 "$subnet_prefix"
bridge=$cni_bridge
conf=$cni_conf
trap cni_cleanup EXIT

# shellcheck source=../../../scripts/lib/private-containerd.sh
. "$src_dir/scripts/lib/private-containerd.sh"
pc_test_begin "$bin_dir" "$src_dir"
trap 'pc_cleanup "${ids[@]}"; cni_cleanup; [ -n "${SHIM_TEST_KEEP:-}" ] || rm -rf "$t"' EXIT
R=(--snapshotter "$snap" --runtime io.containerd.cocoon.v2 --cni)
cni=(python3 "$src_dir/scripts/lib/cni_run.py")
web='mkdir -p /www && echo "hello from $0" > /www/index.html && exec httpd -f -p 80 -h /www'
task_pid() { "${C[@]}" task ls | awk -v id="$1" '$1 == id {print $2}'; }
# The address CNI gave the container, from inside it: eth0 must carry it.
guest_ip() {
  "${C[@]}" task exec --exec-id "ip$RANDOM" "$1" ip -4 -o addr show eth0 |
    sed -n 's/.* inet \([0-9.]*\)\/.*/\1/p'
}
wait_http() {  # wait_http URL -> body
  local _
  for _ in $(seq 100); do
    curl -s --max-time 2 "$1" && return 0
    sleep 0.1
  done
  return 1
}

# 1. A busybox httpd in a VM on the bridge answers curl from the host.
ids+=(it-web it-web2)
"${C[@]}" run -d "${R[@]}" "$image" it-web sh -c "$web" web1
ip1=$(guest_ip it-web)
case "$ip1" in "$subnet_prefix".*) ;; *) fail "it-web has no CNI address on eth0 ($ip1)" ;; esac
body=$(wait_http "http://$ip1/") || fail "no answer from http://$ip1/"
[ "$body" = "hello from web1" ] || fail "page from it-web: $body"

# 2. Inside, eth0 has the CNI interface's MAC and address; the host's interfaces are absent.
pid1=$(task_pid it-web)
host_mac=$(nsenter --net="/proc/$pid1/ns/net" ip -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\) .*/\1/p')
links=$("${C[@]}" task exec --exec-id links it-web ip -o link show)
grep -q "eth0.*$host_mac" <<<"$links" || fail "guest eth0 lacks the CNI MAC $host_mac: $links"
[ "$(grep -c ': ' <<<"$links")" -eq 2 ] || fail "guest has more than lo and eth0: $links"
! grep -q "$bridge" <<<"$links" || fail "the host's bridge is visible in the guest"
[ "$("${C[@]}" task exec --exec-id kr it-web uname -r)" != "$(uname -r)" ] ||
  fail "it-web runs on the host kernel"
# The tap and the redirects exist in the pod's namespace, next to CNI's veth.
nsenter --net="/proc/$pid1/ns/net" tc filter show dev eth0 ingress | grep -q "cocoon_tap0" ||
  fail "no redirect from eth0 to the tap"

# 3. The container reaches the bridge gateway.
"${C[@]}" task exec --exec-id ping it-web ping -c 1 -W 5 "$subnet_prefix.1" >/dev/null ||
  fail "it-web cannot reach the gateway $subnet_prefix.1"

# 4. Two cocoon containers, two VMs, reach each other.
"${C[@]}" run -d "${R[@]}" "$image" it-web2 sh -c "$web" web2
ip2=$(guest_ip it-web2)
[ -n "$ip2" ] && [ "$ip2" != "$ip1" ] || fail "it-web2 address: '$ip2' (it-web has $ip1)"
# (busybox 1.35's wget crashes with -T, so timeout bounds it.)
got=$("${C[@]}" task exec --exec-id get it-web2 timeout 10 wget -q -O - "http://$ip1/") ||
  fail "it-web2 cannot fetch from it-web"
[ "$got" = "hello from web1" ] || fail "it-web2 got: $got"
wait_http "http://$ip2/" >/dev/null || fail "no answer from it-web2"

# 5. A host port published through portmap answers from the host (ctr 1.6 passes no port
# mappings, so portmap is run against the same netns and ADD result).
result=$(cni_result "$ns" it-web)
[ -f "$result" ] || fail "no CNI result cached at $result"
"${cni[@]}" add --conflist "$conf" --only portmap --netns "/proc/$pid1/ns/net" --id "$ns-it-web" \
  --port 18081:80 --prev-result "$result" >/dev/null
body=$(wait_http "http://$subnet_prefix.1:18081/") || fail "no answer on host port 18081"
[ "$body" = "hello from web1" ] || fail "page through portmap: $body"
"${cni[@]}" del --conflist "$conf" --only portmap --netns "/proc/$pid1/ns/net" --id "$ns-it-web" \
  --port 18081:80 --prev-result "$result" >/dev/null

# 6. SIGKILL to it-web's QEMU: the task exits; its namespace goes with QEMU, taking the tap, the
# redirects and CNI's veth (the bridge loses a port).
ports_before=$(ip -o link show master "$bridge" | wc -l)
cni_del "$ns" it-web "/proc/$pid1/ns/net"  # frees the address; ctr runs no DEL for run -d
kill -KILL "$pid1"
for _ in $(seq 100); do "${C[@]}" task ls | grep -q "^it-web .*STOPPED" && break; sleep 0.1; done
"${C[@]}" task ls | grep -q "^it-web .*STOPPED" || fail "it-web not STOPPED after QEMU's SIGKILL"
for _ in $(seq 50); do [ "$(ip -o link show master "$bridge" | wc -l)" -lt "$ports_before" ] && break; sleep 0.1; done
[ "$(ip -o link show master "$bridge" | wc -l)" -lt "$ports_before" ] ||
  fail "it-web's veth is still on the bridge"
"${C[@]}" task rm it-web >/dev/null
"${C[@]}" container rm it-web
# it-web2 is untouched.
wait_http "http://$ip2/" >/dev/null || fail "it-web2 stopped answering"

# 7. run --rm --cni: ctr tears the network down itself; the guest sees its address.
out=$("${C[@]}" run --rm "${R[@]}" "$image" it-rm ip -4 -o addr show eth0 < /dev/null)
grep -q "inet $subnet_prefix\." <<<"$out" || fail "run --rm --cni: $out"

# 8. A namespace made beforehand, as CRI makes a pod's (ctr run --with-ns): CNI configured it
# before the container exists; cocoon uses it, and on delete takes back its redirects and nothing
# else, since the namespace is not cocoon's.
pod_ns=cocoon-it-pod$$
ip netns add "$pod_ns"
trap 'pc_cleanup "${ids[@]}"; ip netns del "$pod_ns" 2>/dev/null || true; cni_cleanup; [ -n "${SHIM_TEST_KEEP:-}" ] || rm -rf "$t"' EXIT
"${cni[@]}" add --conflist "$conf" --netns "/run/netns/$pod_ns" --id "$ns-it-podnet" \
  --cache "$t/podnet.json" >/dev/null
out=$("${C[@]}" run --rm --snapshotter "$snap" --runtime io.containerd.cocoon.v2 \
  --with-ns "network:/run/netns/$pod_ns" "$image" it-podnet ip -4 -o addr show eth0 < /dev/null)
pod_ip=$(ip netns exec "$pod_ns" ip -4 -o addr show eth0 | sed -n 's/.* inet \([0-9.]*\/[0-9]*\) .*/\1/p')
grep -q "inet $pod_ip " <<<"$out" || fail "--with-ns: guest has '$out', the namespace $pod_ip"
! ip netns exec "$pod_ns" tc qdisc show dev eth0 | grep -q ingress ||
  fail "the redirect on the pod namespace's eth0 outlived the container"
ip netns exec "$pod_ns" ip -o link show eth0 >/dev/null || fail "CNI's eth0 went with the container"
"${cni[@]}" del --conflist "$conf" --netns "/run/netns/$pod_ns" --id "$ns-it-podnet" \
  --cache "$t/podnet.json" >/dev/null
ip netns del "$pod_ns"

# 9. Nothing left: no task, shim, QEMU, tap, state directory; the bridge has it-web2's port only.
pid2=$(task_pid it-web2)
cni_del "$ns" it-web2 "/proc/$pid2/ns/net"
"${C[@]}" task kill -s SIGKILL it-web2
for _ in $(seq 100); do "${C[@]}" task ls | grep -q "^it-web2 .*STOPPED" && break; sleep 0.1; done
"${C[@]}" task rm it-web2 >/dev/null
"${C[@]}" container rm it-web2
for _ in $(seq 50); do [ -z "$(pc_shim_pids)" ] && break; sleep 0.1; done
[ -z "$(pc_shim_pids)" ] || fail "shim daemons left: $(pc_shim_pids)"
for id in it-web it-web2 it-rm; do
  ! pgrep -f "qemu-system.*-name cocoon-$id( |$)" >/dev/null || fail "QEMU of $id left"
  [ ! -e "$(pc_state_dir "$id")" ] || fail "state directory of $id left"
done
[ "$(ip -o link show master "$bridge" | wc -l)" -eq 0 ] ||
  fail "ports left on the bridge: $(ip -o link show master "$bridge")"
! ip -o link show | grep -q cocoon_tap || fail "a tap is left in the host namespace"
[ -z "$(ls /var/lib/cni/networks/cocoon-it 2>/dev/null | grep "^$subnet_prefix")" ] ||
  fail "addresses still allocated: $(ls /var/lib/cni/networks/cocoon-it)"
echo "PASS"
