#!/usr/bin/env bash
# Installs every Debian package cocoon needs to build, run and test. Idempotent: packages already
# present are not touched, and apt is not even updated when nothing is missing.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config protobuf-compiler libprotobuf-dev nlohmann-json3-dev
  libtomlplusplus-dev libcli11-dev libfmt-dev libgtest-dev libgmock-dev clang-format
  # fuzzing (clang with libFuzzer)
  clang libclang-rt-14-dev
  # guest kernel and initramfs
  linux-source-6.1 flex bison bc libelf-dev libssl-dev cpio xz-utils kmod
  # runtime parts
  qemu-system-x86 crun busybox-static
  # tests and benchmarks
  runc hyperfine procps iproute2 util-linux file python3 jq
  # the containerd shim's integration test (a private containerd 1.6 with ctr)
  containerd
  # networking test and HTTP benchmark (ctr run --cni with real CNI plugins; nsenter is in
  # util-linux above)
  containernetworking-plugins iptables curl wrk
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
