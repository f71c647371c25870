#!/usr/bin/env bash
# Usage: build-initramfs.sh [--no-cache] [--compression gzip|none] [--add HOST_PATH:GUEST_PATH]...
#                           AGENT_BINARY OUTPUT
#
# Writes the cocoon guest initramfs, a gzip'd newc cpio archive, to OUTPUT:
#   /init              the statically linked cocoon-agent (AGENT_BINARY)
#   /usr/bin/crun      crun (from $COCOON_CRUN or PATH) with every shared library ldd names,
#                      at the same paths as on the host (symlinked directories such as
#                      /lib -> usr/lib are recreated as symlinks), plus the dynamic loader
#   /dev/console       so that PID 1 starts with stdin/stdout/stderr on the console
#   /proc /sys /dev /run /tmp /etc /sbin /bin /usr/sbin /usr/bin /root, /etc/passwd, /etc/group
# --add copies extra host files (tests use it for busybox); dynamic executables among them get
# their libraries too. --compression none writes a plain cpio: under TCG the guest boots about
# 0.2 s faster without inflating it, at ~2.2x the size (guest/README.md).
#
# The archive is written by this script itself (not by cpio(1)) so it is deterministic: entries
# sorted by path, every mtime 0, owner root, inode numbers by position, gzip without name and
# time. The same inputs give byte-identical output. It is cached by the hash of its inputs in
#   ${COCOON_CACHE_DIR:-/var/cache/cocoon}/initramfs-<hash>.cpio.gz (.cpio when uncompressed)
# (unless --no-cache). The last line on stdout is the cached file (or OUTPUT with --no-cache).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
cache_dir=${COCOON_CACHE_DIR:-/var/cache/cocoon}

die() {
  echo "build-initramfs.sh: error: $*" >&2
  exit 1
}
usage() {
  die "usage: $0 [--no-cache] [--compression gzip|none] [--add HOST_PATH:GUEST_PATH]..." \
    "AGENT_BINARY OUTPUT"
}

use_cache=1
compression=gzip
extras=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --no-cache) use_cache=0; shift ;;
    --compression)
      [[ ${2:-} == gzip || ${2:-} == none ]] || die "--compression takes gzip or none"
      compression=$2; shift 2 ;;
    --add)
      [[ $# -ge 2 && $2 == *:/* ]] || die "--add needs HOST_PATH:/GUEST_PATH, got '${2:-}'"
      extras+=("$2"); shift 2 ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
  esac
done
[[ $# -eq 2 ]] || usage
agent=$1
output=$2
crun=${COCOON_CRUN:-$(command -v crun || true)}
[[ -f $agent && -x $agent ]] || die "agent '$agent' is not an executable file"
[[ -n $crun && -f $crun && -x $crun ]] || die "crun not found (apt-get install crun, or set COCOON_CRUN)"
for tool in ldd readelf gzip sha256sum stat; do
  command -v "$tool" >/dev/null || die "'$tool' is required"
done

is_elf() { [[ $(head -c4 "$1" | od -An -c | tr -d ' ') == '177ELF' ]]; }
is_dynamic() { is_elf "$1" && readelf -lW "$1" | grep -q 'Requesting program interpreter'; }

# The kernel runs /init before anything is mounted: a dynamically linked agent cannot start.
if is_dynamic "$agent"; then
  die "agent '$agent' is dynamically linked; /init must be a static executable"
fi

# entries[guest path] = "dir MODE" | "file MODE HOST_SRC" | "slink TARGET" | "cnod MODE MAJ MIN"
declare -A entries=()

add_entry() {
  local path=$1 spec=$2
  if [[ -n ${entries[$path]:-} && ${entries[$path]} != "$spec" ]]; then
    die "conflicting entries for $path: '${entries[$path]}' and '$spec'"
  fi
  entries[$path]=$spec
}

# Mirrors a host path into the archive at the same path, recreating symlinks along the way
# (on merged-/usr hosts /lib64/ld-linux-x86-64.so.2 goes through two of them).
add_host_path() {
  local p=$1 parent real_parent target
  [[ $p == / || -n ${entries[$p]:-} ]] && return 0
  parent=$(dirname "$p")
  real_parent=$(readlink -f "$parent")
  if [[ $real_parent != "$parent" ]]; then
    # An ancestor is a symlink: record it, then put the entry at its real place only.
    add_host_path "$parent"
    add_host_path "${real_parent%/}/$(basename "$p")"
    return 0
  fi
  add_host_path "$parent"
  if [[ -L $p ]]; then
    target=$(readlink "$p")
    add_entry "$p" "slink $target"
    [[ $target == /* ]] || target=$(realpath -s -m "$parent/$target")
    add_host_path "$target"
  elif [[ -d $p ]]; then
    add_entry "$p" "dir 0755"
  elif [[ -f $p ]]; then
    add_entry "$p" "file $(stat -L -c %a "$p") $p"
  else
    die "'$p' (needed in the initramfs) does not exist"
  fi
}

# Adds the dynamic loader and every shared library the executable needs, as ldd resolves them.
add_libraries() {
  local exe=$1 out line lib
  is_dynamic "$exe" || return 0
  out=$(ldd "$exe") || die "ldd failed on '$exe'"
  if grep -q 'not found' <<<"$out"; then
    die "'$exe' needs libraries that are missing: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"
  fi
  while IFS= read -r line; do
    if [[ $line =~ =\>\ (/[^ ]+) ]]; then
      lib=${BASH_REMATCH[1]}
    elif [[ $line =~ ^[[:space:]]*(/[^ ]+) ]]; then
      lib=${BASH_REMATCH[1]}
    else
      continue  # linux-vdso.so.1: provided by the kernel
    fi
    add_host_path "$lib"
  done <<<"$out"
}

for d in /proc /sys /dev /run /etc /sbin /bin /usr /usr/sbin /usr/bin; do
  add_entry "$d" "dir 0755"
done
add_entry /tmp "dir 1777"
add_entry /root "dir 0700"
add_entry /dev/console "cnod 0600 5 1"
add_entry /init "file 0755 $agent"
add_entry /usr/bin/crun "file 0755 $crun"
add_libraries "$crun"

tmp_files=$(mktemp -d)
trap 'rm -rf "$tmp_files"' EXIT
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/:/bin/false' \
  >"$tmp_files/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$tmp_files/group"
add_entry /etc/passwd "file 0644 $tmp_files/passwd"
add_entry /etc/group "file 0644 $tmp_files/group"

for e in "${extras[@]}"; do
  src=${e%%:/*}
  dst=/${e#*:/}
  [[ -f $src ]] || die "--add: '$src' is not a file"
  parent=$(dirname "$dst")
  while [[ $parent != / && -z ${entries[$parent]:-} ]]; do
    add_entry "$parent" "dir 0755"
    parent=$(dirname "$parent")
  done
  add_entry "$dst" "file $(stat -L -c %a "$src") $src"
  add_libraries "$src"
done

mapfile -t paths < <(printf '%s\n' "${!entries[@]}" | LC_ALL=C sort)

# newc header: magic, then 13 fields of 8 hex digits (ino, mode, uid, gid, nlink, mtime,
# filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check), then the NUL-terminated
# name; header+name and the data are each padded to 4 bytes.
pad4() { head -c $(((4 - $1 % 4) % 4)) /dev/zero; }
emit() {
  local ino=$1 name=$2 mode=$3 nlink=$4 size=$5 rmaj=$6 rmin=$7
  local namesize=$((${#name} + 1))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$ino" "$mode" 0 0 "$nlink" 0 "$size" 0 0 "$rmaj" "$rmin" "$namesize" 0
  printf '%s\0' "$name"
  pad4 $((110 + namesize))
}
write_cpio() {
  local ino=0 p kind a b size
  for p in "${paths[@]}"; do
    ino=$((ino + 1))
    # b is the rest of the spec: a host path (may hold spaces) or "MAJOR MINOR".
    read -r kind a b <<<"${entries[$p]}"
    case $kind in
      dir) emit "$ino" "${p#/}" $((0040000 | 8#$a)) 2 0 0 0 ;;
      file)
        size=$(stat -L -c %s "$b")
        emit "$ino" "${p#/}" $((0100000 | 8#$a)) 1 "$size" 0 0
        cat "$b"
        pad4 "$size" ;;
      slink)
        emit "$ino" "${p#/}" $((0120000 | 0777)) 1 "${#a}" 0 0
        printf '%s' "$a"
        pad4 "${#a}" ;;
      cnod) emit "$ino" "${p#/}" $((0020000 | 8#$a)) 1 0 "${b% *}" "${b#* }" ;;
    esac
  done
  emit $((ino + 1)) 'TRAILER!!!' 0 1 0 0 0
}
compress() {
  if [[ $compression == gzip ]]; then gzip -n -9; else cat; fi
}

# Cache key: this script, the archive layout and the content of every file that goes in.
hash=$({
  sha256sum <"$self"
  echo "compression: $compression"
  [[ $compression == none ]] || gzip --version | head -n1
  for p in "${paths[@]}"; do
    read -r kind a b <<<"${entries[$p]}"
    if [[ $kind == file ]]; then
      echo "$p file $a $(sha256sum <"$b" | cut -d' ' -f1)"
    else
      echo "$p ${entries[$p]}"
    fi
  done
} | sha256sum | cut -c1-16)

publish_atomically() {  # SRC DEST
  mkdir -p "$(dirname "$2")"
  cp -f "$1" "$2.tmp.$$"
  mv -f "$2.tmp.$$" "$2"
}

if [[ $use_cache -eq 1 ]]; then
  suffix=.cpio
  [[ $compression == none ]] || suffix=.cpio.gz
  cached=$cache_dir/initramfs-$hash$suffix
  if [[ -f $cached ]]; then
    echo "cached: $cached" >&2
  else
    mkdir -p "$cache_dir"
    tmp=$(mktemp "$cache_dir/.initramfs-$hash.XXXXXX")
    trap 'rm -rf "$tmp_files" "$tmp"' EXIT
    write_cpio | compress >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$cached"
    echo "built $cached ($(stat -c %s "$cached") bytes, ${#paths[@]} entries)" >&2
  fi
  publish_atomically "$cached" "$output"
  echo "$cached"
else
  mkdir -p "$(dirname "$output")"
  write_cpio | compress >"$output.tmp.$$"
  mv -f "$output.tmp.$$" "$output"
  echo "built $output ($(stat -c %s "$output") bytes, ${#paths[@]} entries)" >&2
  echo "$output"
fi
