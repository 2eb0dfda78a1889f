// Package schedule turns SchedulePolicies into the cron schedules of the CronJobs that carry them out, says
// when a scheduled backup is due, and which of a schedule's backups retention lets go.
package schedule

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Kind is one of a policy's schedules; a BackupSchedule has a CronJob per kind its policy sets.
type Kind string

const (
	Interval Kind = "interval"
	Daily    Kind = "daily"
	Weekly   Kind = "weekly"
	Monthly  Kind = "monthly"
)

// Kinds are all kinds, in the order of the policy's fields.
var Kinds = []Kind{Interval, Daily, Weekly, Monthly}

// ParseKind reads a kind's name.
func ParseKind(s string) (Kind, error) {
	if k := Kind(s); slices.Contains(Kinds, k) {
		return k, nil
	}
	return "", fmt.Errorf("the schedule kind must be interval, daily, weekly or monthly, not %q", s)
}

// Run is one kind of a policy: when its CronJob starts, and how many of its backups are kept.
type Run struct {
	Kind Kind
	// Cron is the CronJob's schedule, in the policy's time zone. An interval that no cron schedule
	// expresses starts more often, and the job takes a backup only when it is due.
	Cron string
	// Period is the time between two backups of the kind (a month counts 28 days), cadence the time
	// between two starts of its CronJob.
	Period, cadence time.Duration
	Retain          int32
}

// Runs returns a run per kind the policy sets, in Kinds order. Errors name the field.
func Runs(p v1alpha1.SchedulePolicySpec) ([]Run, error) {
	var runs []Run
	if i := p.Interval; i != nil {
		if i.Minutes < 1 {
			return nil, fmt.Errorf("interval.minutes must be at least 1, not %d", i.Minutes)
		}
		cron, cadence := intervalCron(int(i.Minutes))
		runs = append(runs, Run{Kind: Interval, Cron: cron, Period: time.Duration(i.Minutes) * time.Minute, cadence: cadence, Retain: i.Retain})
	}
	if d := p.Daily; d != nil {
		h, m, err := clock("daily.time", d.Time)
		if err != nil {
			return nil, err
		}
		runs = append(runs, Run{Kind: Daily, Cron: fmt.Sprintf("%d %d * * *", m, h), Period: 24 * time.Hour, cadence: 24 * time.Hour, Retain: d.Retain})
	}
	if w := p.Weekly; w != nil {
		h, m, err := clock("weekly.time", w.Time)
		if err != nil {
			return nil, err
		}
		day := slices.Index([]v1alpha1.Weekday{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}, w.Day)
		if day < 0 {
			return nil, fmt.Errorf("weekly.day must be a day of the week such as Sunday, not %q", w.Day)
		}
		runs = append(runs, Run{Kind: Weekly, Cron: fmt.Sprintf("%d %d * * %d", m, h, day), Period: 7 * 24 * time.Hour, cadence: 7 * 24 * time.Hour, Retain: w.Retain})
	}
	if mo := p.Monthly; mo != nil {
		h, m, err := clock("monthly.time", mo.Time)
		if err != nil {
			return nil, err
		}
		if mo.Date < 1 || mo.Date > 31 {
			return nil, fmt.Errorf("monthly.date must be a day of the month (1 to 31), not %d", mo.Date)
		}
		// Dates past the 28th start on every late day; the job keeps the one that is the date, or the
		// month's last day when the month is shorter.
		days, cadence := strconv.Itoa(int(mo.Date)), 28*24*time.Hour
		if mo.Date > 28 {
			days, cadence = "28-31", 24*time.Hour
		}
		runs = append(runs, Run{Kind: Monthly, Cron: fmt.Sprintf("%d %d %s * *", m, h, days), Period: 28 * 24 * time.Hour, cadence: cadence, Retain: mo.Retain})
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("the policy sets none of interval, daily, weekly or monthly")
	}
	return runs, nil
}

// RunOf is the policy's run of kind k.
func RunOf(p v1alpha1.SchedulePolicySpec, k Kind) (Run, error) {
	runs, err := Runs(p)
	if err != nil {
		return Run{}, err
	}
	if i := slices.IndexFunc(runs, func(r Run) bool { return r.Kind == k }); i >= 0 {
		return runs[i], nil
	}
	return Run{}, fmt.Errorf("the policy has no %s schedule", k)
}

// Every is the cron schedule (five fields, in the controller's time zone) that runs something
// every d: d must divide an hour (1m to 30m) or a day (1h to 12h), or be a day or a week. Other intervals
// have no faithful cron form; the error says what to do instead.
func Every(d time.Duration) (string, error) {
	const day = 24 * time.Hour
	switch {
	case d <= 0 || d%time.Minute != 0:
		return "", fmt.Errorf("the interval %s must be a positive whole number of minutes", d)
	case d == time.Minute:
		return "* * * * *", nil
	case d < time.Hour && time.Hour%d == 0:
		return fmt.Sprintf("*/%d * * * *", d/time.Minute), nil
	case d == time.Hour:
		return "0 * * * *", nil
	case d < day && d%time.Hour == 0 && day%d == 0:
		return fmt.Sprintf("0 */%d * * *", d/time.Hour), nil
	case d == day:
		return "0 0 * * *", nil
	case d == 7*day:
		return "0 0 * * 0", nil
	}
	return "", fmt.Errorf("every %s has no cron schedule: use an interval that divides an hour (1m to 30m) or a day (1h to 12h), 24h or 168h, or give a cron schedule", d)
}

// intervalCron is the cron schedule of an interval of minutes, and the time between its starts: the
// interval itself when Every has a schedule for it, else a divisor of both the interval and an hour.
func intervalCron(minutes int) (string, time.Duration) {
	d := time.Duration(minutes) * time.Minute
	if cron, err := Every(d); err == nil {
		return cron, d
	}
	g := gcd(minutes, 60)
	if g == 1 {
		return "* * * * *", time.Minute
	}
	return fmt.Sprintf("*/%d * * * *", g), time.Duration(g) * time.Minute
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// clock reads "HH:MM".
func clock(field string, t v1alpha1.TimeOfDay) (int, int, error) {
	h, m, ok := strings.Cut(string(t), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, 0, fmt.Errorf("%s must be a time of day HH:MM such as 02:30, not %q", field, t)
	}
	return hh, mm, nil
}

// Due says whether the run's CronJob, started at now (in the policy's time zone), takes a backup, the
// last one of the kind having been created at last (zero when there is none). A retried or repeated start
// within half a cadence of the last backup takes none, and a monthly run only on its date (or the month's
// last day, for a date the month lacks).
func Due(p v1alpha1.SchedulePolicySpec, r Run, last, now time.Time) bool {
	if r.Kind == Monthly && p.Monthly != nil {
		lastDay := time.Date(now.Year(), now.Month()+1, 0, 0, 0, 0, 0, now.Location()).Day()
		if now.Day() != min(int(p.Monthly.Date), lastDay) {
			return false
		}
	}
	if last.IsZero() {
		return true
	}
	return now.Sub(last) >= r.Period-r.cadence/2
}

// Item is one of a schedule's backups, for retention.
type Item struct {
	Name    string
	Created time.Time
	Phase   v1alpha1.BackupPhase
}

// Expired returns the backups retention lets go: every one older than the newest retain that completed
// (fully or partly), failed ones included, but never one still running. Until retain backups completed,
// none goes.
func Expired(items []Item, retain int32) []string {
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b Item) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.Name, a.Name)
	})
	kept := int32(0)
	var out []string
	for _, it := range items {
		if kept >= retain {
			if it.Phase != v1alpha1.BackupPending && it.Phase != v1alpha1.BackupInProgress && it.Phase != "" && it.Phase != v1alpha1.BackupDeleting {
				out = append(out, it.Name)
			}
			continue
		}
		if it.Phase == v1alpha1.BackupCompleted || it.Phase == v1alpha1.BackupPartiallySucceeded {
			kept++
		}
	}
	return out
}
