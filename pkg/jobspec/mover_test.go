package jobspec

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func TestMoverJobUploadFromSnapshotClaim(t *testing.T) {
	m := Mover{Kind: KindUpload, Owner: Target{Kind: KindBackup, Namespace: "shop", Name: "nightly", UID: "u1"},
		Volume: "shop/data", Claim: "pxb-copy-1", Method: v1alpha1.VolumeSnapshot}
	job := MoverJob(m, DefaultConfig())
	if errs := validation.IsDNS1123Label(job.Name); len(errs) > 0 {
		t.Errorf("name %q: %v", job.Name, errs)
	}
	if job.Namespace != v1alpha1.SystemNamespace {
		t.Errorf("namespace %q, want %s", job.Namespace, v1alpha1.SystemNamespace)
	}
	if job.Labels[LabelJob] != "upload" || job.Labels[LabelBackup] != "nightly" || job.Labels[LabelNamespace] != "shop" {
		t.Errorf("labels %v", job.Labels)
	}
	pod := job.Spec.Template.Spec
	ctr := pod.Containers[0]
	if got := strings.Join(ctr.Args, " "); got != "upload --resource backups --namespace shop --name nightly --uid u1 --volume shop/data --path /data --method Snapshot" {
		t.Errorf("args %q", got)
	}
	if pod.SecurityContext.FSGroup != nil {
		t.Error("an fsGroup would make the kubelet change the ownership of the volume's files")
	}
	if caps := ctr.SecurityContext.Capabilities; !slices.Equal(caps.Add, []corev1.Capability{"DAC_READ_SEARCH"}) || !slices.Equal(caps.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities %+v, want only DAC_READ_SEARCH", caps)
	}
	vol := pod.Volumes[len(pod.Volumes)-1]
	if vol.PersistentVolumeClaim == nil || vol.PersistentVolumeClaim.ClaimName != "pxb-copy-1" || !vol.PersistentVolumeClaim.ReadOnly {
		t.Errorf("volume %+v, want claim pxb-copy-1 read-only", vol)
	}
	if mnt := ctr.VolumeMounts[len(ctr.VolumeMounts)-1]; mnt.MountPath != MoverPath || !mnt.ReadOnly {
		t.Errorf("mount %+v", mnt)
	}
	if got := ctr.Resources.Limits.Memory().String(); got != "2Gi" {
		t.Errorf("memory limit %s, want the mover's 2Gi", got)
	}
}

func TestMoverJobFileSystemAndDownload(t *testing.T) {
	owner := Target{Kind: KindBackup, Namespace: "shop", Name: "nightly"}
	fs := MoverJob(Mover{Kind: KindUpload, Owner: owner, Volume: "shop/data", Method: v1alpha1.VolumeFileSystem,
		HostPath: "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/pv1/mount", Node: "node-1"}, DefaultConfig())
	pod := fs.Spec.Template.Spec
	vol := pod.Volumes[len(pod.Volumes)-1]
	if pod.NodeName != "node-1" || vol.HostPath == nil || vol.HostPath.Path != "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/pv1/mount" {
		t.Errorf("fs upload: node %q volume %+v", pod.NodeName, vol)
	}
	if mnt := pod.Containers[0].VolumeMounts[len(pod.Containers[0].VolumeMounts)-1]; mnt.MountPropagation == nil || *mnt.MountPropagation != corev1.MountPropagationHostToContainer {
		t.Errorf("fs upload mount %+v: want HostToContainer propagation", mnt)
	}

	dl := MoverJob(Mover{Kind: KindDownload, Owner: Target{Kind: KindRestore, Namespace: "shop", Name: "r1"}, Volume: "shop/data",
		Claim: "pxb-restore-1", Snapshot: "s1"}, DefaultConfig())
	ctr := dl.Spec.Template.Spec.Containers[0]
	if !strings.HasSuffix(strings.Join(ctr.Args, " "), "--snapshot s1") || ctr.Args[2] != "restores" {
		t.Errorf("download args %q", ctr.Args)
	}
	if !slices.Contains(ctr.SecurityContext.Capabilities.Add, "CHOWN") || ctr.VolumeMounts[len(ctr.VolumeMounts)-1].ReadOnly {
		t.Errorf("download must write owners into a writable mount: %+v %+v", ctr.SecurityContext.Capabilities, ctr.VolumeMounts)
	}
	if dl.Labels[LabelRestore] != "r1" || dl.Labels[LabelJob] != "download" {
		t.Errorf("download labels %v", dl.Labels)
	}
	// Movers write nothing in the cluster: not their owner's identity, which may write everything.
	if a, b := fs.Spec.Template.Spec.ServiceAccountName, dl.Spec.Template.Spec.ServiceAccountName; a != v1alpha1.MoverServiceAccount || b != v1alpha1.MoverServiceAccount {
		t.Errorf("upload runs as %q, download as %q; want %s", a, b, v1alpha1.MoverServiceAccount)
	}
	if MoverName(Mover{Kind: KindUpload, Owner: owner, Volume: "shop/a"}) == MoverName(Mover{Kind: KindUpload, Owner: owner, Volume: "shop/b"}) {
		t.Error("two volumes of a backup share a Job name")
	}
}

func TestParseConfigMoverKeys(t *testing.T) {
	c, err := ParseConfig(map[string]string{ConfigMoverMemoryLimit: "3Gi", ConfigVolumeParallelism: "3",
		ConfigSnapshotTimeoutSeconds: "60", ConfigKubeletRootDir: "/data/kubelet/"})
	if err != nil {
		t.Fatal(err)
	}
	if c.MoverResources.Limits.Memory().String() != "3Gi" || c.VolumeParallelism != 3 || c.SnapshotTimeout.Seconds() != 60 || c.KubeletRootDir != "/data/kubelet" {
		t.Errorf("config %+v", c)
	}
	if _, err := ParseConfig(map[string]string{ConfigKubeletRootDir: "kubelet"}); err == nil || !strings.Contains(err.Error(), "kubeletRootDir") {
		t.Errorf("relative kubeletRootDir: err %v, want one naming the key", err)
	}
	if _, err := ParseConfig(map[string]string{ConfigMoverUploadBytesPerSecond: "fast"}); err == nil || !strings.Contains(err.Error(), "moverUploadBytesPerSecond") {
		t.Errorf("moverUploadBytesPerSecond fast: err %v, want one naming the key", err)
	}
}

func TestMoverUploadLimit(t *testing.T) {
	c, err := ParseConfig(map[string]string{ConfigMoverUploadBytesPerSecond: "50Mi"})
	if err != nil {
		t.Fatal(err)
	}
	owner := Target{Kind: KindBackup, Namespace: "shop", Name: "b1"}
	up := MoverJob(Mover{Kind: KindUpload, Owner: owner, Volume: "shop/data", Claim: "c", Method: "Snapshot"}, c)
	if args := strings.Join(up.Spec.Template.Spec.Containers[0].Args, " "); !strings.HasSuffix(args, "--upload-limit 52428800") {
		t.Errorf("upload args %q: want --upload-limit 52428800 (50Mi)", args)
	}
	dl := MoverJob(Mover{Kind: KindDownload, Owner: Target{Kind: KindRestore, Namespace: "shop", Name: "r1"}, Volume: "shop/data",
		Claim: "c", Snapshot: "s1"}, c)
	if args := strings.Join(dl.Spec.Template.Spec.Containers[0].Args, " "); strings.Contains(args, "--upload-limit") {
		t.Errorf("download args %q: the limit is for uploads", args)
	}
	up = MoverJob(Mover{Kind: KindUpload, Owner: owner, Volume: "shop/data", Claim: "c", Method: "Snapshot"}, DefaultConfig())
	if args := strings.Join(up.Spec.Template.Spec.Containers[0].Args, " "); strings.Contains(args, "--upload-limit") {
		t.Errorf("upload args %q: no limit by default", args)
	}
}

func TestMoverJobBlockVolume(t *testing.T) {
	for _, kind := range []Kind{KindUpload, KindDownload} {
		m := Mover{Kind: kind, Owner: Target{Kind: KindBackup, Namespace: "vms", Name: "nightly"}, Volume: "vms/disk",
			Claim: "pxb-copy-2", Method: v1alpha1.VolumeSnapshot, Snapshot: "s1", Block: true}
		ctr := MoverJob(m, DefaultConfig()).Spec.Template.Spec.Containers[0]
		args := strings.Join(ctr.Args, " ")
		if !strings.Contains(args, "--path "+MoverDevice) || !strings.Contains(args, "--block") || strings.Contains(args, MoverPath+" ") {
			t.Errorf("%s of a block volume: args %q", kind, args)
		}
		if slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "volume" }) || len(ctr.VolumeDevices) != 1 || ctr.VolumeDevices[0].DevicePath != MoverDevice {
			t.Errorf("%s of a block volume: mounts %+v devices %+v, want the claim as device %s", kind, ctr.VolumeMounts, ctr.VolumeDevices, MoverDevice)
		}
	}
}

// TestMoverSecretsMounted: a mover's pod gets its location's credential and encryption key as read-only
// files, once each, and is told where; it is given no other way to read them.
func TestMoverSecretsMounted(t *testing.T) {
	for _, tc := range []struct {
		cred string
		want []string
	}{
		{"s3-cred", []string{"the-key", "s3-cred"}},
		{"", []string{"the-key"}},
		{"the-key", []string{"the-key"}}, // one Secret holding both
	} {
		loc := &v1alpha1.BackupLocation{Spec: v1alpha1.BackupLocationSpec{EncryptionKey: v1alpha1.SecretReference{Name: "the-key"}}}
		if tc.cred != "" {
			loc.Spec.Credential = &v1alpha1.SecretReference{Name: tc.cred}
		}
		pod := MoverJob(Mover{Kind: KindUpload, Owner: Target{Kind: KindBackup, Namespace: "shop", Name: "b1"}, Volume: "shop/data", Claim: "c"}, DefaultConfig()).Spec.Template.Spec
		mountSecrets(&pod, loc)
		var got []string
		for _, v := range pod.Volumes {
			if v.Secret != nil {
				got = append(got, v.Secret.SecretName)
				if *v.Secret.DefaultMode != 0o400 {
					t.Errorf("Secret %s mounted with mode %o", v.Secret.SecretName, *v.Secret.DefaultMode)
				}
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("credential %q: Secrets mounted %v, want %v", tc.cred, got, tc.want)
		}
		ctr := pod.Containers[0]
		for _, name := range tc.want {
			if !slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool {
				return m.MountPath == MoverSecretsPath+"/"+name && m.ReadOnly
			}) {
				t.Errorf("credential %q: no read-only mount of %s at %s/%s: %+v", tc.cred, name, MoverSecretsPath, name, ctr.VolumeMounts)
			}
		}
		if i := slices.Index(ctr.Args, "--secrets-dir"); i < 0 || ctr.Args[i+1] != MoverSecretsPath {
			t.Errorf("args %q lack --secrets-dir %s", ctr.Args, MoverSecretsPath)
		}
	}
}
