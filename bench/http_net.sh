#!/usr/bin/env bash
# bench/http_net.sh [REQUESTS]: HTTP against a busybox httpd container on a CNI bridge network
# (`ctr run -d --cni` through a private containerd 1.6), for runc, cocoon and, when runsc is
# installed, gVisor, one after the other in ONE run: REQUESTS (default 50) sequential curl
# requests (average, min, max) and `wrk -t1 -c2 -d5s`. Needs root, containerd, curl, wrk, the
# CNI plugins and a built tree; COCOON_BIN_DIR names the directory with the shim (default
# build/bin). Prints Markdown for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-50}
bin_dir=${COCOON_BIN_DIR:-build/bin}
[ -x "$bin_dir/containerd-shim-cocoon-v2" ] || { echo "no shim in $bin_dir" >&2; exit 1; }
for tool in curl wrk python3; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done

t=$(mktemp -d /tmp/cocoon-bench-http.XXXXXX)
# shellcheck source=../scripts/lib/private-containerd.sh
. scripts/lib/private-containerd.sh
# shellcheck source=../scripts/lib/cni-bridge.sh
. scripts/lib/cni-bridge.sh
cni_setup cocoon-bench cocoon-bench0 10.231.9
pc_init "$t" "$bin_dir" "$PWD"
ids=()
cleanup() {
  set +e
  local p
  for p in $(pgrep -f -- "containerd-shim-runc-v2 .*-address $pc_sock "); do kill -KILL "$p"; done
  pc_cleanup "${ids[@]}"
  cni_cleanup
  rm -rf "$t"
}
trap cleanup EXIT
sed -i 's/^  level = "debug"/  level = "info"/' "$pc_dir/config.toml"
pc_start

run="ctr -a $pc_sock -n $pc_ns run -d --cni --snapshotter $pc_snap"
page='mkdir -p /www && echo "hello from a container" > /www/index.html && exec httpd -f -p 80 -h /www'
names=(runc cocoon)
runs=("$run --runtime io.containerd.runc.v2" "$run --runtime io.containerd.cocoon.v2")
if runsc_args=$(pc_runsc_args); then
  names+=(gvisor)
  runs+=("$run $runsc_args")
else
  echo "runsc is not installed: gVisor left out (apt-get install runsc)" >&2
fi

echo "| runtime | $REQUESTS sequential requests: avg (ms) | min (ms) | max (ms) | wrk -t1 -c2 -d5s (req/s) | avg / runc |"
echo "|---|---|---|---|---|---|"
runc_avg=""
for i in "${!names[@]}"; do
  name=${names[$i]}
  id="http-$name"
  ids+=("$id")
  ${runs[$i]} "$pc_image" "$id" sh -c "$page" >/dev/null
  pid=$("${PC[@]}" task ls | awk -v id="$id" '$1 == id {print $2}')
  ip=$(cni_ip "$pc_ns" "$id")
  url="http://$ip/"
  ok=""
  for _ in $(seq 100); do
    curl -sf --max-time 2 -o /dev/null "$url" && { ok=1; break; }
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "$name: no answer from $url" >&2; exit 1; }
  for _ in $(seq "$REQUESTS"); do
    curl -s -o /dev/null -w '%{time_total}\n' "$url"
  done > "$t/$name.times"
  rps=$(wrk -t1 -c2 -d5s "$url" | awk '/Requests\/sec/ {print $2}')
  read -r avg min max < <(python3 -c 'import sys
t=[float(x)*1000 for x in open(sys.argv[1])]
print(f"{sum(t)/len(t):.2f} {min(t):.2f} {max(t):.2f}")' "$t/$name.times")
  [ -n "$runc_avg" ] || runc_avg=$avg
  ratio=$(python3 -c "print(f'{$avg / $runc_avg:.1f}x')")
  echo "| $name | $avg | $min | $max | $rps | $ratio |"
  cni_del "$pc_ns" "$id" "/proc/$pid/ns/net"
  "${PC[@]}" task kill -s SIGKILL "$id" >/dev/null 2>&1
  for _ in $(seq 100); do "${PC[@]}" task ls | grep -q "^$id .*STOPPED" && break; sleep 0.1; done
  "${PC[@]}" task rm "$id" >/dev/null
  "${PC[@]}" container rm "$id"
done
