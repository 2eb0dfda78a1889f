package jobspec

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func TestScheduleEvery(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute:      "* * * * *",
		5 * time.Minute:  "*/5 * * * *",
		15 * time.Minute: "*/15 * * * *",
		30 * time.Minute: "*/30 * * * *",
		time.Hour:        "0 * * * *",
		2 * time.Hour:    "0 */2 * * *",
		6 * time.Hour:    "0 */6 * * *",
		12 * time.Hour:   "0 */12 * * *",
		24 * time.Hour:   "0 0 * * *",
		168 * time.Hour:  "0 0 * * 0",
	} {
		got, err := ScheduleEvery(d)
		if err != nil || got != want {
			t.Errorf("ScheduleEvery(%s) = %q, %v; want %q", d, got, err, want)
		}
	}
	for d, want := range map[time.Duration]string{
		0:                "must be a positive whole number of minutes",
		-time.Hour:       "must be a positive whole number of minutes",
		90 * time.Second: "must be a positive whole number of minutes",
		7 * time.Minute:  "every 7m0s has no cron schedule",
		45 * time.Minute: "every 45m0s has no cron schedule",
		90 * time.Minute: "every 1h30m0s has no cron schedule",
		5 * time.Hour:    "every 5h0m0s has no cron schedule",
		48 * time.Hour:   "every 48h0m0s has no cron schedule",
	} {
		if got, err := ScheduleEvery(d); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ScheduleEvery(%s) = %q, %v; want an error with %q", d, got, err, want)
		}
	}
}

func TestLocationCronJob(t *testing.T) {
	loc := &v1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: "prod.eu", UID: "u1"}}
	cj := LocationCronJob(KindSync, loc, DefaultConfig(), "0 * * * *", "1h")
	if cj.Name != "pxb-sync-prod-eu" || cj.Namespace != v1alpha1.SystemNamespace || cj.Spec.Schedule != "0 * * * *" ||
		cj.Annotations[AnnotationEvery] != "1h" || cj.Labels[LabelLocation] != "prod.eu" || cj.Labels[LabelJob] != "sync" {
		t.Errorf("CronJob %s/%s schedule %q labels %v annotations %v", cj.Namespace, cj.Name, cj.Spec.Schedule, cj.Labels, cj.Annotations)
	}
	if len(cj.OwnerReferences) != 1 || cj.OwnerReferences[0].Kind != "BackupLocation" || cj.OwnerReferences[0].UID != "u1" {
		t.Errorf("owner references %+v", cj.OwnerReferences)
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	if got := strings.Join(pod.Containers[0].Args, " "); got != "sync --resource backuplocations --namespace pxb-system --name prod.eu" ||
		pod.ServiceAccountName != v1alpha1.JobServiceAccount {
		t.Errorf("the CronJob's Jobs run %q as %s", got, pod.ServiceAccountName)
	}
	if cj.Spec.ConcurrencyPolicy != "Forbid" {
		t.Errorf("concurrency policy %q", cj.Spec.ConcurrencyPolicy)
	}
	if custom := LocationCronJob(KindSync, loc, DefaultConfig(), "*/30 * * * *", ""); len(custom.Annotations) != 0 {
		t.Errorf("a given schedule has annotations %v", custom.Annotations)
	}

	long := LocationCronJobName(KindSync, strings.Repeat("a", 60))
	other := LocationCronJobName(KindSync, strings.Repeat("a", 59)+"b")
	if len(long) > 52 || long == other || !strings.HasPrefix(long, "pxb-sync-aaa") {
		t.Errorf("long names: %q, %q", long, other)
	}
}
