#!/usr/bin/env bash
# Generate Go code from api/graft/v1/graft.proto.
#
#   bash scripts/gen.sh          build the pinned tools if needed, lint, generate
#   bash scripts/gen.sh check    same, then fail if the generated code changed
#
# Needs only Go (modules come through the Go proxy). Tools are pinned in
#   tools/go.mod          buf
#   tools/plugins/go.mod  protoc-gen-go, protoc-gen-connect-go (same versions
#                         as the google.golang.org/protobuf and
#                         connectrpc.com/connect runtimes in the root go.mod)
# and built into bin/tools/ (gitignored). buf runs with local plugins only, so
# no network is used after the first build.
set -euo pipefail

mode=${1:-gen}
case $mode in
gen | check) ;;
*)
	echo "usage: bash scripts/gen.sh [check]" >&2
	exit 2
	;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=$root/bin/tools
export GOWORK=off # the tool modules are not part of any workspace

# The generators must match the runtime the generated code is compiled with.
for m in google.golang.org/protobuf connectrpc.com/connect; do
	want=$(go list -m -e -f '{{.Version}}' "$m")
	have=$(cd tools/plugins && go list -m -f '{{.Version}}' "$m")
	if [[ $want != "$have" ]]; then
		echo "gen.sh: root go.mod has $m ${want:-(missing)}, tools/plugins/go.mod has $have." >&2
		echo "gen.sh: fix: (cd tools/plugins && go get $m@$want && go mod tidy)" >&2
		exit 1
	fi
done

# Rebuild the tools when a binary is missing or the pins or Go changed.
stamp=$(
	go version
	cat tools/go.mod tools/go.sum tools/plugins/go.mod tools/plugins/go.sum
)
if [[ ! -x $bin/buf || ! -x $bin/protoc-gen-go || ! -x $bin/protoc-gen-connect-go ||
	$stamp != "$(cat "$bin/.gen-stamp" 2>/dev/null)" ]]; then
	echo "gen.sh: building buf and plugins into bin/tools (buf takes a few minutes the first time)" >&2
	mkdir -p "$bin"
	rm -f "$bin/.gen-stamp"
	(cd tools && go build -buildvcs=false -o "$bin/" github.com/bufbuild/buf/cmd/buf)
	(cd tools/plugins && go build -buildvcs=false -o "$bin/" \
		google.golang.org/protobuf/cmd/protoc-gen-go \
		connectrpc.com/connect/cmd/protoc-gen-connect-go)
	printf '%s' "$stamp" >"$bin/.gen-stamp"
fi

if [[ $mode == check ]]; then
	before=$(mktemp -d)
	trap 'rm -rf "$before"' EXIT
	cp -R api "$before/api"
fi

cd api
"$bin/buf" lint
# Stand-in for buf's `clean`, which would delete the .proto sources here.
find . \( -name '*.pb.go' -o -name '*.connect.go' \) -type f -delete
find . -type d -name '*connect' -empty -delete
"$bin/buf" generate
cd "$root"

if [[ $mode == check ]]; then
	if ! changed=$(diff -rq "$before/api" api); then
		echo "gen.sh check: generated code in api/ was stale; it has been regenerated." >&2
		echo "gen.sh check: differences (before: the tree before regenerating):" >&2
		printf '%s\n' "$changed" | sed "s|$before/api|before:api|g" >&2
		echo "gen.sh check: commit the regenerated files (make generate does the same)." >&2
		exit 1
	fi
	echo "gen.sh check: generated code is up to date."
fi
