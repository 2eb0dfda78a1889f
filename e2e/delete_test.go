//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/e2e/framework"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/layout"
)

// snapshotObjects lists the snapshot manifests in bucket (layout.SnapshotPrefix), read straight from the S3
// server. Each backup without volumes is one of them; their names do not say whose they are (the backup's name
// is inside, encrypted).
func snapshotObjects(t *testing.T, c *framework.Cluster, bucket string) map[string]bool {
	t.Helper()
	client := c.S3.Client()
	keys := map[string]bool{}
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(layout.SnapshotPrefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(framework.Context(t, 30*time.Second))
		if err != nil {
			t.Fatalf("list bucket %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			keys[aws.ToString(o.Key)] = true
		}
	}
	return keys
}

// TestBackupDeleteInCluster: `kubectl pxb backup delete` on a machine that cannot reach the location deletes
// the backup's data through a Job in the cluster: the Backup is gone, its snapshot is gone from the bucket,
// the Job is cleaned up, and another backup in the same location still restores.
//
// NFS, the location the plugin can never open, cannot be tested here: this machine's kernel has no NFS
// client, so no pod can mount an export. Nor can the location's endpoint be a name only the cluster resolves:
// the e2e cluster runs no cluster DNS (pods use the node's resolver), and this machine's network answers every
// address, so a Service's cluster IP is no unreachable endpoint either. Instead the plugin, and only the
// plugin, goes through an HTTP proxy whose name does not resolve (the S3 endpoint is plain HTTP and not on
// loopback, so the proxy applies to it and not to the API server): its requests to the endpoint fail with the
// DNS failure a cluster-only name gives, while the Job's pod reaches the endpoint directly.
func TestBackupDeleteInCluster(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		c.Apply(t, ns, `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: prod}
`)
		gone, kept := "gone-"+suffix(ns), "kept-"+suffix(ns)
		b, err := backupCreate(t, c, gone, ns, loc, 5*time.Minute)
		requireEnded(t, c, b, err, "Completed", "pxb.dev/backup")
		goneObjects := snapshotObjects(t, c, loc)
		b, err = backupCreate(t, c, kept, ns, loc, 5*time.Minute)
		requireEnded(t, c, b, err, "Completed", "pxb.dev/backup")
		keptObjects := snapshotObjects(t, c, loc)
		maps.DeleteFunc(keptObjects, func(k string, _ bool) bool { return goneObjects[k] })
		if len(goneObjects) == 0 || len(keptObjects) == 0 {
			t.Fatalf("the backups left snapshots %v and %v in bucket %s, want some of each", goneObjects, keptObjects, loc)
		}

		out, err := c.PxbEnv(t, 4*time.Minute, []string{"HTTP_PROXY=http://pxb-e2e-proxy.invalid:3128"},
			"backup", "delete", gone, "-n", "pxb-system", "--yes", "--timeout", "3m")
		t.Logf("kubectl pxb backup delete %s (through an unresolvable proxy):\n%s", gone, out)
		if err != nil {
			t.Fatalf("backup delete: %v\n%s", err, c.PodLogs(t, "pxb-system", "pxb.dev/job=delete"))
		}
		for _, want := range []string{
			"The data is deleted in the cluster by Job pxb-system/",
			"location " + loc + " cannot be reached from this machine (lookup pxb-e2e-proxy.invalid",
			fmt.Sprintf("Deleted %d snapshots of s3://%s/backups/pxb-system/%s/", len(goneObjects), loc, gone),
			"Backup pxb-system/" + gone + " deleted",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("backup delete printed no %q", want)
			}
		}
		ctx := framework.Context(t, time.Minute)
		if _, err := c.Dynamic.Resource(v1alpha1.BackupsResource).Namespace("pxb-system").Get(ctx, gone, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Backup pxb-system/%s after backup delete: %v, want it gone", gone, err)
		}
		framework.WaitFor(t, time.Minute, "the delete Job cleaned up", func(ctx context.Context) (bool, error) {
			jobs, err := c.Kube.BatchV1().Jobs("pxb-system").List(ctx, metav1.ListOptions{LabelSelector: "pxb.dev/job=delete,pxb.dev/backup=" + gone})
			return err == nil && len(jobs.Items) == 0, nil
		})
		now := snapshotObjects(t, c, loc)
		for k := range goneObjects {
			if now[k] {
				t.Errorf("bucket %s still holds %s, a snapshot of the deleted backup %s", loc, k, gone)
			}
		}
		for k := range keptObjects {
			if !now[k] {
				t.Errorf("bucket %s lost %s, a snapshot of backup %s", loc, k, kept)
			}
		}

		// The other backup is whole: its objects come back.
		if err := c.Kube.CoreV1().ConfigMaps(ns).Delete(ctx, "settings", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		r, err := restoreCreate(t, c, "back-"+suffix(ns), kept, 5*time.Minute)
		requireEnded(t, c, r, err, "Completed", "pxb.dev/restore")
		cm, err := c.Kube.CoreV1().ConfigMaps(ns).Get(framework.Context(t, 30*time.Second), "settings", metav1.GetOptions{})
		if err != nil || cm.Data["mode"] != "prod" {
			t.Errorf("ConfigMap %s/settings restored from %s: %v %v", ns, kept, cm, err)
		}
	})
}
