#!/usr/bin/env bash
# Flush-path numbers (issue 3): object-store PUTs per 1,000 commits for one
# hot volume and for 100 volumes, flush vs commit throughput at full load,
# and commit latency with and without 50 ms of S3 latency. Each scenario
# runs a fresh `graft dev` (three real node processes, the embedded S3
# server, default flush settings) on its own ports and temp dir. Writes
# bench-out/flush-*.json and bench-out/flush.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/graft
out=bench-out
mkdir -p "$out"
base=${PORT_BASE:-17600}
dur=${DURATION:-60s}
eps="http://127.0.0.1:$((base+1)),http://127.0.0.1:$((base+2)),http://127.0.0.1:$((base+3))"

metric_sum() { # metric_sum NAME: sum of a counter over the three nodes
  for i in 1 2 3; do curl -sf "http://127.0.0.1:$((base+i))/metrics" || true; done |
    awk -v m="$1" '$1 ~ "^"m"({|$)" {s += $2} END {printf "%d\n", s}'
}

scenario() { # scenario NAME CLIENTS DURATION [graft dev flags...]
  local name=$1 clients=$2 d=$3; shift 3
  local dir; dir=$(mktemp -d -p . .bench-flush-XXXXXX)
  "$bin" dev --dir "$dir" --port-base "$base" "$@" >"$out/flush-$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$((base+1))/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "bench-flush: $name: $clients clients, $d" >&2
  "$bin" bench commit --endpoint "$eps" --clients "$clients" --duration "$d" --fsync-dir "" --json >"$out/flush-$name.json"
  local lag; lag=$(for i in 1 2 3; do curl -sf "http://127.0.0.1:$((base+i))/metrics" || true; done | awk '$1=="graft_flush_lag_seconds" && $2>m {m=$2} END {print m+0}')
  local flushed_before; flushed_before=$(metric_sum graft_flush_commits_total)
  "$bin" cluster flush --endpoint "$eps" >/dev/null
  local commits puts segs logs
  commits=$(metric_sum graft_flush_commits_total)
  puts=$(metric_sum graft_objstore_puts_total)
  segs=$(for i in 1 2 3; do curl -sf "http://127.0.0.1:$((base+i))/metrics" || true; done | awk '$1 ~ /^graft_objstore_puts_total\{kind="segment"\}/ {s+=$2} END {print s+0}')
  logs=$((puts - segs))
  python3 - "$out/flush-$name.json" "$commits" "$flushed_before" "$puts" "$segs" "$logs" "$lag" <<'PY'
import json, sys
p, commits, before, puts, segs, logs, lag = sys.argv[1], *map(float, sys.argv[2:])
d = json.load(open(p))
d.update(commits_total=commits, flushed_during_run=before, puts=puts, segment_puts=segs, log_puts=logs,
         puts_per_1000_commits=1000 * puts / commits if commits else None, max_flush_lag_s_at_end=lag)
json.dump(d, open(p, "w"), indent=1)
PY
  kill -INT "$pid"; wait "$pid" || true
  rm -rf "$dir"
}

scenario hot1 1 "$dur"
scenario vol100 100 "$dur"
scenario hot1-s3-50ms 1 "$dur" --s3-latency 50ms
scenario vol100-s3-50ms 100 "$dur" --s3-latency 50ms

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = ["| scenario | commits/s | p50 ms | p99 ms | commits | flushed before final flush | PUTs (segment+log) | PUTs / 1000 commits | flush lag at end (s) |",
        "|---|---|---|---|---|---|---|---|---|"]
for n in ("hot1", "vol100", "hot1-s3-50ms", "vol100-s3-50ms"):
    d = json.load(open(os.path.join(out, f"flush-{n}.json")))
    rows.append(f"| {n} | {d['ops_per_sec']:.0f} | {d['p50_ms']:.2f} | {d['p99_ms']:.2f} | {d['commits_total']:.0f} | {d['flushed_during_run']:.0f} "
                f"| {d['puts']:.0f} ({d['segment_puts']:.0f}+{d['log_puts']:.0f}) | {d['puts_per_1000_commits']:.1f} | {d['max_flush_lag_s_at_end']:.2f} |")
open(os.path.join(out, "flush.md"), "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
