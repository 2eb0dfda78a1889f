package schedule

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func TestRunsCron(t *testing.T) {
	for _, tc := range []struct {
		policy v1alpha1.SchedulePolicySpec
		want   string
	}{
		{v1alpha1.SchedulePolicySpec{Interval: &v1alpha1.IntervalPolicy{Minutes: 1}}, "* * * * *"},
		{v1alpha1.SchedulePolicySpec{Interval: &v1alpha1.IntervalPolicy{Minutes: 15}}, "*/15 * * * *"},
		{v1alpha1.SchedulePolicySpec{Interval: &v1alpha1.IntervalPolicy{Minutes: 60}}, "0 * * * *"},
		{v1alpha1.SchedulePolicySpec{Interval: &v1alpha1.IntervalPolicy{Minutes: 240}}, "0 */4 * * *"},
		{v1alpha1.SchedulePolicySpec{Interval: &v1alpha1.IntervalPolicy{Minutes: 90}}, "*/30 * * * *"},
		{v1alpha1.SchedulePolicySpec{Interval: &v1alpha1.IntervalPolicy{Minutes: 7}}, "* * * * *"},
		{v1alpha1.SchedulePolicySpec{Daily: &v1alpha1.DailyPolicy{Time: "02:30"}}, "30 2 * * *"},
		{v1alpha1.SchedulePolicySpec{Weekly: &v1alpha1.WeeklyPolicy{Day: "Saturday", Time: "23:05"}}, "5 23 * * 6"},
		{v1alpha1.SchedulePolicySpec{Monthly: &v1alpha1.MonthlyPolicy{Date: 15, Time: "04:00"}}, "0 4 15 * *"},
		{v1alpha1.SchedulePolicySpec{Monthly: &v1alpha1.MonthlyPolicy{Date: 31, Time: "04:00"}}, "0 4 28-31 * *"},
	} {
		runs, err := Runs(tc.policy)
		if err != nil || len(runs) != 1 || runs[0].Cron != tc.want {
			t.Errorf("Runs(%+v) = %+v, %v; want cron %q", tc.policy, runs, err, tc.want)
		}
	}
	all, err := Runs(v1alpha1.SchedulePolicySpec{Interval: &v1alpha1.IntervalPolicy{Minutes: 30, Retain: 4},
		Daily: &v1alpha1.DailyPolicy{Time: "01:00", Retain: 7}, Monthly: &v1alpha1.MonthlyPolicy{Date: 1, Time: "03:00", Retain: 12}})
	if err != nil || len(all) != 3 || all[0].Kind != Interval || all[1].Kind != Daily || all[2].Kind != Monthly || all[1].Retain != 7 {
		t.Errorf("Runs of three kinds: %+v, %v", all, err)
	}
	for field, p := range map[string]v1alpha1.SchedulePolicySpec{
		"daily.time":     {Daily: &v1alpha1.DailyPolicy{Time: "25:00"}},
		"weekly.day":     {Weekly: &v1alpha1.WeeklyPolicy{Day: "Caturday", Time: "01:00"}},
		"monthly.date":   {Monthly: &v1alpha1.MonthlyPolicy{Date: 32, Time: "01:00"}},
		"none of":        {},
		"interval.minut": {Interval: &v1alpha1.IntervalPolicy{}},
	} {
		if _, err := Runs(p); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Runs(%+v) = %v, want an error naming %s", p, err, field)
		}
	}
}

func TestDue(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	every90 := v1alpha1.SchedulePolicySpec{Interval: &v1alpha1.IntervalPolicy{Minutes: 90}}
	r, _ := RunOf(every90, Interval)
	for _, tc := range []struct {
		last, now string
		want      bool
	}{
		{"", "2026-01-01T00:00:00Z", true},
		{"2026-01-01T00:00:05Z", "2026-01-01T00:30:00Z", false},
		{"2026-01-01T00:00:05Z", "2026-01-01T01:00:00Z", false},
		{"2026-01-01T00:00:05Z", "2026-01-01T01:30:00Z", true},
	} {
		var last time.Time
		if tc.last != "" {
			last = at(tc.last)
		}
		if got := Due(every90, r, last, at(tc.now)); got != tc.want {
			t.Errorf("every 90 minutes, last %s, now %s: due %v, want %v", tc.last, tc.now, got, tc.want)
		}
	}
	daily := v1alpha1.SchedulePolicySpec{Daily: &v1alpha1.DailyPolicy{Time: "02:00"}}
	rd, _ := RunOf(daily, Daily)
	if Due(daily, rd, at("2026-01-01T02:00:03Z"), at("2026-01-01T02:04:00Z")) {
		t.Error("a daily run retried minutes after its backup is due again")
	}
	if !Due(daily, rd, at("2026-01-01T02:00:03Z"), at("2026-01-02T02:00:00Z")) {
		t.Error("the next day's daily run is not due")
	}
	monthly := v1alpha1.SchedulePolicySpec{Monthly: &v1alpha1.MonthlyPolicy{Date: 31, Time: "04:00"}}
	rm, _ := RunOf(monthly, Monthly)
	for now, want := range map[string]bool{
		"2026-01-31T04:00:00Z": true, "2026-01-30T04:00:00Z": false,
		"2026-02-28T04:00:00Z": true, "2026-04-30T04:00:00Z": true, "2026-04-29T04:00:00Z": false,
	} {
		if got := Due(monthly, rm, time.Time{}, at(now)); got != want {
			t.Errorf("monthly on the 31st, at %s: due %v, want %v", now, got, want)
		}
	}
	if _, err := RunOf(daily, Weekly); err == nil || !strings.Contains(err.Error(), "no weekly schedule") {
		t.Errorf("RunOf a kind the policy lacks: %v", err)
	}
}

func TestExpired(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	item := func(name string, minute int, phase v1alpha1.BackupPhase) Item {
		return Item{Name: name, Created: base.Add(time.Duration(minute) * time.Minute), Phase: phase}
	}
	items := []Item{
		item("b1", 1, v1alpha1.BackupCompleted), item("b2", 2, v1alpha1.BackupFailed), item("b3", 3, v1alpha1.BackupCompleted),
		item("b4", 4, v1alpha1.BackupPartiallySucceeded), item("b5", 5, v1alpha1.BackupFailed), item("b6", 6, v1alpha1.BackupInProgress),
		item("b0", 0, v1alpha1.BackupInProgress),
	}
	if got, want := Expired(items, 2), []string{"b2", "b1"}; !slices.Equal(got, want) {
		t.Errorf("Expired(retain 2) = %q, want %q (older than the newest two completed, but never a running one)", got, want)
	}
	if got := Expired(items, 3); len(got) != 0 {
		t.Errorf("Expired(retain 3) = %q, want none: only three completed", got)
	}
	if got, want := Expired(items, 1), []string{"b3", "b2", "b1"}; !slices.Equal(got, want) {
		t.Errorf("Expired(retain 1) = %q, want %q", got, want)
	}
}

func TestEvery(t *testing.T) {
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
		got, err := Every(d)
		if err != nil || got != want {
			t.Errorf("Every(%s) = %q, %v; want %q", d, got, err, want)
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
		if got, err := Every(d); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Every(%s) = %q, %v; want an error with %q", d, got, err, want)
		}
	}
}
