#!/usr/bin/env bash
# hack/integration.sh [PACKAGES...] runs the integration tests (build tag `integration`): real etcd +
# kube-apiserver and real object stores, started by pkg/testbed. Default packages: ./...
#
# The pinned servers are built first, so that no test spends its timeout waiting for Kubernetes to compile.
# PXB_TEST_TIMEOUT (default 20m) bounds each test binary; PXB_TEST_FLAGS adds go test flags (e.g. -v -run X).
set -euo pipefail
cd "$(dirname "$0")/.."
export PXB_CACHE=${PXB_CACHE:-$HOME/.cache/pxb}

start=$(date +%s)
# snapshot-crds: the CLI tests install the VolumeSnapshot CRDs into the test cluster.
hack/tools.sh etcd kube-apiserver kubectl versitygw fake-gcs-server azurite snapshot-crds kube-state-metrics >/dev/null
echo "integration: tools ready in $(($(date +%s) - start))s" >&2

# Each test binary starts its own servers (kube-apiserver alone wants ~300 MiB and a core while it starts):
# two packages at a time keep a 2-core machine busy without starving either.
# shellcheck disable=SC2086
exec go test -tags integration -count=1 -p 2 -timeout "${PXB_TEST_TIMEOUT:-20m}" ${PXB_TEST_FLAGS:-} "${@:-./...}"
