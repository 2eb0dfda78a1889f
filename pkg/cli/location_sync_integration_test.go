//go:build integration

package cli_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// runWhenLaunched stands in for the Job controller and the kubelet, which the test bed lacks: once a command
// has created a new Job of kind for location name (one not there before), it runs the Job's code (run)
// in-process, as the pod would, and marks the Job complete.
func runWhenLaunched(t *testing.T, c *testbed.Cluster, name, kind string, run func(ctx context.Context, job *batchv1.Job) error) <-chan error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	jobs := c.Clientset(t).BatchV1().Jobs(v1alpha1.SystemNamespace)
	selector := metav1.ListOptions{LabelSelector: "pxb.dev/location=" + name + ",pxb.dev/job=" + kind}
	before, err := jobs.List(ctx, selector)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, j := range before.Items {
		seen[j.Name] = true
	}
	done := make(chan error, 1)
	go func() {
		defer cancel()
		var job *batchv1.Job
		err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			list, err := jobs.List(ctx, selector)
			if err != nil {
				return false, nil
			}
			for i := range list.Items {
				if !seen[list.Items[i].Name] {
					job = &list.Items[i]
				}
			}
			return job != nil, nil
		})
		if err == nil {
			started := metav1.Now()
			if err = run(ctx, job); err == nil {
				now := metav1.Now()
				job.Status = batchv1.JobStatus{StartTime: &started, CompletionTime: &now, Succeeded: 1, Conditions: []batchv1.JobCondition{
					{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: now},
					{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: now},
				}}
				_, err = jobs.UpdateStatus(ctx, job, metav1.UpdateOptions{})
			}
		}
		done <- err
	}()
	return done
}

// syncCLI runs `kubectl pxb location sync name` with its Job run in-process, and returns its output.
func syncCLI(t *testing.T, c *testbed.Cluster, name string) string {
	t.Helper()
	job := runWhenLaunched(t, c, name, "sync", func(ctx context.Context, _ *batchv1.Job) error {
		_, err := jobs.SyncLocation(ctx, jobIdentity(t, c), name, jobs.Options{})
		return err
	})
	out := mustPxb(t, c, "location", "sync", name)
	if err := <-job; err != nil {
		t.Fatalf("sync job: %v", err)
	}
	return out
}

// jobIdentity is a client config for the pxb-location ServiceAccount, the identity of a sync's pod: only pxb's
// ServiceAccounts may mark a Backup as synced.
func jobIdentity(t *testing.T, c *testbed.Cluster) *rest.Config {
	return c.UserConfig(t, "system:serviceaccount:"+v1alpha1.SystemNamespace+":"+v1alpha1.LocationServiceAccount,
		"system:serviceaccounts", "system:serviceaccounts:"+v1alpha1.SystemNamespace, "system:authenticated")
}

// maintainCLI runs `kubectl pxb location maintain name flags...` with its Job run in-process, given the
// --safety its pod was told, and returns its output.
func maintainCLI(t *testing.T, c *testbed.Cluster, name string, flags ...string) string {
	t.Helper()
	job := runWhenLaunched(t, c, name, "maintenance", func(ctx context.Context, job *batchv1.Job) error {
		args := job.Spec.Template.Spec.Containers[0].Args
		i := slices.Index(args, "--safety")
		_, err := jobs.MaintainLocation(ctx, c.Config, name, jobs.Options{FreeRecent: i >= 0 && i+1 < len(args) && args[i+1] == "none"})
		return err
	})
	out := mustPxb(t, c, append([]string{"location", "maintain", name}, flags...)...)
	if err := <-job; err != nil {
		t.Fatalf("maintenance job: %v", err)
	}
	return out
}

// backupIn makes Backup ns/name in location loc the way the backup Job does, in-process.
func backupIn(t *testing.T, c *testbed.Cluster, ns, name, loc string) *v1alpha1.Backup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "Backup",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     map[string]any{"location": loc},
	}}
	if _, err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := jobs.Backup(ctx, c.Config, ns, name, jobs.Options{}); err != nil {
		t.Fatalf("backup %s: %v", name, err)
	}
	return getBackup(t, c, ns, name)
}

func getBackup(t *testing.T, c *testbed.Cluster, ns, name string) *v1alpha1.Backup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b v1alpha1.Backup
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

// forget deletes the Backup resource alone, as if the backup had been made by another cluster.
func forget(t *testing.T, c *testbed.Cluster, ns, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// inLocation says whether location loc still holds the backup ns/name.
func inLocation(t *testing.T, c *testbed.Cluster, loc, ns, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := store.OpenLocation(ctx, c.Clientset(t), c.Dynamic(t), loc, location.Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = collect.ReadManifest(ctx, store.Prefixed(l.Store, layout.BackupPrefix(ns, name)))
	if err != nil && !errors.Is(err, collect.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestLocationSync drives `location sync` and the deletion of synced and object-locked Backups the way a
// user would. One cluster plays both sides: a Backup made through location src is forgotten by the
// cluster (its resource deleted, its data kept), as if another cluster had made it, and location mirror on
// the same bucket and key syncs it back. TestSyncBetweenClusters in jobs/ syncs between two real
// control planes. It installs pxb and uninstalls it at the end.
func TestLocationSync(t *testing.T) {
	c := testbed.APIServer(t)
	mustPxb(t, c, "install")
	t.Cleanup(func() { _, _ = pxb(t, c, "uninstall", "--purge", "--force") })

	t.Run("sync and delete", func(t *testing.T) {
		st := testbed.S3(t)
		s3Location(t, c, "src", st, st.AccessKeyID, st.SecretAccessKey)
		mustPxb(t, c, "location", "create", "mirror", "--provider", "s3", "--bucket", st.Bucket, "--endpoint", st.Endpoint,
			"--region", st.Region, "--s3-force-path-style", "--credential", "src", "--encryption-key-secret", "src-encryption-key",
			"--allowed-namespaces", "*")
		ns := c.Namespace(t)
		made := backupIn(t, c, ns, "app", "src")
		forget(t, c, ns, "app")

		out := syncCLI(t, c, "mirror")
		wantLines(t, out, "runs the sync of location mirror")
		wantStatus(t, out, "Location", "mirror", "Synced", "1 backup, 1 new ("+ns+"/app), 0 already present")
		synced := getBackup(t, c, ns, "app")
		if synced.Labels["pxb.dev/synced"] != "true" || synced.Spec.Location != "mirror" || synced.Status.Phase != v1alpha1.BackupCompleted ||
			synced.Status.Progress == nil || synced.Status.Progress.ItemsDone != made.Status.Progress.ItemsDone {
			t.Fatalf("synced Backup: labels %v spec %+v status %+v", synced.Labels, synced.Spec, synced.Status)
		}
		if !lineHasAll(mustPxb(t, c, "backup", "get", "-n", ns), "app", "Completed", "mirror") {
			t.Error("backup get does not list the synced Backup")
		}
		id, err := store.ClusterID(context.Background(), c.Clientset(t))
		if err != nil {
			t.Fatal(err)
		}
		out = mustPxb(t, c, "backup", "describe", "app", "-n", ns)
		wantStatus(t, out, "Origin cluster", id)
		wantLines(t, out, "yes (found in location mirror by a sync; deleting the Backup keeps its data unless --delete-data)")
		wantStatus(t, mustPxb(t, c, "location", "describe", "mirror"), "Synced", "1 backup, 1 new ("+ns+"/app), 0 already present")
		// Again: present, not new.
		wantStatus(t, syncCLI(t, c, "mirror"), "Synced", "1 backup, 0 new, 1 already present")

		// Deleting a synced Backup leaves its data; a later sync brings it back.
		out, err = pxb(t, c, "backup", "delete", "app", "-n", ns)
		if err == nil || !strings.Contains(out, "Its data stays in location mirror. [y/N]") {
			t.Errorf("delete without an answer: %v\n%s", err, out)
		}
		wantLines(t, mustPxb(t, c, "backup", "delete", "app", "-n", ns, "--yes"), "Backup "+ns+"/app deleted", "Its data stays in location mirror")
		if !inLocation(t, c, "mirror", ns, "app") {
			t.Fatal("deleting the synced Backup deleted its data")
		}
		wantStatus(t, syncCLI(t, c, "mirror"), "Synced", "1 backup, 1 new ("+ns+"/app), 0 already present")

		// --delete-data deletes the data too; then there is nothing left to sync.
		wantLines(t, mustPxb(t, c, "backup", "delete", "app", "-n", ns, "--yes", "--delete-data"), "Deleted 1 snapshots", "Backup "+ns+"/app deleted")
		if inLocation(t, c, "mirror", ns, "app") {
			t.Fatal("delete --delete-data left the data")
		}
		wantStatus(t, syncCLI(t, c, "mirror"), "Synced", "0 backups, 0 new, 0 already present")
		// Its data goes at the location's maintenance, once older than a lease, or now with --safety=none.
		out = maintainCLI(t, c, "mirror")
		if !regexp.MustCompile(`freed 0 B \(0 packs deleted, 0 rewritten\); [0-9.]+ KiB of unused data in [1-9][0-9]* packs? written in the last 35m0s goes at a later maintenance`).MatchString(out) {
			t.Errorf("maintenance right after the backup's data was deleted: want nothing freed yet, and the young data named:\n%s", out)
		}
		out = maintainCLI(t, c, "mirror", "--safety=none")
		wantLines(t, out, "runs the maintenance of location mirror")
		if !regexp.MustCompile(`Maintenance: +verified 0 snapshots in [1-9][0-9]* packs?; freed [0-9.]+ KiB \([1-9][0-9]* packs? deleted, 0 rewritten\)\n`).MatchString(out) {
			t.Errorf("maintenance after the backup's data was deleted:\n%s", out)
		}
		desc := mustPxb(t, c, "location", "describe", "mirror")
		wantLines(t, desc, "Last maintained:")
		wantStatus(t, desc, "Maintenance schedule", "none")
		if !regexp.MustCompile(`Maintenance: +verified 0 snapshots in [0-9]+ packs?; freed [0-9.]+ KiB`).MatchString(desc) {
			t.Errorf("location describe after maintenance:\n%s", desc)
		}

		// --wait=false returns once the Job exists; the Job is shaped like the check's.
		wantLines(t, mustPxb(t, c, "location", "sync", "mirror", "--wait=false"), "kubectl pxb location describe mirror")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		jobs, err := c.Clientset(t).BatchV1().Jobs(v1alpha1.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "pxb.dev/location=mirror,pxb.dev/job=sync"})
		if err != nil || len(jobs.Items) != 5 {
			t.Fatalf("sync Jobs: %v, %v", jobs, err)
		}
		pod := jobs.Items[0].Spec.Template.Spec
		if got := strings.Join(pod.Containers[0].Args, " "); got != "sync --resource backuplocations --namespace pxb-system --name mirror" ||
			pod.ServiceAccountName != v1alpha1.LocationServiceAccount {
			t.Errorf("sync Job runs %q as %s", got, pod.ServiceAccountName)
		}
		if out, err := pxb(t, c, "location", "sync", "mirror", "--timeout", "2s"); err == nil || !strings.Contains(err.Error(), "did not finish within 2s") {
			t.Errorf("sync that cannot run: err=%v out=%s", err, out)
		}
		if out, err := pxb(t, c, "location", "sync", "nope"); err == nil || !strings.Contains(err.Error(), `BackupLocation "nope" not found`) {
			t.Errorf("sync of a missing location: err=%v out=%s", err, out)
		}
	})

	t.Run("schedule", func(t *testing.T) {
		st := testbed.S3(t)
		s3Location(t, c, "timed", st, st.AccessKeyID, st.SecretAccessKey)
		cronJobs := c.Clientset(t).BatchV1().CronJobs(v1alpha1.SystemNamespace)
		cronJob := func() (*batchv1.CronJob, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return cronJobs.Get(ctx, "pxb-sync-timed", metav1.GetOptions{})
		}
		wantStatus(t, mustPxb(t, c, "location", "describe", "timed"), "Sync schedule", "none")

		wantLines(t, mustPxb(t, c, "location", "sync", "timed", "--every", "1h"),
			"CronJob pxb-system/pxb-sync-timed syncs location timed every 1h (0 * * * *).")
		cj, err := cronJob()
		if err != nil {
			t.Fatal(err)
		}
		pod := cj.Spec.JobTemplate.Spec.Template.Spec
		if got := strings.Join(pod.Containers[0].Args, " "); cj.Spec.Schedule != "0 * * * *" ||
			got != "sync --resource backuplocations --namespace pxb-system --name timed" || pod.ServiceAccountName != v1alpha1.LocationServiceAccount ||
			len(cj.OwnerReferences) != 1 || cj.OwnerReferences[0].Name != "timed" {
			t.Errorf("CronJob schedule %q runs %q as %s, owners %+v", cj.Spec.Schedule, got, pod.ServiceAccountName, cj.OwnerReferences)
		}
		wantStatus(t, mustPxb(t, c, "location", "describe", "timed"), "Sync schedule", "every 1h (0 * * * *), CronJob pxb-system/pxb-sync-timed")

		// Scheduling again updates the CronJob.
		wantLines(t, mustPxb(t, c, "location", "sync", "timed", "--schedule", "*/30 * * * *"),
			`CronJob pxb-system/pxb-sync-timed syncs location timed on schedule "*/30 * * * *".`)
		again, err := cronJob()
		if err != nil || again.UID != cj.UID || again.Spec.Schedule != "*/30 * * * *" || len(again.Annotations) != 0 {
			t.Errorf("CronJob after --schedule: %v, %+v %+v", err, again.ObjectMeta, again.Spec)
		}

		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--every", "45m"}, "--every: every 45m0s has no cron schedule"},
			{[]string{"--every", "1h", "--unschedule"}, "--every, --schedule and --unschedule are mutually exclusive"},
			{[]string{"--schedule", "hourly"}, `--schedule "hourly": want the 5 fields of a cron schedule`},
		} {
			if out, err := pxb(t, c, append([]string{"location", "sync", "timed"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("sync %v: err=%v, want %q\n%s", tc.args, err, tc.want, out)
			}
		}
		if out, err := pxb(t, c, "location", "sync", "nope", "--every", "1h"); err == nil || !strings.Contains(err.Error(), `BackupLocation "nope" not found`) {
			t.Errorf("schedule of a missing location: err=%v out=%s", err, out)
		}

		wantLines(t, mustPxb(t, c, "location", "sync", "timed", "--every", "0"),
			"Location timed is no longer synced on a schedule (CronJob pxb-system/pxb-sync-timed deleted).")
		if _, err := cronJob(); !apierrors.IsNotFound(err) {
			t.Errorf("CronJob after --every 0: %v", err)
		}
		wantLines(t, mustPxb(t, c, "location", "sync", "timed", "--unschedule"), "Location timed was not synced on a schedule.")
		wantStatus(t, mustPxb(t, c, "location", "describe", "timed"), "Sync schedule", "none")

		// Maintenance is scheduled the same way, in a CronJob of its own, and reads every pack within 30 days.
		wantLines(t, mustPxb(t, c, "location", "maintain", "timed", "--every", "24h"),
			"CronJob pxb-system/pxb-maintenance-timed maintains location timed every 24h (0 0 * * *).")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		mcj, err := cronJobs.Get(ctx, "pxb-maintenance-timed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(mcj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args, " "); got != "maintenance --resource backuplocations --namespace pxb-system --name timed --read-data-period 720h0m0s" {
			t.Errorf("maintenance CronJob runs %q", got)
		}
		desc := mustPxb(t, c, "location", "describe", "timed")
		wantStatus(t, desc, "Maintenance schedule", "every 24h (0 0 * * *), CronJob pxb-system/pxb-maintenance-timed")
		wantStatus(t, desc, "Sync schedule", "none")
		wantLines(t, mustPxb(t, c, "location", "maintain", "timed", "--unschedule"),
			"Location timed is no longer maintained on a schedule (CronJob pxb-system/pxb-maintenance-timed deleted).")

		// The CronJob goes with its location.
		mustPxb(t, c, "location", "sync", "timed", "--every", "15m")
		mustPxb(t, c, "location", "delete", "timed")
		err = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			_, err := cronJob()
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Errorf("the sync CronJob outlived its location: %v", err)
		}
	})

	t.Run("locked", func(t *testing.T) {
		st := testbed.S3Locked(t)
		s3Location(t, c, "vaultcred", st, st.AccessKeyID, st.SecretAccessKey)
		mustPxb(t, c, "location", "create", "vault", "--provider", "s3", "--bucket", st.Bucket, "--endpoint", st.Endpoint,
			"--region", st.Region, "--s3-force-path-style", "--credential", "vaultcred", "--object-lock-days", "2", "--allowed-namespaces", "*")
		ns := c.Namespace(t)
		b := backupIn(t, c, ns, "sealed", "vault")

		// Refused before anything is deleted, naming the date.
		refusal := func(b *v1alpha1.Backup) string {
			until := b.Status.CompletionTimestamp.Add(48 * time.Hour).UTC().Format(time.RFC3339)
			return "location vault keeps its data under object lock (2 days) until " + until + " (in 2 days); nothing was deleted"
		}
		out, err := pxb(t, c, "backup", "delete", "sealed", "-n", ns, "--yes")
		if err == nil || !strings.Contains(err.Error(), refusal(b)) {
			t.Fatalf("delete of a locked backup: err=%v, want %q\n%s", err, refusal(b), out)
		}
		if getBackup(t, c, ns, "sealed").Status.Phase != v1alpha1.BackupCompleted || !inLocation(t, c, "vault", ns, "sealed") {
			t.Fatal("the refused delete deleted something")
		}

		if out := mustPxb(t, c, "backup", "describe", "sealed", "-n", ns); !strings.Contains(out, "no (made in this cluster)") || strings.Contains(out, "Origin cluster") {
			t.Errorf("describe of a Backup made here:\n%s", out)
		}

		// A synced Backup of a locked location: the resource may go, the data may not.
		forget(t, c, ns, "sealed")
		if _, err := jobs.SyncLocation(context.Background(), jobIdentity(t, c), "vault", jobs.Options{}); err != nil {
			t.Fatal(err)
		}
		synced := getBackup(t, c, ns, "sealed")
		out, err = pxb(t, c, "backup", "delete", "sealed", "-n", ns, "--yes", "--delete-data")
		if err == nil || !strings.Contains(err.Error(), refusal(synced)) {
			t.Fatalf("delete --delete-data of a locked synced backup: err=%v, want %q\n%s", err, refusal(synced), out)
		}
		wantLines(t, mustPxb(t, c, "backup", "delete", "sealed", "-n", ns, "--yes"), "Its data stays in location vault")
		if !inLocation(t, c, "vault", ns, "sealed") {
			t.Fatal("the locked data is gone")
		}
	})
}

func lineHasAll(out string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}
