package schedule

import (
	"testing"
	"time"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func TestNext(t *testing.T) {
	now := time.Date(2026, 2, 26, 10, 7, 30, 0, time.UTC) // a Thursday
	for _, tc := range []struct {
		name   string
		policy v1alpha1.SchedulePolicySpec
		want   string
		kind   Kind
	}{
		{"every 15 minutes", v1alpha1.SchedulePolicySpec{Interval: &v1alpha1.IntervalPolicy{Minutes: 15}}, "2026-02-26T10:15:00Z", Interval},
		{"every 2 hours", v1alpha1.SchedulePolicySpec{Interval: &v1alpha1.IntervalPolicy{Minutes: 120}}, "2026-02-26T12:00:00Z", Interval},
		{"daily, later today", v1alpha1.SchedulePolicySpec{Daily: &v1alpha1.DailyPolicy{Time: "23:30"}}, "2026-02-26T23:30:00Z", Daily},
		{"daily, tomorrow", v1alpha1.SchedulePolicySpec{Daily: &v1alpha1.DailyPolicy{Time: "01:30"}}, "2026-02-27T01:30:00Z", Daily},
		{"daily in Berlin", v1alpha1.SchedulePolicySpec{Daily: &v1alpha1.DailyPolicy{Time: "01:30"}, TimeZone: "Europe/Berlin"}, "2026-02-27T00:30:00Z", Daily},
		{"weekly on Monday", v1alpha1.SchedulePolicySpec{Weekly: &v1alpha1.WeeklyPolicy{Day: "Monday", Time: "02:00"}}, "2026-03-02T02:00:00Z", Weekly},
		// February has no 30th: its last day stands for it.
		{"monthly on the 30th", v1alpha1.SchedulePolicySpec{Monthly: &v1alpha1.MonthlyPolicy{Date: 30, Time: "03:00"}}, "2026-02-28T03:00:00Z", Monthly},
		{"the earliest of two kinds", v1alpha1.SchedulePolicySpec{
			Daily:  &v1alpha1.DailyPolicy{Time: "01:30"},
			Weekly: &v1alpha1.WeeklyPolicy{Day: "Thursday", Time: "18:00"}}, "2026-02-26T18:00:00Z", Weekly},
	} {
		got, kind, err := Next(tc.policy, now)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.UTC().Format(time.RFC3339) != tc.want || kind != tc.kind {
			t.Errorf("%s: next %s (%s), want %s (%s)", tc.name, got.UTC().Format(time.RFC3339), kind, tc.want, tc.kind)
		}
	}
	if _, _, err := Next(v1alpha1.SchedulePolicySpec{Daily: &v1alpha1.DailyPolicy{Time: "01:30"}, TimeZone: "Mars/Olympus"}, now); err == nil {
		t.Error("an unknown time zone: no error")
	}
}
