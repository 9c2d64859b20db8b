#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each (default 30s).
# -fuzzminimizetime keeps the fuzzer from stalling while it minimizes
# (golang/go#51484).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-30s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz: $pkg $f ($t)"
    go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" -fuzzminimizetime=1s "$pkg"
  done
done
