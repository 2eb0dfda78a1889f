package jobs

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
)

func TestMethodOf(t *testing.T) {
	claim := func(ann string) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{}
		if ann != "" {
			c.Annotations = map[string]string{v1alpha1.VolumeMethodAnnotation: ann}
		}
		return c
	}
	for _, tc := range []struct {
		ann      string
		spec     v1alpha1.VolumeMethod
		want     v1alpha1.VolumeMethod
		explicit bool
		err      string
	}{
		{"", "", v1alpha1.VolumeSnapshot, false, ""},
		{"", v1alpha1.VolumeSnapshot, v1alpha1.VolumeSnapshot, true, ""},
		{"", v1alpha1.VolumeFileSystem, v1alpha1.VolumeFileSystem, true, ""},
		{"fs", v1alpha1.VolumeSnapshot, v1alpha1.VolumeFileSystem, true, ""},
		{"None", "", v1alpha1.VolumeNone, true, ""},
		{"copy", "", "", false, `annotation pxb.dev/volume-method: volume method "copy": want snapshot, fs or none`},
	} {
		got, explicit, err := methodOf(claim(tc.ann), tc.spec)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("methodOf(%q, %q) error %v, want %q", tc.ann, tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want || explicit != tc.explicit {
			t.Errorf("methodOf(%q, %q) = %q, %v, %v; want %q, %v", tc.ann, tc.spec, got, explicit, err, tc.want, tc.explicit)
		}
	}
}

func TestBackupStatusCountsVolumes(t *testing.T) {
	res := &backupResult{
		Result: &collect.Result{Phase: collect.PhaseCompleted, Total: 7, Bytes: 1000},
		Volumes: []VolumeRecord{
			{Namespace: "shop", PVC: "data", Method: v1alpha1.VolumeSnapshot, Phase: v1alpha1.VolumeCompleted, Bytes: 4096, Files: 3, UploadedBytes: 100, Snapshot: "s1"},
			{Namespace: "shop", PVC: "logs", Method: v1alpha1.VolumeFileSystem, Phase: v1alpha1.VolumeFailed, Message: "volume shop/logs: no running pod mounts the claim"},
			{Namespace: "shop", PVC: "cache", Method: v1alpha1.VolumeNone, Phase: v1alpha1.VolumeSkipped},
		},
	}
	now := metav1.Now()
	s := BackupStatus(res, &now, &now, "s3://b/backups/shop/x/")
	if s.Phase != v1alpha1.BackupPartiallySucceeded {
		t.Errorf("phase %s, want PartiallySucceeded for a failed volume", s.Phase)
	}
	if s.ErrorCount != 1 || len(s.Errors) != 1 || !strings.Contains(s.Errors[0], "shop/logs") {
		t.Errorf("errors %d %q, want the failed volume's reason", s.ErrorCount, s.Errors)
	}
	if s.UploadedBytes != 100 || s.TotalBytes != 5096 || s.Progress.VolumesTotal != 3 || s.Progress.VolumesDone != 2 {
		t.Errorf("uploaded %d total %d progress %+v", s.UploadedBytes, s.TotalBytes, s.Progress)
	}
	if len(s.Volumes) != 3 || s.Volumes[0].Snapshot != "s1" || s.Volumes[0].BytesDone != 4096 || s.Volumes[0].FilesTotal != 3 {
		t.Errorf("volumes %+v", s.Volumes)
	}
	if !strings.Contains(s.Message, "1 of 3 volumes") {
		t.Errorf("message %q", s.Message)
	}
}

func TestRestoreStatusCountsVolumes(t *testing.T) {
	now := metav1.Now()
	s := RestoreStatus(&apply.Result{Phase: collect.PhaseCompleted, Total: 2, Counts: map[apply.Outcome]int{apply.OutcomeRestored: 2}}, &now, &now)
	addRestoredVolumes(&s, []VolumeRecord{
		{Namespace: "shop", PVC: "data", Phase: v1alpha1.VolumeCompleted, Bytes: 10},
		{Namespace: "shop", PVC: "logs", Phase: v1alpha1.VolumeFailed, Message: "volume shop/logs: download Job failed"},
	})
	if s.Phase != v1alpha1.RestorePartiallySucceeded || s.ErrorCount != 1 || s.Progress.VolumesDone != 1 || !strings.Contains(s.Message, "1 of 2 volumes restored") {
		t.Errorf("status %+v", s)
	}
}

func TestTempNamesAreStableAndDistinct(t *testing.T) {
	a, b := tempName("snap", "shop", "nightly", "shop/data"), tempName("snap", "shop", "nightly", "shop/logs")
	if a == b || a != tempName("snap", "shop", "nightly", "shop/data") || len(a) > 63 {
		t.Errorf("names %q %q", a, b)
	}
}
