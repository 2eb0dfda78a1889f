#!/usr/bin/env bash
# hack/verify.sh fails when generated files are stale, Go files are not gofmt'ed, or go vet complains
# (including the integration, e2e and release test files).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export GOFLAGS=-buildvcs=false
status=0

# Regenerate into a copy of what generation reads and writes, and compare.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/pkg" "$tmp/manifests"
cp go.mod go.sum "$tmp/"
cp -r hack "$tmp/hack"
cp -r pkg/apis "$tmp/pkg/apis"
cp -r manifests/crds "$tmp/manifests/crds"
"$tmp/hack/generate.sh"
for dir in pkg/apis manifests/crds; do
  if ! diff -ru "$dir" "$tmp/$dir"; then
    echo "verify: $dir is stale; run: make generate" >&2
    status=1
  fi
done

unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard -- '*.go'))
if [ -n "$unformatted" ]; then
  echo "verify: not gofmt'ed (run: gofmt -w):" >&2
  echo "$unformatted" >&2
  status=1
fi

if ! go vet -tags integration,e2e,release ./...; then
  echo "verify: go vet failed" >&2
  status=1
fi

[ "$status" -eq 0 ] && echo "verify: ok"
exit "$status"
