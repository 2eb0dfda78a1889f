//go:build integration

package runjob_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/runjob"
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
	loc, err := runjob.OpenLocation(ctxT(t, time.Minute), kube, c.Dynamic(t), locName, location.Options{}, true)
	if err != nil {
		t.Fatal(err)
	}
	loc.Close()
	req := runjob.MoverRequest{Namespace: ns, Name: "vol", Volume: ns + "/data", Path: dir, Method: v1alpha1.VolumeSnapshot}
	first, err := runjob.Upload(ctxT(t, 2*time.Minute), c.Config, req, runjob.Options{})
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
	again, err := runjob.Upload(ctxT(t, 2*time.Minute), c.Config, req, runjob.Options{})
	if err != nil {
		t.Fatalf("retried upload: %v", err)
	}
	if again.Snapshot != first.Snapshot || again.StoredBytes != first.StoredBytes || again.Bytes != first.Bytes {
		t.Errorf("retried upload: %+v, want the first attempt's snapshot and counts %+v", again, first)
	}
}
