#!/usr/bin/env bash
# Fast tests of the guest image builders that need no kernel build and no VM:
#  - check-kernel-config.sh accepts a matching config and names every missing option;
#  - build-initramfs.sh output is byte-identical across runs, served from its cache, holds the
#    promised layout (owner root, mtime 0, /dev/console 5:1), rejects a dynamic agent, and its
#    crun runs inside a chroot of the unpacked archive (the library closure is complete).
# Usage: tests/guest/builder_test.sh   (root needed for the chroot and the console node)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
guest=$repo/guest
work=$(mktemp -d /tmp/cocoon-builder-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
pass() { echo "ok   - $*"; }
fail() {
  echo "FAIL - $*"
  failures=$((failures + 1))
}

# --- check-kernel-config.sh --------------------------------------------------------------------
cat >"$work/frag" <<'EOF'
CONFIG_A=y
CONFIG_NR=8
# CONFIG_B is not set
# CONFIG_C is not set
EOF
printf '%s\n' CONFIG_A=y CONFIG_NR=8 '# CONFIG_B is not set' >"$work/good.config"
if "$guest/check-kernel-config.sh" "$work/good.config" "$work/frag" >/dev/null; then
  pass "check-kernel-config accepts a matching config (absent counts as not set)"
else
  fail "check-kernel-config rejected a matching config"
fi
printf '%s\n' '# CONFIG_A is not set' CONFIG_NR=4 CONFIG_C=y >"$work/bad.config"
rc=0
out=$("$guest/check-kernel-config.sh" "$work/bad.config" "$work/frag" 2>&1) || rc=$?
if [[ $rc -eq 1 && $out == *"MISSING: CONFIG_A=y"* && $out == *"MISSING: CONFIG_NR=8"* &&
  $out == *"UNEXPECTED: CONFIG_C"* && $out == *"3 of 4"* ]]; then
  pass "check-kernel-config names each missing/unexpected option"
else
  fail "check-kernel-config on a bad config: rc=$rc output: $out"
fi
rc=0
"$guest/check-kernel-config.sh" "$work/good.config" >/dev/null 2>&1 || rc=$?
if [[ $rc -eq 2 ]]; then pass "check-kernel-config usage error is exit 2"; else fail "usage rc=$rc"; fi

# --- build-initramfs.sh ------------------------------------------------------------------------
busybox_bin=$(readlink -f "$(command -v busybox)")
export COCOON_CACHE_DIR=$work/cache
"$guest/build-initramfs.sh" --no-cache "$busybox_bin" "$work/a.cpio.gz" >/dev/null 2>&1
touch "$work/marker"  # a different wall clock second must not matter
sleep 1
"$guest/build-initramfs.sh" --no-cache "$busybox_bin" "$work/b.cpio.gz" >/dev/null 2>&1
if cmp -s "$work/a.cpio.gz" "$work/b.cpio.gz"; then
  pass "initramfs is byte-identical across runs"
else
  fail "initramfs differs between two runs"
fi

first=$("$guest/build-initramfs.sh" "$busybox_bin" "$work/c.cpio.gz" 2>&1)
second=$("$guest/build-initramfs.sh" "$busybox_bin" "$work/d.cpio.gz" 2>&1)
if [[ $first == *built* && $second == *cached:* ]] && cmp -s "$work/c.cpio.gz" "$work/d.cpio.gz" &&
  cmp -s "$work/a.cpio.gz" "$work/c.cpio.gz"; then
  pass "second build with the same inputs comes from the cache"
else
  fail "cache: first='$first' second='$second'"
fi
printf '\0' >>"$work/agent-changed"
cat "$busybox_bin" >>"$work/agent-changed"
chmod +x "$work/agent-changed"
third=$("$guest/build-initramfs.sh" "$work/agent-changed" "$work/e.cpio.gz" 2>&1)
if [[ $third == *built* ]]; then
  pass "a different agent misses the cache"
else
  fail "cache not keyed on agent: $third"
fi

rc=0
out=$("$guest/build-initramfs.sh" --no-cache /usr/bin/crun "$work/x.cpio.gz" 2>&1) || rc=$?
if [[ $rc -ne 0 && $out == *"dynamically linked"* && ! -e $work/x.cpio.gz ]]; then
  pass "a dynamically linked agent is refused"
else
  fail "dynamic agent: rc=$rc out=$out"
fi

listing=$(zcat "$work/a.cpio.gz" | cpio -itv --quiet)
for want in ' init$' ' usr/bin/crun$' ' etc/passwd$' ' etc/group$' ' proc$' ' tmp$' \
  'libc.so.6' 'ld-linux-x86-64.so.2' 'libseccomp.so'; do
  grep -q -- "$want" <<<"$listing" || fail "initramfs lacks $want"
done
grep -q '^crw-------.* root *root *5, *1 .* dev/console$' <<<"$listing" ||
  fail "no /dev/console 5:1 node"
if awk '$3 != "root" || $4 != "root" {bad=1} END {exit bad}' <<<"$listing" &&
  ! grep -v ' Jan  1  1970 ' <<<"$listing" | grep -q .; then
  pass "every entry is owned by root with mtime 0"
else
  fail "owner or mtime not normalised"
fi
if grep -q busybox <<<"$listing"; then
  fail "busybox must not be in the product initramfs"
else
  pass "no busybox in the initramfs (agent is /init)"
fi

mkdir "$work/root"
(cd "$work/root" && zcat "$work/a.cpio.gz" | cpio -idm --quiet)
# crun re-executes itself from /proc/self/exe: give the chroot a /proc in a private mount
# namespace that disappears with the command.
# shellcheck disable=SC2016  # $1 expands in the inner sh
if out=$(unshare -m sh -c 'mount -t proc proc "$1/proc" && chroot "$1" /usr/bin/crun --version' \
  sh "$work/root" 2>&1) && [[ $out == *"crun version"* ]]; then
  pass "crun runs from the unpacked initramfs (chroot): ${out%%$'\n'*}"
else
  fail "crun does not run in a chroot of the initramfs: $out"
fi

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "PASS"
