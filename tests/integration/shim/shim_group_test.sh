#!/usr/bin/env bash
# shim_group_test.sh BIN_DIR SOURCE_DIR: containers of one pod (the CRI sandbox-id annotation)
# share one shim daemon and one VM, which stops after the pod's last container is deleted
# (contract 9.7); five containers started in parallel all run and exit cleanly.
set -euo pipefail
bin_dir=$(cd "$1" && pwd)
src_dir=$(cd "$2" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=../../../scripts/lib/private-containerd.sh
. "$src_dir/scripts/lib/private-containerd.sh"
pc_test_begin "$bin_dir" "$src_dir"
R=(--snapshotter "$snap" --runtime io.containerd.cocoon.v2)
pod=(--annotation io.kubernetes.cri.sandbox-id=it-pod)
qemu_count() { pgrep -fc "qemu-system.*-name cocoon-it-pod( |$)" || true; }
boot_id() { "${C[@]}" task exec --exec-id "b$RANDOM" "$1" cat /proc/sys/kernel/random/boot_id; }

# 1. The sandbox and a container of the pod: one daemon, one VM, two tasks.
ids+=(it-pod it-app it-late)
"${C[@]}" run -d "${R[@]}" "${pod[@]}" --annotation io.kubernetes.cri.container-type=sandbox \
  "$image" it-pod sleep 300
"${C[@]}" run -d "${R[@]}" "${pod[@]}" --annotation io.kubernetes.cri.container-type=container \
  "$image" it-app sleep 300
[ "$(pc_shim_pids | wc -l)" -eq 1 ] || fail "daemons: $(pc_shim_pids | wc -l), expected 1"
[ "$(qemu_count)" -eq 1 ] || fail "VMs of the pod: $(qemu_count), expected 1"
for id in it-pod it-app; do
  "${C[@]}" task ls | grep -E "^$id +[0-9]+ +RUNNING" >/dev/null || fail "$id not RUNNING"
done
[ "$(boot_id it-pod)" = "$(boot_id it-app)" ] || fail "it-pod and it-app run in two guests"
# Each container still has its own root filesystem in the shared guest.
"${C[@]}" task exec --exec-id mark it-app touch /only-in-app
! "${C[@]}" task exec --exec-id look it-pod test -e /only-in-app || fail "rootfs shared"

# 2. Removing the container leaves the sandbox running in the same VM.
"${C[@]}" task kill -s SIGKILL it-app
for _ in $(seq 100); do "${C[@]}" task ls | grep -q "it-app .*STOPPED" && break; sleep 0.1; done
"${C[@]}" task rm it-app >/dev/null
"${C[@]}" container rm it-app
"${C[@]}" task ls | grep -E "^it-pod +[0-9]+ +RUNNING" >/dev/null || fail "it-pod gone with it-app"
[ "$(pc_shim_pids | wc -l)" -eq 1 ] || fail "daemon gone with it-app"
[ "$(qemu_count)" -eq 1 ] || fail "VM gone with it-app"

# 3. A later container joins the running VM; run --rm of it works as usual.
"${C[@]}" run --rm "${R[@]}" "${pod[@]}" "$image" it-late cat /proc/sys/kernel/random/boot_id \
  < /dev/null > "$t/late"
[ "$(cat "$t/late")" = "$(boot_id it-pod)" ] || fail "it-late did not join the pod's VM"
[ "$(qemu_count)" -eq 1 ] || fail "VMs after it-late: $(qemu_count)"

# 4. Removing the sandbox, the last one, stops the daemon and the VM.
"${C[@]}" task kill -s SIGKILL it-pod
for _ in $(seq 100); do "${C[@]}" task ls | grep -q "it-pod .*STOPPED" && break; sleep 0.1; done
"${C[@]}" task rm it-pod >/dev/null
"${C[@]}" container rm it-pod
for _ in $(seq 50); do [ -z "$(pc_shim_pids)" ] && break; sleep 0.1; done
[ -z "$(pc_shim_pids)" ] || fail "daemon left after the pod: $(pc_shim_pids)"
[ "$(qemu_count)" -eq 0 ] || fail "VM left after the pod"
[ ! -e "$(pc_state_dir it-pod)" ] || fail "state directory of the pod left"

# 5. Five containers started in parallel, each in its own VM, all run and exit cleanly.
pids=()
for i in 1 2 3 4 5; do
  ids+=("it-par$i")
  "${C[@]}" run --rm "${R[@]}" "$image" "it-par$i" sh -c "echo hello-$i; exit $i" \
    < /dev/null > "$t/par$i.out" 2> "$t/par$i.err" &
  pids+=($!)
done
for i in 1 2 3 4 5; do
  set +e
  wait "${pids[$((i - 1))]}"
  rc=$?
  set -e
  [ "$rc" -eq "$i" ] || fail "parallel container $i: exit $rc ($(cat "$t/par$i.err"))"
  grep -qx "hello-$i" "$t/par$i.out" || fail "parallel container $i printed $(cat "$t/par$i.out")"
done

# 6. Nothing left.
[ -z "$("${C[@]}" task ls -q)" ] || fail "tasks left: $("${C[@]}" task ls)"
for _ in $(seq 50); do [ -z "$(pc_shim_pids)" ] && break; sleep 0.1; done
[ -z "$(pc_shim_pids)" ] || fail "shim daemons left: $(pc_shim_pids)"
for id in "${ids[@]}"; do
  ! pgrep -f "qemu-system.*-name cocoon-$id( |$)" >/dev/null || fail "QEMU of $id left"
  [ ! -e "$(pc_state_dir "$id")" ] || fail "state directory of $id left"
done
! grep -q "$t/state" /proc/self/mounts || fail "mounts left: $(grep "$t/state" /proc/self/mounts)"
echo "PASS"
