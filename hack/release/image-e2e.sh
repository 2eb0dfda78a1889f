#!/usr/bin/env bash
# hack/release/image-e2e.sh (`make test-release-image`, after `make release-snapshot`) imports the release's own
# linux/amd64 job image from dist/ into an e2e cluster, unchanged, and runs the install, an application's
# backup and restore, and a volume's snapshot round trip with it.
set -euo pipefail
cd "$(dirname "$0")/../.."

tar=$(ls dist/pxb-job_*_linux_amd64.tar 2>/dev/null | head -1)
[ -n "$tar" ] || { echo "image-e2e: no dist/pxb-job_*_linux_amd64.tar: run make release-snapshot" >&2; exit 1; }
# The reference the release gave its image, which a released plugin installs by default.
image=$(tar -xOf "$tar" manifest.json | sed -n 's/.*"RepoTags":\["\([^"]*\)".*/\1/p')
[ -n "$image" ] || { echo "image-e2e: $tar names no image" >&2; exit 1; }
echo "image-e2e: $image from $tar"

export PXB_JOB_TAR=$PWD/$tar PXB_IMAGE=$image
export PXB_E2E_CLUSTERS=${PXB_E2E_CLUSTERS:-a}
# run.sh splits E2E_FLAGS on spaces and takes no quotes.
export E2E_FLAGS=${E2E_FLAGS:-"-run TestInstall\$|TestBackupRestoreApplication\$|TestVolumeSnapshotRoundTrip\$ -v"}
exec e2e/run.sh
