//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/e2e/framework"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// kubectlAs runs kubectl as user, whom the cluster's administrator impersonates: the API server authorizes
// and admits each request as that user's own.
func kubectlAs(t *testing.T, c *framework.Cluster, user, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.KubectlCmd(ctx, append([]string{"--as", user}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestTenantSelfService: a team member whose only right is the namespace's built-in edit role backs the
// namespace up and restores it with kubectl apply alone: no kubectl pxb, no right in pxb-system. The
// reconciler launches both Jobs; the restored volume holds the same files, written as the namespace's
// restore writer. What would reach beyond the namespace is refused by the API server, naming the field, and
// never launched. A BackupSchedule the team applies runs on time, and follows its policy when an
// administrator changes it.
func TestTenantSelfService(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		// The administrator lets the team's namespace use the location.
		if out, err := c.KubectlCmd(framework.Context(t, time.Minute), "patch", "-n", v1alpha1.SystemNamespace, "backuplocation/"+loc,
			"--type", "merge", "-p", fmt.Sprintf(`{"spec":{"allowedNamespaces":[%q]}}`, ns)).CombinedOutput(); err != nil {
			t.Fatalf("allow %s to use location %s: %v\n%s", ns, loc, err, out)
		}
		user := "team-" + suffix(ns)
		if out, err := c.KubectlCmd(framework.Context(t, time.Minute), "create", "rolebinding", "team", "-n", ns,
			"--clusterrole", "edit", "--user", user).CombinedOutput(); err != nil {
			t.Fatalf("bind edit in %s: %v\n%s", ns, err, out)
		}
		c.PVC(t, ns, "data", framework.StorageClass, nil)
		want := c.WriteRich(t, ns, "data", framework.Rich{Seed: 7, Small: 20, Large: 1 << 20})
		c.Apply(t, ns, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n")

		if out, err := kubectlAs(t, c, user, "", "auth", "can-i", "create", "jobs", "-n", v1alpha1.SystemNamespace); err == nil || !strings.HasPrefix(out, "no") {
			t.Fatalf("the team member may create Jobs in %s (%q): the test would not show the reconciler at work", v1alpha1.SystemNamespace, out)
		}
		// The administrator's policy, and the team's schedule of its settings on it.
		policy := "team-" + suffix(ns)
		c.Apply(t, "default", fmt.Sprintf("apiVersion: pxb.dev/v1alpha1\nkind: SchedulePolicy\nmetadata: {name: %s}\nspec:\n  interval: {minutes: 1, retain: 1}\n", policy))
		t.Cleanup(func() {
			ctx := framework.Context(t, time.Minute)
			_ = c.KubectlCmd(ctx, "delete", "-n", ns, "backupschedule/settings", "--ignore-not-found").Run()
			_ = c.KubectlCmd(ctx, "delete", "-n", v1alpha1.SystemNamespace, "cronjobs", "-l", "pxb.dev/namespace="+ns, "--ignore-not-found").Run()
			_ = c.KubectlCmd(ctx, "delete", "schedulepolicy/"+policy, "--ignore-not-found").Run()
		})
		schedule := fmt.Sprintf(`apiVersion: pxb.dev/v1alpha1
kind: BackupSchedule
metadata: {name: settings, namespace: %s}
spec: {policy: %s, template: {location: %s, includeResources: [configmaps]}}
`, ns, policy, loc)
		if out, err := kubectlAs(t, c, user, schedule, "apply", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply of a BackupSchedule as the team member: %v\n%s", err, out)
		}

		// Each escape is refused at admission, with the field to change.
		escapes := []struct{ what, manifest, field string }{
			{"a Backup of kube-system", "kind: Backup\nmetadata: {name: escape-1, namespace: %[1]s}\nspec: {location: %[2]s, includeNamespaces: [kube-system]}\n", "spec.includeNamespaces"},
			{"a Backup of every cluster-scoped object", "kind: Backup\nmetadata: {name: escape-2, namespace: %[1]s}\nspec: {location: %[2]s, clusterResources: Include}\n", "spec.clusterResources"},
			{"a Restore into another namespace", "kind: Restore\nmetadata: {name: escape-3, namespace: %[1]s}\nspec: {backupName: mine, namespaceMapping: {%[1]s: default}}\n", "spec.namespaceMapping"},
			{"a forged scheduled Backup", "kind: Backup\nmetadata: {name: escape-4, namespace: %[1]s, labels: {pxb.dev/schedule: settings, pxb.dev/schedule-kind: interval}}\nspec: {location: %[2]s}\n", "metadata.labels: pxb.dev/schedule"},
			{"a schedule's template edited to reach kube-system", "kind: BackupSchedule\nmetadata: {name: settings, namespace: %[1]s}\nspec: {policy: " + policy + ", template: {location: %[2]s, includeNamespaces: [kube-system]}}\n", "spec.template.includeNamespaces"},
		}
		for _, e := range escapes {
			out, err := kubectlAs(t, c, user, "apiVersion: pxb.dev/v1alpha1\n"+fmt.Sprintf(e.manifest, ns, loc), "apply", "-f", "-")
			if err == nil || !strings.Contains(out, "ValidatingAdmissionPolicy") || !strings.Contains(out, e.field) {
				t.Errorf("%s as the team member: %v, want refused by admission naming %s:\n%s", e.what, err, e.field, out)
			}
		}

		if out, err := kubectlAs(t, c, user, fmt.Sprintf(`apiVersion: pxb.dev/v1alpha1
kind: Backup
metadata: {name: mine, namespace: %s}
spec: {location: %s}
`, ns, loc), "apply", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply of a Backup as the team member: %v\n%s", err, out)
		}
		// Within the reconciler's minute and the backup's own time.
		b := c.WaitForEnd(t, v1alpha1.BackupsResource, ns, "mine", 3*time.Minute)
		requireEnded(t, c, b, nil, "Completed", "pxb.dev/backup")

		// The team loses its application, and restores it the same way.
		for _, obj := range []string{"configmap/settings", "pvc/data"} {
			if out, err := kubectlAs(t, c, user, "", "delete", "-n", ns, obj, "--wait"); err != nil {
				t.Fatalf("delete %s as the team member: %v\n%s", obj, err, out)
			}
		}
		if out, err := kubectlAs(t, c, user, fmt.Sprintf(`apiVersion: pxb.dev/v1alpha1
kind: Restore
metadata: {name: back, namespace: %s}
spec: {backupName: mine}
`, ns), "apply", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply of a Restore as the team member: %v\n%s", err, out)
		}
		r := c.WaitForEnd(t, v1alpha1.RestoresResource, ns, "back", 3*time.Minute)
		requireEnded(t, c, r, nil, "Completed", "pxb.dev/restore")
		cm, err := c.Kube.CoreV1().ConfigMaps(ns).Get(framework.Context(t, 30*time.Second), "settings", metav1.GetOptions{})
		if err != nil || cm.Data["color"] != "blue" {
			t.Errorf("restored ConfigMap: %v, %v", cm, err)
		}
		framework.CompareManifests(t, "volume restored by the team", want, c.Manifest(t, ns, "data"))
		// Written as the namespace's writer, bound to edit by the restore.
		rb, err := c.Kube.RbacV1().RoleBindings(ns).Get(framework.Context(t, 30*time.Second), v1alpha1.RestoreWriterServiceAccount, metav1.GetOptions{})
		if err != nil || rb.RoleRef.Name != "edit" {
			t.Errorf("the restore writer's binding in %s: %v, %v", ns, rb, err)
		}

		// The schedule ran on time: the reconciler made its CronJob, whose run took a Backup that completed.
		framework.WaitFor(t, 4*time.Minute, "a completed Backup of the team's schedule", func(ctx context.Context) (bool, error) {
			list, err := c.Dynamic.Resource(v1alpha1.BackupsResource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.ScheduleLabel + "=settings"})
			if err != nil {
				return false, err
			}
			for _, b := range list.Items {
				if framework.Phase(&b) == "Completed" {
					return true, nil
				}
			}
			return false, nil
		})
		// The administrator changes the policy; the reconciler moves the CronJob.
		if out, err := c.KubectlCmd(framework.Context(t, time.Minute), "patch", "schedulepolicy/"+policy, "--type", "merge",
			"-p", `{"spec":{"interval":{"minutes":5,"retain":1}}}`).CombinedOutput(); err != nil {
			t.Fatalf("change the policy: %v\n%s", err, out)
		}
		framework.WaitFor(t, 3*time.Minute, "the schedule's CronJob at the policy's new interval", func(ctx context.Context) (bool, error) {
			list, err := c.Kube.BatchV1().CronJobs(v1alpha1.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "pxb.dev/namespace=" + ns})
			if err != nil {
				return false, err
			}
			return len(list.Items) == 1 && list.Items[0].Spec.Schedule == "*/5 * * * *", nil
		})

		// Nothing was launched for what admission refused.
		jobs, err := c.Kube.BatchV1().Jobs(v1alpha1.SystemNamespace).List(framework.Context(t, 30*time.Second), metav1.ListOptions{LabelSelector: "pxb.dev/namespace=" + ns})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs.Items {
			if strings.HasPrefix(j.Labels["pxb.dev/backup"], "escape") || strings.HasPrefix(j.Labels["pxb.dev/restore"], "escape") {
				t.Errorf("Job %s was launched for a refused object", j.Name)
			}
		}
	})
}
