package store

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/layout"
)

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

func TestURL(t *testing.T) {
	l := &Location{Spec: v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderS3, Bucket: "b", Prefix: "cluster-a"}}
	if got := l.URL(layout.BackupPrefix("shop", "n")); got != "s3://b/cluster-a/backups/shop/n/" {
		t.Errorf("URL = %q", got)
	}
}
