package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/store"
)

func TestBackupFromManifest(t *testing.T) {
	m := &collect.Manifest{
		FormatVersion: collect.FormatVersion, Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Finished: time.Date(2025, 1, 2, 3, 6, 0, 0, time.UTC),
		Namespaces: []string{"shop", "shop-db"}, Total: 12, Bytes: 3 << 20, Warnings: []string{"api down"},
		Errors: []collect.ItemError{{Resource: "secrets", Namespace: "shop", Name: "tls", Reason: "forbidden"}}, ErrorCount: 1,
	}
	b := BackupFromManifest(m, "dr", "pxb-system", "old")
	if b.Labels[v1alpha1.SyncedLabel] != "true" || len(b.Annotations) != 0 || b.Spec.Location != "dr" ||
		!reflect.DeepEqual(b.Spec.IncludeNamespaces, []v1alpha1.NamespacePattern{"shop", "shop-db"}) {
		t.Errorf("rebuilt Backup %+v", b.ObjectMeta)
	}
	s := b.Status
	if s.Phase != v1alpha1.BackupPartiallySucceeded || !s.StartTimestamp.Time.Equal(m.Started) || !s.CompletionTimestamp.Time.Equal(m.Finished) ||
		s.Progress.ItemsDone != 12 || s.TotalBytes != 3<<20 || s.Size != "3.0 MiB" || s.ErrorCount != 1 ||
		!reflect.DeepEqual(s.Errors, []string{"secrets shop/tls: forbidden"}) || s.WarningCount != 1 || !strings.Contains(s.Message, "manifest") {
		t.Errorf("rebuilt status %+v", s)
	}
	m.ErrorCount, m.Errors = 0, nil
	if p := BackupFromManifest(m, "dr", "pxb-system", "old").Status.Phase; p != v1alpha1.BackupCompleted {
		t.Errorf("phase without errors: %s", p)
	}
	none := BackupFromManifest(nil, "dr", "shop", "broken")
	if none.Status.Phase != v1alpha1.BackupFailed || !strings.Contains(none.Status.Message, "did not finish") {
		t.Errorf("backup without a manifest: %+v", none.Status)
	}
}

func TestSyncResultMessage(t *testing.T) {
	r := &SyncResult{Backups: 3, New: []string{"shop/nightly"}, Present: []string{"a/b", "c/d"}}
	if got := r.Message(); got != "3 backups, 1 new (shop/nightly), 2 already present" {
		t.Errorf("message %q", got)
	}
	r = &SyncResult{Backups: 1, Failed: []string{"shop/x: create Backup: forbidden"}}
	if got := r.Message(); got != "1 backup, 0 new, 0 already present, 1 could not be synced: shop/x: create Backup: forbidden" {
		t.Errorf("message %q", got)
	}
	r = &SyncResult{Backups: 12}
	for i := range 12 {
		r.New = append(r.New, fmt.Sprintf("ns/b%d", i))
	}
	if got := r.Message(); !strings.HasPrefix(got, "12 backups, 12 new (ns/b0, ") || !strings.Contains(got, "ns/b9 and 2 more)") {
		t.Errorf("message %q", got)
	}
}

// memStore is a collect.Store in memory.
type memStore map[string][]byte

func (m memStore) Put(_ context.Context, key string, r io.Reader) error {
	data, err := io.ReadAll(r)
	m[key] = data
	return err
}

func (m memStore) Get(_ context.Context, key string) (io.ReadCloser, error) {
	data, ok := m[key]
	if !ok {
		return nil, fmt.Errorf("read %s: %w", key, collect.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func TestBackupRecordRoundTrip(t *testing.T) {
	start, end := metav1.NewTime(time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)), metav1.NewTime(time.Date(2026, 3, 1, 2, 5, 0, 0, time.UTC))
	b := &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "shop", UID: "uid-1", ResourceVersion: "42",
			Labels: map[string]string{"pxb.dev/schedule": "daily"}, Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
		Spec: v1alpha1.BackupSpec{Location: "prod", Selection: v1alpha1.Selection{IncludeResources: []v1alpha1.ResourcePattern{"deployments.apps"}}, VolumeMethod: v1alpha1.VolumeFileSystem},
		Status: v1alpha1.BackupStatus{Phase: v1alpha1.BackupCompleted, Stage: v1alpha1.BackupStageDone, TotalBytes: 2048, UploadedBytes: 512, Size: "2.0 KiB",
			OperationStatus: v1alpha1.OperationStatus{StartTimestamp: &start, CompletionTimestamp: &end, Progress: &v1alpha1.Progress{Percent: 100, ItemsTotal: 7, ItemsDone: 7},
				Volumes: []v1alpha1.VolumeStatus{{Namespace: "shop", PVC: "data", Method: v1alpha1.VolumeFileSystem, BytesTotal: 2048}}, WarningCount: 1, Warnings: []string{"w"}}},
	}
	s := memStore{}
	ctx := context.Background()
	if _, err := store.ReadBackupRecord(ctx, s); !errors.Is(err, collect.ErrNotFound) {
		t.Fatalf("no record yet: %v, want ErrNotFound", err)
	}
	if err := store.SaveBackupRecord(ctx, s, b, "cluster-a-uid"); err != nil {
		t.Fatal(err)
	}
	raw := string(s[layout.RecordKey])
	for _, leak := range []string{"uid-1", "last-applied", `"42"`} {
		if strings.Contains(raw, leak) {
			t.Errorf("record keeps cluster-local metadata %q:\n%s", leak, raw)
		}
	}
	rec, err := store.ReadBackupRecord(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ClusterID != "cluster-a-uid" || rec.PxbVersion == "" || rec.Backup.Name != "nightly" || rec.Backup.Namespace != "shop" {
		t.Errorf("record %+v", rec)
	}

	got := SyncedBackup(rec, "dr", "shop", "nightly")
	if got.Labels[v1alpha1.SyncedLabel] != "true" || got.Annotations[v1alpha1.OriginClusterAnnotation] != "cluster-a-uid" || len(got.Labels) != 1 {
		t.Errorf("synced metadata: labels %v annotations %v", got.Labels, got.Annotations)
	}
	if got.Spec.Location != "dr" || got.Spec.VolumeMethod != v1alpha1.VolumeFileSystem || !reflect.DeepEqual(got.Spec.IncludeResources, b.Spec.IncludeResources) {
		t.Errorf("synced spec %+v", got.Spec)
	}
	// Semantic equality: times come back in the local zone.
	if !equality.Semantic.DeepEqual(got.Status, b.Status) {
		t.Errorf("synced status %+v\nwant %+v", got.Status, b.Status)
	}

	s[layout.RecordKey] = []byte(`{"formatVersion": 9}`)
	if _, err := store.ReadBackupRecord(ctx, s); err == nil || !strings.Contains(err.Error(), "format version 9") {
		t.Errorf("record of a newer format: %v", err)
	}
}
