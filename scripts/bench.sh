#!/usr/bin/env bash
# Benchmarks commit latency on a fresh three-node cluster of real
# processes (bin/graft dev on its own ports and a temp dir), with the
# disk's fsync floor measured in the same run. Writes bench-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/graft
out=bench-out
mkdir -p "$out"
dir=$(mktemp -d -p . .bench-XXXXXX)
base=${PORT_BASE:-17500}
eps="http://127.0.0.1:$((base+1)),http://127.0.0.1:$((base+2)),http://127.0.0.1:$((base+3))"
"$bin" dev --dir "$dir" --port-base "$base" >"$out/cluster.log" 2>&1 &
pid=$!
cleanup() { kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$((base+1))/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
dur=${DURATION:-10s}
"$bin" bench fsync --dir "$dir" --json >"$out/fsync.json"
for c in 1 64; do
  for p in 1 16; do
    echo "bench: $c clients, $p pages/commit, $dur" >&2
    "$bin" bench commit --endpoint "$eps" --clients "$c" --pages "$p" --duration "$dur" --fsync-dir "$dir" --json >"$out/commit-c$c-p$p.json"
  done
done
python3 - "$out" <<'PY'
import json, sys, glob, os
out = sys.argv[1]
f = json.load(open(os.path.join(out, "fsync.json")))
rows = ["| clients | pages | p50 ms | p90 ms | p99 ms | commits/s | p50 / fsync p50 |", "|---|---|---|---|---|---|---|"]
for c in (1, 64):
    for p in (1, 16):
        d = json.load(open(os.path.join(out, f"commit-c{c}-p{p}.json")))
        rows.append(f"| {c} | {p} | {d['p50_ms']:.2f} | {d['p90_ms']:.2f} | {d['p99_ms']:.2f} | {d['ops_per_sec']:.0f} | {d['p50_ms']/d['fsync_p50_ms']:.1f}x |")
rows.append("")
rows.append(f"disk floor, append+fdatasync of 4160 B: p50 {f['p50_ms']:.3f} ms, p99 {f['p99_ms']:.3f} ms")
open(os.path.join(out, "results.md"), "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
