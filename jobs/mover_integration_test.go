//go:build integration

package jobs_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestUploadRetriedAfterItsSnapshot: an upload pod that wrote its snapshot and died before reporting is
// retried; the retry reports that snapshot and what it stored, instead of a new snapshot on top of it
// that would claim nothing was stored.
func TestUploadRetriedAfterItsSnapshot(t *testing.T) {
	c := testbed.APIServer(t)
	locName := setup(t, c)
	kube := c.Clientset(t)
	ns := c.Namespace(t)
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctxT(t, 30*time.Second), claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := make([]byte, 3<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "db"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "vol", Namespace: ns},
		Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)},
	})
	// The backup Job makes the repository before it launches uploads.
	loc, err := store.OpenLocation(ctxT(t, time.Minute), kube, c.Dynamic(t), locName, location.Options{}, true)
	if err != nil {
		t.Fatal(err)
	}
	loc.Close()
	req := jobs.MoverRequest{Namespace: ns, Name: "vol", Volume: ns + "/data", Path: dir, Method: v1alpha1.VolumeSnapshot,
		SecretsDir: mountSecrets(t, c, locName)}
	first, err := jobs.Upload(ctxT(t, 2*time.Minute), jobIdentity(t, c, jobspec.KindUpload), req, jobs.Options{})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if first.StoredBytes < int64(len(data)) || first.Files != 1 {
		t.Fatalf("first upload: %+v, want 1 file and at least %d bytes stored", first, len(data))
	}
	// The files change (a FileSystem upload reads a live volume); the retry still reports the first snapshot.
	if err := os.WriteFile(filepath.Join(dir, "db"), bytes.Repeat([]byte{1}, 10), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := jobs.Upload(ctxT(t, 2*time.Minute), jobIdentity(t, c, jobspec.KindUpload), req, jobs.Options{})
	if err != nil {
		t.Fatalf("retried upload: %v", err)
	}
	if again.Snapshot != first.Snapshot || again.StoredBytes != first.StoredBytes || again.Bytes != first.Bytes {
		t.Errorf("retried upload: %+v, want the first attempt's snapshot and counts %+v", again, first)
	}
}

// TestUploadIntoAFullLocation: a volume larger than the location can take fails with an error that names
// the volume and says the location is full, and the snapshot an earlier upload stored stays whole. The
// location is an NFS one whose export stands on a 16 MiB tmpfs (this kernel cannot mount NFS).
func TestUploadIntoAFullLocation(t *testing.T) {
	export := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", export).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", export).Run() })
	c := testbed.APIServer(t)
	setup(t, c) // installs pxb
	kube := c.Clientset(t)
	ns := c.Namespace(t)
	key := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "small-key", Labels: map[string]string{v1alpha1.EncryptionKeyLabel: "true"}},
		Data: map[string][]byte{v1alpha1.EncryptionKeySecretKey: []byte("correct horse battery staple")}}
	if _, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Create(ctxT(t, 30*time.Second), key, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	locName := "small-" + ns
	create(t, c, v1alpha1.BackupLocationsResource, &v1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Name: locName, Namespace: v1alpha1.SystemNamespace},
		Spec: v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderNFS, NFS: &v1alpha1.NFSLocation{Server: "nfs.example", Path: "/export"},
			EncryptionKey: v1alpha1.SecretReference{Name: "small-key"}, AllowedNamespaces: []v1alpha1.NamespacePattern{v1alpha1.NamespacePattern(ns)}},
	})
	opts := jobs.Options{Location: location.Options{NFSMountPath: export}}
	loc, err := store.OpenLocation(ctxT(t, time.Minute), kube, c.Dynamic(t), locName, opts.Location, true)
	if err != nil {
		t.Fatal(err)
	}
	loc.Close()

	secrets := mountSecrets(t, c, locName)
	upload := func(backup, claim string, size int) (*jobs.MoverResult, error) {
		t.Helper()
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: claim, Namespace: ns},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctxT(t, 30*time.Second), pvc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		data := make([]byte, size)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "db"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: backup, Namespace: ns},
			Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)}})
		req := jobs.MoverRequest{Namespace: ns, Name: backup, Volume: ns + "/" + claim, Path: dir, Method: v1alpha1.VolumeSnapshot, SecretsDir: secrets}
		return jobs.Upload(ctxT(t, 2*time.Minute), jobIdentity(t, c, jobspec.KindUpload), req, opts)
	}
	first, err := upload("small", "logs", 2<<20)
	if err != nil {
		t.Fatalf("upload of 2 MiB into 16 MiB: %v", err)
	}
	_, err = upload("big", "data", 48<<20)
	if err == nil || !strings.Contains(err.Error(), ns+"/data") || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("upload of 48 MiB into 16 MiB: err %v, want one naming %s/data and saying no space is left", err, ns)
	}
	t.Logf("upload of 48 MiB into 16 MiB: %v", err)
	// The earlier snapshot is intact: the repository opens, holds it alone, and every blob reads back.
	loc, err = store.OpenLocation(ctxT(t, time.Minute), kube, c.Dynamic(t), locName, opts.Location, false)
	if err != nil {
		t.Fatalf("open the full location: %v", err)
	}
	defer loc.Close()
	r, err := repo.Open(ctxT(t, time.Minute), loc.Bucket, key.Data[v1alpha1.EncryptionKeySecretKey], repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := r.Snapshots(ctxT(t, time.Minute))
	if err != nil || len(snaps) != 1 || snaps[0].ID != first.Snapshot {
		t.Fatalf("snapshots after the failed upload: %v, %v; want only %s", snaps, err, first.Snapshot)
	}
	res, err := r.Check(ctxT(t, time.Minute), repo.CheckOptions{ReadData: true})
	if err != nil || len(res.Errors) != 0 {
		t.Fatalf("check --read-data after the failed upload: %v, %v", err, res.Errors)
	}
}

// mountSecrets writes the credential and encryption key Secrets of location locName into a directory as the
// kubelet mounts them into a mover's pod (each key a link into a timestamped directory, through ..data), and
// returns it: a mover's identity may not read them through the API.
func mountSecrets(t *testing.T, c *testbed.Cluster, locName string) string {
	t.Helper()
	var loc v1alpha1.BackupLocation
	get(t, c, v1alpha1.BackupLocationsResource, v1alpha1.SystemNamespace, locName, &loc)
	names := []string{loc.Spec.EncryptionKey.Name}
	if loc.Spec.Credential != nil {
		names = append(names, loc.Spec.Credential.Name)
	}
	root := t.TempDir()
	for _, name := range names {
		s, err := c.Clientset(t).CoreV1().Secrets(v1alpha1.SystemNamespace).Get(ctxT(t, 30*time.Second), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir, stamped := filepath.Join(root, name), "..2026_12_07_00_00_00.000000001"
		if err := os.MkdirAll(filepath.Join(dir, stamped), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(stamped, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		for k, v := range s.Data {
			if err := os.WriteFile(filepath.Join(dir, stamped, k), v, 0o400); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}
