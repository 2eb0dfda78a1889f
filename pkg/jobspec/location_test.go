package jobspec

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// TestLocationJobMountsNFS checks the rendered pod spec only: this machine's kernel has no NFS client, so no
// test here can mount the export. The job code that writes through fileblob under NFSMountPath is tested on a
// plain directory instead.
func TestLocationJobMountsNFS(t *testing.T) {
	loc := &v1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Name: "filer", UID: "u1"},
		Spec: v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderNFS,
			NFS: &v1alpha1.NFSLocation{Server: "filer.lab", Path: "/export/backups", SubPath: "cluster-a"}},
	}
	job := LocationJob(KindCheck, loc, DefaultConfig())
	pod := job.Spec.Template.Spec
	var nfs *corev1.NFSVolumeSource
	var volName string
	for _, v := range pod.Volumes {
		if v.NFS != nil {
			nfs, volName = v.NFS, v.Name
		}
	}
	if nfs == nil || nfs.Server != "filer.lab" || nfs.Path != "/export/backups" || nfs.ReadOnly {
		t.Fatalf("nfs volume = %+v, want filer.lab:/export/backups read-write", nfs)
	}
	ctr := pod.Containers[0]
	mounted := false
	for _, m := range ctr.VolumeMounts {
		if m.Name == volName {
			mounted = m.MountPath == "/mnt/location" && !m.ReadOnly && m.SubPath == ""
		}
	}
	if !mounted {
		t.Fatalf("container mounts %+v; want the export read-write at /mnt/location (the sub-path is applied by the job)", ctr.VolumeMounts)
	}
	if got := strings.Join(ctr.Args, " "); got != "check --resource backuplocations --namespace pxb-system --name filer" {
		t.Errorf("args %q", got)
	}
	if job.Name != "" || !strings.HasPrefix(job.GenerateName, "pxb-check-pxb-system-filer-") || len(job.GenerateName) > 58 {
		t.Errorf("name %q generateName %q: want a new generated name per check", job.Name, job.GenerateName)
	}
	if job.Labels[LabelLocation] != "filer" || job.Spec.Template.Labels[LabelLocation] != "filer" || job.Labels[LabelJob] != "check" {
		t.Errorf("labels %v", job.Labels)
	}
	if pod.ServiceAccountName != v1alpha1.LocationServiceAccount || !*ctr.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("the check Job is not shaped like the other Jobs: %+v", pod)
	}

	// Mount options need a PersistentVolume: an inline nfs volume has no field for them.
	if pv, pvc := NFSVolume(loc); pv != nil || pvc != nil {
		t.Fatalf("a location without mount options got a PersistentVolume %v", pv)
	}
	opts := loc.DeepCopy()
	opts.Spec.NFS.MountOptions = []string{"nfsvers=4.1", "hard"}
	pv, pvc := NFSVolume(opts)
	if pv == nil || pv.Spec.NFS == nil || pv.Spec.NFS.Server != "filer.lab" || pv.Spec.NFS.Path != "/export/backups" ||
		strings.Join(pv.Spec.MountOptions, ",") != "nfsvers=4.1,hard" || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Fatalf("PersistentVolume %+v", pv)
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.Namespace != "pxb-system" || ref.Name != pvc.Name || pvc.Namespace != "pxb-system" ||
		pvc.Spec.VolumeName != pv.Name || pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "" {
		t.Fatalf("claim %+v does not bind to exactly its volume %+v", pvc, pv.Spec.ClaimRef)
	}
	opod := LocationJob(KindCheck, opts, DefaultConfig()).Spec.Template.Spec
	claimed := false
	for _, v := range opod.Volumes {
		if v.Name == volName {
			claimed = v.NFS == nil && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name
		}
	}
	if !claimed {
		t.Fatalf("with mount options the pod mounts %+v, want claim %s", opod.Volumes, pvc.Name)
	}
	other := opts.DeepCopy()
	other.Spec.NFS.MountOptions = []string{"nfsvers=3"}
	if pv2, _ := NFSVolume(other); pv2.Name == pv.Name {
		t.Errorf("changed mount options reuse PersistentVolume %s", pv.Name)
	}

	// Object stores need no volume.
	s3 := loc.DeepCopy()
	s3.Spec = v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderS3, Bucket: "b"}
	if pod := LocationJob(KindCheck, s3, DefaultConfig()).Spec.Template.Spec; len(pod.Volumes) != 1 || len(pod.Containers[0].VolumeMounts) != 1 {
		t.Errorf("s3 location Job has volumes %+v", pod.Volumes)
	}

	// A long location name still leaves room for the generated suffix.
	long := loc.DeepCopy()
	long.Name = strings.Repeat("a", 80)
	if g := LocationJob(KindCheck, long, DefaultConfig()).GenerateName; len(g) > 58 || !strings.HasSuffix(g, "-") {
		t.Errorf("generateName %q (%d)", g, len(g))
	}
}
