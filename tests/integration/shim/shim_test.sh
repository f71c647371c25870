#!/usr/bin/env bash
# shim_test.sh BIN_DIR SOURCE_DIR: a private containerd 1.6 (own root, state, sockets under a temp
# dir) runs busybox containers through containerd-shim-cocoon-v2: `uname -r` shows the guest
# kernel, stdout/stderr and the exit code come through, and nothing is left afterwards.
set -euo pipefail
bin_dir=$(cd "$1" && pwd)
src_dir=$(cd "$2" && pwd)
shim="$bin_dir/containerd-shim-cocoon-v2"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -x "$shim" ] || fail "no shim at $shim"

# shellcheck source=../../../scripts/lib/private-containerd.sh
. "$src_dir/scripts/lib/private-containerd.sh"
pc_test_begin "$bin_dir" "$src_dir"
sock=$pc_sock
shim_pids() { pc_shim_pids; }
run() {  # run ID ARGS... : ctr run --rm through the shim, stdin from $t/in; stdout in $t/out,
         # stderr in $t/err
  local id=$1; shift
  ids+=("$id")
  set +e
  "${C[@]}" run --rm --snapshotter "$snap" --runtime io.containerd.cocoon.v2 "$image" "$id" "$@" \
    < "$t/in" > "$t/out" 2> "$t/err"
  rc=$?
  set -e
}
: > "$t/in"

# 1. uname -r comes from the guest kernel, not the host's.
run it-uname uname -r
[ "$rc" -eq 0 ] || { cat "$t/err" >&2; tail -50 "$t/containerd.log" >&2; fail "uname: exit $rc"; }
guest=$(tr -d '\r\n' < "$t/out")
[ -n "$guest" ] || fail "uname printed nothing"
[ "$guest" != "$(uname -r)" ] || fail "uname -r shows the host kernel ($guest)"
echo "guest kernel: $guest (host: $(uname -r))"

# 2. stdout, stderr and the exit code propagate; the events reach containerd and decode.
"${C[@]}" events > "$t/events" 2>&1 &
events_pid=$!
sleep 0.5
run it-exit sh -c 'echo out; echo err >&2; exit 3'
[ "$rc" -eq 3 ] || { cat "$t/err" >&2; fail "exit code $rc, expected 3"; }
grep -qx out "$t/out" || fail "stdout: $(cat "$t/out")"
grep -qx err "$t/err" || fail "stderr: $(cat "$t/err")"
sleep 0.5
kill "$events_pid"
wait "$events_pid" 2>/dev/null || true
for topic in /tasks/create /tasks/start /tasks/exit /tasks/delete; do
  grep -q "$ns $topic {\"container_id\":\"it-exit\"" "$t/events" ||
    { cat "$t/events" >&2; fail "event $topic of it-exit not seen"; }
done
grep "/tasks/exit" "$t/events" | grep -q '"exit_status":3' || fail "exit event without status 3"
! grep -qi "unmarshal" "$t/events" "$t/containerd.log" || fail "events did not decode"

# 3. stdin reaches the process and its end gives it EOF (CloseIO).
printf 'data\n' > "$t/in"
run it-stdin cat
[ "$rc" -eq 0 ] || { cat "$t/err" >&2; fail "cat: exit $rc"; }
grep -qx data "$t/out" || fail "stdin not relayed: $(cat "$t/out")"

# 3b. Runtime options: --runtime-config-path names the cocoon config (here: a bigger VM); a bad
# path fails the run with a message naming it.
echo "memory_mib = 512" > "$t/cocoon.toml"
ids+=(it-opts)
: > "$t/in"
set +e
"${C[@]}" run --rm --snapshotter "$snap" --runtime io.containerd.cocoon.v2 \
  --runtime-config-path "$t/cocoon.toml" "$image" it-opts grep MemTotal /proc/meminfo \
  < "$t/in" > "$t/out" 2> "$t/err"
rc=$?
set -e
[ "$rc" -eq 0 ] || { cat "$t/err" >&2; fail "run with options: exit $rc"; }
mem_kb=$(awk '{print $2}' "$t/out")
[ "${mem_kb:-0}" -gt 400000 ] || fail "config_path not honoured: $(cat "$t/out")"
ids+=(it-badopts)
! "${C[@]}" run --rm --snapshotter "$snap" --runtime io.containerd.cocoon.v2 \
  --runtime-config-path "$t/missing.toml" "$image" it-badopts true < "$t/in" > "$t/out" 2> "$t/err" ||
  fail "a missing config file was accepted"
grep -q "missing.toml" "$t/err" || fail "bad config path: $(cat "$t/err")"
"${C[@]}" container rm it-badopts >/dev/null 2>&1 || true

# 4. The shim logs into containerd's log (the bundle's log FIFO).
grep -q 'msg="shim daemon serving' "$t/containerd.log" || fail "no shim log line in containerd's log"

# 4b. A terminal: the process gets a pty of the size ctr gives it.
ids+=(it-tty)
script -qec "stty rows 33 cols 101; ${C[*]} run -t --rm --snapshotter $snap --runtime io.containerd.cocoon.v2 $image it-tty sh -c 'tty; stty size'" /dev/null < /dev/null > "$t/out" 2>&1 || true
grep -q "/dev/pts/" "$t/out" || fail "no pty: $(cat "$t/out")"
grep -q "33 101" "$t/out" || fail "pty size: $(cat "$t/out")"

# 5. Detached: list, an unsupported RPC (Checkpoint), kill, a second kill, rm; then the daemon is gone.
ids+=(it-det)
"${C[@]}" run -d --snapshotter "$snap" --runtime io.containerd.cocoon.v2 "$image" it-det sleep 300
"${C[@]}" task ls | grep -E "^it-det +[0-9]+ +RUNNING" >/dev/null || fail "it-det not RUNNING: $("${C[@]}" task ls)"
! "${C[@]}" task checkpoint it-det 2> "$t/err" || fail "checkpoint succeeded"
grep -q "Checkpoint is not implemented" "$t/err" || fail "checkpoint: $(cat "$t/err")"
"${C[@]}" task kill -s SIGKILL it-det
for _ in $(seq 100); do "${C[@]}" task ls | grep -q "it-det .*STOPPED" && break; sleep 0.1; done
"${C[@]}" task ls | grep -q "it-det .*STOPPED" || fail "it-det not STOPPED after kill"
! "${C[@]}" task kill -s SIGKILL it-det 2> "$t/err" || fail "second kill succeeded"
grep -q "not found" "$t/err" || fail "second kill: $(cat "$t/err")"
"${C[@]}" task rm it-det >/dev/null
"${C[@]}" container rm it-det

# 6. A shim daemon killed with SIGKILL: containerd runs `delete`, which cleans up after it.
ids+=(it-crash)
"${C[@]}" run -d --snapshotter "$snap" --runtime io.containerd.cocoon.v2 "$image" it-crash sleep 300
# The daemon `start` recorded for it-crash (another one may still be finishing its exit).
daemon=$(cat "$t/state/io.containerd.runtime.v2.task/$ns/it-crash/shim.pid")
[ -n "$daemon" ] || fail "no shim daemon for it-crash"
kill -KILL "$daemon"
for _ in $(seq 100); do [ -z "$("${C[@]}" task ls -q)" ] && break; sleep 0.1; done
[ -z "$("${C[@]}" task ls -q)" ] || fail "it-crash still listed: $("${C[@]}" task ls)"
# containerd may list the task as gone while `delete` still runs (it waits for the VM to die).
for _ in $(seq 50); do [ ! -e "$(pc_state_dir it-crash)" ] && break; sleep 0.1; done
"${C[@]}" container rm it-crash

# 6b. containerd restarts under a running task: it reconnects to the daemon (Connect), and the
# exit after the restart is published to the new containerd.
ids+=(it-restart)
"${C[@]}" run -d --snapshotter "$snap" --runtime io.containerd.cocoon.v2 "$image" it-restart sleep 300
pc_stop
pc_start
"${C[@]}" task ls | grep -E "^it-restart +[0-9]+ +RUNNING" >/dev/null ||
  fail "it-restart not RUNNING after the restart: $("${C[@]}" task ls)"
"${C[@]}" events > "$t/events2" 2>&1 &
events_pid=$!
sleep 0.5
"${C[@]}" task kill -s SIGKILL it-restart
for _ in $(seq 100); do grep -q "/tasks/exit" "$t/events2" && break; sleep 0.1; done
kill "$events_pid"
wait "$events_pid" 2>/dev/null || true
grep -q '/tasks/exit {"container_id":"it-restart".*"exit_status":137' "$t/events2" ||
  fail "no exit event after the restart: $(cat "$t/events2")"
"${C[@]}" task rm it-restart >/dev/null
"${C[@]}" container rm it-restart

# 7. `start` hygiene, by hand: only the address on stdout, nothing on stderr, a daemon holding
# no pipe of ours; then `delete` of a daemon that is gone prints a DeleteResponse and cleans up.
hb="$t/hand-bundle"
mkdir -p "$hb/rootfs"
echo '{"annotations":{"io.containerd.cocoon.group":"hand"}}' > "$hb/config.json"
start_args=(-namespace "$ns" -address "$sock" -publish-binary /usr/bin/containerd -id it-hand)
# Command substitution reads until the pipe closes: a daemon that kept it would hold us ~60 s.
t0=$(date +%s%N)
out=$(cd "$hb" && env -u TTRPC_ADDRESS "$shim" "${start_args[@]}" start < /dev/null 2> "$t/err")
elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$elapsed_ms" -lt 2000 ] || fail "start took $elapsed_ms ms (a daemon holding its pipe?)"
echo "start returned in $elapsed_ms ms"
printf '%s' "$out" > "$t/out"
[ ! -s "$t/err" ] || fail "start wrote to stderr: $(cat "$t/err")"
[ "$(wc -l < "$t/out")" -eq 0 ] || fail "start printed more than the address: $(cat "$t/out")"
grep -qE '^unix:///run/containerd/s/[0-9a-f]{64}$' "$t/out" || fail "start printed $(cat "$t/out")"
[ "$(cat "$hb/address")" = "$(cat "$t/out")" ] || fail "address file differs from the output"
hand_socket=${out#unix://}
[ -S "$hand_socket" ] || fail "no socket at $hand_socket"
hand_pid=$(cat "$hb/shim.pid")
# The same group gets the same (live) daemon.
(cd "$hb" && "$shim" "${start_args[@]}" start < /dev/null > "$t/out2" 2>&1)
cmp -s "$t/out" "$t/out2" || fail "second start: $(cat "$t/out2")"
kill -KILL "$hand_pid"
for _ in $(seq 50); do ! kill -0 "$hand_pid" 2>/dev/null && break; sleep 0.1; done
(cd "$hb" && "$shim" "${start_args[@]}" -bundle "$hb" delete < /dev/null > "$t/out" 2> "$t/err")
# exit_status 137 (field 2) and an exited_at (field 3).
od -An -tx1 "$t/out" | tr -d ' \n' | grep -q '^1089011a' || fail "delete printed $(od -An -tx1 "$t/out")"
[ ! -e "$hand_socket" ] || fail "delete left $hand_socket"

# 8. Nothing left: tasks, shim daemons, QEMU, mounts, sockets, bundles.
[ -z "$("${C[@]}" task ls -q)" ] || fail "tasks left: $("${C[@]}" task ls)"
for _ in $(seq 50); do [ -z "$(shim_pids)" ] && break; sleep 0.1; done
[ -z "$(shim_pids)" ] || fail "shim daemons left: $(shim_pids)"
for id in "${ids[@]}"; do
  ! pgrep -f "qemu-system.*-name cocoon-$id( |$)" >/dev/null || fail "QEMU of $id left"
  [ ! -e "$(pc_state_dir "$id")" ] || fail "state directory $(pc_state_dir "$id") left"
  group_socket=/run/containerd/s/$(printf '%s' "$sock/$ns/$id" | sha256sum | cut -d' ' -f1)
  [ ! -e "$group_socket" ] || fail "socket of $id left: $group_socket"
  [ ! -e "$t/state/io.containerd.runtime.v2.task/$ns/$id" ] || fail "bundle of $id left"
done
! grep -q "$t/state" /proc/self/mounts || fail "mounts left: $(grep "$t/state" /proc/self/mounts)"
echo "PASS"
