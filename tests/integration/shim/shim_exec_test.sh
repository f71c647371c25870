#!/usr/bin/env bash
# shim_exec_test.sh BIN_DIR SOURCE_DIR: exec processes, ps, pause/resume, metrics and OOM events
# of a container run by containerd-shim-cocoon-v2 under a private containerd 1.6 (contract 9.4).
set -euo pipefail
bin_dir=$(cd "$1" && pwd)
src_dir=$(cd "$2" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=../../../scripts/lib/private-containerd.sh
. "$src_dir/scripts/lib/private-containerd.sh"
pc_test_begin "$bin_dir" "$src_dir"
R=(--snapshotter "$snap" --runtime io.containerd.cocoon.v2)

"${C[@]}" events > "$t/events" 2>&1 &
events_pid=$!
ids+=(it-x)
"${C[@]}" run -d "${R[@]}" "$image" it-x sleep 300

# 1. An exec's output and exit code; its events name the exec.
set +e
"${C[@]}" task exec --exec-id e1 it-x sh -c 'echo hi; echo oops >&2; exit 7' > "$t/out" 2> "$t/err"
rc=$?
set -e
[ "$rc" -eq 7 ] || fail "exec exit code $rc, expected 7 ($(cat "$t/err"))"
grep -qx hi "$t/out" || fail "exec stdout: $(cat "$t/out")"
grep -qx oops "$t/err" || fail "exec stderr: $(cat "$t/err")"

# 2. The exec ran in the container, in the same VM: same guest boot id, not the host's.
"${C[@]}" task exec --exec-id boot1 it-x cat /proc/sys/kernel/random/boot_id > "$t/boot1"
[ "$(cat "$t/boot1")" != "$(cat /proc/sys/kernel/random/boot_id)" ] || fail "exec ran on the host"
"${C[@]}" task exec --exec-id boot2 it-x cat /proc/sys/kernel/random/boot_id > "$t/boot2"
cmp -s "$t/boot1" "$t/boot2" || fail "two execs saw two guests"

# 3. A duplicate exec id is refused while the first one lives; a finished one's id is free again.
"${C[@]}" task exec -d --exec-id e2 it-x sleep 100
! "${C[@]}" task exec -d --exec-id e2 it-x sleep 100 2> "$t/err" || fail "duplicate exec id accepted"
grep -q "already exists" "$t/err" || fail "duplicate exec: $(cat "$t/err")"
"${C[@]}" task exec --exec-id e1 it-x true || fail "exec id e1 not reusable after it finished"

# 4. stdin reaches an exec and its end gives EOF; a terminal exec gets the caller's size.
printf 'to-exec\n' | "${C[@]}" task exec --exec-id e3 it-x cat > "$t/out"
grep -qx to-exec "$t/out" || fail "exec stdin: $(cat "$t/out")"
script -qec "stty rows 21 cols 77; ${C[*]} task exec -t --exec-id e4 it-x sh -c 'tty; stty size'" \
  /dev/null < /dev/null > "$t/out" 2>&1 || true
grep -q "/dev/pts/" "$t/out" || fail "exec without a pty: $(cat "$t/out")"
grep -q "21 77" "$t/out" || fail "exec pty size: $(cat "$t/out")"

# 5. ps lists the container's processes (guest pids): init and the detached exec.
"${C[@]}" task ps it-x > "$t/ps"
[ "$(grep -cE '^[0-9]+ ' "$t/ps")" -ge 2 ] || fail "task ps: $(cat "$t/ps")"

# 6. Metrics come from the guest's cgroup.
"${C[@]}" task metrics it-x > "$t/metrics" 2>&1 || fail "metrics: $(cat "$t/metrics")"
grep -qE "pids.current +[1-9]" "$t/metrics" || fail "metrics without pids: $(cat "$t/metrics")"
grep -qE "memory.usage +[1-9]" "$t/metrics" || fail "metrics without memory: $(cat "$t/metrics")"

# 7. Pause freezes the container (PAUSED; an exec cannot run), resume thaws it.
"${C[@]}" task pause it-x
"${C[@]}" task ls | grep -E "^it-x +[0-9]+ +PAUSED" >/dev/null || fail "not PAUSED: $("${C[@]}" task ls)"
"${C[@]}" task resume it-x
"${C[@]}" task ls | grep -E "^it-x +[0-9]+ +RUNNING" >/dev/null || fail "not RUNNING: $("${C[@]}" task ls)"
"${C[@]}" task exec --exec-id e5 it-x true || fail "exec after resume"

# 8. Killing init ends the detached exec with it; then the task can go.
"${C[@]}" task kill -s SIGKILL it-x
for _ in $(seq 100); do "${C[@]}" task ls | grep -q "it-x .*STOPPED" && break; sleep 0.1; done
"${C[@]}" task ls | grep -q "it-x .*STOPPED" || fail "it-x not STOPPED"
"${C[@]}" task rm it-x >/dev/null
"${C[@]}" container rm it-x

# 9. A container over its memory limit: the OOM killer's kill becomes /tasks/oom, exit 137.
ids+=(it-oom)
set +e
"${C[@]}" run --rm "${R[@]}" --memory-limit 33554432 "$image" it-oom sh -c 'tail /dev/zero' \
  < /dev/null > "$t/out" 2> "$t/err"
rc=$?
set -e
[ "$rc" -eq 137 ] || fail "OOM run: exit $rc ($(cat "$t/err"))"
for _ in $(seq 50); do grep -q "/tasks/oom" "$t/events" && break; sleep 0.1; done
kill "$events_pid"
wait "$events_pid" 2>/dev/null || true

for topic in /tasks/exec-added /tasks/exec-started /tasks/paused /tasks/resumed; do
  grep -q "$ns $topic {\"container_id\":\"it-x\"" "$t/events" ||
    { cat "$t/events" >&2; fail "event $topic of it-x not seen"; }
done
grep -q '/tasks/exit {"container_id":"it-x","id":"e1",.*"exit_status":7' "$t/events" ||
  fail "no exit event for exec e1 with status 7"
grep -q '/tasks/oom {"container_id":"it-oom"' "$t/events" || fail "no /tasks/oom for it-oom"
! grep -qi "unmarshal" "$t/events" "$t/containerd.log" || fail "events did not decode"

# 10. Nothing left.
for _ in $(seq 50); do [ -z "$(pc_shim_pids)" ] && break; sleep 0.1; done
[ -z "$(pc_shim_pids)" ] || fail "shim daemons left: $(pc_shim_pids)"
for id in "${ids[@]}"; do
  ! pgrep -f "qemu-system.*-name cocoon-$id( |$)" >/dev/null || fail "QEMU of $id left"
  [ ! -e "$(pc_state_dir "$id")" ] || fail "state directory of $id left"
done
echo "PASS"
