package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Next is when the policy next takes a backup after now, and of which kind: the first start of one of its
// CronJobs, in the policy's time zone (UTC when it names none), at which the run is due. An interval's
// start is counted as due, since whether it is depends on when its last backup was made.
func Next(p v1alpha1.SchedulePolicySpec, now time.Time) (time.Time, Kind, error) {
	runs, err := Runs(p)
	if err != nil {
		return time.Time{}, "", err
	}
	loc := time.UTC
	if p.TimeZone != "" {
		if loc, err = time.LoadLocation(p.TimeZone); err != nil {
			return time.Time{}, "", fmt.Errorf("timeZone %q: %w", p.TimeZone, err)
		}
	}
	var next time.Time
	var kind Kind
	for _, r := range runs {
		fields := strings.Fields(r.Cron)
		if len(fields) != 5 {
			return time.Time{}, "", fmt.Errorf("%s: cron schedule %q has not five fields", r.Kind, r.Cron)
		}
		// A month and a few days hold the next start of every run.
		start := now.In(loc).Truncate(time.Minute).Add(time.Minute)
		for t := start; t.Before(start.AddDate(0, 1, 7)); t = t.Add(time.Minute) {
			if !(next.IsZero() || t.Before(next)) {
				break
			}
			if cronMatches(fields, t) && Due(p, r, time.Time{}, t) {
				next, kind = t, r.Kind
				break
			}
		}
	}
	if next.IsZero() {
		return time.Time{}, "", fmt.Errorf("the policy's schedules start no backup within a month")
	}
	return next, kind, nil
}

// cronMatches reports whether t is a start of the five cron fields, in the forms Runs and Every write:
// "*", "*/N", "N" and "A-B".
func cronMatches(fields []string, t time.Time) bool {
	for i, v := range []int{t.Minute(), t.Hour(), t.Day(), int(t.Month()), int(t.Weekday())} {
		if !fieldMatches(fields[i], v) {
			return false
		}
	}
	return true
}

func fieldMatches(f string, v int) bool {
	switch {
	case f == "*":
		return true
	case strings.HasPrefix(f, "*/"):
		n, err := strconv.Atoi(f[2:])
		return err == nil && n > 0 && v%n == 0
	case strings.Contains(f, "-"):
		lo, hi, _ := strings.Cut(f, "-")
		a, errA := strconv.Atoi(lo)
		b, errB := strconv.Atoi(hi)
		return errA == nil && errB == nil && a <= v && v <= b
	}
	n, err := strconv.Atoi(f)
	return err == nil && n == v
}
