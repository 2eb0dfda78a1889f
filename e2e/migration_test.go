//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/e2e/framework"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// migrationClusters returns clusters a and b, skipping the test unless both are up and selected.
func migrationClusters(t *testing.T) (*framework.Cluster, *framework.Cluster) {
	t.Helper()
	if sel := clusters(); !slices.Contains(sel, "a") || !slices.Contains(sel, "b") {
		t.Skipf("migration needs clusters a and b; PXB_E2E_CLUSTERS selects %v", sel)
	}
	var out []*framework.Cluster
	for _, name := range []string{"a", "b"} {
		c, err := framework.Load(name)
		if err != nil {
			t.Skipf("migration needs clusters a and b, and cluster %s is not up (start it with `make cluster-up CLUSTER=%s`; make e2e starts both): %v", name, name, err)
		}
		out = append(out, c)
	}
	return out[0], out[1]
}

// TestMigration moves an application with its volume from cluster a to cluster b through the S3 server they
// share, as a user would: back up in a; in b install pxb, make the same location with the key that
// `location export-key` prints in a, sync, and restore into another namespace on another storage class.
// The volume's every byte and attribute arrive, and the application starts on them. Then b syncs on an
// interval (a CronJob), and a backup made later in a appears in b by itself.
func TestMigration(t *testing.T) {
	a, b := migrationClusters(t)

	// Cluster a: the application, its backup.
	ns := a.Namespace(t)
	loc := volumeLocation(t, a, ns)
	a.PVC(t, ns, "data", framework.StorageClass, nil)
	want := a.WriteRich(t, ns, "data", framework.Rich{Seed: 7, Small: 60, Large: 8 << 20})
	deployApp(t, a, ns, "data")
	backup := "move-" + suffix(ns)
	bk, err := backupCreate(t, a, backup, ns, loc, 10*time.Minute)
	requireEnded(t, a, bk, err, "Completed", "pxb.dev/backup")
	key, err := kubectlPxb(t, a, time.Minute, "location", "export-key", loc)
	if err != nil {
		t.Fatalf("location export-key: %v\n%s", err, key)
	}
	system, err := a.Kube.CoreV1().Namespaces().Get(framework.Context(t, 30*time.Second), metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	originID := string(system.UID)

	// Cluster b: pxb, the credential under the name the location refers to, and the exported key and location.
	if out, err := kubectlPxb(t, b, 3*time.Minute, "install", "--image", b.Image); err != nil {
		t.Fatalf("install in cluster b: %v\n%s", err, out)
	}
	credFile := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(credFile, fmt.Appendf(nil, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		b.S3.AccessKey, b.S3.SecretKey), 0o600); err != nil {
		t.Fatal(err)
	}
	target := ns + "-migrated"
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("PXB_E2E_KEEP") != "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = b.KubectlCmd(ctx, "delete", "-n", "pxb-system", "backuplocation/"+loc, "secret/"+loc+"-cred",
			"secret/"+loc+"-encryption-key", "--ignore-not-found").Run()
		if err := b.Kube.CoreV1().Namespaces().Delete(ctx, target, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Logf("delete namespace %s of cluster b: %v", target, err)
		}
	})
	if out, err := kubectlPxb(t, b, time.Minute, "credential", "create", loc+"-cred", "--provider", "aws", "--from-file", credFile); err != nil {
		t.Fatalf("credential create in cluster b: %v\n%s", err, out)
	}
	b.Apply(t, "pxb-system", key)

	// The sync brings a's Backup into b, marked with its origin.
	deleteAtEnd(t, b, v1alpha1.BackupsResource, backup)
	out, err := kubectlPxb(t, b, 6*time.Minute, "location", "sync", loc, "--timeout", "5m")
	if err != nil || !strings.Contains(out, "1 backup, 1 new (pxb-system/"+backup+"), 0 already present") {
		t.Fatalf("location sync in cluster b: %v\n%s\n%s", err, out, b.PodLogs(t, "pxb-system", "pxb.dev/job=sync"))
	}
	synced := b.Get(t, v1alpha1.BackupsResource, "pxb-system", backup)
	if synced.GetLabels()[v1alpha1.SyncedLabel] != "true" || synced.GetAnnotations()[v1alpha1.OriginClusterAnnotation] != originID ||
		framework.Phase(synced) != "Completed" {
		t.Fatalf("synced Backup in cluster b: labels %v annotations %v status %v, want synced from %s and Completed",
			synced.GetLabels(), synced.GetAnnotations(), synced.Object["status"], originID)
	}
	out, err = kubectlPxb(t, b, time.Minute, "backup", "describe", backup, "-n", "pxb-system")
	if err != nil || !strings.Contains(out, "Origin cluster:") || !strings.Contains(out, originID) {
		t.Errorf("backup describe in cluster b: %v\n%s", err, out)
	}

	// The restore in b maps the namespace and the storage class; the application starts on a's data.
	r, err := restoreCreate(t, b, backup+"-r", backup, 10*time.Minute,
		"--namespace-mappings", ns+":"+target, "--storage-class-mappings", framework.StorageClass+":"+framework.StorageClassAlt)
	requireEnded(t, b, r, err, "Completed", "pxb.dev/restore")
	pvc, err := b.Kube.CoreV1().PersistentVolumeClaims(target).Get(framework.Context(t, 30*time.Second), "data", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("restored PVC in cluster b: %v", err)
	}
	if sc := pvc.Spec.StorageClassName; sc == nil || *sc != framework.StorageClassAlt {
		t.Errorf("restored PVC has storage class %v, want %s", sc, framework.StorageClassAlt)
	}
	waitAvailable(t, b, target, "app")
	framework.CompareManifests(t, "volume migrated to cluster b", want, b.Manifest(t, target, "data"))

	// Synced on an interval: a backup made later in a appears in b through the sync CronJob.
	if out, err := kubectlPxb(t, b, time.Minute, "location", "sync", loc, "--every", "1m"); err != nil ||
		!strings.Contains(out, "syncs location "+loc+" every 1m (* * * * *)") {
		t.Fatalf("location sync --every 1m in cluster b: %v\n%s", err, out)
	}
	later := backup + "-later"
	bk, err = backupCreate(t, a, later, ns, loc, 5*time.Minute, "--include-resources", "deployments.apps")
	requireEnded(t, a, bk, err, "Completed", "pxb.dev/backup")
	deleteAtEnd(t, b, v1alpha1.BackupsResource, later)
	// A CronJob fires at the next minute boundary.
	framework.WaitFor(t, 3*time.Minute, "Backup "+later+" synced into cluster b by the CronJob", func(ctx context.Context) (bool, error) {
		got, err := b.Dynamic.Resource(v1alpha1.BackupsResource).Namespace("pxb-system").Get(ctx, later, metav1.GetOptions{})
		return err == nil && got.GetLabels()[v1alpha1.SyncedLabel] == "true" && framework.Phase(got) == "Completed", nil
	})
	out, err = kubectlPxb(t, b, time.Minute, "location", "describe", loc)
	if err != nil || !strings.Contains(out, "every 1m (* * * * *), CronJob pxb-system/pxb-sync-"+loc+", last run") {
		t.Errorf("location describe in cluster b: %v\n%s", err, out)
	}
	if out, err := kubectlPxb(t, b, time.Minute, "location", "sync", loc, "--unschedule"); err != nil || !strings.Contains(out, "no longer synced on a schedule") {
		t.Errorf("location sync --unschedule in cluster b: %v\n%s", err, out)
	}
}
