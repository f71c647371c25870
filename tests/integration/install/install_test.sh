#!/usr/bin/env bash
# install_test.sh BUILD_DIR SOURCE_DIR [CMAKE]: `cmake --install` into a temp prefix, then the
# INSTALLED binaries, with no environment variables: `cocoon check` and `cocoon run` find the
# guest image under the prefix; `cocoon containerd-config` registers the runtime (a second run
# changes nothing) in a config that containerd parses; a private containerd 1.6 runs
# `ctr run --runtime io.containerd.cocoon.v2` through the installed shim and prints the guest
# kernel. Needs root, containerd and the guest image; fails (never skips) without them.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
cmake_bin=${3:-cmake}
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (cocoon run and a private containerd)"
for tool in containerd ctr "$cmake_bin"; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

t=$(mktemp -d /tmp/cocoon-install-it.XXXXXX)
prefix=$t/prefix
clean_env=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
ids=()
pc_dir=""
cleanup() {
  if [ -n "$pc_dir" ]; then pc_cleanup "${ids[@]}"; fi
  [ -n "${INSTALL_TEST_KEEP:-}" ] || rm -rf "$t"
}
trap cleanup EXIT

# 1. The install: two binaries and the guest image, nothing from the build tree needed after.
"$cmake_bin" --install "$build" --prefix "$prefix" > "$t/install.log" 2>&1 ||
  { cat "$t/install.log" >&2; fail "cmake --install failed"; }
for f in bin/cocoon bin/containerd-shim-cocoon-v2; do
  [ -x "$prefix/$f" ] || fail "$f not installed"
done
for f in share/cocoon/kernel share/cocoon/initramfs.cpio; do
  [ -s "$prefix/$f" ] || fail "$f not installed"
done
cocoon=$prefix/bin/cocoon
shim=$prefix/bin/containerd-shim-cocoon-v2

# 2. The installed cocoon finds its guest under the prefix, with no COCOON_* variables.
"${clean_env[@]}" "$cocoon" check > "$t/check" 2>&1 || { cat "$t/check" >&2; fail "cocoon check"; }
grep -q "^kernel .* $prefix/share/cocoon/kernel$" "$t/check" || fail "check: $(cat "$t/check")"
grep -q "^initramfs .* $prefix/share/cocoon/initramfs.cpio$" "$t/check" ||
  fail "check: $(cat "$t/check")"
COCOON_BIN=$cocoon "$src/scripts/make-bundle.sh" "$t/bundle" -- uname -r > /dev/null
"${clean_env[@]}" "$cocoon" run --bundle "$t/bundle" "install-it-$$" > "$t/run" 2> "$t/run.err" ||
  { cat "$t/run.err" >&2; fail "installed cocoon run"; }
guest=$(tr -d '\r\n' < "$t/run")
[ -n "$guest" ] && [ "$guest" != "$(uname -r)" ] || fail "cocoon run printed '$guest'"
echo "installed cocoon run: guest kernel $guest (host $(uname -r))"

# 3. containerd-config creates the file, then finds nothing to change.
conf=$t/config.toml
"${clean_env[@]}" "$cocoon" containerd-config --file "$conf" --shim "$shim" > "$t/cc1" 2>&1 ||
  { cat "$t/cc1" >&2; fail "containerd-config (first)"; }
grep -q "^$conf: created" "$t/cc1" || fail "first run: $(cat "$t/cc1")"
grep -q "added .*runtimes.cocoon.runtime_type = \"io.containerd.cocoon.v2\"" "$t/cc1" ||
  fail "first run: $(cat "$t/cc1")"
cp -p "$conf" "$t/config.first"
stamp=$(stat -c %i.%Y.%a "$conf")
"${clean_env[@]}" "$cocoon" containerd-config --file "$conf" --shim "$shim" > "$t/cc2" 2>&1 ||
  { cat "$t/cc2" >&2; fail "containerd-config (second)"; }
grep -q "already registered, nothing changed" "$t/cc2" || fail "second run: $(cat "$t/cc2")"
cmp -s "$conf" "$t/config.first" || fail "second run changed the file"
[ "$(stat -c %i.%Y.%a "$conf")" = "$stamp" ] || fail "second run rewrote the file"

# 4. containerd parses it: config dump shows the runtime with its type and path.
containerd --config "$conf" config dump > "$t/dump" 2> "$t/dump.err" ||
  { cat "$t/dump.err" >&2; fail "containerd config dump"; }
awk '/^ *\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.cocoon\]/ {on=1; next}
     on && /^ *\[/ {on=0} on' "$t/dump" > "$t/dump.cocoon"
grep -qx ' *runtime_type = "io.containerd.cocoon.v2"' "$t/dump.cocoon" ||
  { cat "$t/dump" >&2; fail "config dump lacks the cocoon runtime_type"; }
grep -qx " *runtime_path = \"$shim\"" "$t/dump.cocoon" ||
  { cat "$t/dump" >&2; fail "config dump lacks the cocoon runtime_path"; }
echo "containerd config dump: runtimes.cocoon runtime_type = io.containerd.cocoon.v2"

# 5. A private containerd whose PATH starts with the prefix's bin runs a container through the
# installed shim. Its config also gets the runtime table (CRI is disabled there: a note).
# shellcheck source=../../../scripts/lib/private-containerd.sh
. "$src/scripts/lib/private-containerd.sh"
pc_init "$t/pc" "$prefix/bin" "$src"
"${clean_env[@]}" "$cocoon" containerd-config --file "$pc_dir/config.toml" > "$t/cc3" 2>&1 ||
  { cat "$t/cc3" >&2; fail "containerd-config on the private containerd's config"; }
grep -q "CRI plugin is disabled" "$t/cc3" || fail "no note about the disabled CRI: $(cat "$t/cc3")"
pc_start
id=install-it-ctr
ids+=("$id")
"${PC[@]}" run --rm --snapshotter "$pc_snap" --runtime io.containerd.cocoon.v2 "$pc_image" "$id" \
  uname -r < /dev/null > "$t/ctr.out" 2> "$t/ctr.err" &
ctr_pid=$!
# Which binary serves the task: the daemon's /proc/PID/exe while the VM runs.
exe=""
while kill -0 "$ctr_pid" 2>/dev/null; do
  for p in $(pc_shim_pids); do
    exe=$(readlink "/proc/$p/exe" 2>/dev/null || true)
    [ -n "$exe" ] && break
  done
  [ -n "$exe" ] && break
  sleep 0.05
done
rc=0
wait "$ctr_pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$t/ctr.err" >&2; tail -30 "$pc_dir/containerd.log" >&2; fail "ctr run: exit $rc"; }
[ "$exe" = "$shim" ] || fail "the task was served by '$exe', not the installed $shim"
ctr_guest=$(tr -d '\r\n' < "$t/ctr.out")
[ -n "$ctr_guest" ] && [ "$ctr_guest" != "$(uname -r)" ] || fail "ctr run printed '$ctr_guest'"
echo "ctr run --runtime io.containerd.cocoon.v2 (installed shim): guest kernel $ctr_guest"

# 6. Nothing left: shim daemons, QEMU, mounts, state; then the prefix goes with $t.
for _ in $(seq 50); do [ -z "$(pc_shim_pids)" ] && break; sleep 0.1; done
[ -z "$(pc_shim_pids)" ] || fail "shim daemons left: $(pc_shim_pids)"
for vm in "$id" "install-it-$$"; do
  ! pgrep -f "qemu-system.*-name cocoon-$vm( |$)" > /dev/null || fail "QEMU of $vm left"
done
[ ! -e "$(pc_state_dir "$id")" ] || fail "state directory $(pc_state_dir "$id") left"
[ ! -e "/run/cocoon/install-it-$$" ] || fail "state of the installed cocoon run left"
! grep -q " $pc_dir/state" /proc/self/mounts || fail "mounts left: $(grep " $t" /proc/self/mounts)"
pc_cleanup
pc_dir=""
! grep -q " $t" /proc/self/mounts || fail "mounts left after cleanup: $(grep " $t" /proc/self/mounts)"
rm -rf "$t"
[ ! -e "$t" ] || fail "$t left"
echo "PASS"
