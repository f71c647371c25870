#!/usr/bin/env bash
# bench/run_echo.sh [RUNS]: `cocoon run` of `echo test` against `runc run` on the same bundle, in
# one hyperfine invocation, then the breakdown of cocoon's start from COCOON_TIMINGS_FILE.
# Needs root and a built tree (scripts/build.sh). Prints Markdown for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
COCOON=${COCOON_BIN:-build/bin/cocoon}
work=$(mktemp -d /tmp/cocoon-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT

COCOON_BIN=$COCOON scripts/make-bundle.sh "$work/bundle" -- echo test >/dev/null

hyperfine --runs "$RUNS" --warmup 1 --export-json "$work/hf.json" --style basic \
  -n runc "runc run --bundle $work/bundle bench-runc" \
  -n cocoon "$COCOON run --bundle $work/bundle bench-cocoon" >&2

for i in $(seq 1 "$RUNS"); do
  COCOON_TIMINGS_FILE="$work/t$i.json" "$COCOON" run --bundle "$work/bundle" bench-t >/dev/null
done

python3 - "$work" "$RUNS" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
hf = json.load(open(f"{work}/hf.json"))["results"]
med = {r["command"]: statistics.median(r["times"]) * 1000 for r in hf}
print(f"| runtime | median (ms) | min (ms) | max (ms) |")
print(f"|---|---|---|---|")
for r in hf:
    t = [x * 1000 for x in r["times"]]
    print(f"| {r['command']} | {statistics.median(t):.0f} | {min(t):.0f} | {max(t):.0f} |")
print(f"\ncocoon / runc median ratio: {med['cocoon'] / med['runc']:.1f}x\n")
keys = ["qemu_spawned_ms", "kernel_entered_ms", "agent_ready_ms", "container_created_ms",
        "process_started_ms", "exit_reported_ms", "vm_stopped_ms"]
ts = [json.load(open(f"{work}/t{i}.json")) for i in range(1, runs + 1)]
print("| milestone (ms since cocoon started the sandbox) | median |")
print("|---|---|")
for k in keys:
    print(f"| {k[:-3].replace('_', ' ')} | {statistics.median(t[k] for t in ts):.0f} |")
PY
