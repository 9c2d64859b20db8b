#!/usr/bin/env bash
# Benchmarks graft against etcd, bare hashicorp/raft and the disk floor:
# the same closed-loop commit workloads (1 and 64 clients, 1 and 16 pages of
# 4 KiB per commit), interleaved per workload, each cell on a fresh
# three-node cluster of real processes on loopback with its data on this
# disk (graft bench compare; see docs/BENCHMARKS.md). `make bench` runs it
# after building bin/graft.
#
# Builds, once, into bin/tools: etcd (the real etcd server, from the
# separate module bench/peers/etcd, so the main module never depends on
# etcd; a few minutes the first time) and etcd-load (its load generator).
#
#   DURATION=10s   measured time per cell (after WARMUP=1s)
#   PORT_BASE=17500  loopback ports PORT_BASE+1 .. PORT_BASE+513
#   TARGETS=graft,...  (default: graft bench compare's list: graft, graft-s3,
#                      graft on the other Raft log store, etcd, raft, raft on
#                      the other log store, disk)
#   WORKLOADS=1x1,1x16,64x1,64x16,1000x1@2000  (CLIENTSxPAGES closed loop;
#                      @RATE: open loop at RATE commits/s over all clients,
#                      graft targets only)
#   graft-spread (clients spread over the three nodes) runs in 64x1 only.
#   SECURE=1       also run graft-secure (graft dev --tls --auth: HTTPS, mutual
#                  TLS between nodes, a token per call) right after graft in
#                  each workload: the cost of security (SECURE=0 skips it)
#
# Writes bench-out/compare-TIME/ (results.md, results.json, latency.svg,
# one JSON per cell, server logs) and points bench-out/compare-latest at it.
#
# Then the edge benchmark (graft bench edge): 64 clients reading zipf-chosen
# pages of 10 volumes x 10k pages through one `graft edge` process and from
# the nodes directly, interleaved rounds on one fresh cluster:
#   EDGE=0            skip it
#   EDGE_DURATION=10s EDGE_WARMUP=2s EDGE_ROUNDS=2  per phase / rounds
#   EDGE_CACHE_BYTES=320MiB  EDGE_READ_PAGES=4  EDGE_PORT_BASE=18100
#   EDGE_PREFILL_READS=40000  unmeasured reads through the edge first
#   EDGE_PREFILL_MAX_READS=240000  then prefill on, in chunks, until the cache is full and steady (at most this)
# It writes bench-out/edge-TIME/ (results.txt, results.json, logs) and points
# bench-out/edge-latest at it.
# Exits non-zero if a cell or the edge benchmark failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=${GRAFT_BIN:-bin/graft}
tools=$root/bin/tools
peers=$root/bench/peers/etcd

log() { printf 'bench.sh: %s\n' "$*" >&2; }

[[ -x $bin ]] || { log "$bin not found: run 'make build' (or 'make bench')"; exit 1; }

# The peers module builds on its own: no go.work, no edits to its go.mod.
export GOWORK=off GOFLAGS=-mod=readonly

build_etcd() {
	local version stamp want start
	version=$(cd "$peers" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
	want="$version $(go env GOVERSION)"
	stamp=$tools/etcd.version
	if [[ -x $tools/etcd && -f $stamp && $(<"$stamp") == "$want" ]]; then
		log "bin/tools/etcd is etcd $version; nothing to build"
		return
	fi
	mkdir -p "$tools"
	start=$SECONDS
	log "building etcd $version into bin/tools/etcd (first time only; a few minutes on two cores)"
	(cd "$peers" && go build -trimpath -o "$tools/etcd.tmp" go.etcd.io/etcd/server/v3)
	mv -f "$tools/etcd.tmp" "$tools/etcd"
	echo "$want" >"$stamp"
	log "built bin/tools/etcd in $((SECONDS - start))s: $("$tools/etcd" --version | head -1)"
}

# Without TARGETS, graft bench compare's default list (which has etcd).
targets=${TARGETS:-}
target_args=()
[[ -n $targets ]] && target_args=(--targets "$targets")
[[ ${SECURE:-1} != 0 ]] && target_args+=(--secure)
etcd_args=()
if [[ -z $targets || ,$targets, == *,etcd,* ]]; then
	build_etcd
	(cd "$peers" && go build -trimpath -o "$tools/etcd-load" ./load)
	etcd_args=(--etcd "$tools/etcd" --etcd-load "$tools/etcd-load")
fi

stamp=$(date -u +%Y%m%d-%H%M%S)
out=bench-out/compare-$stamp
mkdir -p bench-out
# Every cluster's data goes here, on the same disk as the repository.
work=$(mktemp -d -p . .bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
label="graft $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty tree)')"

status=0
"$bin" bench compare --out "$out" --work-dir "$work" --graft "$(realpath "$bin")" "${etcd_args[@]}" \
	"${target_args[@]}" --workloads "${WORKLOADS:-1x1,1x16,64x1,64x16,1000x1@2000}" \
	--duration "${DURATION:-10s}" --warmup "${WARMUP:-1s}" --port-base "${PORT_BASE:-17500}" \
	--label "$label" || status=$?
ln -sfn "compare-$stamp" bench-out/compare-latest

if [[ ${EDGE:-1} != 0 ]]; then
	edge_out=bench-out/edge-$stamp
	mkdir -p "$work/edge"
	"$bin" bench edge --out "$edge_out" --work-dir "$work/edge" --graft "$(realpath "$bin")" \
		--duration "${EDGE_DURATION:-10s}" --warmup "${EDGE_WARMUP:-2s}" --rounds "${EDGE_ROUNDS:-2}" \
		--cache-bytes "${EDGE_CACHE_BYTES:-320MiB}" --read-pages "${EDGE_READ_PAGES:-4}" --prefill-reads "${EDGE_PREFILL_READS:-40000}" --prefill-max-reads "${EDGE_PREFILL_MAX_READS:-240000}" \
		--port-base "${EDGE_PORT_BASE:-18100}" || status=$?
	ln -sfn "edge-$stamp" bench-out/edge-latest
fi
exit "$status"
