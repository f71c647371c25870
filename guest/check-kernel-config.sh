#!/usr/bin/env bash
# Usage: check-kernel-config.sh CONFIG FRAGMENT
#
# Checks that a kernel .config honours a config fragment: every `CONFIG_X=value` line of the
# fragment must appear verbatim in CONFIG, and every `# CONFIG_X is not set` option must be
# unset there. olddefconfig silently drops options whose dependencies are missing; this is the
# guard against shipping a kernel that quietly lacks 9p or virtio-console.
# Exit status: 0 when everything matches, 1 when something is missing (each one is named), 2 on
# bad usage.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 CONFIG FRAGMENT" >&2
  exit 2
fi
config=$1
fragment=$2
for f in "$config" "$fragment"; do
  if [[ ! -r $f ]]; then
    echo "$0: cannot read '$f'" >&2
    exit 2
  fi
done

# Current value of each option in CONFIG: "y", "m", a value, or "n" for "is not set".
declare -A have=()
while IFS= read -r line; do
  if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
    have[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
  elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    have[${BASH_REMATCH[1]}]=n
  fi
done <"$config"

missing=0
checked=0
lineno=0
while IFS= read -r line; do
  lineno=$((lineno + 1))
  if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
    opt=${BASH_REMATCH[1]}
    want=${BASH_REMATCH[2]}
    got=${have[$opt]:-<absent>}
    checked=$((checked + 1))
    if [[ $got != "$want" ]]; then
      echo "MISSING: $opt=$want (fragment line $lineno); final config has: $got" >&2
      missing=$((missing + 1))
    fi
  elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    opt=${BASH_REMATCH[1]}
    got=${have[$opt]:-n}
    checked=$((checked + 1))
    if [[ $got != n ]]; then
      echo "UNEXPECTED: $opt should not be set (fragment line $lineno); final config has: $got" >&2
      missing=$((missing + 1))
    fi
  fi
done <"$fragment"

if [[ $missing -ne 0 ]]; then
  echo "$0: $missing of $checked fragment options did not make it into $config" \
    "(unmet dependencies? check 'make menuconfig' help for each)" >&2
  exit 1
fi
echo "kernel config OK: all $checked fragment options present in $config"
