#!/usr/bin/env bash
# Boot smoke test of the cocoon guest kernel under QEMU microvm (TCG unless told otherwise).
#
# Usage: tests/guest/boot_smoke.sh [--runs N] [--no-crun]
#
# Builds (or takes from the cache) the guest kernel, then a throwaway initramfs made by the
# product builder (guest/build-initramfs.sh, so crun and its libraries are packed the same way)
# whose /init is a busybox sh script. The guest prints `uname -r` and its uptime, mounts the 9p
# share (tag cocoon) and lists it, writes "hello" to the virtio-serial port named cocoon.agent
# and powers off with `reboot -f` (reboot=t triple fault + -no-reboot: QEMU exits by itself).
# One more boot first makes / a moved bind mount of the initramfs (pivot_root(2) refuses rootfs
# itself) and runs `crun --version` and `crun run` of a busybox bundle on the 9p share with
# cgroup2 mounted, a memory/pids/cpu limit and a seccomp rule, as the agent drives crun.
# The host checks the console log, the share listing, the bytes on its end of the port, QEMU's
# exit status; it prints the median wall time of N boots and the median guest uptime at /init.
#
# Environment (all optional):
#   KERNEL          kernel image to boot (default: the cached guest/build-kernel.sh default)
#   QEMU            qemu binary (default qemu-system-x86_64)
#   QEMU_MACHINE    -M value (default below: the fastest reliable set measured)
#   QEMU_ACCEL      -accel value (default tcg)
#   APPEND          kernel command line (default below)
#   APPEND_EXTRA    appended to APPEND
#   TSC_KHZ         host TSC rate for tsc_early_khz= under TCG (default: from dmesg/cpuinfo)
#   SMP, MEM        vCPUs (default 1) and memory in MiB (default 256)
#   INITRD_COMPRESSION  gzip (default, as shipped) or none
#   BOOT_TIMEOUT    seconds before a boot counts as hung (default 60)
# Exit status 0 only if every check passed. Needs root (9p passthrough), python3 (host end of
# the port), jq and busybox-static.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=5
with_crun=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --no-crun) with_crun=0; shift ;;
    *) echo "usage: $0 [--runs N] [--no-crun]" >&2; exit 2 ;;
  esac
done

QEMU=${QEMU:-qemu-system-x86_64}
QEMU_ACCEL=${QEMU_ACCEL:-tcg}
SMP=${SMP:-1}
MEM=${MEM:-256}
# Fastest reliable set measured under TCG (guest/README.md): pit=off and pic=off hang the boot,
# rtc=off makes it slower, x-option-roms=off is fine with the PVH entry point.
QEMU_MACHINE=${QEMU_MACHINE:-microvm,acpi=off,x-option-roms=off}

# The TCG guest reads the host's TSC; telling the kernel its rate skips the PIT calibration,
# which is slow and often fails under emulation (then the clocksource falls back to jiffies).
host_tsc_khz() {
  local mhz
  mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p' | tail -n1)
  [[ -n $mhz ]] || mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz processor.*/\1/p' | tail -n1)
  [[ -n $mhz ]] || mhz=$(awk -F': ' '/^cpu MHz/ {print $2; exit}' /proc/cpuinfo)
  [[ -n $mhz ]] && awk -v m="$mhz" 'BEGIN {printf "%d", m * 1000}'
}
default_append="console=ttyS0 reboot=t panic=-1 quiet pci=off noreplace-smp"
if [[ $QEMU_ACCEL == tcg ]]; then
  tsc_khz=${TSC_KHZ:-$(host_tsc_khz)}
  [[ -n $tsc_khz ]] && default_append+=" tsc_early_khz=$tsc_khz tsc=reliable"
  # One vCPU: the PIT alone drives the tick; skips the ~0.2 s LAPIC timer calibration.
  [[ $SMP -eq 1 ]] && default_append+=" noapictimer"
fi
APPEND=${APPEND:-$default_append}
APPEND="$APPEND ${APPEND_EXTRA:-}"
INITRD_COMPRESSION=${INITRD_COMPRESSION:-gzip}

keep_work=0
fail() {
  echo "FAIL: $*" >&2
  keep_work=1  # the logs are what a failure needs
  exit 1
}
for tool in "$QEMU" python3 jq busybox timeout; do
  command -v "$tool" >/dev/null || fail "'$tool' is required"
done
busybox_bin=$(readlink -f "$(command -v busybox)")
[[ $(id -u) -eq 0 ]] || fail "run as root (9p security_model=passthrough)"

if [[ -z ${KERNEL:-} ]]; then
  entry=$("$repo/guest/build-kernel.sh" | tail -n1)
  KERNEL=$entry/kernel
  release=$(cat "$entry/release")
else
  release=
fi
[[ -r $KERNEL ]] || fail "kernel '$KERNEL' not readable"

work=$(mktemp -d /tmp/cocoon-boot-smoke.XXXXXX)
qemu_pid=
reader_pid=
cleanup() {
  [[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
  [[ -n $reader_pid ]] && kill "$reader_pid" 2>/dev/null && wait "$reader_pid" 2>/dev/null
  if [[ $keep_work -eq 1 ]]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- the share: a marker file and an OCI bundle whose rootfs is busybox -------------------------
share=$work/share
mkdir -p "$share/bundle/rootfs/bin" "$share/bundle/rootfs/proc" "$share/bundle/rootfs/dev" \
  "$share/bundle/rootfs/sys" "$share/bundle/rootfs/tmp"
echo "from the host" >"$share/marker-7f3a.txt"
cp "$busybox_bin" "$share/bundle/rootfs/bin/busybox"
for applet in sh echo cat mkdir ls; do ln -s busybox "$share/bundle/rootfs/bin/$applet"; done
crun spec -b "$share/bundle"
# Limits make crun enable controllers and write cgroup files; the seccomp rule makes it load a
# filter; default devices rules make it attach an eBPF device program. mkdir must fail with
# EPERM (seccomp), not EROFS, to prove the filter is active.
jq '.process.terminal = false
  | .process.args = ["/bin/sh", "-c",
      "echo crun-ok; echo mem=$(cat /sys/fs/cgroup/memory.max) pids=$(cat /sys/fs/cgroup/pids.max); mkdir /tmp/x || echo seccomp-ok"]
  | .linux.resources = {"memory": {"limit": 67108864}, "pids": {"limit": 64},
                        "cpu": {"quota": 50000, "period": 100000}}
  | .linux.namespaces += [{"type": "cgroup"}]
  | .linux.seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                      "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
  | .mounts += [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}]' \
  "$share/bundle/config.json" >"$share/bundle/config.json.new"
mv "$share/bundle/config.json.new" "$share/bundle/config.json"

# --- the throwaway /init --------------------------------------------------------------------------
cat >"$work/init" <<'EOF'
#!/bin/busybox sh
if [ "$1" != stage2 ]; then
  /bin/busybox mount -t proc proc /proc
  read up _ </proc/uptime
  echo "SMOKE uptime-at-init=$up"
  if /bin/busybox grep -q smoke.crun=1 /proc/cmdline; then
    # pivot_root(2) fails with EINVAL while / is the initramfs itself (rootfs, a mount without
    # parent), so crun could not enter the container's root. Make / a bind mount of rootfs
    # moved over it, then chroot: the same steps as the agent's boot code.
    /bin/busybox mkdir /.cocoon-root
    /bin/busybox mount -o bind / /.cocoon-root
    cd /.cocoon-root
    /bin/busybox mount -o move . /
    /bin/busybox umount /proc
    exec /bin/busybox chroot . /init stage2
  fi
  /bin/busybox umount /proc
fi
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "SMOKE release=$(uname -r)"
mkdir -p /mnt
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 cocoon /mnt; then
  echo "SMOKE listing-begin"; ls /mnt; echo "SMOKE listing-end"
fi
port=
for n in /sys/class/virtio-ports/*/name; do
  [ "$(cat "$n")" = cocoon.agent ] && port=/dev/$(basename "$(dirname "$n")")
done
echo "SMOKE port=$port"
[ -n "$port" ] && echo hello >"$port"
if [ "$1" = stage2 ]; then
  echo "SMOKE root=$(grep ' / ' /proc/mounts | head -n1)"
  mount -t tmpfs tmpfs /run
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
  echo "SMOKE crun-version-begin"; crun --version; echo "SMOKE crun-version-end rc=$?"
  crun --root /run/crun run --bundle /mnt/bundle smoke-ctr
  echo "SMOKE crun-run rc=$?"
fi
reboot -f
EOF
chmod 0755 "$work/init"
"$repo/guest/build-initramfs.sh" --no-cache --compression "$INITRD_COMPRESSION" \
  --add "$busybox_bin:/bin/busybox" "$work/init" "$work/initramfs.cpio.gz" >/dev/null

# Host end of the virtio-serial port: connect once QEMU listens, keep what arrives.
start_reader() {
  python3 - "$1" "$2" <<'PY' &
import socket, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
for _ in range(1000):
    try:
        s.connect(path)
        break
    except OSError:
        time.sleep(0.01)
else:
    sys.exit("reader: cannot connect to " + path)
with open(out, "wb") as f:
    while chunk := s.recv(4096):
        f.write(chunk)
        f.flush()
PY
  reader_pid=$!
}

# CPU seconds (user+sys) of all reaped children so far, in ms: QEMU's CPU time is a steadier
# figure than wall time on a loaded 2-core machine.
# Sets cpu_ms; `times` must run in this shell, not in a $(...) subshell.
children_cpu_ms() {
  times >"$work/times"
  cpu_ms=$(tail -n1 "$work/times" | awk '{
    split($0, f, " "); t = 0
    for (i = 1; i <= 2; i++) { split(f[i], p, "m"); t += p[1] * 60 + p[2] }
    printf "%d", t * 1000 }')
}

# Boots once; sets run_ms, run_cpu_ms, run_rc. $1: run dir, $2: extra kernel args.
boot() {
  local dir=$1 extra=$2 t0 t1
  mkdir -p "$dir"
  rm -f "$work/agent.sock"
  local args=(-M "$QEMU_MACHINE" -accel "$QEMU_ACCEL" -cpu max -m "$MEM" -smp "$SMP"
    -nodefaults -no-user-config -nographic -no-reboot
    -kernel "$KERNEL" -initrd "$work/initramfs.cpio.gz" -append "$APPEND $extra"
    -serial "file:$dir/console.log"
    -device virtio-serial-device
    -chardev "socket,id=agent,path=$work/agent.sock,server=on,wait=off"
    -device "virtserialport,chardev=agent,name=cocoon.agent"
    -fsdev "local,id=share,path=$share,security_model=passthrough"
    -device "virtio-9p-device,fsdev=share,mount_tag=cocoon")
  echo "$QEMU ${args[*]}" >"$dir/cmdline"
  local c0
  children_cpu_ms
  c0=$cpu_ms
  t0=$(date +%s%N)
  timeout "${BOOT_TIMEOUT:-60}" "$QEMU" "${args[@]}" >"$dir/qemu.out" 2>&1 &
  qemu_pid=$!
  start_reader "$work/agent.sock" "$dir/port.out"
  run_rc=0
  wait "$qemu_pid" || run_rc=$?
  t1=$(date +%s%N)
  children_cpu_ms  # before the reader is reaped: QEMU only
  run_cpu_ms=$((cpu_ms - c0))
  qemu_pid=
  wait "$reader_pid" || true
  reader_pid=
  run_ms=$(((t1 - t0) / 1000000))
}

check_boot() {
  local dir=$1
  [[ $run_rc -eq 0 ]] || fail "QEMU exited with $run_rc (124 = did not power off in time); see $dir"
  grep -q "SMOKE release=${release:-6.1}" "$dir/console.log" ||
    fail "release ${release:-6.1*} not on the console: $(tail -n5 "$dir/console.log")"
  sed -n '/SMOKE listing-begin/,/SMOKE listing-end/p' "$dir/console.log" | grep -q marker-7f3a.txt ||
    fail "9p share listing lacks marker-7f3a.txt"
  grep -qx hello "$dir/port.out" || fail "'hello' did not arrive on the host end of the port"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

times=()
cpus=()
uptimes=()
for i in $(seq 1 "$runs"); do
  boot "$work/run$i" ""
  check_boot "$work/run$i"
  times+=("$run_ms")
  cpus+=("$run_cpu_ms")
  uptimes+=("$(sed -n 's/.*SMOKE uptime-at-init=\([0-9.]*\).*/\1/p' "$work/run$i/console.log")")
done
echo "kernel: $KERNEL ($(stat -c %s "$KERNEL") bytes), initramfs $(stat -c %s "$work/initramfs.cpio.gz") bytes ($INITRD_COMPRESSION)"
echo "machine: $QEMU_MACHINE accel=$QEMU_ACCEL smp=$SMP mem=$MEM"
echo "append: $APPEND"
echo "boot ok x$runs: wall ms ${times[*]} (median $(printf '%s\n' "${times[@]}" | median));" \
  "QEMU cpu ms ${cpus[*]} (median $(printf '%s\n' "${cpus[@]}" | median));" \
  "uptime at /init s ${uptimes[*]} (median $(printf '%s\n' "${uptimes[@]}" | median))"

if [[ $with_crun -eq 1 ]]; then
  dir=$work/crun
  boot "$dir" "smoke.crun=1"
  check_boot "$dir"
  con=$dir/console.log
  grep -q "crun version" "$con" || fail "crun --version failed: $(tail -n5 "$con")"
  grep -q "crun-ok" "$con" || fail "crun run did not start the container: $(tail -n8 "$con")"
  grep -q "mem=67108864 pids=64" "$con" || fail "cgroup limits not applied: $(grep mem= "$con")"
  grep -q "seccomp-ok" "$con" || fail "seccomp filter not active: $(tail -n5 "$con")"
  grep -q "SMOKE crun-run rc=0" "$con" || fail "crun run failed: $(tail -n8 "$con")"
  echo "crun in guest ok ($run_ms ms whole run): $(grep -m1 'crun version' "$con")"
fi
echo "PASS"
