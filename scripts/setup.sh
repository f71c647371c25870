#!/usr/bin/env bash
# One command for a newcomer on Debian 12: install dependencies, build cocoon and its guest image,
# then run a container in its own VM that prints the host's and the guest's kernel release.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build/bin/cocoon check

demo=build/demo-bundle
scripts/make-bundle.sh "$demo" -- sh -c 'echo "guest kernel: $(uname -r)"; echo "guest cpu: $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2)"'
echo "host kernel:  $(uname -r)"
build/bin/cocoon run --bundle "$demo" "cocoon-demo-$$"
