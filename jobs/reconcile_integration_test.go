//go:build integration

package jobs_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// reconcilerIdentity is the reconciler's ServiceAccount, with the RBAC pxb installs for it.
func reconcilerIdentity(t *testing.T, c *testbed.Cluster) *rest.Config {
	return c.UserConfig(t, "system:serviceaccount:"+v1alpha1.SystemNamespace+":"+v1alpha1.ReconcilerServiceAccount,
		"system:serviceaccounts", "system:serviceaccounts:"+v1alpha1.SystemNamespace, "system:authenticated")
}

// update writes obj (read before) back as it is.
func update(t *testing.T, c *testbed.Cluster, gvr schema.GroupVersionResource, obj metav1.Object) {
	t.Helper()
	u := asUnstructured(t, gvr, obj)
	if _, err := c.Dynamic(t).Resource(gvr).Namespace(obj.GetNamespace()).Update(ctxT(t, 30*time.Second), u, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// reconcile runs one reconciliation as the reconciler and fails the test when it could not look at all.
func reconcile(t *testing.T, c *testbed.Cluster) *jobs.ReconcileResult {
	t.Helper()
	res, err := jobs.Reconcile(ctxT(t, 2*time.Minute), reconcilerIdentity(t, c))
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	return res
}

// jobsOf lists the Jobs in pxb-system whose label key is value.
func jobsOf(t *testing.T, kube kubernetes.Interface, key, value string) []batchv1.Job {
	t.Helper()
	list, err := kube.BatchV1().Jobs(v1alpha1.SystemNamespace).List(ctxT(t, time.Minute), metav1.ListOptions{LabelSelector: key + "=" + value})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// TestReconcileLaunches: a Backup created as with kubectl apply (no plugin) gets its Job from the reconciler,
// once even when two reconciliations run at once, as pxb-job and for that Backup's UID. A Job that fails
// without ending its Backup fails the Backup with the Job's reason; a Job deleted while its Restore runs is
// launched again. The test bed has no kubelet, so the Jobs never run: what is checked is what the reconciler
// asks of the API server.
func TestReconcileLaunches(t *testing.T) {
	c := testbed.APIServer(t)
	kube := c.Clientset(t)
	locName := setupOn(t, c, testbed.S3(t), 0)
	ns := c.Namespace(t)
	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "applied", Namespace: ns},
		Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)},
	})
	// A synced Backup whose status sync has not written yet: its data is in the location already. Only pxb's
	// jobs may mark a Backup synced.
	createAs(t, jobIdentity(t, c, jobspec.KindSync), v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "synced", Namespace: ns, Labels: map[string]string{v1alpha1.SyncedLabel: "true"}},
		Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)},
	})
	var b v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, "applied", &b)

	var wg sync.WaitGroup
	results := make([]*jobs.ReconcileResult, 2)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = reconcile(t, c) }()
	}
	wg.Wait()
	what := "Backup " + ns + "/applied"
	launched := 0
	for _, r := range results {
		for _, l := range r.Launched {
			if l == what {
				launched++
			}
		}
		for _, p := range r.Problems {
			if strings.Contains(p, ns) {
				t.Errorf("reconcile: %s", p)
			}
		}
	}
	js := jobsOf(t, kube, jobspec.LabelBackup, "applied")
	if launched == 0 || len(js) != 1 {
		t.Fatalf("two reconciliations at once: %d said they launched %s, %d Jobs exist; want one Job", launched, what, len(js))
	}
	if synced := jobsOf(t, kube, jobspec.LabelBackup, "synced"); len(synced) != 0 {
		t.Errorf("a synced Backup got %d Jobs: it would be backed up again under its name", len(synced))
	}
	job := js[0]
	spec := job.Spec.Template.Spec
	if job.Annotations[jobspec.AnnotationOwnerUID] != string(b.UID) || spec.ServiceAccountName != v1alpha1.BackupServiceAccount ||
		!strings.Contains(strings.Join(spec.Containers[0].Args, " "), "backup --resource backups --namespace "+ns+" --name applied") {
		t.Errorf("Job %s: owner %q (Backup's UID %s), runs as %q with %q", job.Name, job.Annotations[jobspec.AnnotationOwnerUID], b.UID,
			spec.ServiceAccountName, spec.Containers[0].Args)
	}
	// A reconciliation while the Job runs launches nothing more.
	if r := reconcile(t, c); len(jobsOf(t, kube, jobspec.LabelBackup, "applied")) != 1 || strings.Contains(strings.Join(r.Launched, ","), what) {
		t.Errorf("a reconciliation while the Job exists: launched %v", r.Launched)
	}

	// The Job fails (say, its pod was OOM-killed each time) without the Backup ending.
	now := metav1.Now()
	job.Status.StartTime = &now
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
	}
	if _, err := kube.BatchV1().Jobs(v1alpha1.SystemNamespace).UpdateStatus(ctxT(t, time.Minute), &job, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("mark the Job failed: %v", err)
	}
	r := reconcile(t, c)
	get(t, c, v1alpha1.BackupsResource, ns, "applied", &b)
	if b.Status.Phase != v1alpha1.BackupFailed || len(b.Status.Errors) == 0 ||
		!strings.Contains(b.Status.Errors[0], "its Job pxb-system/"+job.Name+" failed: BackoffLimitExceeded") {
		t.Errorf("after its Job failed: Backup %s, errors %q (reconcile: %s); want Failed naming the Job and its reason", b.Status.Phase, b.Status.Errors, r.Message())
	}

	// A Restore whose Job is deleted while it runs gets a new one.
	create(t, c, v1alpha1.RestoresResource, &v1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Name: "back", Namespace: ns},
		Spec:       v1alpha1.RestoreSpec{BackupName: "applied"},
	})
	reconcile(t, c)
	first := jobsOf(t, kube, jobspec.LabelRestore, "back")
	if len(first) != 1 {
		t.Fatalf("Jobs of Restore back: %d, want 1", len(first))
	}
	bg := metav1.DeletePropagationBackground
	if err := kube.BatchV1().Jobs(v1alpha1.SystemNamespace).Delete(ctxT(t, time.Minute), first[0].Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	r = reconcile(t, c)
	again := jobsOf(t, kube, jobspec.LabelRestore, "back")
	if len(again) != 1 || again[0].UID == first[0].UID || !strings.Contains(strings.Join(r.Launched, ","), "Restore "+ns+"/back") {
		t.Errorf("after its Job was deleted: %d Jobs (launched %v); want a new one", len(again), r.Launched)
	}
}

// TestReconcileSchedules: a BackupSchedule applied without the plugin gets a CronJob per schedule of its
// policy and the condition Scheduled; editing the policy moves the CronJobs; a schedule naming a missing
// policy says so in its condition; deleting a schedule outside pxb-system removes its CronJobs.
func TestReconcileSchedules(t *testing.T) {
	c := testbed.APIServer(t)
	kube := c.Clientset(t)
	locName := setupOn(t, c, testbed.S3(t), 0)
	ns := c.Namespace(t)
	policy := ns + "-policy"
	create(t, c, v1alpha1.SchedulePoliciesResource, &v1alpha1.SchedulePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: policy},
		Spec:       v1alpha1.SchedulePolicySpec{Daily: &v1alpha1.DailyPolicy{Time: "02:30", Retain: 7}},
	})
	create(t, c, v1alpha1.BackupSchedulesResource, &v1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: ns},
		Spec:       v1alpha1.BackupScheduleSpec{Policy: v1alpha1.ObjectName(policy), Template: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)}},
	})
	cronJobs := func() map[string]string {
		t.Helper()
		list, err := kube.BatchV1().CronJobs(v1alpha1.SystemNamespace).List(ctxT(t, time.Minute),
			metav1.ListOptions{LabelSelector: jobspec.LabelNamespace + "=" + ns + "," + v1alpha1.ScheduleLabel + "=nightly"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, cj := range list.Items {
			out[cj.Labels[v1alpha1.ScheduleKindLabel]] = cj.Spec.Schedule
		}
		return out
	}
	scheduled := func() *metav1.Condition {
		t.Helper()
		var bs v1alpha1.BackupSchedule
		get(t, c, v1alpha1.BackupSchedulesResource, ns, "nightly", &bs)
		return meta.FindStatusCondition(bs.Status.Conditions, v1alpha1.ConditionScheduled)
	}
	reconcile(t, c)
	if got := cronJobs(); len(got) != 1 || got["daily"] != "30 2 * * *" {
		t.Errorf("CronJobs of the applied schedule: %v; want daily at 30 2 * * *", got)
	}
	if cond := scheduled(); cond == nil || cond.Status != metav1.ConditionTrue || !strings.Contains(cond.Message, `daily at "30 2 * * *"`) {
		t.Errorf("Scheduled condition: %+v", cond)
	}

	// The policy changes: a weekly schedule instead of the daily one.
	var p v1alpha1.SchedulePolicy
	get(t, c, v1alpha1.SchedulePoliciesResource, "", policy, &p)
	p.Spec = v1alpha1.SchedulePolicySpec{Weekly: &v1alpha1.WeeklyPolicy{Day: "Sunday", Time: "04:00", Retain: 4}}
	update(t, c, v1alpha1.SchedulePoliciesResource, &p)
	reconcile(t, c)
	if got := cronJobs(); len(got) != 1 || got["weekly"] != "0 4 * * 0" {
		t.Errorf("CronJobs after the policy became weekly: %v; want weekly at 0 4 * * 0 only", got)
	}

	// A schedule whose policy is missing says so, and is not a reason to fail the reconciliation.
	create(t, c, v1alpha1.BackupSchedulesResource, &v1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: ns},
		Spec:       v1alpha1.BackupScheduleSpec{Policy: "no-such-policy", Template: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)}},
	})
	reconcile(t, c)
	var orphan v1alpha1.BackupSchedule
	get(t, c, v1alpha1.BackupSchedulesResource, ns, "orphan", &orphan)
	if cond := meta.FindStatusCondition(orphan.Status.Conditions, v1alpha1.ConditionScheduled); cond == nil || cond.Status != metav1.ConditionFalse ||
		!strings.Contains(cond.Message, "spec.policy: SchedulePolicy no-such-policy") {
		t.Errorf("schedule with a missing policy: %+v; want Scheduled False naming spec.policy", cond)
	}

	// Deleted with kubectl: a schedule outside pxb-system cannot own its CronJobs; the reconciler removes them.
	if err := c.Dynamic(t).Resource(v1alpha1.BackupSchedulesResource).Namespace(ns).Delete(ctxT(t, time.Minute), "nightly", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the CronJobs must predate the reconciliation's list by a second
	r := reconcile(t, c)
	if got := cronJobs(); len(got) != 0 {
		t.Errorf("CronJobs of the deleted schedule: %v (removed %v)", got, r.Removed)
	}
}
