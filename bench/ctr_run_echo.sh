#!/usr/bin/env bash
# bench/ctr_run_echo.sh [RUNS]: `ctr run --rm IMG ID echo test` through a private containerd 1.6,
# with runc (io.containerd.runc.v2), cocoon (io.containerd.cocoon.v2) and, when runsc is
# installed, gVisor (runsc as the runc binary of io.containerd.runc.v2), in ONE hyperfine
# invocation. Needs root, containerd, hyperfine and a built tree (scripts/build.sh);
# COCOON_BIN_DIR names the directory with cocoon and the shim (default build/bin).
# Prints Markdown for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
bin_dir=${COCOON_BIN_DIR:-build/bin}
[ -x "$bin_dir/containerd-shim-cocoon-v2" ] || { echo "no shim in $bin_dir" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine is not installed" >&2; exit 1; }

t=$(mktemp -d /tmp/cocoon-bench-ctr.XXXXXX)
# shellcheck source=../scripts/lib/private-containerd.sh
. scripts/lib/private-containerd.sh
trap 'rm -rf "$t"' EXIT
pc_init "$t" "$bin_dir" "$PWD"
# After an interrupted run: gVisor sandboxes and runc shims of this containerd, then the rest.
cleanup() {
  set +e
  local c p
  if [ -d "$t/runsc/$pc_ns" ]; then
    for c in $(runsc --root "$t/runsc/$pc_ns" list -quiet 2>/dev/null); do
      runsc --root "$t/runsc/$pc_ns" delete -force "$c" >/dev/null 2>&1
    done
  fi
  for p in $(pgrep -f -- "containerd-shim-runc-v2 .*-address $pc_sock "); do kill -KILL "$p"; done
  pc_cleanup
  rm -rf "$t"
}
trap cleanup EXIT
# Timing, not debugging: debug logging in containerd (and -debug shims) costs every runtime.
sed -i 's/^  level = "debug"/  level = "info"/' "$pc_dir/config.toml"
pc_start

# Each run needs a new container id; `date +%s%N` in the command (hyperfine runs it through sh)
# gives one per run, all of the same length, so none is a prefix of another (runsc needs that).
ctr="ctr -a $pc_sock -n $pc_ns run --rm --snapshotter $pc_snap"
names=(runc cocoon)
cmds=("$ctr --runtime io.containerd.runc.v2 $pc_image rc\$(date +%s%N) echo test"
      "$ctr --runtime io.containerd.cocoon.v2 $pc_image co\$(date +%s%N) echo test")

if runsc_args=$(pc_runsc_args); then
  names+=(gvisor)
  cmds+=("$ctr $runsc_args $pc_image gv\$(date +%s%N) echo test")
else
  echo "runsc is not installed: gVisor left out (apt-get install runsc)" >&2
fi

# Each runtime must really print "test" before it is timed.
for i in "${!names[@]}"; do
  out=$(sh -c "${cmds[$i]}" < /dev/null 2>&1) || { echo "${names[$i]} failed: $out" >&2; exit 1; }
  [ "$(printf '%s' "$out" | tr -d '\r\n')" = test ] || { echo "${names[$i]}: $out" >&2; exit 1; }
done

args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine --runs "$RUNS" --warmup 1 --export-json "$t/hf.json" --style basic "${args[@]}" >&2

python3 - "$t/hf.json" <<'PY'
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
med = {r["command"]: statistics.median(r["times"]) * 1000 for r in results}
print("| runtime | median (ms) | min (ms) | max (ms) | median / runc |")
print("|---|---|---|---|---|")
for r in results:
    t = [x * 1000 for x in r["times"]]
    print(f"| {r['command']} | {statistics.median(t):.0f} | {min(t):.0f} | {max(t):.0f} | "
          f"{med[r['command']] / med['runc']:.1f}x |")
PY
