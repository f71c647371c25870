# Sourced (bash) by the containerd shim tests and benchmarks: a private containerd 1.6 with its own
# root, state and socket under a directory of the caller's, and a busybox image built locally
# (no registry). Needs root, containerd and ctr.
#
#   pc_init DIR BIN_DIR SRC_DIR   sets pc_dir, pc_sock, pc_ns, pc_image, PC (the ctr command as an
#                                 array); writes the image tar and the containerd config
#   pc_start                      starts containerd (PATH has BIN_DIR first, so it finds the shim),
#                                 imports and unpacks the image; sets pc_pid and pc_snap
#   pc_stop                       stops containerd (tasks keep running in their shims)
#   pc_cleanup                    kills the given task ids, stops containerd and every shim daemon
#                                 of this instance, unmounts what is left under DIR
#   pc_runsc_args                 when runsc is installed, prints the ctr run options that run
#                                 gVisor through the runc shim (wrapper written under DIR)

pc_fail() { echo "FAIL: $*" >&2; exit 1; }

pc_init() {
  pc_dir=$1
  pc_bin_dir=$(cd "$2" && pwd)
  pc_src_dir=$(cd "$3" && pwd)
  pc_sock="$pc_dir/containerd.sock"
  pc_ns=${PC_NAMESPACE:-cocoon-it}
  pc_image=docker.io/cocoon-it/busybox:latest
  pc_pid=""
  PC=(ctr -a "$pc_sock" -n "$pc_ns")
  local tool
  for tool in containerd ctr; do
    command -v "$tool" >/dev/null || pc_fail "$tool is not installed (scripts/install-deps.sh)"
  done
  [ "$(id -u)" -eq 0 ] || pc_fail "a private containerd needs root"
  pc_build_image
  cat > "$pc_dir/config.toml" <<TOML
version = 2
root = "$pc_dir/root"
state = "$pc_dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$pc_sock"
[debug]
  level = "debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "$pc_dir/opt"
TOML
}

# An OCI image layout holding the busybox rootfs of make-bundle.sh, built by hand.
pc_build_image() {
  local t=$pc_dir layout="$pc_dir/layout"
  COCOON_BIN="$pc_bin_dir/cocoon" "$pc_src_dir/scripts/make-bundle.sh" "$t/image-bundle" -- true \
    >/dev/null
  mkdir -p "$layout/blobs/sha256"
  tar -C "$t/image-bundle/rootfs" -cf "$t/layer.tar" .
  local layer_digest layer_size config_digest config_size manifest_digest manifest_size
  read -r layer_digest layer_size < <(pc_blob "$layout" "$t/layer.tar")
  cat > "$t/image-config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:$layer_digest"]}}
JSON
  read -r config_digest config_size < <(pc_blob "$layout" "$t/image-config.json")
  cat > "$t/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_digest","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer_digest","size":$layer_size}]}
JSON
  read -r manifest_digest manifest_size < <(pc_blob "$layout" "$t/manifest.json")
  cat > "$layout/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest_digest","size":$manifest_size,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"$pc_image","org.opencontainers.image.ref.name":"latest"}}]}
JSON
  echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
  tar -C "$layout" -cf "$t/image.tar" .
}

pc_blob() {  # pc_blob LAYOUT FILE -> prints "digest size", stores the file under blobs/
  local d s
  d=$(sha256sum "$2" | cut -d' ' -f1)
  s=$(stat -c %s "$2")
  mv "$2" "$1/blobs/sha256/$d"
  echo "$d $s"
}

pc_start() {
  PATH="$pc_bin_dir:$PATH" containerd --config "$pc_dir/config.toml" >> "$pc_dir/containerd.log" 2>&1 &
  pc_pid=$!
  local _
  for _ in $(seq 100); do
    ctr -a "$pc_sock" version >/dev/null 2>&1 && break
    sleep 0.1
  done
  ctr -a "$pc_sock" version >/dev/null ||
    { cat "$pc_dir/containerd.log" >&2; pc_fail "containerd did not start"; }
  if [ -z "${pc_snap:-}" ]; then
    "${PC[@]}" images import "$pc_dir/image.tar" >/dev/null
    "${PC[@]}" images ls -q | grep -qx "$pc_image" || pc_fail "image $pc_image not imported"
    # The snapshotter: overlayfs where the directory supports it, else native (bind mounts).
    pc_snap=overlayfs
    if ! "${PC[@]}" plugins ls 2>/dev/null | grep -E "overlayfs +.* ok" >/dev/null; then
      pc_snap=native
    fi
    "${PC[@]}" images unpack --snapshotter "$pc_snap" "$pc_image" >/dev/null 2>&1 || true
  fi
}

pc_stop() {
  [ -n "$pc_pid" ] || return 0
  kill -TERM "$pc_pid" 2>/dev/null
  wait "$pc_pid" 2>/dev/null || true
  pc_pid=""
}

pc_runsc_args() {
  command -v runsc >/dev/null || return 1
  # gVisor's default network refuses this kernel ("cannot run with network enabled in root
  # network namespace") unless /proc/sys/net is a tmpfs in a private mount namespace; only the
  # ptrace platform works on these hosts. Debian ships no runsc shim: the runc shim drives it.
  cat > "$pc_dir/runsc-wrapper" <<'SH'
#!/bin/sh
exec unshare --mount --propagation private sh -c \
  'mount -t tmpfs tmpfs /proc/sys/net && exec runsc --platform=ptrace "$@"' runsc "$@"
SH
  chmod +x "$pc_dir/runsc-wrapper"
  echo "--runtime io.containerd.runc.v2 --runc-binary $pc_dir/runsc-wrapper --runc-root $pc_dir/runsc"
}

# Shim daemons started for this containerd instance.
pc_shim_pids() { pgrep -f -- "containerd-shim-cocoon-v2 .*-address $pc_sock " || true; }

pc_cleanup() {  # pc_cleanup [TASK_ID...]
  set +e
  local id p m
  for id in "$@"; do
    "${PC[@]}" task kill -a -s SIGKILL "$id" >/dev/null 2>&1
    "${PC[@]}" task rm -f "$id" >/dev/null 2>&1
    "${PC[@]}" container rm "$id" >/dev/null 2>&1
  done
  pc_stop
  for p in $(pc_shim_pids); do kill -KILL "$p" 2>/dev/null; done
  # Mounts left under the directory (snapshots), deepest first.
  grep -o " $pc_dir[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  set -e
}

# For test scripts: a temp dir, a started private containerd, and cleanup on exit of whatever
# task ids the script appends to the `ids` array. Sets t (the temp dir), C (ctr), image, snap, ns.
pc_test_begin() {  # pc_test_begin BIN_DIR SRC_DIR
  t=$(mktemp -d /tmp/cocoon-shim-it.XXXXXX)
  pc_init "$t" "$1" "$2"
  C=("${PC[@]}")
  ns=$pc_ns
  image=$pc_image
  ids=()
  trap 'pc_cleanup "${ids[@]}"; [ -n "${SHIM_TEST_KEEP:-}" ] || rm -rf "$t"' EXIT
  pc_start
  snap=$pc_snap
}

# The state directory cocoon's shim keeps for a sandbox (a group key) of this namespace.
pc_state_dir() { echo "/run/cocoon/.containerd/$pc_ns/$1"; }
