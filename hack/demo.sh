#!/usr/bin/env bash
# make demo: the main journey on a local cluster. Starts a real single-node cluster and an S3 server
# (e2e/cluster.sh), installs pxb, stores a credential and a backup location, deploys an application, backs it
# up, deletes its namespace, restores it, and shows that what came back is what was there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "Building kubectl-pxb and pxb-job"
make -s build
export PATH="$ROOT/bin:$PATH"

step "Starting the local cluster (first run builds Kubernetes: several minutes)"
e2e/cluster.sh up a >/dev/null
# A cluster left running by an earlier run gets this build's images.
e2e/cluster.sh images a >/dev/null
eval "$(e2e/cluster.sh env a)"
kubectl() { "$PXB_E2E_KUBECTL" "$@"; }
# kubectl finds its plugins on PATH: make `kubectl pxb` this build's.
mkdir -p "$ROOT/_out/demo"
ln -sf "$PXB_E2E_KUBECTL" "$ROOT/_out/demo/kubectl"
export PATH="$ROOT/_out/demo:$PATH"

step "Creating a bucket on the S3 server"
BUCKET=pxb-demo-$(date +%s)
# S3 wants the payload's hash signed too; this is the SHA-256 of the empty body.
curl -sSf -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$PXB_E2E_S3_ACCESS_KEY:$PXB_E2E_S3_SECRET_KEY" \
  -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
  "$PXB_E2E_S3_ENDPOINT/$BUCKET" >/dev/null
echo "bucket $BUCKET at $PXB_E2E_S3_ENDPOINT"

step "Installing pxb"
run kubectl pxb install --image "$PXB_E2E_IMAGE"
run kubectl pxb status

step "A credential and a backup location"
CRED=$(mktemp)
trap 'rm -f "$CRED"' EXIT
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$PXB_E2E_S3_ACCESS_KEY" "$PXB_E2E_S3_SECRET_KEY" >"$CRED"
kubectl -n pxb-system delete backuplocation demo --ignore-not-found >/dev/null
kubectl -n pxb-system delete secret demo-s3 demo-encryption-key --ignore-not-found >/dev/null
run kubectl pxb credential create demo-s3 --provider aws --from-file "$CRED"
run kubectl pxb location create demo --provider s3 --bucket "$BUCKET" --endpoint "$PXB_E2E_S3_ENDPOINT" \
  --s3-force-path-style --credential demo-s3

step "Deploying an application in namespace demo"
kubectl delete namespace demo --ignore-not-found --wait >/dev/null
kubectl create namespace demo >/dev/null
kubectl -n demo apply -f - <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, labels: {app: shop}}
data: {mode: production, greeting: "hello from before the disaster"}
---
apiVersion: v1
kind: Secret
metadata: {name: db, labels: {app: shop}}
stringData: {password: demo-password}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: orders, labels: {app: shop}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, labels: {app: shop}}
spec:
  replicas: 1
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
      - name: shop
        image: $PXB_E2E_TOOL_IMAGE
        imagePullPolicy: Never
        args: [hold]
        envFrom: [{configMapRef: {name: settings}}, {secretRef: {name: db}}]
        volumeMounts: [{name: orders, mountPath: /data}]
      volumes:
      - name: orders
        persistentVolumeClaim: {claimName: orders}
---
apiVersion: v1
kind: Service
metadata: {name: shop}
spec:
  selector: {app: shop}
  ports: [{port: 80}]
EOF
kubectl -n demo rollout status deployment/shop --timeout=3m
fingerprint() {
  kubectl -n demo get configmap/settings secret/db deployment/shop service/shop \
    -o go-template='{{range .items}}{{.kind}}/{{.metadata.name}} {{.data}} {{.spec.template.spec.containers}}{{"\n"}}{{end}}' |
    sha256sum | cut -c1-16
}
step "The application writes its data: 300 files, 20 MiB"
kubectl -n demo exec deployment/shop -c shop -- /e2etool write -dir /data/orders -seed 42 -files 300 -size 69905
DATA_BEFORE=$(kubectl -n demo exec deployment/shop -c shop -- /e2etool checksum -dir /data/orders)
BEFORE=$(fingerprint)
echo "fingerprint of the application's objects: $BEFORE"
echo "checksum of its volume: $DATA_BEFORE"

step "Backing it up"
BACKUP=demo-$(date +%H%M%S)
run kubectl pxb backup create "$BACKUP" --include-namespaces demo --location demo --wait
run kubectl pxb backup get -A

step "Disaster: deleting namespace demo"
run kubectl delete namespace demo --wait

step "Restoring"
run kubectl pxb restore create "$BACKUP-restore" --from-backup "$BACKUP" --wait
kubectl -n demo rollout status deployment/shop --timeout=3m
AFTER=$(fingerprint)
DATA_AFTER=$(kubectl -n demo exec deployment/shop -c shop -- /e2etool checksum -dir /data/orders)
echo "fingerprint before: $BEFORE"
echo "fingerprint after:  $AFTER"
echo "volume before: $DATA_BEFORE"
echo "volume after:  $DATA_AFTER"
if [ "$BEFORE" != "$AFTER" ]; then
  echo "demo: the restored objects differ from the originals" >&2
  exit 1
fi
if [ "$DATA_BEFORE" != "$DATA_AFTER" ]; then
  echo "demo: the restored volume differs from the original" >&2
  exit 1
fi
run kubectl -n demo get configmap settings -o jsonpath='{.data.greeting}{"\n"}'

step "Done"
echo "The cluster is still up: export KUBECONFIG=$KUBECONFIG to look around; make cluster-down stops it."
