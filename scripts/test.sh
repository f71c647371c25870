#!/usr/bin/env bash
# The whole test suite: unit tests and integration tests with real QEMU VMs, the real guest kernel
# and the real agent. Needs root. Installs and builds what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "test.sh: the integration tests need root (mounts, 9p, QEMU)" >&2; exit 1; }
scripts/install-deps.sh
scripts/build.sh
# Formatting is part of the suite: CI fails on unformatted code.
scripts/check-format.sh
cd "${COCOON_BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 "$@"
