package store

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func TestParseBackupPrefix(t *testing.T) {
	for _, tc := range []struct {
		unit, ns, name string
		ok             bool
	}{
		{BackupPrefix("shop", "nightly"), "shop", "nightly", true},
		{BackupPrefix("pxb-system", "all.v2"), "pxb-system", "all.v2", true},
		{RestorePrefix("shop", "back"), "", "", false},
		{"backups/shop/", "", "", false},
		{"backups/shop/nightly", "", "", false},
		{"backups/shop/nightly/volumes/", "", "", false},
		{"backups/Shop/nightly/", "", "", false},
		{"/mnt/volume", "", "", false},
	} {
		ns, name, ok := ParseBackupPrefix(tc.unit)
		if ns != tc.ns || name != tc.name || ok != tc.ok {
			t.Errorf("ParseBackupPrefix(%q) = %q, %q, %v; want %q, %q, %v", tc.unit, ns, name, ok, tc.ns, tc.name, tc.ok)
		}
	}
}

func TestLockedUntil(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(d)); return &t }
	for _, tc := range []struct {
		name   string
		status v1alpha1.BackupStatus
		days   int32
		want   time.Time
	}{
		{"no lock", v1alpha1.BackupStatus{OperationStatus: v1alpha1.OperationStatus{CompletionTimestamp: at(-time.Hour)}}, 0, time.Time{}},
		{"completed an hour ago", v1alpha1.BackupStatus{OperationStatus: v1alpha1.OperationStatus{StartTimestamp: at(-2 * time.Hour), CompletionTimestamp: at(-time.Hour)}}, 2, now.Add(47 * time.Hour)},
		{"expired", v1alpha1.BackupStatus{OperationStatus: v1alpha1.OperationStatus{CompletionTimestamp: at(-49 * time.Hour)}}, 2, time.Time{}},
		{"running", v1alpha1.BackupStatus{OperationStatus: v1alpha1.OperationStatus{StartTimestamp: at(-time.Minute)}}, 1, now.Add(24 * time.Hour)},
		{"never ran", v1alpha1.BackupStatus{}, 30, time.Time{}},
	} {
		got := LockedUntil(&v1alpha1.Backup{Status: tc.status}, tc.days, now)
		if !got.Equal(tc.want) {
			t.Errorf("%s: LockedUntil = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLayout(t *testing.T) {
	if got := BackupPrefix("shop", "nightly"); got != "backups/shop/nightly/" {
		t.Errorf("BackupPrefix = %q", got)
	}
	if got := RestorePrefix("shop", "back"); got != "restores/shop/back/" {
		t.Errorf("RestorePrefix = %q", got)
	}
	l := &Location{Spec: v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderS3, Bucket: "b", Prefix: "cluster-a"}}
	if got := l.URL(BackupPrefix("shop", "n")); got != "s3://b/cluster-a/backups/shop/n/" {
		t.Errorf("URL = %q", got)
	}
}
