#!/usr/bin/env bash
# Configures and builds cocoon and its guest image into build/ (or $COCOON_BUILD_DIR).
# The guest kernel is cached by content hash (guest/README.md), so rebuilding is quick.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${COCOON_BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$JOBS"
cmake --build "$BUILD" --target guest-image -j "$JOBS"
