//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pxb-dev/pxb/e2e/framework"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/layout"
)

// TestRestoreWithoutItsDataStartsNothing: the volume data of a backup is lost from the bucket (its snapshot
// manifest deleted behind pxb's back). A restore of the backup fails that volume, names it, and does not let
// the application start on an empty volume: the claim is not made and the Deployment that mounts it is
// restored with 0 replicas, while the rest of the namespace is restored.
func TestRestoreWithoutItsDataStartsNothing(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		c.PVC(t, ns, "data", framework.StorageClass, nil)
		c.WriteRich(t, ns, "data", framework.Rich{Seed: 11, Small: 5, Large: 1 << 20})
		// The pods never run (no such image): only the Deployment's spec matters.
		c.Apply(t, ns, `apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: pxb.local/absent:0}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: prod}
`)
		backup, restore, target := "lost-"+suffix(ns), "lost-"+suffix(ns)+"-r", ns+"-r"
		deleteAtEnd(t, c, v1alpha1.BackupsResource, backup)
		deleteAtEnd(t, c, v1alpha1.RestoresResource, restore)
		if out, err := kubectlPxb(t, c, 5*time.Minute, "backup", "create", backup, "-n", "pxb-system",
			"--include-namespaces", ns, "--location", loc, "--wait"); err != nil {
			t.Fatalf("backup create: %v\n%s", err, out)
		}
		vols := framework.Volumes(t, c.Get(t, v1alpha1.BackupsResource, "pxb-system", backup))
		if len(vols) != 1 || vols[0].Snapshot == "" {
			t.Fatalf("backup volumes %+v, want the one of claim data", vols)
		}
		client := c.S3.Client()
		if _, err := client.DeleteObject(framework.Context(t, 30*time.Second), &s3.DeleteObjectInput{
			Bucket: aws.String(loc), Key: aws.String(layout.SnapshotName(vols[0].Snapshot))}); err != nil {
			t.Fatalf("delete the volume's snapshot from the bucket: %v", err)
		}
		t.Cleanup(func() {
			_ = c.KubectlCmd(framework.Context(t, time.Minute), "delete", "namespace", target, "--ignore-not-found", "--wait=false").Run()
		})

		out, err := kubectlPxb(t, c, 8*time.Minute, "restore", "create", restore, "-n", "pxb-system", "--from-backup", backup,
			"--namespace-mappings", ns+":"+target, "--wait")
		r := c.Get(t, v1alpha1.RestoresResource, "pxb-system", restore)
		msg, _, _ := unstructured.NestedString(r.Object, "status", "message")
		if framework.Phase(r) != "PartiallySucceeded" || !strings.Contains(msg, "DATA MISSING") {
			t.Fatalf("restore ended %s (%v) with message %q, want PartiallySucceeded saying DATA MISSING\n%s", framework.Phase(r), err, msg, out)
		}
		rvols := framework.Volumes(t, r)
		if len(rvols) != 1 || rvols[0].Phase != "Failed" || !strings.Contains(rvols[0].Message, "volume "+ns+"/data") {
			t.Errorf("restored volumes %+v, want the one of claim data failed, named", rvols)
		}
		ctx := framework.Context(t, time.Minute)
		if _, err := c.Kube.CoreV1().PersistentVolumeClaims(target).Get(ctx, "data", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("claim %s/data: %v, want it not made (it would be empty)", target, err)
		}
		d, err := c.Kube.AppsV1().Deployments(target).Get(ctx, "db", metav1.GetOptions{})
		if err != nil || *d.Spec.Replicas != 0 || d.Annotations[apply.AnnotationReplicas] != "2" {
			t.Errorf("Deployment %s/db: %v, want 0 replicas and %s=2", target, err, apply.AnnotationReplicas)
		}
		if cm, err := c.Kube.CoreV1().ConfigMaps(target).Get(ctx, "settings", metav1.GetOptions{}); err != nil || cm.Data["mode"] != "prod" {
			t.Errorf("ConfigMap %s/settings: %v", target, fmt.Sprint(err))
		}
	})
}
