#!/usr/bin/env bash
# make-bundle.sh DIR [--tty] [-- ARGS...]: an OCI bundle whose rootfs is Debian's static busybox
# with one symlink per applet. Used by the demo, the integration tests and the benchmarks.
set -euo pipefail
dir=$1; shift
tty=()
if [ "${1:-}" = "--tty" ]; then tty=(--tty); shift; fi
[ "${1:-}" = "--" ] && shift
cocoon=${COCOON_BIN:-$(dirname "$0")/../build/bin/cocoon}
busybox=/bin/busybox
file -L "$busybox" | grep -q "statically linked" || { echo "make-bundle: $busybox is not static (apt-get install busybox-static)" >&2; exit 1; }

rm -rf "$dir"
mkdir -p "$dir/rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root}
cp "$busybox" "$dir/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$dir/rootfs/etc/passwd"
echo "root:x:0:" > "$dir/rootfs/etc/group"
chmod 1777 "$dir/rootfs/tmp"
"$cocoon" spec --bundle "$dir" "${tty[@]}" -- "$@"
