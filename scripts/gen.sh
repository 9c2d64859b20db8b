#!/usr/bin/env bash
# Generates Go + Connect code from api/*.proto with buf and local plugins.
#   bash scripts/gen.sh         regenerate
#   bash scripts/gen.sh check   fail if the committed generated code is stale
#
# buf comes from tools/go.mod (it needs a newer protobuf than the main
# module may use); protoc-gen-go and protoc-gen-connect-go are built from the
# main module, so the generated code matches the runtime versions in go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=bin/tools
mkdir -p "$tools"

build() { # build NAME MODULE_DIR PACKAGE
  local out="$tools/$1"
  if [ ! -x "$out" ] || [ "$2/go.mod" -nt "$out" ] || [ "$2/go.sum" -nt "$out" ]; then
    echo "gen: building $1" >&2
    (cd "$2" && go build -o "$OLDPWD/$out" "$3")
  fi
}
build buf tools github.com/bufbuild/buf/cmd/buf
build protoc-gen-go . google.golang.org/protobuf/cmd/protoc-gen-go
build protoc-gen-connect-go . connectrpc.com/connect/cmd/protoc-gen-connect-go

generate() { # generate OUTDIR
  (cd api && ../"$tools"/buf lint && ../"$tools"/buf generate -o "$1")
}

if [ "${1:-}" = "check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  generate "$tmp"
  stale=0
  while IFS= read -r f; do
    rel=${f#"$tmp"/}
    if ! cmp -s "$f" "api/$rel"; then
      echo "gen: api/$rel is stale" >&2
      stale=1
    fi
  done < <(find "$tmp" -name '*.go')
  while IFS= read -r f; do
    [ -e "$tmp/${f#api/}" ] || { echo "gen: api/${f#api/} is not generated from any proto" >&2; stale=1; }
  done < <(find api -name '*.pb.go' -o -name '*.connect.go')
  if [ "$stale" = 1 ]; then
    echo "gen: generated code is stale: run 'make generate' and commit the result" >&2
    exit 1
  fi
  echo "gen: generated code is up to date"
else
  generate .
fi
