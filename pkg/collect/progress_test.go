package collect

import (
	"testing"
	"time"
)

func TestTickerReportsTheFinalCount(t *testing.T) {
	var calls []int
	tk := StartTicker(time.Millisecond, func(done int) { calls = append(calls, done) })
	for range 5 {
		tk.Count.Add(1)
		time.Sleep(2 * time.Millisecond)
	}
	tk.Stop()
	if len(calls) < 2 || calls[len(calls)-1] != 5 {
		t.Errorf("calls %v, want several ending with 5", calls)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i] < calls[i-1] {
			t.Errorf("calls %v go backwards", calls)
		}
	}
	StartTicker(time.Millisecond, nil).Stop() // counting only
}
