#!/usr/bin/env bash
# hack/tools.sh NAME... prints the absolute path of each pinned external tool, building or installing it into
# the cache first when missing. Everything comes from the Go module proxy, npm or Debian packages, at pinned
# versions, so a fresh machine builds exactly what CI built.
#
# Names: etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
#        snapshot-controller csi-snapshotter versitygw minio fake-gcs-server azurite restic kopia controller-gen
#        kube-state-metrics
set -euo pipefail

K8S_VERSION=v1.34.4
K8S_STAGING_VERSION=v0.34.4
ETCD_VERSION=v3.5.21
SNAPSHOTTER_VERSION=v8.7.0
SNAPSHOTTER_K8S_VERSION=v0.37.0
VERSITYGW_VERSION=v1.8.0
# MinIO publishes no module versions any more; this is the proxy's latest, pinned.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
FAKE_GCS_VERSION=v1.56.1
AZURITE_VERSION=3.37.0
RESTIC_VERSION=v0.19.1
KOPIA_VERSION=v0.23.1
CONTROLLER_GEN_VERSION=v0.23.0
KUBE_STATE_METRICS_VERSION=v2.20.0

CACHE=${PXB_CACHE:-$HOME/.cache/pxb}
export GOFLAGS=-buildvcs=false
export CGO_ENABLED=0

log() { echo "tools: $*" >&2; }

# One lock for the whole cache, taken to build: parallel test packages ask for the same tools at once. Finding
# a tool already built takes no lock, so one long build does not hold up every user of another tool.
mkdir -p "$CACHE"
locked=
lock() {
  [ -z "$locked" ] || return 0
  exec 9>"$CACHE/.tools.lock"
  flock 9
  locked=1
}

# need FILE BUILD...: runs BUILD (output to stderr) unless FILE exists, under the lock, looking again once the
# lock is held since another process may have just built it.
need() {
  local file=$1
  shift
  [ -e "$file" ] && return 0
  lock
  [ -e "$file" ] || "$@" >&2
}

# wrapper_module DIR MODULE VERSION: a throwaway module that requires MODULE@VERSION, for projects whose own
# go.mod has replace directives (which `go install pkg@version` refuses). The replaces go in afterwards.
wrapper_module() {
  local dir=$1 module=$2 version=$3
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'module pxb.local/tools\n\ngo 1.26\n\nrequire %s %s\n' "$module" "$version" >"$dir/go.mod"
}

build_kubernetes() {
  local bin=$1 dir="$CACHE/src/kubernetes-$K8S_VERSION"
  wrapper_module "$dir" k8s.io/kubernetes "$K8S_VERSION"
  # k8s.io/kubernetes replaces every staging module with a path inside its own tree; point them at the
  # published modules of the same release instead.
  local mod
  mod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$K8S_STAGING_VERSION"'#p' "$mod" >>"$dir/go.mod"
  cat >"$dir/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
  # The version the binaries report (kubectl version, /version, the node's kubelet version) is set at link
  # time, as Kubernetes' own build does; without it they say v0.0.0-master.
  local v=${K8S_VERSION#v} ldflags="" kv pkg
  for kv in "gitVersion=$K8S_VERSION" "gitMajor=${v%%.*}" "gitMinor=$(echo "$v" | cut -d. -f2)" gitTreeState=clean; do
    for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do ldflags+=" -X $pkg.$kv"; done
  done
  (cd "$dir" && go mod tidy && mkdir -p "$bin" &&
   log "building Kubernetes $K8S_VERSION (several minutes when cold)" &&
   go build -trimpath -ldflags "$ldflags" -o "$bin/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
     k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
     k8s.io/kubernetes/cmd/kubectl &&
   echo "$K8S_VERSION" >"$bin/.complete")
}

build_etcd() {
  local bin=$1 dir="$CACHE/src/etcd-$ETCD_VERSION"
  wrapper_module "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  local v2=v2.305.${ETCD_VERSION##*.}
  cat >>"$dir/go.mod" <<EOF
replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v2 => go.etcd.io/etcd/client/v2 $v2
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/raft/v3 => go.etcd.io/etcd/raft/v3 $ETCD_VERSION
)
EOF
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$dir/tools.go"
  (cd "$dir" && go mod tidy && mkdir -p "$bin" && log "building etcd $ETCD_VERSION" &&
    go build -trimpath -o "$bin/etcd" go.etcd.io/etcd/server/v3)
}

build_snapshotter() {
  local bin=$1 dir="$CACHE/src/external-snapshotter-$SNAPSHOTTER_VERSION"
  wrapper_module "$dir" github.com/kubernetes-csi/external-snapshotter/v8 "$SNAPSHOTTER_VERSION"
  local mod
  mod=$(cd "$dir" && go mod download -json "github.com/kubernetes-csi/external-snapshotter/v8@$SNAPSHOTTER_VERSION" |
    sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  echo "replace github.com/kubernetes-csi/external-snapshotter/client/v8 => github.com/kubernetes-csi/external-snapshotter/client/v8 $SNAPSHOTTER_VERSION" >>"$dir/go.mod"
  grep -E '^replace k8s.io/[a-z0-9-]+ => k8s.io/' "$mod" >>"$dir/go.mod" || true
  cat >"$dir/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "github.com/kubernetes-csi/external-snapshotter/v8/cmd/csi-snapshotter"
	_ "github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller"
)
EOF
  (cd "$dir" && go mod tidy && mkdir -p "$bin" && log "building external-snapshotter $SNAPSHOTTER_VERSION" &&
    go build -trimpath -o "$bin/" github.com/kubernetes-csi/external-snapshotter/v8/cmd/csi-snapshotter \
      github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller)
  # The snapshot CRDs ship in the client module; the e2e cluster installs them from here.
  local client
  client=$(cd "$dir" && go mod download -json "github.com/kubernetes-csi/external-snapshotter/client/v8@$SNAPSHOTTER_VERSION" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  rm -rf "$bin/snapshot-crds" && mkdir -p "$bin/snapshot-crds"
  cp "$client"/config/crd/*.yaml "$bin/snapshot-crds/" 2>/dev/null || true
  if ! ls "$bin/snapshot-crds/"*.yaml >/dev/null 2>&1; then
    local top
    top=$(cd "$dir" && go mod download -json "github.com/kubernetes-csi/external-snapshotter/v8@$SNAPSHOTTER_VERSION" |
      sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    cp "$top"/client/config/crd/*.yaml "$bin/snapshot-crds/"
  fi
  chmod -R u+w "$bin/snapshot-crds"
}

go_install() { # go_install BIN PKG@VERSION
  mkdir -p "$1"
  log "installing $2"
  GOBIN=$1 go install -trimpath "$2"
}

build_kopia() {
  local bin=$1 dir
  dir=$(cd /tmp && go mod download -json "github.com/kopia/kopia@$KOPIA_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  # kopia's version list is refused by `go install`; building inside the downloaded module works.
  local src="$CACHE/src/kopia-$KOPIA_VERSION"
  rm -rf "$src" && cp -r "$dir" "$src" && chmod -R u+w "$src"
  mkdir -p "$bin"
  (cd "$src" && log "building kopia $KOPIA_VERSION" && GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -o "$bin/kopia" .)
}

install_azurite() {
  local dir=$1
  command -v node >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
  mkdir -p "$dir"
  log "installing azurite $AZURITE_VERSION"
  (cd "$dir" && npm install --silent --no-audit --no-fund --prefix "$dir" "azurite@$AZURITE_VERSION" >/dev/null)
}

path_of() {
  local name=$1 bin
  case $name in
  etcd)
    bin="$CACHE/etcd-$ETCD_VERSION"
    need "$bin/etcd" build_etcd "$bin"
    echo "$bin/etcd" ;;
  kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | kubectl)
    bin="$CACHE/kubernetes-$K8S_VERSION"
    # .complete marks a finished build with version stamps (a build stopped half way leaves only some binaries).
    need "$bin/.complete" build_kubernetes "$bin"
    echo "$bin/$name" ;;
  snapshot-controller | csi-snapshotter | snapshot-crds)
    bin="$CACHE/external-snapshotter-$SNAPSHOTTER_VERSION"
    need "$bin/snapshot-crds" build_snapshotter "$bin" # the CRDs are copied after the binaries are built
    echo "$bin/$name" ;;
  versitygw)
    bin="$CACHE/versitygw-$VERSITYGW_VERSION"
    need "$bin/versitygw" go_install "$bin" "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
    echo "$bin/versitygw" ;;
  minio)
    bin="$CACHE/minio-$MINIO_VERSION"
    need "$bin/minio" go_install "$bin" "github.com/minio/minio@$MINIO_VERSION"
    echo "$bin/minio" ;;
  fake-gcs-server)
    bin="$CACHE/fake-gcs-server-$FAKE_GCS_VERSION"
    need "$bin/fake-gcs-server" go_install "$bin" "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
    echo "$bin/fake-gcs-server" ;;
  controller-gen)
    bin="$CACHE/controller-gen-$CONTROLLER_GEN_VERSION"
    need "$bin/controller-gen" go_install "$bin" "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION"
    echo "$bin/controller-gen" ;;
  kube-state-metrics)
    bin="$CACHE/kube-state-metrics-$KUBE_STATE_METRICS_VERSION"
    need "$bin/kube-state-metrics" go_install "$bin" "k8s.io/kube-state-metrics/v2@$KUBE_STATE_METRICS_VERSION"
    echo "$bin/kube-state-metrics" ;;
  restic)
    bin="$CACHE/restic-$RESTIC_VERSION"
    need "$bin/restic" go_install "$bin" "github.com/restic/restic/cmd/restic@$RESTIC_VERSION"
    echo "$bin/restic" ;;
  kopia)
    bin="$CACHE/kopia-$KOPIA_VERSION"
    need "$bin/kopia" build_kopia "$bin"
    echo "$bin/kopia" ;;
  azurite)
    bin="$CACHE/azurite-$AZURITE_VERSION"
    need "$bin/node_modules/.bin/azurite-blob" install_azurite "$bin"
    echo "$bin/node_modules/.bin/azurite-blob" ;;
  *)
    echo "tools.sh: unknown tool $name" >&2
    return 2 ;;
  esac
}

[ $# -gt 0 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
for name in "$@"; do path_of "$name"; done
