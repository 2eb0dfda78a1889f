#!/usr/bin/env bash
# e2e/run.sh (`make e2e`) runs the end-to-end suite: it starts each cluster of PXB_E2E_CLUSTERS (default
# "a b") that is not up, refreshes the pxb-job image in those already up, runs `go test -tags e2e ./e2e/...`
# (extra flags in E2E_FLAGS, e.g. E2E_FLAGS='-run Snapshot') and stops the clusters it started. On failure
# the tails of every component's log are printed; the full logs stay in /var/lib/pxb-e2e/<cluster>/logs.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTERS=${PXB_E2E_CLUSTERS:-a b}
started=()

finish() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    for c in $CLUSTERS; do e2e/cluster.sh logs "$c" || true; done
  fi
  for c in "${started[@]}"; do e2e/cluster.sh down "$c" || rc=1; done
  exit $rc
}
trap finish EXIT

for c in $CLUSTERS; do
  if e2e/cluster.sh status "$c"; then
    e2e/cluster.sh images "$c"
  else
    started+=("$c")
    e2e/cluster.sh up "$c"
  fi
done

# shellcheck disable=SC2086 # E2E_FLAGS holds several flags
PXB_E2E_CLUSTERS="$CLUSTERS" go test -tags e2e -count=1 -timeout 50m ${E2E_FLAGS:-} ./e2e/...
