package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func TestReportSync(t *testing.T) {
	since := time.Date(2026, 11, 24, 10, 0, 0, 500_000_000, time.UTC)
	loc := func(synced time.Time, status metav1.ConditionStatus, msg string) *v1alpha1.BackupLocation {
		l := &v1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: "dr"}}
		if !synced.IsZero() {
			l.Status.LastSyncTime = &metav1.Time{Time: synced}
		}
		l.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionSynced, Status: status, Message: msg}}
		return l
	}

	var out bytes.Buffer
	// Written in the same second as the Job was created (times in the API have whole seconds): this sync's.
	err := reportSync(&out, loc(since.Truncate(time.Second), metav1.ConditionTrue, "2 backups, 1 new (shop/a), 1 already present"), since)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Location:     dr\n", "Synced:       2 backups, 1 new (shop/a), 1 already present\n", "Last synced:  2026-11-24 10:00:00 UTC\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}

	err = reportSync(&out, loc(since.Add(time.Second), metav1.ConditionFalse, "1 backup, 0 new, 0 already present, 1 could not be synced: shop/a: forbidden"), since)
	if err == nil || err.Error() != "location dr: 1 backup, 0 new, 0 already present, 1 could not be synced: shop/a: forbidden" {
		t.Errorf("sync with failures: %v", err)
	}
	for _, stale := range []time.Time{{}, since.Add(-time.Second)} {
		if err := reportSync(&out, loc(stale, metav1.ConditionTrue, "0 backups"), since); err == nil ||
			!strings.Contains(err.Error(), "ended without writing its outcome") {
			t.Errorf("status of an earlier sync (%v) reported as this one's: %v", stale, err)
		}
	}
}

func TestLocationScheduleValidate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		o        locationSchedule
		schedule string
		err      string
	}{
		{"sync now", locationSchedule{}, "", ""},
		{"every hour", locationSchedule{Every: time.Hour, everySet: true}, "0 * * * *", ""},
		{"every 0 unschedules", locationSchedule{everySet: true}, "", ""},
		{"schedule", locationSchedule{Schedule: "*/30 * * * *"}, "*/30 * * * *", ""},
		{"macro", locationSchedule{Schedule: "@daily"}, "@daily", ""},
		{"every 0 and a schedule", locationSchedule{everySet: true, Schedule: "* * * * *"}, "", "mutually exclusive"},
		{"every and unschedule", locationSchedule{Every: time.Hour, everySet: true, Unschedule: true}, "", "mutually exclusive"},
		{"negative", locationSchedule{Every: -time.Hour, everySet: true}, "", "--every -1h0m0s: the interval must not be negative"},
		{"no cron form", locationSchedule{Every: 90 * time.Minute, everySet: true}, "", "--every: every 1h30m0s has no cron schedule"},
		{"short schedule", locationSchedule{Schedule: "0 *"}, "", `--schedule "0 *": want the 5 fields`},
	} {
		err := tc.o.validate()
		if tc.err == "" && (err != nil || tc.o.Schedule != tc.schedule) {
			t.Errorf("%s: schedule %q, err %v; want %q", tc.name, tc.o.Schedule, err, tc.schedule)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", 30 * time.Minute: "30m", time.Hour: "1h", 24 * time.Hour: "24h", 90 * time.Second: "1m30s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
