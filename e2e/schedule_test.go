//go:build e2e

// The test in this file proves schedules as a user relies on them: a SchedulePolicy's CronJob takes a
// backup at every start, retention deletes the oldest (its data too: a sync of the location does not bring
// it back), a suspended schedule takes none, and deleting the schedule removes its CronJobs and keeps its
// backups.
package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pxb-dev/pxb/e2e/framework"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// scheduled lists the Backups of schedule name in pxb-system, oldest first, with their phases.
func scheduled(ctx context.Context, c *framework.Cluster, name string) ([]string, map[string]string, error) {
	list, err := c.Dynamic.Resource(v1alpha1.BackupsResource).Namespace("pxb-system").List(ctx,
		metav1.ListOptions{LabelSelector: v1alpha1.ScheduleLabel + "=" + name})
	if err != nil {
		return nil, nil, err
	}
	phases := map[string]string{}
	var names []string
	for _, u := range list.Items {
		names = append(names, u.GetName())
		phases[u.GetName()] = framework.Phase(&u)
	}
	sort.Strings(names) // the names end in their creation time
	return names, phases, nil
}

func TestSchedule(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		c.Apply(t, ns, `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: scheduled}
`)
		id := suffix(ns)
		policy, sched := "every-minute-"+id, "s-"+id
		c.Apply(t, "default", fmt.Sprintf(`apiVersion: pxb.dev/v1alpha1
kind: SchedulePolicy
metadata: {name: %s}
spec:
  interval: {minutes: 1, retain: 2}
`, policy))
		t.Cleanup(func() {
			ctx := framework.Context(t, time.Minute)
			_ = c.KubectlCmd(ctx, "delete", "schedulepolicy/"+policy, "--ignore-not-found").Run()
			_ = c.KubectlCmd(ctx, "delete", "-n", "pxb-system", "backupschedule/"+sched, "--ignore-not-found").Run()
			_ = c.KubectlCmd(ctx, "delete", "-n", "pxb-system", "backups", "-l", v1alpha1.ScheduleLabel+"="+sched, "--ignore-not-found").Run()
		})

		out, err := kubectlPxb(t, c, time.Minute, "schedule", "create", sched, "-n", "pxb-system", "--policy", policy,
			"--include-namespaces", ns, "--location", loc)
		if err != nil {
			t.Fatalf("schedule create: %v", err)
		}
		if !regexp.MustCompile(`interval: CronJob pxb-system/pxb-schedule-\S+ at "\* \* \* \* \*" \(UTC\), keeps 2`).MatchString(out) {
			t.Errorf("schedule create printed %q, want the interval's CronJob and its retention", out)
		}

		// Four starts: the fourth finds three completed backups and deletes the oldest.
		var seen []string
		framework.WaitFor(t, 7*time.Minute, "four scheduled backups, the first deleted by retention", func(ctx context.Context) (bool, error) {
			names, _, err := scheduled(ctx, c, sched)
			if err != nil {
				return false, err
			}
			for _, n := range names {
				if !slices.Contains(seen, n) {
					seen = append(seen, n)
				}
			}
			sort.Strings(seen)
			return len(seen) >= 4 && !slices.Contains(names, seen[0]), nil
		})
		names, phases, err := scheduled(framework.Context(t, time.Minute), c, sched)
		if err != nil {
			t.Fatal(err)
		}
		completed := 0
		for _, n := range names {
			if phases[n] == "Completed" {
				completed++
			} else if phases[n] != "InProgress" && phases[n] != "Pending" && phases[n] != "" {
				t.Errorf("scheduled backup %s is %s", n, phases[n])
			}
		}
		if completed < 2 || len(names) > 3 {
			t.Errorf("after retention: backups %v (phases %v), want the newest two completed ones and at most the one running", names, phases)
		}
		for _, n := range names {
			if !strings.HasPrefix(n, sched+"-interval-") {
				t.Errorf("scheduled backup %s is not named after its schedule and kind", n)
			}
		}
		bs := c.Get(t, v1alpha1.BackupSchedulesResource, "pxb-system", sched)
		last, _, _ := unstructured.NestedString(bs.Object, "status", "lastBackupName")
		lastOK, _, _ := unstructured.NestedString(bs.Object, "status", "lastSuccessfulBackupName")
		if last == "" || lastOK == "" || last < lastOK {
			t.Errorf("schedule status lastBackupName %q, lastSuccessfulBackupName %q", last, lastOK)
		}

		// The deleted backup's data is gone from the location: a sync does not bring it back.
		if out, err := kubectlPxb(t, c, 3*time.Minute, "location", "sync", loc, "--wait"); err != nil {
			t.Fatalf("location sync: %v\n%s", err, out)
		}
		if _, err := c.Dynamic.Resource(v1alpha1.BackupsResource).Namespace("pxb-system").Get(framework.Context(t, 30*time.Second), seen[0], metav1.GetOptions{}); err == nil {
			t.Errorf("Backup %s, deleted by retention, came back with a sync: its data stayed in the location", seen[0])
		}

		// Suspended: no new backup at the next starts.
		patch := []byte(`{"spec":{"suspend":true}}`)
		if _, err := c.Dynamic.Resource(v1alpha1.BackupSchedulesResource).Namespace("pxb-system").Patch(framework.Context(t, 30*time.Second),
			sched, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("suspend: %v", err)
		}
		before, _, _ := scheduled(framework.Context(t, time.Minute), c, sched)
		time.Sleep(75 * time.Second)
		after, _, _ := scheduled(framework.Context(t, time.Minute), c, sched)
		for _, n := range after {
			if !slices.Contains(before, n) {
				t.Errorf("suspended schedule created Backup %s", n)
			}
		}

		// Deleting the schedule removes its CronJobs and keeps its backups.
		if out, err := kubectlPxb(t, c, time.Minute, "schedule", "delete", sched, "-n", "pxb-system", "--yes"); err != nil {
			t.Fatalf("schedule delete: %v\n%s", err, out)
		}
		framework.WaitFor(t, time.Minute, "the schedule's CronJobs gone", func(ctx context.Context) (bool, error) {
			cjs, err := c.Kube.BatchV1().CronJobs("pxb-system").List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.ScheduleLabel + "=" + sched})
			return err == nil && len(cjs.Items) == 0, err
		})
		kept, _, _ := scheduled(framework.Context(t, time.Minute), c, sched)
		if len(kept) != len(after) {
			t.Errorf("deleting the schedule left backups %v, want %v", kept, after)
		}
	})
}
