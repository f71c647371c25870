#!/bin/sh
# Builds the ttRPC frame fuzzer in build-fuzz/ and runs it for N seconds (default 60) on the seed
# corpus in tests/fuzz/corpus/ttrpc/. New inputs go to build-fuzz/corpus/ttrpc/, so the committed
# seeds stay as they are. Usage: tests/fuzz/run.sh [seconds] [extra libFuzzer flags...]
set -eu
seconds=${1:-60}
[ $# -gt 0 ] && shift
root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build-fuzz"

cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCOCOON_BUILD_FUZZERS=ON -DCOCOON_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target ttrpc_frame_fuzzer -j2

work="$build/corpus/ttrpc"
mkdir -p "$work"
exec "$build/bin/ttrpc_frame_fuzzer" -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix="$build/" "$@" "$work" "$root/tests/fuzz/corpus/ttrpc"
