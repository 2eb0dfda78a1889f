#!/usr/bin/env bash
# hack/stress.sh runs the repository stress run (make stress; not part of make test or CI): writer, restorer
# and maintenance processes share one repository on a real S3 server (versitygw) while they are killed with
# SIGKILL at random points and started again; at the end a final GC, a check reading all data, and a restore
# of every completed snapshot that maintenance did not delete must pass.
#
# PXB_STRESS_SEED reproduces a run's random choices (printed at its start); PXB_STRESS_ROUNDS is the number
# of kills (default 100, about 4 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
export PXB_CACHE=${PXB_CACHE:-$HOME/.cache/pxb}
hack/tools.sh versitygw >/dev/null
exec go test -tags integration,stress -count=1 -timeout "${PXB_STRESS_TIMEOUT:-30m}" -run '^TestStress$' -v ${PXB_TEST_FLAGS:-} ./pkg/mover/
