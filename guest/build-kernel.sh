#!/usr/bin/env bash
# Usage: build-kernel.sh [OUTPUT]
#
# Builds the cocoon guest kernel from Debian's linux-source-6.1: `make tinyconfig`, merge
# kernel.fragment, `make olddefconfig`, verify the fragment survived (check-kernel-config.sh),
# build. The result is cached by content hash in
#   ${COCOON_CACHE_DIR:-/var/cache/cocoon}/kernel-<hash>/{kernel,bzImage,vmlinux,config,release}
# where <hash> covers the fragment, the build and check scripts, the linux-source package
# version and the gcc version; a second run with the same inputs only prints "cached".
# `kernel` is the image cocoon boots by default (see DEFAULT_IMAGE below).
# With OUTPUT, the default image is also copied there (atomically).
# The last line on stdout is the cache entry directory.
#
# Environment: COCOON_CACHE_DIR, COCOON_KERNEL_SOURCE (tarball, default
# /usr/src/linux-source-6.1.tar.xz), COCOON_KERNEL_JOBS (default: nproc).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fragment=$here/kernel.fragment
checker=$here/check-kernel-config.sh
source_tar=${COCOON_KERNEL_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
cache_dir=${COCOON_CACHE_DIR:-/var/cache/cocoon}
jobs=${COCOON_KERNEL_JOBS:-$(nproc)}
output=${1:-}
# Measured under TCG on QEMU microvm (guest/README.md): the uncompressed vmlinux booted through
# its PVH entry point skips the decompressor and starts faster than bzImage.
DEFAULT_IMAGE=vmlinux

die() {
  echo "build-kernel.sh: error: $*" >&2
  exit 1
}

[[ $# -le 1 ]] || die "usage: $0 [OUTPUT]"
[[ -r $fragment ]] || die "missing $fragment"
[[ -r $source_tar ]] || die "kernel source '$source_tar' not found (apt-get install linux-source-6.1)"
for tool in make gcc flex bison bc tar xz sha256sum flock; do
  command -v "$tool" >/dev/null || die "'$tool' is required to build the kernel"
done

# The source identity: the Debian package version when the tarball is the packaged one, else
# the tarball's own hash (slow, but only for hand-supplied sources).
if [[ $source_tar == /usr/src/linux-source-6.1.tar.xz ]] &&
  src_version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null) &&
  [[ -n $src_version ]]; then
  src_id="linux-source-6.1 $src_version"
else
  src_id="tarball $(sha256sum "$source_tar" | cut -d' ' -f1)"
fi
gcc_id=$(gcc --version | head -n1)

hash=$({
  echo "source: $src_id"
  echo "gcc: $gcc_id"
  for f in "$fragment" "$here/build-kernel.sh" "$checker"; do
    echo "file: $(basename "$f")"
    cat "$f"
  done
} | sha256sum | cut -c1-16)
entry=$cache_dir/kernel-$hash

publish() {
  if [[ -n $output ]]; then
    mkdir -p "$(dirname "$output")"
    cp -f "$entry/kernel" "$output.tmp.$$"
    mv -f "$output.tmp.$$" "$output"
  fi
  echo "$entry"
}

if [[ -f $entry/kernel ]]; then
  echo "cached: $entry" >&2
  publish
  exit 0
fi

mkdir -p "$cache_dir"
# One build at a time per cache: the work tree below is shared between builds.
exec 9>"$cache_dir/kernel-build.lock"
flock 9
if [[ -f $entry/kernel ]]; then
  echo "cached: $entry (built by a concurrent run)" >&2
  publish
  exit 0
fi

start=$(date +%s)
work=$cache_dir/work
mkdir -p "$work"
# The unpacked tree is kept (keyed by source identity) so fragment changes rebuild
# incrementally; objects go to a separate O= tree (merge_config.sh only drops a temp file in the
# source tree, and the lock above keeps runs apart).
src_key=$(echo "$src_id" | sha256sum | cut -c1-12)
src=$work/linux-src-$src_key
if [[ ! -f $src/Makefile ]]; then
  echo "unpacking $source_tar ..." >&2
  tmp_src=$(mktemp -d "$work/.unpack.XXXXXX")
  trap 'rm -rf "$tmp_src"' EXIT
  tar -xf "$source_tar" -C "$tmp_src" --strip-components=1
  rm -rf "$src"
  mv "$tmp_src" "$src"
  trap - EXIT
fi

obj=$work/kernel-obj-$src_key
mkdir -p "$obj"
# Reproducible banner: the same inputs give the same `uname -v`.
export KBUILD_BUILD_TIMESTAMP="1970-01-01" KBUILD_BUILD_USER=cocoon KBUILD_BUILD_HOST=cocoon
mk() { make -C "$src" O="$obj" ARCH=x86_64 "$@"; }

echo "configuring (tinyconfig + $(basename "$fragment")) ..." >&2
mk -s tinyconfig >/dev/null
# -n: options that the fragment makes visible get allnoconfig's "n", not their defaults, so the
# kernel stays tiny (olddefconfig alone would pull in VT, input, i8042, cpufreq, ...).
(cd "$src" && ARCH=x86_64 scripts/kconfig/merge_config.sh -n -O "$obj" "$obj/.config" \
  "$fragment") >/dev/null
mk -s olddefconfig >&2
if ! "$checker" "$obj/.config" "$fragment" >&2; then
  die "the kernel config lacks options the fragment asks for (listed above)"
fi

echo "building with -j$jobs (a few minutes) ..." >&2
if ! mk -j"$jobs" bzImage >"$work/kernel-build.log" 2>&1; then
  tail -n 40 "$work/kernel-build.log" >&2
  die "kernel build failed; full log: $work/kernel-build.log"
fi

# Assemble the entry in a temp dir and rename it into place: an interrupted run leaves no
# half entry.
tmp_entry=$(mktemp -d "$cache_dir/.kernel-$hash.XXXXXX")
trap 'rm -rf "$tmp_entry"' EXIT
cp "$obj/arch/x86/boot/bzImage" "$tmp_entry/bzImage"
cp "$obj/vmlinux" "$tmp_entry/vmlinux"
cp "$obj/.config" "$tmp_entry/config"
mk -s kernelrelease >"$tmp_entry/release"
cp "$tmp_entry/$DEFAULT_IMAGE" "$tmp_entry/kernel"
chmod 0644 "$tmp_entry"/*
chmod 0755 "$tmp_entry"
rm -rf "$entry"
mv "$tmp_entry" "$entry"
trap - EXIT
echo "built $entry in $(($(date +%s) - start)) s" >&2
publish
