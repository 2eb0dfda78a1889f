//go:build integration

package jobs_test

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestBackupDeleteThroughJob: `kubectl pxb backup delete` of a backup in a location the plugin cannot reach
// (an NFS export; an endpoint that refuses it) launches a delete Job with the export mounted, and keeps the
// Backup while the Job has not reported. The test bed has no kubelet, so the command's wait runs out; the
// Job's code then runs in-process, as the pxb-job ServiceAccount, with the export where the pod mounts it (a
// plain directory: this kernel cannot mount NFS), and deletes the backup's data and the Backup. A location
// the plugin reaches but cannot open (a wrong passphrase) gets no Job.
func TestBackupDeleteThroughJob(t *testing.T) {
	c := testbed.APIServer(t)
	s3Loc := setup(t, c) // installs pxb
	kube := c.Clientset(t)
	ns := c.Namespace(t)
	ctx := ctxT(t, 5*time.Minute)
	secret := func(name, passphrase string) {
		t.Helper()
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.EncryptionKeyLabel: "true"}},
			Data: map[string][]byte{v1alpha1.EncryptionKeySecretKey: []byte(passphrase)}}
		if _, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	backupGone := func(name string) bool {
		t.Helper()
		_, err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return apierrors.IsNotFound(err)
	}
	deleteJob := func(backup string) string {
		return jobspec.Name(jobspec.Target{Kind: jobspec.KindDelete, Namespace: ns, Name: backup})
	}

	t.Run("nfs", func(t *testing.T) {
		export := t.TempDir()
		secret("filer-key-"+ns, "correct horse battery staple")
		nfs := &v1alpha1.NFSLocation{Server: "filer.example", Path: "/export/backups"}
		create(t, c, v1alpha1.BackupLocationsResource, &v1alpha1.BackupLocation{
			ObjectMeta: metav1.ObjectMeta{Name: "filer-" + ns, Namespace: v1alpha1.SystemNamespace},
			Spec: v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderNFS, NFS: nfs,
				EncryptionKey: v1alpha1.SecretReference{Name: "filer-key-" + ns}, AllowedNamespaces: []v1alpha1.NamespacePattern{v1alpha1.NamespacePattern(ns)}},
		})
		opts := jobs.Options{Location: location.Options{NFSMountPath: export}}
		create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "on-filer", Namespace: ns},
			Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName("filer-" + ns)}})
		if err := jobs.Backup(ctx, jobIdentity(t, c, jobspec.KindBackup), ns, "on-filer", opts); err != nil {
			t.Fatalf("backup onto the export: %v", err)
		}
		snapshots := func() []string {
			t.Helper()
			entries, err := os.ReadDir(filepath.Join(export, layout.SnapshotPrefix))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			return names
		}
		if len(snapshots()) == 0 {
			t.Fatal("the backup left no snapshot on the export")
		}

		out, err := pxb(t, c, "backup", "delete", "on-filer", "-n", ns, "--yes", "--timeout", "2s")
		if err == nil || !strings.Contains(err.Error(), "did not finish within 2s") ||
			!strings.Contains(out, "The data is deleted in the cluster by Job "+v1alpha1.SystemNamespace+"/"+deleteJob("on-filer")) ||
			!strings.Contains(out, "is an NFS export") {
			t.Fatalf("backup delete of a backup on NFS: %v\n%s", err, out)
		}
		if backupGone("on-filer") {
			t.Fatal("the Backup was deleted before its data")
		}
		job, err := kube.BatchV1().Jobs(v1alpha1.SystemNamespace).Get(ctx, deleteJob("on-filer"), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the delete Job: %v", err)
		}
		var b v1alpha1.Backup
		get(t, c, v1alpha1.BackupsResource, ns, "on-filer", &b)
		pod := job.Spec.Template.Spec
		if want := []string{"delete", "--resource", "backups", "--namespace", ns, "--name", "on-filer", "--uid", string(b.UID)}; !slices.Equal(pod.Containers[0].Args, want) {
			t.Errorf("delete Job runs pxb-job %v, want %v", pod.Containers[0].Args, want)
		}
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.NFS != nil })
		mounted := slices.ContainsFunc(pod.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == jobspec.NFSMountPath })
		if i < 0 || *pod.Volumes[i].NFS != (corev1.NFSVolumeSource{Server: nfs.Server, Path: nfs.Path}) || !mounted {
			t.Errorf("delete Job's pod does not mount the export at %s: volumes %+v", jobspec.NFSMountPath, pod.Volumes)
		}

		d, err := jobs.DeleteBackup(ctx, jobIdentity(t, c, jobspec.KindDelete), ns, "on-filer", opts)
		if err != nil {
			t.Fatalf("the delete Job's work: %v", err)
		}
		if d.Snapshots < 1 || !d.Reached || !strings.HasPrefix(d.URL, "nfs://filer.example/export/backups/") {
			t.Errorf("delete reported %+v, want at least one snapshot deleted from nfs://filer.example/export/backups/", d)
		}
		if left := snapshots(); len(left) != 0 {
			t.Errorf("the export still holds snapshots %v", left)
		}
		if !backupGone("on-filer") {
			t.Error("the Backup is still there after its data was deleted")
		}
	})

	t.Run("endpoint that refuses the plugin", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		secret("closed-key-"+ns, "correct horse battery staple")
		create(t, c, v1alpha1.BackupLocationsResource, &v1alpha1.BackupLocation{
			ObjectMeta: metav1.ObjectMeta{Name: "closed-" + ns, Namespace: v1alpha1.SystemNamespace},
			Spec: v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderS3, Bucket: "unreached", Endpoint: "http://" + addr, S3ForcePathStyle: true,
				Credential: &v1alpha1.SecretReference{Name: s3Loc + "-cred"}, EncryptionKey: v1alpha1.SecretReference{Name: "closed-key-" + ns},
				AllowedNamespaces: []v1alpha1.NamespacePattern{v1alpha1.NamespacePattern(ns)}},
		})
		// Never run: deleted from here, the Backup would go without its data.
		create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "unreached", Namespace: ns},
			Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName("closed-" + ns)}})
		out, err := pxb(t, c, "backup", "delete", "unreached", "-n", ns, "--yes", "--timeout", "2s")
		if err == nil || !strings.Contains(out, "The data is deleted in the cluster by Job") ||
			!strings.Contains(out, "cannot be reached from this machine (dial tcp "+addr) {
			t.Fatalf("backup delete of a backup behind a refusing endpoint: %v\n%s", err, out)
		}
		if backupGone("unreached") {
			t.Error("the Backup was deleted without the Job that may reach its data")
		}
	})

	t.Run("wrong passphrase", func(t *testing.T) {
		backupNow(t, c, s3Loc, ns, "first") // the repository, with the location's key
		var loc v1alpha1.BackupLocation
		get(t, c, v1alpha1.BackupLocationsResource, v1alpha1.SystemNamespace, s3Loc, &loc)
		secret("other-key-"+ns, "another passphrase")
		spec := loc.Spec
		spec.EncryptionKey = v1alpha1.SecretReference{Name: "other-key-" + ns}
		create(t, c, v1alpha1.BackupLocationsResource, &v1alpha1.BackupLocation{
			ObjectMeta: metav1.ObjectMeta{Name: "other-" + ns, Namespace: v1alpha1.SystemNamespace}, Spec: spec})
		create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "never-ran", Namespace: ns},
			Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName("other-" + ns)}})
		// As before: a Backup that never ran goes without its data, which nobody with this key could read.
		out, err := pxb(t, c, "backup", "delete", "never-ran", "-n", ns, "--yes")
		if err != nil || strings.Contains(out, "in the cluster") || !strings.Contains(out, "Backup "+ns+"/never-ran deleted") {
			t.Fatalf("backup delete with a wrong passphrase: %v\n%s", err, out)
		}
		if _, err := kube.BatchV1().Jobs(v1alpha1.SystemNamespace).Get(ctx, deleteJob("never-ran"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a delete Job was launched for a location that opens with the wrong passphrase: %v", err)
		}
	})
}
