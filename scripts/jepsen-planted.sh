#!/usr/bin/env bash
# The planted-bug matrix: for every bug of the catalog (graft jepsen
# --list-planted, from jepsen/planted.go), build graft with the bug's tag
# into bin/planted/, run the bug's matrix row for every seed in SEEDS
# (default "1 2 3") for its time limit, with --edge N for an edge bug's row (TIME_LIMIT overrides), and check
# that the bug's checker answered false (BUGS="tag ..." runs only those). Reports go to
# jepsen-out/planted-TIME/ (OUT=), with planted.md giving each bug's detection
# rate. Exits 1 if a bug was caught in fewer than 2 of 3 runs (two thirds
# of the seeds, rounded up).
set -uo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-1 2 3}
out=${OUT:-jepsen-out/planted-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out" bin/planted
go build -o bin/graft ./cmd/graft || exit 2
catalog=$(bin/graft jepsen --list-planted) || exit 2
nseeds=$(wc -w <<<"$seeds")
need=$(((2 * nseeds + 2) / 3))
{
  echo "| bug (build tag) | class | workload | nemeses | edges | checker | caught | runs (checker verdict per seed) |"
  echo "|---|---|---|---|---|---|---|---|"
} >"$out/planted.md"
worst=0
while IFS=$'\t' read -r tag class workload nemeses chk limit edges; do
  edges=${edges:-0}
  if [[ -n ${BUGS:-} && " $BUGS " != *" $tag "* ]]; then continue; fi
  bin=bin/planted/graft-$tag
  go build -tags "$tag" -o "$bin" ./cmd/graft || exit 2
  caught=0
  runs=""
  for seed in $seeds; do
    dir="$out/$tag-$workload-${nemeses//,/+}-e$edges-s$seed"
    echo "jepsen-planted: $tag / $workload / $nemeses / edges $edges / seed $seed (${TIME_LIMIT:-$limit})" >&2
    "$bin" jepsen --workload "$workload" --nemesis "$nemeses" --edge "$edges" --seed "$seed" --time-limit "${TIME_LIMIT:-$limit}" \
      --out "$dir" --log-level warn >"$dir.log" 2>&1
    line=$(grep '^graft jepsen:' "$dir.log" | tail -1)
    verdict=$(sed -n "s/.*[ (]$chk=\([a-z]*\).*/\1/p" <<<"$line")
    [[ $verdict == false ]] && caught=$((caught + 1))
    runs+="s$seed: ${verdict:-no verdict}; "
    echo "  -> ${line:-no verdict}" >&2
  done
  echo "| $tag | $class | $workload | $nemeses | $edges | $chk | $caught/$nseeds | ${runs%; } |" >>"$out/planted.md"
  if ((caught < need)); then worst=1; fi
done <<<"$catalog"
cat "$out/planted.md"
exit $worst
