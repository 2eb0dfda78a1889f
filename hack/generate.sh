#!/usr/bin/env bash
# hack/generate.sh regenerates what is derived from the API types in pkg/apis: the deepcopy functions
# (zz_generated.deepcopy.go) and the CRD manifests in manifests/crds, with a pinned controller-gen.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
controller_gen=$(hack/tools.sh controller-gen)

# Stale CRDs of renamed or removed kinds must not survive a regeneration.
rm -f manifests/crds/*.yaml
"$controller_gen" object paths=./pkg/apis/... crd paths=./pkg/apis/... output:crd:artifacts:config=manifests/crds
