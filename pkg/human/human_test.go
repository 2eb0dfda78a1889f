package human

import (
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		47*time.Hour + 59*time.Minute: "in 2 days",
		48 * time.Hour:                "in 2 days",
		24 * time.Hour:                "in 1 day",
		35 * time.Hour:                "in 1 day",
		36 * time.Hour:                "in 2 days",
		90 * time.Minute:              "in 2 hours",
		89 * time.Minute:              "in 1 hour",
		time.Hour:                     "in 1 hour",
		59 * time.Minute:              "in 59 minutes",
		time.Second:                   "in 1 minute",
		90 * time.Second:              "in 2 minutes",
	} {
		if got := Until(now.Add(d), now); got != want {
			t.Errorf("Until(+%s) = %q, want %q", d, got, want)
		}
	}
}
