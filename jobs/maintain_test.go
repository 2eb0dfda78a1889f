package jobs

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestReadDataRotation: maintenance once a window or more often reads each pack once per period; maintenance
// less often catches up and still reads every pack within the period plus its own interval; the first rotating
// read takes one slice, and one overdue by a whole period reads everything.
func TestReadDataRotation(t *testing.T) {
	packs := make([]string, 3000)
	for i := range packs {
		var b [16]byte
		rand.Read(b[:])
		packs[i] = hex.EncodeToString(b[:])
	}
	const period = 30 * 24 * time.Hour
	start := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	// run maintains every interval for 3 periods and returns, for each pack, the longest time between two
	// reads of it (counting from start), and the packs read by the first run.
	run := func(interval time.Duration) (map[string]time.Duration, int) {
		longest, lastRead, reads := map[string]time.Duration{}, map[string]time.Time{}, map[string]int{}
		var last *metav1.Time
		first := -1
		for now := start; now.Before(start.Add(3 * period)); now = now.Add(interval) {
			read := readDataRotation(period, last, now)
			n := 0
			for _, p := range packs {
				if !read(p) {
					continue
				}
				n++
				reads[p]++
				prev, ok := lastRead[p]
				if !ok {
					prev = start
				}
				longest[p] = max(longest[p], now.Sub(prev))
				lastRead[p] = now
			}
			if first < 0 {
				first = n
			}
			last = &metav1.Time{Time: now}
		}
		for _, p := range packs {
			if _, ok := lastRead[p]; !ok {
				t.Fatalf("every %s: pack %s never read in 3 periods", interval, p)
			}
			// Once per period, and once more when the first read fell in the first window.
			if reads[p] > 4 {
				t.Fatalf("every %s: pack %s read %d times in 3 periods, want at most 4", interval, p, reads[p])
			}
		}
		return longest, first
	}
	for _, tc := range []struct {
		interval time.Duration
		within   time.Duration
	}{
		{24 * time.Hour, period},
		{7 * 24 * time.Hour, period + 7*24*time.Hour},
		{time.Hour, period},
	} {
		longest, first := run(tc.interval)
		for p, d := range longest {
			if d > tc.within {
				t.Errorf("maintenance every %s: pack %s went %s unread, want at most %s", tc.interval, p, d, tc.within)
				break
			}
		}
		// One slice of 30 is about 100 of 3000 packs.
		if first < 50 || first > 150 {
			t.Errorf("maintenance every %s: the first rotating read took %d of %d packs, want one slice (about 100)", tc.interval, first, len(packs))
		}
	}
	overdue := readDataRotation(period, &metav1.Time{Time: start.Add(-period)}, start)
	for _, p := range packs {
		if !overdue(p) {
			t.Fatalf("a read overdue by a whole period left pack %s out", p)
		}
	}
}
