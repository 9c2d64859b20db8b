#!/usr/bin/env bash
# The standard consistency matrix: every workload x nemesis combination
# below, TIME_LIMIT each (default 60s), for every seed in SEEDS (default
# "1 2 3"). A row is "workload nemeses [edges]": with edges N the run
# passes --edge N (N graft edge processes; reads go through them). Each run
# is a fresh three-node cluster of real processes (graft jepsen); reports go to jepsen-out/matrix-TIME/, with matrix.md
# summarising them (with how many fault windows had no effect: see each
# run's summary.txt). Exits 1 if any run found an anomaly, 2 if any could
# not decide.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=bin/graft
limit=${TIME_LIMIT:-60s}
seeds=${SEEDS:-1 2 3}
out=jepsen-out/matrix-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
combos=(
  "register partition-leader"
  "register partition-half"
  "register partition-ring"
  "register partition-bridge"
  "register kill,kill-leader"
  "register kill-all"
  "register pause"
  "register pause-leader"
  "register slow-leader"
  "register net-slow,transfer"
  "register membership"
  "register rolling-restart"
  "register s3"
  "register s3-blackhole"
  "register s3-reset"
  "register s3-errors"
  "register s3-slow,s3-trickle"
  "ryw s3"
  "register quarantine"
  "register gc,kill-leader"
  "bank partition-leader,kill-leader"
  "sqlite-bank partition-leader,kill-leader"
  "sqlite-bank s3"
  "ryw partition-half,kill"
  "register partition-leader,kill 2"
  "register s3 2"
  "ryw partition-leader,kill 2"
  "ryw s3 2"
  "register kill-edge 2"
  "register partition-edge 2"
  "ryw kill-edge,partition-edge 2"
)
echo "| workload | nemeses | edges | seed | verdict | ops | fault effects | summary |" >"$out/matrix.md"
echo "|---|---|---|---|---|---|---|---|" >>"$out/matrix.md"
worst=0
for seed in $seeds; do
  for c in "${combos[@]}"; do
    read -r w n e <<<"$c"
    e=${e:-0}
    dir="$out/$w-${n//,/+}-s$seed"
    if ((e > 0)); then dir="$out/$w-${n//,/+}-e$e-s$seed"; fi
    echo "jepsen-matrix: $w / $n / edges $e / seed $seed ($limit)" >&2
    "$bin" jepsen --workload "$w" --nemesis "$n" --edge "$e" --seed "$seed" --time-limit "$limit" --out "$dir" --log-level warn >"$dir.log" 2>&1
    rc=$?
    line=$(grep '^graft jepsen:' "$dir.log" | tail -1)
    ops=$(sed -n 's/.* ops=\([0-9]*\).*/\1/p' <<<"$line")
    verdict=$(sed -n 's/.* valid=\([a-z]*\).*/\1/p' <<<"$line")
    effects=$(grep -o 'fault effects ([^)]*)' "$dir/summary.txt" 2>/dev/null | sed 's/fault effects (//; s/)//')
    echo "| $w | $n | $e | $seed | ${verdict:-error (exit $rc)} | ${ops:-} | ${effects:-} | ${line#*valid=} |" >>"$out/matrix.md"
    echo "  -> ${line:-exit $rc}" >&2
    if ((rc > worst)); then worst=$rc; fi
  done
done
cat "$out/matrix.md"
exit $worst
