//go:build integration

package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestTeamCreatesWithThePlugin: alice, who holds the built-in edit role in her namespace alone, backs it up
// with kubectl pxb. The plugin cannot read the location in pxb-system nor launch the Job there: it leaves the
// location's check to the API server and the launch to the reconciler; likewise she creates a BackupSchedule
// whose CronJobs the reconciler makes. A selection beyond her namespace is refused before anything is
// written. It installs pxb and uninstalls it at the end.
func TestTeamCreatesWithThePlugin(t *testing.T) {
	c := testbed.APIServer(t)
	mustPxb(t, c, "install")
	t.Cleanup(func() { _, _ = pxb(t, c, "uninstall", "--purge", "--force") })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := c.Namespace(t)
	if _, err := c.Clientset(t).RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-edit"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "alice"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	loc := "team-" + ns
	if _, err := c.Dynamic(t).Resource(v1alpha1.BackupLocationsResource).Namespace(v1alpha1.SystemNamespace).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "BackupLocation",
		"metadata": map[string]any{"name": loc, "namespace": v1alpha1.SystemNamespace},
		"spec":     map[string]any{"provider": "s3", "bucket": "backups", "encryptionKey": map[string]any{"name": loc + "-key"}, "allowedNamespaces": []any{ns}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The aggregation controller gives edit pxb's roles in a moment.
	var out string
	var err error
	if werr := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		out, err = pxb(t, c, "backup", "create", "nightly", "-n", ns, "--location", loc, "--as", "alice")
		return err == nil || !strings.Contains(err.Error(), `cannot create resource "backups"`), nil
	}); werr != nil || err != nil {
		t.Fatalf("backup create as alice: %v\n%s", err, out)
	}
	wantLines(t, out, "Backup "+ns+"/nightly created; the reconciler in pxb-system launches its Job within a minute")

	out, err = pxb(t, c, "backup", "create", "far", "-n", ns, "--location", loc, "--include-namespaces", "kube-system", "--as", "alice")
	if want := "spec.includeNamespaces: a Backup in namespace " + ns + " may only back up " + ns + " (kube-system named)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("backup create of kube-system as alice: %v, want %q\n%s", err, want, out)
	}
	if _, err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns).Get(ctx, "far", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused Backup: %v, want it never created", err)
	}

	// Alice may neither read the SchedulePolicy nor write CronJobs in pxb-system: the plugin creates her
	// BackupSchedule alone and leaves its CronJobs to the reconciler. An administrator still gets them at once.
	policy := "team-" + ns
	if _, err := c.Dynamic(t).Resource(v1alpha1.SchedulePoliciesResource).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "SchedulePolicy",
		"metadata": map[string]any{"name": policy},
		"spec":     map[string]any{"daily": map[string]any{"time": "01:30", "retain": int64(7)}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	scheduleArgs := []string{"schedule", "create", "daily", "-n", ns, "--policy", policy, "--location", loc, "--include-namespaces", ns}
	out, err = pxb(t, c, append(scheduleArgs, "--as", "alice")...)
	if err != nil {
		t.Fatalf("schedule create as alice: %v\n%s", err, out)
	}
	wantLines(t, out,
		"BackupSchedule "+ns+"/daily created; you may not read its SchedulePolicy or write its CronJobs in pxb-system, so the reconciler makes them within a minute.",
		"Its Scheduled condition says when they are made, or why not: kubectl describe backupschedule daily -n "+ns)
	u, err := c.Dynamic(t).Resource(v1alpha1.BackupSchedulesResource).Namespace(ns).Get(ctx, "daily", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("alice's BackupSchedule: %v", err)
	}
	var bs v1alpha1.BackupSchedule
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &bs); err != nil {
		t.Fatal(err)
	}
	if s := bs.Spec; string(s.Policy) != policy || string(s.Template.Location) != loc || len(s.Template.IncludeNamespaces) != 1 ||
		string(s.Template.IncludeNamespaces[0]) != ns || s.Suspend {
		t.Errorf("alice's BackupSchedule spec = %+v, want policy %s, location %s, includeNamespaces [%s], not suspended", s, policy, loc, ns)
	}
	cronJobs := func() []string {
		t.Helper()
		list, err := c.Clientset(t).BatchV1().CronJobs(v1alpha1.SystemNamespace).List(ctx, metav1.ListOptions{
			LabelSelector: jobspec.LabelNamespace + "=" + ns + "," + v1alpha1.ScheduleLabel + "=daily"})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, cj := range list.Items {
			names = append(names, cj.Name)
		}
		return names
	}
	if names := cronJobs(); len(names) != 0 {
		t.Errorf("CronJobs of alice's schedule: %v, want none until the reconciler makes them", names)
	}

	out = mustPxb(t, c, scheduleArgs...)
	wantLines(t, out, "BackupSchedule "+ns+"/daily updated\n", "  daily: CronJob pxb-system/")
	if names := cronJobs(); len(names) != 1 {
		t.Errorf("CronJobs of the schedule after an administrator's create: %v, want one (daily)\n%s", names, out)
	}
}
