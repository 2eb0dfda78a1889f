//go:build e2e

// The tests in this file prove volume data backup and restore as a user drives it: `kubectl pxb backup
// create` takes the files of PersistentVolumeClaims (from CSI snapshots, or from the live volume of a running
// pod) into the repository, and `kubectl pxb restore create` fills new claims with them before the pods that
// use them start. Volumes hold the rich dataset (see e2e/e2etool/tree.go), and a restore must give back every
// entry's type, mode, owner, mtime, content, link target, hard links and holes.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pxb-dev/pxb/e2e/framework"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Drivers of the e2e clusters' StorageClasses (see e2e/cluster.sh).
const (
	snapDriver  = "hostpath.e2e.pxb.dev"
	plainDriver = "plain.e2e.pxb.dev"
)

// largeBytes is the size of the round trip's large file: 500 MiB, or PXB_E2E_LARGE (a quantity such as
// 64Mi) to iterate faster.
func largeBytes(t *testing.T) int64 {
	t.Helper()
	v := os.Getenv("PXB_E2E_LARGE")
	if v == "" {
		return 500 << 20
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		t.Fatalf("PXB_E2E_LARGE=%q: %v", v, err)
	}
	return q.Value()
}

// volumeLocation installs pxb and makes a location on a fresh bucket, as a user would. The kubelet's root
// directory is not the default here: pxb finds it from its own pod, which the FileSystem method tests prove.
func volumeLocation(t *testing.T, c *framework.Cluster, name string) string {
	t.Helper()
	if out, err := kubectlPxb(t, c, 3*time.Minute, "install", "--image", c.Image); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	s3Bucket(t, c, name)
	credFile := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(credFile, fmt.Appendf(nil, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		c.S3.AccessKey, c.S3.SecretKey), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.KubectlCmd(ctx, "delete", "-n", "pxb-system", "backuplocation/"+name, "secret/"+name+"-cred",
			"secret/"+name+"-encryption-key", "--ignore-not-found").Run()
		if t.Failed() && os.Getenv("PXB_E2E_KEEP") != "" {
			return
		}
		// Volume data is large: the shared S3 server's disk must not fill up run after run.
		if err := removeBucket(ctx, c, name); err != nil {
			t.Logf("remove bucket %s: %v", name, err)
		}
	})
	if out, err := kubectlPxb(t, c, time.Minute, "credential", "create", name+"-cred", "--provider", "aws", "--from-file", credFile); err != nil {
		t.Fatalf("credential create: %v\n%s", err, out)
	}
	if out, err := kubectlPxb(t, c, time.Minute, "location", "create", name, "--provider", "s3", "--bucket", name,
		"--endpoint", c.S3.Endpoint, "--s3-force-path-style", "--credential", name+"-cred"); err != nil {
		t.Fatalf("location create: %v\n%s", err, out)
	}
	return name
}

// removeBucket deletes a bucket of the shared S3 server and everything in it.
func removeBucket(ctx context.Context, c *framework.Cluster, bucket string) error {
	client := c.S3.Client()
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				return err
			}
		}
	}
	_, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	return err
}

// deleteAtEnd deletes the Backup or Restore pxb-system/name when the test ends (kept on failure when
// PXB_E2E_KEEP is set), so that they do not pile up in pxb-system run after run.
func deleteAtEnd(t *testing.T, c *framework.Cluster, gvr schema.GroupVersionResource, name string) {
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("PXB_E2E_KEEP") != "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Dynamic.Resource(gvr).Namespace("pxb-system").Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Logf("delete %s pxb-system/%s: %v", gvr.Resource, name, err)
		}
	})
}

// backupCreate runs `kubectl pxb backup create NAME --include-namespaces NS --wait` with the Backup in
// pxb-system (so that it outlives the namespace), checks that its temporary objects are gone afterwards, and
// returns the Backup once it has ended and the command's error.
func backupCreate(t *testing.T, c *framework.Cluster, name, ns, loc string, timeout time.Duration, flags ...string) (*unstructured.Unstructured, error) {
	t.Helper()
	args := append([]string{"backup", "create", name, "-n", "pxb-system", "--include-namespaces", ns,
		"--location", loc, "--wait", "--timeout", timeout.String()}, flags...)
	deleteAtEnd(t, c, v1alpha1.BackupsResource, name)
	before := c.Inventory(t)
	_, err := kubectlPxb(t, c, timeout+time.Minute, args...)
	b := c.WaitForEnd(t, v1alpha1.BackupsResource, "pxb-system", name, time.Minute)
	c.WaitNoLeftovers(t, "pxb.dev/backup="+name, before, 2*time.Minute)
	return b, err
}

// restoreCreate runs `kubectl pxb restore create NAME --from-backup BACKUP --wait` in pxb-system, checks that
// its temporary objects are gone afterwards, and returns the Restore once it has ended and the command's
// error.
func restoreCreate(t *testing.T, c *framework.Cluster, name, backup string, timeout time.Duration, flags ...string) (*unstructured.Unstructured, error) {
	t.Helper()
	args := append([]string{"restore", "create", name, "-n", "pxb-system", "--from-backup", backup,
		"--wait", "--timeout", timeout.String()}, flags...)
	deleteAtEnd(t, c, v1alpha1.RestoresResource, name)
	before := c.Inventory(t)
	_, err := kubectlPxb(t, c, timeout+time.Minute, args...)
	r := c.WaitForEnd(t, v1alpha1.RestoresResource, "pxb-system", name, time.Minute)
	c.WaitNoLeftovers(t, "pxb.dev/restore="+name, before, 2*time.Minute)
	return r, err
}

// requireEnded fails the test unless the Backup or Restore ended in phase, showing its status and its Jobs'
// logs.
func requireEnded(t *testing.T, c *framework.Cluster, obj *unstructured.Unstructured, err error, phase, label string) {
	t.Helper()
	if got := framework.Phase(obj); got != phase || (err != nil) != (phase != "Completed") {
		t.Fatalf("%s %s ended %s (command error: %v), want %s; status %v\n%s", obj.GetKind(), obj.GetName(), got, err,
			phase, obj.Object["status"], c.PodLogs(t, "pxb-system", label+"="+obj.GetName()))
	}
}

// deployApp runs the application: a Deployment whose container needs the volume's data at start (it exits
// when /data/hard/a is missing, so that a pod started on an unfilled volume restarts).
func deployApp(t *testing.T, c *framework.Cluster, ns, pvc string) {
	t.Helper()
	c.Apply(t, ns, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: app, labels: {app: app}}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      terminationGracePeriodSeconds: 1
      securityContext: {runAsUser: 0, runAsGroup: 0}
      containers:
      - name: app
        image: %s
        imagePullPolicy: Never
        args: [hold, -require, /data/hard/a]
        volumeMounts: [{name: data, mountPath: /data}]
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: %s}
`, c.ToolImage, pvc))
	waitAvailable(t, c, ns, "app")
}

// appRestarts sums the container restarts of the application's pods.
func appRestarts(t *testing.T, c *framework.Cluster, ns string) int32 {
	t.Helper()
	pods, err := c.Kube.CoreV1().Pods(ns).List(framework.Context(t, 30*time.Second), metav1.ListOptions{LabelSelector: "app=app"})
	if err != nil {
		t.Fatalf("list application pods: %v", err)
	}
	var n int32
	for _, p := range pods.Items {
		for _, s := range p.Status.ContainerStatuses {
			n += s.RestartCount
		}
	}
	return n
}

// loseNamespace deletes namespace ns and waits until it is gone, volumes included.
func loseNamespace(t *testing.T, c *framework.Cluster, ns string) {
	t.Helper()
	if err := c.Kube.CoreV1().Namespaces().Delete(framework.Context(t, 30*time.Second), ns, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete namespace %s: %v", ns, err)
	}
	framework.WaitFor(t, 3*time.Minute, "namespace "+ns+" gone", func(ctx context.Context) (bool, error) {
		_, err := c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// suffix is the random end of a test namespace's name, to name backups and restores after.
func suffix(ns string) string { return ns[strings.LastIndex(ns, "-")+1:] }

// checkBackupVolume checks the status of a completed first backup of a volume against the dataset it holds;
// why explains an uploadedBytes failure.
func checkBackupVolume(t *testing.T, b *unstructured.Unstructured, v framework.VolumeStatus, method, driver string, data framework.Manifest, why string) {
	t.Helper()
	if v.Method != method || v.Phase != "Completed" || v.Driver != driver {
		t.Errorf("backup volume %v: want method %s, phase Completed, driver %s", v, method, driver)
	}
	if v.BytesTotal < data.Dense || v.BytesDone != v.BytesTotal {
		t.Errorf("backup volume %v: want bytesDone = bytesTotal >= the dataset's %d data bytes", v, data.Dense)
	}
	if v.FilesTotal == 0 || v.FilesDone != v.FilesTotal {
		t.Errorf("backup volume %v: want filesDone = filesTotal > 0 (the dataset has %d files)", v, data.Files)
	}
	checkUploaded(t, v, data, why)
	if v.Snapshot == "" {
		t.Errorf("backup volume %v names no repository snapshot", v)
	}
	total, _, _ := unstructured.NestedInt64(b.Object, "status", "uploadedBytes")
	if total < v.UploadedBytes {
		t.Errorf("backup status.uploadedBytes %d is less than its volume's %d", total, v.UploadedBytes)
	}
}

// checkUploaded checks that a first backup of a volume reports the bytes it added to the repository: the
// dataset's bytes are pseudo-random, so neither compression nor deduplication shrinks them much.
func checkUploaded(t *testing.T, v framework.VolumeStatus, data framework.Manifest, why string) {
	t.Helper()
	if v.UploadedBytes < data.Dense*9/10 {
		t.Errorf("backup volume %v: uploadedBytes %d, want at least 90%% of the dataset's %d data bytes, which were new to the repository%s",
			v, v.UploadedBytes, data.Dense, why)
	}
}

// TestRichDatasetSnapshot proves the yardstick of the tests below: the rich dataset's manifest survives a CSI
// snapshot of the e2e driver (a copy that keeps everything) unchanged, and a 5% change shows in it.
func TestRichDatasetSnapshot(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		c.PVC(t, ns, "data", framework.StorageClass, nil)
		want := c.WriteRich(t, ns, "data", framework.Rich{Seed: 8, Small: 40, Large: 4 << 20})
		if want.Entries < 60 || want.Files < 45 || want.Dense < 4<<20 {
			t.Fatalf("rich dataset: %s, want at least 60 entries, 45 files and the large file's 4 MiB", want.Summary)
		}
		if again := c.Manifest(t, ns, "data"); !framework.CompareManifests(t, "manifest read twice", want, again) {
			return
		}
		c.Snapshot(t, ns, "snap", "data")
		changed := c.ChangeRich(t, ns, "data", 5, 9)
		if slices.Equal(changed.Lines, want.Lines) {
			t.Fatalf("change -percent 5 left the manifest as it was")
		}
		c.PVC(t, ns, "copy", framework.StorageClass, framework.SnapshotSource("snap"))
		framework.CompareManifests(t, "volume made from a snapshot", want, c.Manifest(t, ns, "copy"))
	})
}

// TestVolumeSnapshotRoundTrip: an application's volume on a class with CSI snapshots is backed up through a
// snapshot, the namespace is lost, and the restore brings back every byte and attribute before the
// application starts again.
func TestVolumeSnapshotRoundTrip(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		appRoundTrip(t, c, framework.StorageClass, "Snapshot", snapDriver,
			framework.Rich{Seed: 1, Small: 300, Large: largeBytes(t)}, 20*time.Minute)
	})
}

// appRoundTrip is the journey of an application whose volume of class holds the rich dataset r: back it up
// (the volume by method, through driver), lose the namespace, restore it, and the application runs again on
// its volume, which has every byte and attribute back.
func appRoundTrip(t *testing.T, c *framework.Cluster, class, method, driver string, r framework.Rich, timeout time.Duration) {
	t.Helper()
	ns := c.Namespace(t)
	loc := volumeLocation(t, c, ns)
	c.PVC(t, ns, "data", class, nil)
	want := c.WriteRich(t, ns, "data", r)
	deployApp(t, c, ns, "data")

	backup := strings.ToLower(method[:4]) + "-" + suffix(ns)
	b, err := backupCreate(t, c, backup, ns, loc, timeout)
	requireEnded(t, c, b, err, "Completed", "pxb.dev/backup")
	checkBackupVolume(t, b, framework.Volume(t, b, "data", ns), method, driver, want, "")

	loseNamespace(t, c, ns)
	rs, err := restoreCreate(t, c, backup+"-r", backup, timeout)
	requireEnded(t, c, rs, err, "Completed", "pxb.dev/restore")
	if v := framework.Volume(t, rs, "data", ns); v.Phase != "Completed" || v.BytesDone < want.Dense {
		t.Errorf("restore volume %v: want phase Completed and at least the dataset's %d data bytes done", v, want.Dense)
	}
	waitAvailable(t, c, ns, "app")
	if n := appRestarts(t, c, ns); n != 0 {
		t.Errorf("the restored application restarted %d times: it started before its volume was filled", n)
	}
	framework.CompareManifests(t, "volume restored from a "+method+" backup", want, c.Manifest(t, ns, "data"))
}

// TestVolumeRestoreStorageClassMapping: a volume restored into another namespace with
// --storage-class-mappings gets the mapped class and the same size, and the same data.
func TestVolumeRestoreStorageClassMapping(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		target := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		src := c.PVC(t, ns, "data", framework.StorageClass, nil)
		want := c.WriteRich(t, ns, "data", framework.Rich{Seed: 2, Small: 100, Large: 8 << 20})

		backup := "map-" + suffix(ns)
		b, err := backupCreate(t, c, backup, ns, loc, 10*time.Minute)
		requireEnded(t, c, b, err, "Completed", "pxb.dev/backup")
		restore := backup + "-r"
		r, err := restoreCreate(t, c, restore, backup, 10*time.Minute,
			"--namespace-mappings", ns+":"+target, "--storage-class-mappings", framework.StorageClass+":"+framework.StorageClassAlt)
		requireEnded(t, c, r, err, "Completed", "pxb.dev/restore")
		if v := framework.Volume(t, r, "data", target, ns); v.Phase != "Completed" {
			t.Errorf("restore volume %v: want phase Completed", v)
		}

		got, err := c.Kube.CoreV1().PersistentVolumeClaims(target).Get(framework.Context(t, 30*time.Second), "data", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("restored PVC: %v", err)
		}
		if sc := got.Spec.StorageClassName; sc == nil || *sc != framework.StorageClassAlt {
			t.Errorf("restored PVC has storageClassName %v, want %s", sc, framework.StorageClassAlt)
		}
		wantSize, gotSize := src.Spec.Resources.Requests[corev1.ResourceStorage], got.Spec.Resources.Requests[corev1.ResourceStorage]
		if wantSize.Cmp(gotSize) != 0 {
			t.Errorf("restored PVC requests %s, want %s", gotSize.String(), wantSize.String())
		}
		framework.CompareManifests(t, "volume restored with another class", want, c.Manifest(t, target, "data"))
	})
}

// TestVolumeIncremental: a second backup of a volume of which about 5% changed adds little to the repository,
// and its restore gives back the changed data.
func TestVolumeIncremental(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		target := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		c.PVC(t, ns, "data", framework.StorageClass, nil)
		// Large enough that chunk granularity (1 MiB on average, 4 MiB at most) around the rewritten region
		// stays small beside the 5% that changed.
		first := c.WriteRich(t, ns, "data", framework.Rich{Seed: 3, Small: 200, Large: 256 << 20})
		b1, err := backupCreate(t, c, "inc1-"+suffix(ns), ns, loc, 10*time.Minute)
		requireEnded(t, c, b1, err, "Completed", "pxb.dev/backup")
		v1 := framework.Volume(t, b1, "data", ns)
		checkBackupVolume(t, b1, v1, "Snapshot", snapDriver, first, "")

		second := c.ChangeRich(t, ns, "data", 5, 4)
		b2, err := backupCreate(t, c, "inc2-"+suffix(ns), ns, loc, 10*time.Minute)
		requireEnded(t, c, b2, err, "Completed", "pxb.dev/backup")
		v2 := framework.Volume(t, b2, "data", ns)
		if v2.Phase != "Completed" || v2.BytesTotal < second.Dense {
			t.Errorf("second backup volume %v: want phase Completed and bytesTotal >= the dataset's %d data bytes", v2, second.Dense)
		}
		if limit := v1.UploadedBytes * 15 / 100; v2.UploadedBytes <= 0 || v2.UploadedBytes >= limit {
			t.Errorf("second backup uploaded %d bytes after 5%% of %d changed; want more than 0 and less than 15%% of the first backup's %d (%d)",
				v2.UploadedBytes, second.Dense, v1.UploadedBytes, limit)
		} else {
			t.Logf("first backup uploaded %d bytes, the second %d (%.1f%%)", v1.UploadedBytes, v2.UploadedBytes,
				100*float64(v2.UploadedBytes)/float64(v1.UploadedBytes))
		}

		r, err := restoreCreate(t, c, "inc2-"+suffix(ns)+"-r", b2.GetName(), 10*time.Minute, "--namespace-mappings", ns+":"+target)
		requireEnded(t, c, r, err, "Completed", "pxb.dev/restore")
		framework.CompareManifests(t, "restore of the second backup", second, c.Manifest(t, target, "data"))

		// Both backups deleted, the location's maintenance Job frees their data.
		for _, b := range []string{b1.GetName(), b2.GetName()} {
			if out, err := kubectlPxb(t, c, 5*time.Minute, "backup", "delete", b, "-n", "pxb-system", "-y"); err != nil {
				t.Fatalf("backup delete %s: %v\n%s", b, err, out)
			}
		}
		// The backups are minutes old: --safety=none frees their data now rather than at a later maintenance.
		out, err := kubectlPxb(t, c, 10*time.Minute, "location", "maintain", loc, "--safety=none")
		if err != nil {
			t.Fatalf("location maintain: %v\n%s", err, out)
		}
		if freed := freedBytes(t, out); freed < v1.UploadedBytes*9/10 {
			t.Errorf("maintenance freed %d bytes; want at least 90%% of the %d the first backup uploaded", freed, v1.UploadedBytes)
		}
		if out, err := kubectlPxb(t, c, time.Minute, "location", "describe", loc); err != nil || !strings.Contains(out, "Last maintained:") {
			t.Errorf("location describe after maintenance: %v\n%s", err, out)
		}
	})
}

// freedBytes reads what `location maintain` says it freed ("freed 245.3 MiB (...)").
func freedBytes(t *testing.T, out string) int64 {
	t.Helper()
	m := regexp.MustCompile(`freed ([0-9.]+) (B|KiB|MiB|GiB) \(`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("location maintain says nothing of what it freed:\n%s", out)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]
	return int64(v * unit)
}

// TestVolumeFileSystem: a volume whose driver has no snapshots is backed up from the live volume of the pod
// that mounts it, and restored like any other.
func TestVolumeFileSystem(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		appRoundTrip(t, c, framework.StorageClassNoSnap, "FileSystem", plainDriver,
			framework.Rich{Seed: 5, Small: 100, Large: 16 << 20}, 10*time.Minute)
	})
}

// TestVolumeMoverCannotMount: pxb is told a wrong kubelet root directory, so the upload pod of a FileSystem
// volume cannot mount the volume's directory. The real kubelet says so in a FailedMount event; the volume
// fails with that reason and the fix soon after, instead of the backup waiting out its upload Job.
func TestVolumeMoverCannotMount(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		c.SetConfig(t, "kubeletRootDir", "/var/lib/pxb-e2e-no-kubelet")
		t.Cleanup(func() { c.SetConfig(t, "kubeletRootDir", "") })
		c.PVC(t, ns, "data", framework.StorageClassNoSnap, nil)
		c.WriteRich(t, ns, "data", framework.Rich{Seed: 3, Small: 10, Large: 1 << 20})
		deployApp(t, c, ns, "data")

		// Well within the hour an upload Job may run: the pod's events decide.
		b, err := backupCreate(t, c, "nomount-"+suffix(ns), ns, loc, 5*time.Minute, "--volume-method", "fs")
		requireEnded(t, c, b, err, "PartiallySucceeded", "pxb.dev/backup")
		v := framework.Volume(t, b, "data", ns)
		if v.Phase != "Failed" || !strings.Contains(v.Message, "cannot mount its volumes") || !strings.Contains(v.Message, "pxb-e2e-no-kubelet") ||
			!strings.Contains(v.Message, "set kubeletRootDir in pxb-system/pxb-config") {
			t.Errorf("volume %v: want Failed, with the kubelet's mount error naming the wrong path and the fix", v)
		}
	})
}

// TestVolumeUploadKilled: the upload Job's pod dies in the middle of a volume; Kubernetes retries it, the
// retry resumes, and the backup completes with data that restores exactly.
func TestVolumeUploadKilled(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		target := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		c.PVC(t, ns, "data", framework.StorageClass, nil)
		// Capped at 16 MiB/s, the upload of 256 MiB lasts several of the mover's 5-second progress reports,
		// so that the kill lands in the middle of it however fast the machine.
		want := c.WriteRich(t, ns, "data", framework.Rich{Seed: 6, Small: 50, Large: 256 << 20})
		c.SetConfig(t, "moverUploadBytesPerSecond", "16Mi")
		t.Cleanup(func() { c.SetConfig(t, "moverUploadBytesPerSecond", "0") })

		backup := "kill-" + suffix(ns)
		deleteAtEnd(t, c, v1alpha1.BackupsResource, backup)
		before := c.Inventory(t)
		if out, err := kubectlPxb(t, c, 2*time.Minute, "backup", "create", backup, "-n", "pxb-system",
			"--include-namespaces", ns, "--location", loc); err != nil {
			t.Fatalf("backup create: %v\n%s", err, out)
		}
		// Kill the upload pod once it is running and the volume shows progress.
		var killed string
		selector := "pxb.dev/backup=" + backup + ",pxb.dev/job=upload"
		framework.WaitFor(t, 10*time.Minute, "an upload pod with progress", func(ctx context.Context) (bool, error) {
			b, err := c.Dynamic.Resource(v1alpha1.BackupsResource).Namespace("pxb-system").Get(ctx, backup, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			if framework.Ended(b) {
				return false, fmt.Errorf("the backup ended (%s) before an upload pod with bytesDone > 0 was seen: "+
					"the volume is too small to catch the upload in the middle", framework.Phase(b))
			}
			var done, total int64
			for _, v := range framework.Volumes(t, b) {
				done, total = done+v.BytesDone, total+v.BytesTotal
			}
			if done == 0 {
				return false, nil
			}
			pods, err := c.Kube.CoreV1().Pods("pxb-system").List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return false, nil
			}
			for _, p := range pods.Items {
				if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
					continue
				}
				if err := c.Kube.CoreV1().Pods("pxb-system").Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
					return false, err
				}
				killed = p.Name
				t.Logf("killed upload pod %s at %d bytes done of %d", p.Name, done, total)
				return true, nil
			}
			return false, nil
		})

		// Kubernetes retries the upload in a new pod, which resumes from what the repository holds.
		var retries []string
		framework.WaitFor(t, 15*time.Minute, "backup "+backup+" to end", func(ctx context.Context) (bool, error) {
			if pods, err := c.Kube.CoreV1().Pods("pxb-system").List(ctx, metav1.ListOptions{LabelSelector: selector}); err == nil {
				for _, p := range pods.Items {
					if p.Name != killed && !slices.Contains(retries, p.Name) {
						retries = append(retries, p.Name)
					}
				}
			}
			b, err := c.Dynamic.Resource(v1alpha1.BackupsResource).Namespace("pxb-system").Get(ctx, backup, metav1.GetOptions{})
			return err == nil && framework.Ended(b), nil
		})
		b := c.Get(t, v1alpha1.BackupsResource, "pxb-system", backup)
		requireEnded(t, c, b, nil, "Completed", "pxb.dev/backup")
		if len(retries) == 0 {
			t.Errorf("no upload pod ran after %s was killed: the kill came after the upload had finished", killed)
		}
		c.WaitNoLeftovers(t, "pxb.dev/backup="+backup, before, 2*time.Minute)
		checkBackupVolume(t, b, framework.Volume(t, b, "data", ns), "Snapshot", snapDriver, want,
			" (an upload killed and retried must still count what its first pod added)")

		r, err := restoreCreate(t, c, backup+"-r", backup, 10*time.Minute, "--namespace-mappings", ns+":"+target)
		requireEnded(t, c, r, err, "Completed", "pxb.dev/restore")
		framework.CompareManifests(t, "restore of the backup whose upload was killed", want, c.Manifest(t, target, "data"))
	})
}

// TestVolumeFaults: volumes that cannot be backed up fail alone, with a reason, and the backup ends
// PartiallySucceeded without hanging; a restore with --restore-volumes=false recreates claims without data.
func TestVolumeFaults(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		target := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		c.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: good, labels: {app: good}}
spec: {accessModes: [ReadWriteOnce], storageClassName: %s, resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: nosnap}
spec: {accessModes: [ReadWriteOnce], storageClassName: %s, resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: pending}
spec: {accessModes: [ReadWriteOnce], storageClassName: pxb-e2e-missing, resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: skipped, annotations: {pxb.dev/volume-method: none}}
spec: {accessModes: [ReadWriteOnce], storageClassName: %s, resources: {requests: {storage: 1Gi}}}
`, framework.StorageClass, framework.StorageClassNoSnap, framework.StorageClass))
		for _, pvc := range []string{"good", "nosnap", "skipped"} {
			framework.WaitFor(t, 2*time.Minute, "PVC "+pvc+" bound", func(ctx context.Context) (bool, error) {
				p, err := c.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, pvc, metav1.GetOptions{})
				return err == nil && p.Status.Phase == corev1.ClaimBound, nil
			})
		}
		c.WriteDataset(t, ns, "good", 7, 10, 64<<10)

		backup := "faults-" + suffix(ns)
		b, err := backupCreate(t, c, backup, ns, loc, 10*time.Minute, "--volume-method", "snapshot")
		requireEnded(t, c, b, err, "PartiallySucceeded", "pxb.dev/backup")
		if v := framework.Volume(t, b, "good", ns); v.Phase != "Completed" || v.Method != "Snapshot" {
			t.Errorf("volume %v: want Snapshot and Completed", v)
		}
		if v := framework.Volume(t, b, "nosnap", ns); v.Phase != "Failed" || !strings.Contains(v.Message, plainDriver) ||
			!strings.Contains(v.Message, "VolumeSnapshotClass") {
			t.Errorf("volume %v: want Failed, with a message naming driver %s and its missing VolumeSnapshotClass", v, plainDriver)
		}
		if v := framework.Volume(t, b, "pending", ns); v.Phase != "Failed" || !strings.Contains(v.Message, "Pending") {
			t.Errorf("volume %v: want Failed, with a message saying the claim is Pending", v)
		}
		if v := framework.Volume(t, b, "skipped", ns); v.Phase != "Skipped" || v.Method != "None" {
			t.Errorf("volume %v (annotated pxb.dev/volume-method: none): want method None and phase Skipped", v)
		}
		errs, _, _ := unstructured.NestedStringSlice(b.Object, "status", "errors")
		if all := strings.Join(errs, "\n"); !strings.Contains(all, plainDriver) || !strings.Contains(all, "Pending") {
			t.Errorf("backup status.errors %q: want the reasons of both failed volumes", errs)
		}

		// --restore-volumes=false: the claim comes back, empty, and no download Job runs.
		restore := backup + "-r"
		deleteAtEnd(t, c, v1alpha1.RestoresResource, restore)
		before := c.Inventory(t)
		if out, err := kubectlPxb(t, c, 2*time.Minute, "restore", "create", restore, "-n", "pxb-system", "--from-backup", backup,
			"--namespace-mappings", ns+":"+target, "--selector", "app=good", "--restore-volumes=false"); err != nil {
			t.Fatalf("restore create: %v\n%s", err, out)
		}
		var downloads []string
		framework.WaitFor(t, 5*time.Minute, "restore "+restore+" to end", func(ctx context.Context) (bool, error) {
			jobs, err := c.Kube.BatchV1().Jobs("pxb-system").List(ctx, metav1.ListOptions{
				LabelSelector: "pxb.dev/restore=" + restore + ",pxb.dev/job=download"})
			if err == nil {
				for _, j := range jobs.Items {
					if !slices.Contains(downloads, j.Name) {
						downloads = append(downloads, j.Name)
					}
				}
			}
			r, err := c.Dynamic.Resource(v1alpha1.RestoresResource).Namespace("pxb-system").Get(ctx, restore, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			return framework.Ended(r), nil
		})
		r := c.Get(t, v1alpha1.RestoresResource, "pxb-system", restore)
		requireEnded(t, c, r, nil, "Completed", "pxb.dev/restore")
		if len(downloads) > 0 {
			t.Errorf("restore with --restore-volumes=false launched download Jobs %v", downloads)
		}
		c.WaitNoLeftovers(t, "pxb.dev/restore="+restore, before, 2*time.Minute)
		framework.WaitFor(t, 2*time.Minute, "restored PVC "+target+"/good bound", func(ctx context.Context) (bool, error) {
			p, err := c.Kube.CoreV1().PersistentVolumeClaims(target).Get(ctx, "good", metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.ClaimBound, nil
		})
		if m := c.Manifest(t, target, "good"); m.Entries != 1 {
			t.Errorf("the claim restored without its data holds %d entries, want only its root:\n%s", m.Entries, strings.Join(m.Lines, "\n"))
		}
	})
}

// TestVolumeBackupDeletedMidFlight deletes a Backup while its volume is being uploaded: the backup Job and
// the upload Job stop, and no snapshot, claim or Job of it is left behind.
func TestVolumeBackupDeletedMidFlight(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		c.PVC(t, ns, "data", framework.StorageClass, nil)
		c.WriteRich(t, ns, "data", framework.Rich{Seed: 8, Small: 20, Large: 1 << 30})

		backup := "gone-" + suffix(ns)
		before := c.Inventory(t)
		if out, err := kubectlPxb(t, c, 2*time.Minute, "backup", "create", backup, "-n", "pxb-system",
			"--include-namespaces", ns, "--location", loc); err != nil {
			t.Fatalf("backup create: %v\n%s", err, out)
		}
		framework.WaitFor(t, 10*time.Minute, "an upload pod running", func(ctx context.Context) (bool, error) {
			b, err := c.Dynamic.Resource(v1alpha1.BackupsResource).Namespace("pxb-system").Get(ctx, backup, metav1.GetOptions{})
			if err == nil && framework.Ended(b) {
				return false, fmt.Errorf("the backup ended (%s) before its upload was seen running", framework.Phase(b))
			}
			pods, err := c.Kube.CoreV1().Pods("pxb-system").List(ctx, metav1.ListOptions{LabelSelector: "pxb.dev/backup=" + backup + ",pxb.dev/job=upload"})
			if err != nil {
				return false, nil
			}
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning {
					return true, nil
				}
			}
			return false, nil
		})
		out, err := kubectlPxb(t, c, 5*time.Minute, "backup", "delete", backup, "-n", "pxb-system", "-y")
		if err != nil {
			t.Fatalf("backup delete: %v\n%s", err, out)
		}
		t.Logf("backup delete:\n%s", out)
		if _, err := c.Dynamic.Resource(v1alpha1.BackupsResource).Namespace("pxb-system").Get(framework.Context(t, time.Minute), backup, metav1.GetOptions{}); err == nil {
			t.Errorf("Backup %s still exists after backup delete", backup)
		}
		c.WaitNoLeftovers(t, "pxb.dev/backup="+backup, before, 3*time.Minute)
	})
}

// TestVolumeSnapshotNeverReady: a snapshot whose driver never takes it (a VolumeSnapshotClass for the
// driver without snapshots, which no snapshotter serves) fails that volume after snapshotTimeoutSeconds,
// with the snapshot named, and the backup ends PartiallySucceeded rather than hanging.
func TestVolumeSnapshotNeverReady(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		class := "pxb-e2e-never-" + suffix(ns)
		c.Apply(t, "", fmt.Sprintf(`apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata: {name: %s}
driver: %s
deletionPolicy: Delete
`, class, plainDriver))
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = c.KubectlCmd(ctx, "delete", "volumesnapshotclass", class, "--ignore-not-found").Run()
		})
		c.SetConfig(t, "snapshotTimeoutSeconds", "15")
		t.Cleanup(func() { c.SetConfig(t, "snapshotTimeoutSeconds", "600") })
		c.PVC(t, ns, "data", framework.StorageClassNoSnap, nil)
		c.WriteDataset(t, ns, "data", 5, 5, 4<<10)

		backup := "never-" + suffix(ns)
		deleteAtEnd(t, c, v1alpha1.BackupsResource, backup)
		// Nothing serves the class's driver, so nothing can finish deleting the snapshot pxb gives up on:
		// once the test has seen pxb delete it, its finalizers are dropped by hand.
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			unblock := `{"metadata":{"finalizers":null}}`
			for _, kind := range []string{"volumesnapshot", "volumesnapshotcontent"} {
				out, _ := c.KubectlCmd(ctx, "get", kind, "-A", "-l", "pxb.dev/backup="+backup, "-o", "name").Output()
				for _, name := range strings.Fields(string(out)) {
					_ = c.KubectlCmd(ctx, "patch", "-n", ns, name, "--type", "merge", "-p", unblock).Run()
				}
			}
			out, _ := c.KubectlCmd(ctx, "get", "volumesnapshotcontent", "-o", "jsonpath={range .items[?(@.spec.volumeSnapshotRef.namespace==\""+ns+"\")]}{.metadata.name} {end}").Output()
			for _, name := range strings.Fields(string(out)) {
				_ = c.KubectlCmd(ctx, "patch", "volumesnapshotcontent", name, "--type", "merge", "-p", unblock).Run()
			}
		})
		out, err := kubectlPxb(t, c, 6*time.Minute, "backup", "create", backup, "-n", "pxb-system", "--include-namespaces", ns,
			"--location", loc, "--wait", "--timeout", "5m", "--volume-method", "snapshot", "--snapshot-class", plainDriver+"="+class)
		b := c.WaitForEnd(t, v1alpha1.BackupsResource, "pxb-system", backup, time.Minute)
		requireEnded(t, c, b, err, "PartiallySucceeded", "pxb.dev/backup")
		if !strings.Contains(out, "not ready to use after 15s") {
			t.Errorf("backup create --wait printed:\n%s\nwant the volume's reason", out)
		}
		v := framework.Volume(t, b, "data", ns)
		if v.Phase != "Failed" || !strings.Contains(v.Message, "not ready to use after 15s") || !strings.Contains(v.Message, "VolumeSnapshot "+ns+"/") {
			t.Errorf("volume %v: want Failed, naming the VolumeSnapshot that was not ready after 15s", v)
		}
		// pxb deleted the snapshot it gave up on (it stays only because no snapshotter can finish that).
		vs, err := c.KubectlCmd(framework.Context(t, time.Minute), "get", "volumesnapshot", "-n", ns, "-l", "pxb.dev/backup="+backup,
			"-o", "jsonpath={range .items[*]}{.metadata.name}:{.metadata.deletionTimestamp} {end}").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(string(vs)) {
			if strings.HasSuffix(f, ":") {
				t.Errorf("VolumeSnapshot %s left without a deletion", strings.TrimSuffix(f, ":"))
			}
		}
	})
}

// TestBlockVolumeRoundTrip: a raw block volume (a VM's disk, say) is backed up from a snapshot of it, the
// namespace is lost, and the restore gives back a block claim with every byte of the device, its empty
// stretch included. A block volume whose driver has no snapshots cannot be read live: the backup says so.
func TestBlockVolumeRoundTrip(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		c.BlockPVC(t, ns, "disk", framework.StorageClass, 32<<20)
		want := c.DiskTool(t, ns, "disk", "-write", "-seed", "7")
		if !strings.HasPrefix(want, fmt.Sprintf("size %d sha256 ", 32<<20)) {
			t.Fatalf("disk tool: %q", want)
		}

		backup := "block-" + suffix(ns)
		b, err := backupCreate(t, c, backup, ns, loc, 10*time.Minute)
		requireEnded(t, c, b, err, "Completed", "pxb.dev/backup")
		if v := framework.Volume(t, b, "disk", ns); v.Phase != "Completed" || v.Method != "Snapshot" || v.BytesDone != 32<<20 || v.Snapshot == "" {
			t.Errorf("backup volume %v: want Completed through a Snapshot, %d bytes", v, 32<<20)
		}

		loseNamespace(t, c, ns)
		rs, err := restoreCreate(t, c, backup+"-r", backup, 10*time.Minute)
		requireEnded(t, c, rs, err, "Completed", "pxb.dev/restore")
		pvc, err := c.Kube.CoreV1().PersistentVolumeClaims(ns).Get(framework.Context(t, 30*time.Second), "disk", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pvc.Spec.VolumeMode == nil || *pvc.Spec.VolumeMode != corev1.PersistentVolumeBlock {
			t.Errorf("restored claim's volume mode %v, want Block", pvc.Spec.VolumeMode)
		}
		if got := c.DiskTool(t, ns, "disk"); got != want {
			t.Errorf("restored device: %q, want %q", got, want)
		}

		// Without snapshots there is no way to read a block volume consistently.
		c.BlockPVC(t, ns, "raw", framework.StorageClassNoSnap, 16<<20)
		nb, err := backupCreate(t, c, "block-nosnap-"+suffix(ns), ns, loc, 10*time.Minute, "--include-resources", "persistentvolumeclaims")
		requireEnded(t, c, nb, err, "PartiallySucceeded", "pxb.dev/backup")
		v := framework.Volume(t, nb, "raw", ns)
		if v.Phase != "Failed" || !strings.Contains(v.Message, "a block volume is backed up from a snapshot of it") {
			t.Errorf("block volume without snapshots: %v", v)
		}
	})
}
