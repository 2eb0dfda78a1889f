package jobspec

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

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
		pod.ServiceAccountName != v1alpha1.LocationServiceAccount {
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

func TestScheduleCronJob(t *testing.T) {
	loc := &v1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}
	admin := &v1alpha1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.SystemNamespace, Name: "shop", UID: "u1"}}
	cj := ScheduleCronJob(admin, "daily", "30 1 * * *", "Europe/Berlin", DefaultConfig(), loc)
	args := strings.Join(cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args, " ")
	if cj.Name != "pxb-schedule-pxb-system-shop-daily" || cj.Spec.Schedule != "30 1 * * *" || *cj.Spec.TimeZone != "Europe/Berlin" ||
		args != "schedule --resource backupschedules --namespace pxb-system --name shop --kind daily" {
		t.Errorf("CronJob %s schedule %q args %q", cj.Name, cj.Spec.Schedule, args)
	}
	if len(cj.OwnerReferences) != 1 || cj.OwnerReferences[0].UID != "u1" || cj.Labels[v1alpha1.ScheduleLabel] != "shop" ||
		cj.Spec.JobTemplate.Labels[v1alpha1.ScheduleKindLabel] != "daily" {
		t.Errorf("owner %v labels %v", cj.OwnerReferences, cj.Labels)
	}
	// A schedule outside pxb-system cannot own the CronJob; a long name stays within a CronJob's limit.
	self := &v1alpha1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: "team-with-a-long-namespace-name", Name: strings.Repeat("n", 60), UID: "u2"}}
	cj = ScheduleCronJob(self, "interval", "* * * * *", "", DefaultConfig(), loc)
	if len(cj.OwnerReferences) != 0 || len(cj.Name) > cronJobNameMax || cj.Spec.TimeZone != nil || len(cj.Labels[v1alpha1.ScheduleLabel]) > 63 {
		t.Errorf("CronJob %q (%d characters) owners %v time zone %v labels %v", cj.Name, len(cj.Name), cj.OwnerReferences, cj.Spec.TimeZone, cj.Labels)
	}
	if other := ScheduleCronJob(self, "daily", "0 0 * * *", "", DefaultConfig(), loc); other.Name == cj.Name {
		t.Errorf("two kinds of one schedule share the CronJob name %s", cj.Name)
	}
}
