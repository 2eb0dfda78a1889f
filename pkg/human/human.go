// Package human formats sizes and times the way pxb shows them to people, in statuses, logs and the CLI.
package human

import (
	"fmt"
	"time"
)

// Bytes formats n as people read sizes: "1.5 KiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Until says how far ahead t is, for people: "in 2 days", "in 5 hours", "in 1 minute" (rounded, and never
// "in 0").
func Until(t, now time.Time) string {
	return "in " + Duration(t.Sub(now))
}

// Duration says how long d is, for people, in its largest unit: "2 days", "5 hours", "1 minute" (rounded,
// and never 0).
func Duration(d time.Duration) string {
	unit, step := "day", 24*time.Hour
	switch {
	case d < time.Hour:
		unit, step = "minute", time.Minute
	case d < 24*time.Hour:
		unit, step = "hour", time.Hour
	}
	n := max(int64((d+step/2)/step), 1)
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}
