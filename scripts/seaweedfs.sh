#!/usr/bin/env bash
# Build SeaweedFS's weed binary, the independent S3 server the objstore
# integration tests run against (objstore/s3test.StartSeaweed).
#
#   bash scripts/seaweedfs.sh build     build bin/tools/weed unless it is there
#                                       at the pinned version
#   bash scripts/seaweedfs.sh version   print the pinned version
#
# Needs only Go: the source comes from the Go module cache (through the Go
# module proxy) and is built with the local toolchain. The first build takes
# several minutes on two cores; later runs find bin/tools/weed.version equal
# to the pin and do nothing. To move to another SeaweedFS, change VERSION.
set -euo pipefail

MODULE=github.com/seaweedfs/seaweedfs
VERSION=v0.0.0-20261109003541-7506e5f91cd6

mode=${1:-build}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$root/bin/tools
out=$bin/weed
stamp=$bin/weed.version

log() { printf 'seaweedfs.sh: %s\n' "$*" >&2; }

case $mode in
version)
	echo "$VERSION"
	exit 0
	;;
build) ;;
*)
	echo "usage: bash scripts/seaweedfs.sh [build|version]" >&2
	exit 2
	;;
esac

if [[ -x $out && -f $stamp && $(<"$stamp") == "$VERSION" ]]; then
	log "bin/tools/weed is SeaweedFS $VERSION; nothing to do"
	exit 0
fi

export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0
start=$SECONDS
log "building SeaweedFS $VERSION into bin/tools/weed (first time only; takes several minutes)"

log "downloading $MODULE@$VERSION through the Go module proxy"
dir=$(cd / && go mod download -json "$MODULE@$VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [[ -z $dir || ! -d $dir/weed ]]; then
	log "go mod download gave no module directory for $MODULE@$VERSION"
	exit 1
fi

mkdir -p "$bin"
tmp=$bin/.weed.tmp.$$ # not created here: go build -o wants to create it
heartbeat= build=
cleanup() {
	for pid in $heartbeat $build; do kill "$pid" 2>/dev/null || true; done
	rm -f "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# go build prints nothing for minutes; say that it is alive. (sleep's output
# goes nowhere, so a sleep outliving the killed loop holds no pipe open.)
(
	while sleep 30 </dev/null >/dev/null 2>&1; do
		log "still compiling weed ($((SECONDS - start))s so far)"
	done
) &
heartbeat=$!

# The module cache is read-only, which go build does not mind: it writes
# only the -o file and its build cache. (go install refuses the module's
# replace directive; go build inside the module honours it.)
log "compiling ./weed in $dir (downloads its dependencies first)"
# In the background, so a signal to this script runs cleanup at once, which
# stops the build too.
(cd "$dir" && exec go build -trimpath -ldflags='-s -w' -o "$tmp" ./weed) &
build=$!
if ! wait "$build"; then
	build=
	log "go build of weed failed after $((SECONDS - start))s"
	exit 1
fi
build=
kill "$heartbeat" 2>/dev/null || true
heartbeat=

built=$("$tmp" version 2>/dev/null | head -1) || true
if [[ $built != version* ]]; then
	log "the built weed does not run: weed version said ${built:-nothing}"
	exit 1
fi
# Rename last, so an interrupted build leaves no weed that looks finished.
mv -f "$tmp" "$out"
echo "$VERSION" >"$stamp"
log "built bin/tools/weed ($(du -h "$out" | cut -f1)) in $((SECONDS - start))s: $built"
