#!/usr/bin/env bash
# compare_test.sh COCOON: `cocoon compare --runs 3 --json --report DIR` against the real runtimes
# of this host, then checks the JSON (cocoon's kernel is not the host's, runc's is; cocoon sees no
# host process; the cost fields are numbers; a missing or failing runtime carries its error), the
# report files (the SVGs parse as XML), bad options, and that nothing is left behind, also after
# a SIGINT in the middle of a run.
set -euo pipefail
cocoon=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "compare needs root"
t=$(mktemp -d /tmp/cocoon-compare-it.XXXXXX)
trap 'rm -rf "$t"' EXIT

# Bad options fail at once with the reason, before anything starts.
set +e
"$cocoon" compare --runs 0 > /dev/null 2> "$t/err0"; rc0=$?
"$cocoon" compare --runtimes runc,kata > /dev/null 2> "$t/err1"; rc1=$?
set -e
[ "$rc0" -ne 0 ] && grep -q -- "--runs must be 1 to 99" "$t/err0" || fail "--runs 0: $(cat "$t/err0")"
[ "$rc1" -ne 0 ] && grep -q "unknown runtime 'kata'" "$t/err1" || fail "kata: $(cat "$t/err1")"

"$cocoon" compare --runs 3 --json --report "$t/report" \
  > "$t/out.json" 2> "$t/progress" || { cat "$t/progress" >&2; fail "compare exited $?"; }
grep -q "^compare: cocoon: isolation probe" "$t/progress" || fail "no progress lines"

python3 - "$t/out.json" "$t/report" <<'PY'
import json, os, sys
import xml.etree.ElementTree as ET
doc = json.load(open(sys.argv[1]))
host, rts = doc["host"], doc["runtimes"]
def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what + "\n" + json.dumps(doc, indent=1)[:3000])
for name in ("runc", "cocoon"):
    check(rts[name]["available"] and rts[name]["error"] is None, name + " did not run")
check(rts["runc"]["isolation"]["kernel_release"] == host["kernel_release"],
      "runc's kernel differs from the host's")
check(rts["cocoon"]["isolation"]["kernel_release"] != host["kernel_release"],
      "cocoon shows the host's kernel")
check(host["host_pids_visible"] is True, "the host does not see its own marker process")
check(rts["cocoon"]["isolation"]["host_pids_visible"] is False, "cocoon sees host processes")
check(rts["runc"]["isolation"]["host_pids_visible"] is False, "runc sees host processes")
nics = {n["name"]: n["driver"] for n in rts["cocoon"]["isolation"]["interfaces"]}
check(nics.get("eth0") == "virtio_net", "cocoon's eth0 is not virtio_net: %s" % nics)
runc_nics = {n["name"]: n["driver"] for n in rts["runc"]["isolation"]["interfaces"]}
check(runc_nics.get("eth0") == "virtual", "runc's eth0 is not CNI's veth: %s" % runc_nics)
check(rts["cocoon"]["isolation"]["mem_total_mib"] < host["mem_total_mib"],
      "cocoon sees the host's memory")
for name in ("runc", "cocoon"):
    cost = rts[name]["cost"]
    for field in ("startup_median_ms", "startup_p90_ms", "http_latency_avg_ms",
                  "http_requests_per_s", "idle_memory_pss_mib"):
        check(isinstance(cost[field], (int, float)) and cost[field] > 0,
              "%s cost.%s is %r (errors: %s)" % (name, field, cost[field], cost["errors"]))
    check(len(cost["startup_samples_ms"]) == 3, name + " has not 3 start samples")
check(rts["cocoon"]["cost"]["startup_median_ms"] > rts["runc"]["cost"]["startup_median_ms"],
      "a VM started faster than runc")
for name in ("gvisor", "crun"):
    r = rts[name]
    check(r["available"] is False or r["isolation"] is not None or r["error"],
          name + " neither ran nor said why")
    if r["isolation"] is None:
        check(isinstance(r["error"], str) and r["error"], name + " failed without an error")
d = sys.argv[2]
for f in ("report.md", "report.json", "startup.svg", "latency.svg"):
    check(os.path.getsize(os.path.join(d, f)) > 0, f + " is empty")
for f in ("startup.svg", "latency.svg"):
    root = ET.parse(os.path.join(d, f)).getroot()
    check(root.tag == "{http://www.w3.org/2000/svg}svg", f + " is not SVG")
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    check("cocoon" in texts and "runc" in texts, f + " lacks a runtime: %s" % texts)
md = open(os.path.join(d, "report.md")).read()
check("](startup.svg)" in md and "](latency.svg)" in md, "report.md does not show the charts")
check(json.load(open(os.path.join(d, "report.json")))["runtimes"].keys() == rts.keys(),
      "report.json differs from --json")
PY

# Nothing left: no containerd, shim, VM or work directory of compare, no CNI state of it.
nothing_left() {
  ! pgrep -f "containerd --config /var/tmp/cocoon-compare" >/dev/null || fail "$1: containerd left"
  ! pgrep -f "containerd-shim.*cocoon-compare" >/dev/null || fail "$1: a shim is left"
  ! pgrep -f "qemu-system.*cocoon-cmp-" >/dev/null || fail "$1: a VM is left"
  ! ls -d /var/tmp/cocoon-compare.* >/dev/null 2>&1 || fail "$1: work directory left"
  [ ! -e /etc/cni/net.d/00-cocoon-compare.conflist ] || fail "$1: CNI configuration left"
  ! ip link show cocoon-cmp0 >/dev/null 2>&1 || fail "$1: the CNI bridge is left"
  [ ! -e /var/lib/cni/networks/cocoon-compare ] || fail "$1: IPAM state left"
}
nothing_left "after a run"

# SIGINT in the middle (cocoon's VM running): it stops, says so, and still cleans up.
"$cocoon" compare --runs 3 --runtimes runc,cocoon > /dev/null 2> "$t/int.err" &
pid=$!
for _ in $(seq 600); do grep -q "cocoon: start time" "$t/int.err" && break; sleep 0.1; done
grep -q "cocoon: start time" "$t/int.err" || { kill -INT "$pid"; fail "never reached cocoon"; }
kill -INT "$pid"
set +e
wait "$pid"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "an interrupted compare exited 0"
grep -q "interrupted; what it started is cleaned up" "$t/int.err" || fail "$(cat "$t/int.err")"
nothing_left "after SIGINT"
echo "PASS"
