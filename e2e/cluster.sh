#!/usr/bin/env bash
# e2e/cluster.sh up|down|status|env [a|b] starts or stops a real single-node Kubernetes cluster on this machine:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler on the host; containerd, kubelet and kube-proxy
# in the cluster's own network namespace (so that two clusters never share iptables chains, ports or the pod
# bridge); the e2e CSI driver with its provisioner, snapshot-controller and csi-snapshotter; and an S3 server
# (versitygw) shared by all clusters. Binaries are built once into ${PXB_CACHE:-~/.cache/pxb}.
#
#   e2e/cluster.sh up a      start cluster a (recovers from a crashed run first); prints how to use it
#   e2e/cluster.sh down a    stop every process by PID, clean mounts, network namespaces, cgroups, state
#   e2e/cluster.sh env a     print the cluster's environment (KUBECONFIG, S3 endpoint and keys) for `eval`
#   e2e/cluster.sh status a  exit 0 when the cluster is up and its node is Ready
#   e2e/cluster.sh images a  rebuild the pxb-job and e2e tool images and import them into the running cluster
#   e2e/cluster.sh logs a    print the tail of every component's log
#
# Logs of every component stay in $PXB_E2E_DIR/<cluster>/logs (also after `down`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ACTION=${1:-}
C=${2:-a}
case $C in
a) IDX=0 ;;
b) IDX=1 ;;
*) echo "cluster.sh: cluster must be a or b, not $C" >&2; exit 2 ;;
esac

BASE=${PXB_E2E_DIR:-/var/lib/pxb-e2e}
DIR=$BASE/$C              # state, config and logs of this cluster
RUN=/run/pxb-e2e/$C       # sockets (short paths)
LOGS=$DIR/logs
PIDS=$DIR/pids
PKI=$DIR/pki
BIN=$BASE/bin             # e2e programs built from this repository
CACHE=${PXB_CACHE:-$HOME/.cache/pxb}
NETNS=pxb-$C
NS="nsenter --net=/run/netns/$NETNS"
NODE=pxb-$C
HOST_IF=pxbh-$C NODE_IF=pxbn-$C BRIDGE=pxbbr-$C
LINK_HOST=10.210.$IDX.1 LINK_NODE=10.210.$IDX.2   # veth pair between the host and the node
POD_CIDR=10.211.$IDX.0/24 POD_GW=10.211.$IDX.1
SVC_CIDR=10.212.$IDX.0/24 SVC_IP=10.212.$IDX.1
PORT_BASE=$((16000 + IDX * 100))
APISERVER_PORT=$((PORT_BASE + 43)) ETCD_PORT=$((PORT_BASE + 79)) ETCD_PEER_PORT=$((PORT_BASE + 80))
KCM_PORT=$((PORT_BASE + 57)) SCHED_PORT=$((PORT_BASE + 59))
CGROUP=pxb-$C
# The S3 server is shared by the clusters: one address on the host's loopback that pods of every cluster
# reach through their node's default route, and the host reaches directly.
S3_DIR=$BASE/s3 S3_IP=10.209.0.1 S3_PORT=7070
S3_ACCESS_KEY=pxbe2eaccess S3_SECRET_KEY=pxbe2esecretkey0123456789
PAUSE_IMAGE=pxb.local/pause:e2e
PXB_IMAGE=${PXB_IMAGE:-pxb.local/pxb-job:dev}
TOOL_IMAGE=pxb.local/pxb-e2e-tool:dev
CSI_SNAP=hostpath.e2e.pxb.dev CSI_PLAIN=plain.e2e.pxb.dev

log() { echo "cluster $C: $*" >&2; }
die() { log "ERROR: $*"; show_logs; exit 1; }

show_logs() {
  [ -d "$LOGS" ] || return 0
  for f in "$LOGS"/*.log; do
    [ -s "$f" ] || continue
    echo "----- last lines of $f" >&2
    tail -n 15 "$f" >&2
  done
}

tool() { "$ROOT/hack/tools.sh" "$@"; }

# ---------------------------------------------------------------- processes

# start NAME [--netns] CMD...: runs CMD in the background in the cluster's cgroup (and network namespace),
# output to logs/NAME.log, PID in pids/NAME.
start() {
  local name=$1 ns=
  shift
  if [ "${1:-}" = --netns ]; then ns=1; shift; fi
  mkdir -p "$LOGS" "$PIDS"
  (
    # Every process of the cluster lives in its freezer cgroup, so that down finds all of them, shims and
    # containers included, even after a crash lost the PID files.
    echo $BASHPID >"/sys/fs/cgroup/freezer/$CGROUP/system/cgroup.procs"
    if [ -n "$ns" ]; then exec $NS "$@"; else exec "$@"; fi
  ) </dev/null >"$LOGS/$name.log" 2>&1 8>&- &
  echo $! >"$PIDS/$name"
}

alive() { [ -f "$PIDS/$1" ] && kill -0 "$(cat "$PIDS/$1")" 2>/dev/null; }

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$what not ready after ${secs}s"
}

# stop_pids: TERM every recorded process, newest first, then KILL what is left.
stop_pids() {
  [ -d "$PIDS" ] || return 0
  local f pid pids=()
  for f in $(ls -t "$PIDS" 2>/dev/null); do
    pid=$(cat "$PIDS/$f")
    # Only signal a PID that is still ours: its command line names this cluster's directory.
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -e "$DIR" -e "$RUN"; then
      kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    fi
  done
  local i
  for ((i = 0; i < 50 && ${#pids[@]} > 0; i++)); do
    local left=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done
    pids=("${left[@]}")
    [ ${#pids[@]} -gt 0 ] && sleep 0.2
  done
  for pid in "${pids[@]}"; do
    log "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60) ignored TERM for 10s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$PIDS"
}

# kill_cgroup: KILL every process left in the cluster's cgroups (shims, containers, anything orphaned).
kill_cgroup() {
  local root=/sys/fs/cgroup/freezer/$CGROUP i pid
  [ -d "$root" ] || return 0
  for ((i = 0; i < 50; i++)); do
    local procs
    procs=$(find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    [ -z "$procs" ] && return 0
    for pid in $procs; do kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.2
  done
  log "warning: processes left in cgroup $CGROUP: $procs"
}

# ---------------------------------------------------------------- host resources

make_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] || continue
    mkdir -p "$h$CGROUP"
    case $h in
    */cpuset/)
      # A new cpuset is empty; children (and runc) need cpus and mems to place tasks.
      cat "$h/cpuset.cpus" >"$h$CGROUP/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h$CGROUP/cpuset.mems" ;;
    esac
  done
  mkdir -p "/sys/fs/cgroup/freezer/$CGROUP/system"
}

remove_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h$CGROUP" ] || continue
    find "$h$CGROUP" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [ -d "$h$CGROUP" ] && log "warning: could not remove cgroup $h$CGROUP"
  done
  return 0
}

make_network() {
  ip netns add "$NETNS"
  ip link add "$HOST_IF" type veth peer name "$NODE_IF" netns "$NETNS"
  ip addr add "$LINK_HOST/24" dev "$HOST_IF"
  ip link set "$HOST_IF" up
  $NS ip link set lo up
  $NS ip addr add "$LINK_NODE/24" dev "$NODE_IF"
  $NS ip link set "$NODE_IF" up
  $NS ip route add default via "$LINK_HOST"
  $NS sysctl -qw net.ipv4.ip_forward=1
  # The host answers pods (S3, apiserver) through the node.
  ip route add "$POD_CIDR" via "$LINK_NODE"
}

remove_network() {
  local n
  # Pod network namespaces are made by containerd under /run/netns; ours hold an address of our pod CIDR.
  for n in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do
    if ip -n "$n" -4 addr 2>/dev/null | grep -q "inet ${POD_CIDR%.*}\."; then
      ip netns del "$n" 2>/dev/null || true
    fi
  done
  # Deleting the node namespace deletes the bridge, the veth pair, the route and every iptables rule in it.
  if ip netns list | grep -qw "^$NETNS"; then ip netns del "$NETNS"; fi
  # The host end of the veth pair goes with its peer, asynchronously: it may vanish between the two commands.
  if ip link show "$HOST_IF" >/dev/null 2>&1; then
    ip link del "$HOST_IF" 2>/dev/null || ! ip link show "$HOST_IF" >/dev/null 2>&1
  fi
  return 0
}

unmount_all() {
  local m
  # Deepest first: kubelet volume mounts, CSI bind mounts, container rootfs, shm.
  for m in $(awk '{print $5}' /proc/self/mountinfo | grep -e "^$DIR/" -e "^$RUN/" | sort -r -u); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
  done
  return 0
}

clusters_up() { # lists the clusters whose apiserver is recorded as running
  local d
  for d in "$BASE"/*/pids/kube-apiserver; do [ -f "$d" ] && basename "$(dirname "$(dirname "$d")")"; done
}

start_s3() {
  if [ -f "$S3_DIR/pid" ] && kill -0 "$(cat "$S3_DIR/pid")" 2>/dev/null; then return 0; fi
  local gw
  gw=$(tool versitygw)
  mkdir -p "$S3_DIR/data" "$S3_DIR/versions"
  ip addr show dev lo | grep -q "inet $S3_IP/" || ip addr add "$S3_IP/32" dev lo
  # Not in a cluster's cgroup: both clusters use it, and it outlives a single cluster's down.
  ROOT_ACCESS_KEY=$S3_ACCESS_KEY ROOT_SECRET_KEY=$S3_SECRET_KEY setsid "$gw" --port "$S3_IP:$S3_PORT" \
    posix --versioning-dir "$S3_DIR/versions" "$S3_DIR/data" </dev/null >"$S3_DIR/versitygw.log" 2>&1 8>&- &
  echo $! >"$S3_DIR/pid"
  local i
  for ((i = 0; i < 50; i++)); do
    curl -s -o /dev/null "http://$S3_IP:$S3_PORT/" && return 0
    sleep 0.2
  done
  tail "$S3_DIR/versitygw.log" >&2
  die "S3 server did not start"
}

stop_s3() {
  if [ -f "$S3_DIR/pid" ]; then
    local pid
    pid=$(cat "$S3_DIR/pid")
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$S3_DIR"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$S3_DIR/pid"
  fi
  rm -rf "$S3_DIR/data" "$S3_DIR/versions"
  ip addr del "$S3_IP/32" dev lo 2>/dev/null || true
}

# ---------------------------------------------------------------- configuration

ensure_packages() {
  local need=()
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v curl >/dev/null || need+=(curl)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

build_programs() {
  mkdir -p "$BIN"
  (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$BIN/" ./e2e/csidriver ./e2e/pause ./hack/mkimage ./e2e/e2etool)
  "$BIN/mkimage" -o "$BIN/pause.tar" -tag "$PAUSE_IMAGE" -entrypoint /pause -ca-certs "" -file "$BIN/pause:/pause"
  "$BIN/mkimage" -o "$BIN/e2etool.tar" -tag "$TOOL_IMAGE" -entrypoint /e2etool -file "$BIN/e2etool:/e2etool"
  # PXB_JOB_TAR is a pxb-job image built elsewhere (a release's), tagged PXB_IMAGE, imported as it is.
  if [ -n "${PXB_JOB_TAR:-}" ]; then
    cp "$PXB_JOB_TAR" "$BIN/pxb-job.tar"
  # The pxb-job image comes from code under active development; a cluster without it is still useful.
  elif ! (cd "$ROOT" && OUT="$BIN/pxb-job.tar" PXB_IMAGE="$PXB_IMAGE" hack/image.sh >/dev/null); then
    log "WARNING: the pxb-job image did not build (see above); the cluster has no $PXB_IMAGE"
    rm -f "$BIN/pxb-job.tar"
  fi
}

make_pki() {
  mkdir -p "$PKI"
  cd "$PKI"
  local subj
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj "/CN=pxb-e2e-$C-ca" 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  # cert NAME SUBJECT [SANS]: a key and a certificate signed by the cluster CA.
  cert() {
    local ext="extendedKeyUsage=clientAuth,serverAuth"
    [ -n "${3:-}" ] && ext="$ext
subjectAltName=$3"
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -out "$1.crt" \
      -extfile <(echo "$ext") 2>/dev/null
    rm -f "$1.csr"
  }
  cert apiserver "/CN=kube-apiserver" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$LINK_HOST,IP:$SVC_IP"
  cert admin "/O=system:masters/CN=pxb-e2e-admin"
  cert kubelet "/O=system:nodes/CN=system:node:$NODE" "DNS:$NODE,IP:$LINK_NODE,IP:127.0.0.1"
  cd - >/dev/null
}

# kubeconfig FILE SERVER: an admin kubeconfig; every component of this test cluster uses the admin identity.
kubeconfig() {
  local user=admin
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pxb-e2e-$C
  cluster:
    server: https://$2:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $user
  user:
    client-certificate: $PKI/$user.crt
    client-key: $PKI/$user.key
contexts:
- name: pxb-e2e-$C
  context: {cluster: pxb-e2e-$C, user: $user}
current-context: pxb-e2e-$C
EOF
}

write_configs() {
  mkdir -p "$DIR/cni/net.d" "$DIR/containerd" "$RUN"
  kubeconfig "$DIR/kubeconfig" 127.0.0.1
  kubeconfig "$DIR/node.kubeconfig" "$LINK_HOST"

  cat >"$DIR/cni/net.d/10-pxb.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "pxb-$C",
  "plugins": [{
    "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "dataDir": "$DIR/cni/ipam",
             "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GW"}]], "routes": [{"dst": "0.0.0.0/0"}]}
  }]
}
EOF

  cat >"$DIR/containerd/config.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$RUN/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$RUN/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # No CAP_SYS_RESOURCE here: the kubelet's oom_score_adj of -998 would make every sandbox fail to start.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
EOF

  cat >"$DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $LINK_NODE
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
containerRuntimeEndpoint: unix://$RUN/containerd.sock
# cgroup v1 without systemd; each cluster's pods live under their own cgroup root.
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: /$CGROUP
failSwapOn: false
clusterDomain: cluster.local
# Each cluster's own: a kubelet removes log directories of pods it does not know, which would be the
# other cluster's pods in a shared /var/log/pods.
podLogsDir: $DIR/pod-logs
resolvConf: /etc/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
rotateCertificates: false
EOF

  cat >"$DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $DIR/node.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Leave the host's conntrack table settings alone (they are not per-namespace).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

# storage_yaml: the CSIDriver objects and StorageClasses. pxb-e2e (default) and pxb-e2e-alt (for storage-class
# mapping on restore) use the driver with snapshots; pxb-e2e-nosnap uses a driver without snapshots and
# without a VolumeSnapshotClass, whose volumes need file-level backups.
storage_yaml() {
  local drv class name default
  for drv in "$CSI_SNAP" "$CSI_PLAIN"; do
    printf -- '---\napiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata: {name: %s}\n' "$drv"
    printf 'spec: {attachRequired: false, podInfoOnMount: false, volumeLifecycleModes: [Persistent]}\n'
  done
  for class in pxb-e2e:$CSI_SNAP:true pxb-e2e-alt:$CSI_SNAP:false pxb-e2e-nosnap:$CSI_PLAIN:false; do
    IFS=: read -r name drv default <<<"$class"
    printf -- '---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\n'
    printf 'metadata: {name: %s, annotations: {storageclass.kubernetes.io/is-default-class: "%s"}}\n' "$name" "$default"
    printf 'provisioner: %s\nreclaimPolicy: Delete\nvolumeBindingMode: Immediate\n' "$drv"
  done
}

apply_storage() {
  local k="$KUBECTL --kubeconfig $DIR/kubeconfig"
  local crd
  for crd in "$(tool snapshot-crds)"/*storage.k8s.io_*.yaml; do $k apply -f "$crd" >/dev/null; done
  storage_yaml | $k apply -f - >/dev/null
  # The VolumeSnapshotClass kind exists once its CRD is established.
  $k wait --for condition=established --timeout=30s crd/volumesnapshotclasses.snapshot.storage.k8s.io >/dev/null
  $k apply -f - >/dev/null <<EOF
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: pxb-e2e
  annotations: {snapshot.storage.kubernetes.io/is-default-class: "true"}
driver: $CSI_SNAP
deletionPolicy: Delete
EOF
}

node_ready() {
  [ "$($KUBECTL --kubeconfig "$DIR/kubeconfig" get node "$NODE" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

drivers_registered() {
  local d
  d=$($KUBECTL --kubeconfig "$DIR/kubeconfig" get csinode "$NODE" -o jsonpath='{.spec.drivers[*].name}' 2>/dev/null)
  [[ $d == *"$CSI_SNAP"* && $d == *"$CSI_PLAIN"* ]]
}

healthy() {
  local p
  for p in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy \
    csi-$CSI_SNAP csi-$CSI_PLAIN snapshot-controller csi-snapshotter; do
    alive "$p" || return 1
  done
  node_ready
}

print_env() {
  cat <<EOF
export KUBECONFIG=$DIR/kubeconfig
export PXB_E2E_CLUSTER=$C
export PXB_E2E_KUBECTL=$KUBECTL
export PXB_E2E_IMAGE=$PXB_IMAGE
export PXB_E2E_TOOL_IMAGE=$TOOL_IMAGE
export PXB_E2E_S3_ENDPOINT=http://$S3_IP:$S3_PORT
export PXB_E2E_S3_ACCESS_KEY=$S3_ACCESS_KEY
export PXB_E2E_S3_SECRET_KEY=$S3_SECRET_KEY
EOF
}

# ---------------------------------------------------------------- actions

down() {
  stop_pids
  kill_cgroup
  unmount_all
  remove_network
  remove_cgroups
  # State goes; logs stay for the post-mortem of a failed run.
  rm -rf "$DIR/etcd" "$DIR/kubelet" "$DIR/pod-logs" "$DIR/containerd" "$DIR/csi" "$DIR/cni" "$PKI" "$RUN" \
    "$DIR"/*.kubeconfig "$DIR/kubeconfig" "$DIR"/*.yaml "$DIR/env"
  if [ -z "$(clusters_up)" ]; then stop_s3; fi
}

up() {
  local t0=$SECONDS
  KUBECTL=$(tool kubectl)
  if [ -f "$PIDS/kube-apiserver" ] && healthy; then
    log "already up"
    print_env
    return 0
  fi
  # Whatever a crashed or half-finished run left behind goes first.
  down
  ensure_packages
  local etcd apiserver kcm sched kubelet proxy snapctl snapper
  etcd=$(tool etcd)
  apiserver=$(tool kube-apiserver) kcm=$(tool kube-controller-manager) sched=$(tool kube-scheduler)
  kubelet=$(tool kubelet) proxy=$(tool kube-proxy)
  snapctl=$(tool snapshot-controller) snapper=$(tool csi-snapshotter)
  tool versitygw >/dev/null
  build_programs
  log "binaries ready after $((SECONDS - t0))s"

  rm -rf "$LOGS.previous"
  [ -d "$LOGS" ] && mv "$LOGS" "$LOGS.previous"
  mkdir -p "$DIR" "$LOGS"
  make_pki
  write_configs
  make_cgroups
  make_network
  start_s3

  start etcd "$etcd" --name "pxb-$C" --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "pxb-$C=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync
  start kube-apiserver "$apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 0.0.0.0 --secure-port "$APISERVER_PORT" --advertise-address "$LINK_HOST" \
    --service-cluster-ip-range "$SVC_CIDR" --allow-privileged=true --authorization-mode Node,RBAC \
    --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/admin.crt" --kubelet-client-key "$PKI/admin.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --profiling=false
  wait_for kube-apiserver 60 "$KUBECTL" --kubeconfig "$DIR/kubeconfig" get --raw /readyz
  log "apiserver ready after $((SECONDS - t0))s"

  start kube-controller-manager "$kcm" --kubeconfig "$DIR/kubeconfig" --authentication-kubeconfig "$DIR/kubeconfig" \
    --authorization-kubeconfig "$DIR/kubeconfig" --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials=true --leader-elect=false --cluster-name "pxb-$C"
  start kube-scheduler "$sched" --kubeconfig "$DIR/kubeconfig" --authentication-kubeconfig "$DIR/kubeconfig" \
    --authorization-kubeconfig "$DIR/kubeconfig" --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" \
    --leader-elect=false

  start containerd --netns containerd --config "$DIR/containerd/config.toml"
  wait_for containerd 30 ctr --address "$RUN/containerd.sock" version
  local img
  for img in pause e2etool pxb-job; do
    [ -f "$BIN/$img.tar" ] || continue
    ctr --address "$RUN/containerd.sock" -n k8s.io images import "$BIN/$img.tar" >/dev/null ||
      die "import $img image"
  done

  start kubelet --netns "$kubelet" --config "$DIR/kubelet.yaml" --kubeconfig "$DIR/node.kubeconfig" \
    --root-dir "$DIR/kubelet" --hostname-override "$NODE" --node-ip "$LINK_NODE" --v 1
  start kube-proxy --netns "$proxy" --config "$DIR/kube-proxy.yaml"

  apply_storage
  local drv
  for drv in "$CSI_SNAP" "$CSI_PLAIN"; do
    local snaps=true
    [ "$drv" = "$CSI_PLAIN" ] && snaps=false
    start "csi-$drv" "$BIN/csidriver" -name "$drv" -node-id "$NODE" -data-dir "$DIR/csi/$drv" \
      -endpoint "$DIR/kubelet/plugins/$drv/csi.sock" -registry-dir "$DIR/kubelet/plugins_registry" \
      -kubeconfig "$DIR/kubeconfig" -snapshots=$snaps
  done
  start snapshot-controller "$snapctl" --kubeconfig "$DIR/kubeconfig" --leader-election=false
  start csi-snapshotter "$snapper" --kubeconfig "$DIR/kubeconfig" --leader-election=false \
    --csi-address "$DIR/kubelet/plugins/$CSI_SNAP/csi.sock" --timeout 60s

  wait_for "node $NODE" 90 node_ready
  log "node Ready after $((SECONDS - t0))s"
  wait_for "CSI driver registration" 60 drivers_registered
  # The service account of the default namespace is what test pods run as; it appears asynchronously.
  wait_for "default service account" 30 "$KUBECTL" --kubeconfig "$DIR/kubeconfig" get serviceaccount default
  print_env >"$DIR/env"
  log "up in $((SECONDS - t0))s. Use it with:"
  echo "  eval \"\$(e2e/cluster.sh env $C)\"   # or: export KUBECONFIG=$DIR/kubeconfig" >&2
  echo "  $KUBECTL get nodes" >&2
}

# images: rebuild the pxb-job and e2etool images and import them into a running cluster.
images() {
  build_programs
  local img
  for img in e2etool pxb-job; do
    [ -f "$BIN/$img.tar" ] || continue
    ctr --address "$RUN/containerd.sock" -n k8s.io images import "$BIN/$img.tar" >/dev/null || die "import $img image"
  done
}

main() {
  case $ACTION in
  up | down | images)
    # One change at a time per cluster: a second `up` waits for the first and then finds the cluster up.
    mkdir -p "$BASE"
    exec 8>"$BASE/.$C.lock"
    flock 8 ;;
  esac
  case $ACTION in
  up) up ;;
  images) images ;;
  logs) show_logs ;;
  down)
    down
    log "down" ;;
  env)
    KUBECTL=$(tool kubectl)
    [ -f "$DIR/env" ] || { log "not up"; exit 1; }
    cat "$DIR/env" ;;
  status)
    KUBECTL=$(tool kubectl)
    healthy ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
  esac
}

# One line: bash reads a script as it runs, and this keeps an edit of the file from affecting a running copy.
main "$@"; exit $?
