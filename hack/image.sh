#!/usr/bin/env bash
# hack/image.sh builds the pxb-job image as a docker-archive tarball, without a container engine: a static
# `go build` of ./cmd/pxb-job on a minimal base (CA certificates, /tmp), written by hack/mkimage.
# Import it with `ctr -n k8s.io images import _out/pxb-job.tar`; e2e/cluster.sh does so for its clusters.
#
# Env: PXB_IMAGE (reference, default pxb.local/pxb-job:dev), OUT (default _out/pxb-job.tar).
set -euo pipefail
cd "$(dirname "$0")/.."

PXB_IMAGE=${PXB_IMAGE:-pxb.local/pxb-job:dev}
OUT=${OUT:-_out/pxb-job.tar}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath \
  -ldflags "-X github.com/pxb-dev/pxb/pkg/version.Version=$VERSION" -o "$work/pxb-job" ./cmd/pxb-job
go build -o "$work/mkimage" ./hack/mkimage
"$work/mkimage" -o "$OUT" -tag "$PXB_IMAGE" -entrypoint /usr/local/bin/pxb-job -file "$work/pxb-job:/usr/local/bin/pxb-job"
echo "image: $PXB_IMAGE -> $OUT"
