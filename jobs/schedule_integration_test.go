//go:build integration

package jobs_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/schedule"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestScheduleOnTheAPIServer drives a schedule's starts on a real API server with the times given (the
// CronJobs themselves fire in the e2e suite's TestSchedule): a due start creates a Backup from the template
// and its Job, a start while it has not ended or before the next is due creates none, and retention deletes
// the Backups past the newest completed ones; a missing policy is reported in the schedule's status.
func TestScheduleOnTheAPIServer(t *testing.T) {
	c := testbed.APIServer(t)
	loc := setup(t, c)
	ns := c.Namespace(t)
	env, err := jobenv.NewEnvForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	everyTenMinutes(t, c, ns, "nightly", loc)
	start := time.Now()
	// As the Job's own identity: only pxb's ServiceAccounts set the labels of a scheduled Backup.
	job := jobIdentity(t, c, jobspec.KindSchedule)
	at := func(d time.Duration) *jobs.ScheduleOutcome {
		t.Helper()
		out, err := jobs.Schedule(ctxT(t, time.Minute), job, ns, "nightly", schedule.Interval, jobs.Options{}, start.Add(d))
		if err != nil {
			t.Fatalf("start at +%s: %v", d, err)
		}
		return out
	}
	// The scheduled Backup's Job cannot run here (no kubelet): the test carries it out itself.
	complete := func(name string) {
		t.Helper()
		if err := jobs.Backup(ctxT(t, 2*time.Minute), c.Config, ns, name, jobs.Options{}); err != nil {
			t.Fatalf("backup %s: %v", name, err)
		}
	}

	// A Backup synced from another cluster's location, labelled as this schedule's: never retention's.
	createAs(t, job, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "synced", Namespace: ns, Labels: map[string]string{v1alpha1.SyncedLabel: "true",
			v1alpha1.ScheduleLabel: "nightly", v1alpha1.ScheduleKindLabel: "interval"},
			Annotations: map[string]string{v1alpha1.ScheduledTimeAnnotation: start.Add(-time.Hour).Format(time.RFC3339)}},
		Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(loc)},
	})

	first := at(0)
	want := jobs.ScheduledBackupName("nightly", schedule.Interval, start)
	if first.Backup != want {
		t.Fatalf("first start created %q, want %q", first.Backup, want)
	}
	var b v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, want, &b)
	if b.Spec.Location != v1alpha1.ObjectName(loc) || b.Labels[v1alpha1.ScheduleLabel] != "nightly" || b.Labels[v1alpha1.ScheduleKindLabel] != "interval" {
		t.Errorf("scheduled Backup spec %+v labels %v", b.Spec, b.Labels)
	}
	launched := jobspec.Name(jobspec.Target{Kind: jobspec.KindBackup, Namespace: ns, Name: want})
	if _, err := c.Clientset(t).BatchV1().Jobs(v1alpha1.SystemNamespace).Get(ctxT(t, 30*time.Second), launched, metav1.GetOptions{}); err != nil {
		t.Errorf("the scheduled Backup's Job: %v", err)
	}

	if out := at(11 * time.Minute); out.Backup != "" || !strings.Contains(out.Skipped, "Backup "+ns+"/"+want+" of the last interval run has not ended") {
		t.Errorf("start while the last backup runs: %+v", out)
	}
	complete(want)
	if out := at(2 * time.Minute); out.Backup != "" || out.Skipped != "no interval backup is due" {
		t.Errorf("start before the interval: %+v", out)
	}
	second := at(12 * time.Minute)
	if second.Backup == "" || second.Backup == want || len(second.Deleted) != 0 {
		t.Fatalf("start after the interval: %+v; want a second Backup and nothing deleted (only one completed)", second)
	}
	complete(second.Backup)
	third := at(24 * time.Minute)
	if third.Backup == "" || len(third.Deleted) != 1 || third.Deleted[0] != want {
		t.Errorf("third start: %+v; want a Backup, and %s deleted (retain 1)", third, want)
	}
	if _, err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns).Get(ctxT(t, 30*time.Second), want, metav1.GetOptions{}); err == nil {
		t.Errorf("Backup %s deleted by retention is still there", want)
	}
	l, err := store.OpenLocation(ctxT(t, time.Minute), env.Kube, env.Dynamic, loc, location.Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n, err := l.DeleteBackup(ctxT(t, time.Minute), ns, want); err != nil || n != 0 {
		t.Errorf("the data of Backup %s, deleted by retention: %d snapshots left (%v)", want, n, err)
	}
	if _, err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns).Get(ctxT(t, 30*time.Second), "synced", metav1.GetOptions{}); err != nil {
		t.Errorf("the synced Backup: %v (retention must leave it)", err)
	}
	var bs v1alpha1.BackupSchedule
	get(t, c, v1alpha1.BackupSchedulesResource, ns, "nightly", &bs)
	if string(bs.Status.LastBackupName) != third.Backup || string(bs.Status.LastSuccessfulBackupName) != second.Backup || bs.Status.Message != "" {
		t.Errorf("schedule status %+v", bs.Status)
	}
	// What the alert on a schedule without a recent success reads: the second run's start, and the policy's
	// 10 minutes.
	if ok := bs.Status.LastSuccessfulBackupTime; ok == nil || !ok.Time.Equal(start.Add(12*time.Minute).Truncate(time.Second)) || bs.Status.IntervalSeconds != 600 {
		t.Errorf("schedule status: lastSuccessfulBackupTime %v (want %v), intervalSeconds %d (want 600)",
			ok, start.Add(12*time.Minute).Truncate(time.Second), bs.Status.IntervalSeconds)
	}

	// A schedule whose policy is gone says so, in its status too.
	create(t, c, v1alpha1.BackupSchedulesResource, &v1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: ns},
		Spec:       v1alpha1.BackupScheduleSpec{Policy: "no-such-policy", Template: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(loc)}},
	})
	_, err = jobs.Schedule(ctxT(t, time.Minute), job, ns, "orphan", schedule.Daily, jobs.Options{}, start)
	if err == nil || !strings.Contains(err.Error(), "spec.policy: SchedulePolicy /no-such-policy not found") {
		t.Errorf("start of a schedule without its policy: %v", err)
	}
	get(t, c, v1alpha1.BackupSchedulesResource, ns, "orphan", &bs)
	if !strings.Contains(bs.Status.Message, "no-such-policy not found") {
		t.Errorf("status of a schedule without its policy: %q", bs.Status.Message)
	}
}

// TestScheduleRetentionUnderObjectLock: in a location with object lock, retention keeps a backup whose data
// is still locked, says until when, and deletes nothing; the start itself succeeds.
func TestScheduleRetentionUnderObjectLock(t *testing.T) {
	c := testbed.APIServer(t)
	loc := setupOn(t, c, testbed.S3Locked(t), 1)
	ns := c.Namespace(t)
	everyTenMinutes(t, c, ns, "locked", loc)
	start := time.Now()
	var made []string
	for i := range 3 {
		out, err := jobs.Schedule(ctxT(t, time.Minute), jobIdentity(t, c, jobspec.KindSchedule), ns, "locked", schedule.Interval, jobs.Options{}, start.Add(time.Duration(i)*12*time.Minute))
		if err != nil || out.Backup == "" {
			t.Fatalf("start %d: %+v, %v", i, out, err)
		}
		if i < 2 {
			if err := jobs.Backup(ctxT(t, 2*time.Minute), c.Config, ns, out.Backup, jobs.Options{}); err != nil {
				t.Fatalf("backup %s: %v", out.Backup, err)
			}
		} else if len(out.Deleted) != 0 || len(out.Kept) != 1 || !strings.Contains(out.Kept[0], "Backup "+ns+"/"+made[0]+" kept: location "+loc+" keeps its data under object lock (1 days) until ") {
			t.Errorf("retention under object lock: deleted %q, kept %q; want %s kept with the date its lock ends", out.Deleted, out.Kept, made[0])
		}
		made = append(made, out.Backup)
	}
	if _, err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns).Get(ctxT(t, 30*time.Second), made[0], metav1.GetOptions{}); err != nil {
		t.Errorf("Backup %s under object lock: %v", made[0], err)
	}
}

// TestScheduleRetentionIgnoresForgedBackups: with the admission policy that keeps the schedule's labels to
// pxb gone (as an administrator might delete it), a completed Backup given the schedule's labels and a
// scheduled time an hour ahead is neither counted by retention nor deleted by it; the schedule's own
// Backups are, in the order of the times its status records.
func TestScheduleRetentionIgnoresForgedBackups(t *testing.T) {
	c := testbed.APIServer(t)
	loc := setup(t, c)
	ns := c.Namespace(t)
	everyTenMinutes(t, c, ns, "nightly", loc)
	withoutBinding(t, c, "pxb-backup-marks")
	start := time.Now()
	job := jobIdentity(t, c, jobspec.KindSchedule)
	at := func(d time.Duration) *jobs.ScheduleOutcome {
		t.Helper()
		out, err := jobs.Schedule(ctxT(t, time.Minute), job, ns, "nightly", schedule.Interval, jobs.Options{}, start.Add(d))
		if err != nil || out.Backup == "" {
			t.Fatalf("start at +%s: %+v, %v", d, out, err)
		}
		return out
	}
	complete := func(name string) {
		t.Helper()
		if err := jobs.Backup(ctxT(t, 2*time.Minute), c.Config, ns, name, jobs.Options{}); err != nil {
			t.Fatalf("backup %s: %v", name, err)
		}
	}
	exists := func(name string) bool {
		t.Helper()
		_, err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns).Get(ctxT(t, 30*time.Second), name, metav1.GetOptions{})
		return err == nil
	}

	first := at(0).Backup
	complete(first)
	// A forgery that admission no longer refuses (once the API server has forgotten the binding): "newer"
	// than anything the schedule made, and completed.
	forged, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&v1alpha1.Backup{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: "forged", Namespace: ns,
			Labels:      map[string]string{v1alpha1.ScheduleLabel: "nightly", v1alpha1.ScheduleKindLabel: string(schedule.Interval)},
			Annotations: map[string]string{v1alpha1.ScheduledTimeAnnotation: start.Add(time.Hour).Format(time.RFC3339)}},
		Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(loc)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var last error
	if err := wait.PollUntilContextTimeout(ctxT(t, time.Minute), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, last = c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: forged}, metav1.CreateOptions{})
		return last == nil, nil
	}); err != nil {
		t.Fatalf("the API server still refuses the forged Backup: %v", last)
	}
	complete("forged")

	second := at(12 * time.Minute)
	if len(second.Deleted) != 0 || !exists(first) {
		t.Fatalf("second start deleted %q; want nothing deleted: %s is the one completed backup of the schedule", second.Deleted, first)
	}
	complete(second.Backup)
	third := at(24 * time.Minute)
	if len(third.Deleted) != 1 || third.Deleted[0] != first || exists(first) {
		t.Errorf("third start deleted %q; want %s (retain 1)", third.Deleted, first)
	}
	if !exists("forged") {
		t.Error("retention deleted the forged Backup, which the schedule did not make")
	}
	var bs v1alpha1.BackupSchedule
	get(t, c, v1alpha1.BackupSchedulesResource, ns, "nightly", &bs)
	var recorded []string
	for _, r := range bs.Status.Backups {
		recorded = append(recorded, string(r.Name))
	}
	if want := []string{second.Backup, third.Backup}; !slices.Equal(recorded, want) {
		t.Errorf("the schedule's recorded Backups = %v, want %v", recorded, want)
	}
}

// everyTenMinutes creates a policy of one backup every 10 minutes, keeping 1, and the BackupSchedule
// ns/name of backups into location loc on it.
func everyTenMinutes(t *testing.T, c *testbed.Cluster, ns, name, loc string) {
	t.Helper()
	policy := "p-" + ns
	create(t, c, v1alpha1.SchedulePoliciesResource, &v1alpha1.SchedulePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: policy},
		Spec:       v1alpha1.SchedulePolicySpec{Interval: &v1alpha1.IntervalPolicy{Minutes: 10, Retain: 1}, TimeZone: "UTC"},
	})
	create(t, c, v1alpha1.BackupSchedulesResource, &v1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1alpha1.BackupScheduleSpec{Policy: v1alpha1.ObjectName(policy), Template: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(loc)}},
	})
}
