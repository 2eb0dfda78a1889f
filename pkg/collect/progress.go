package collect

import (
	"sync"
	"sync/atomic"
	"time"
)

// ProgressInterval is how often a Progress callback is called while a backup or restore runs.
const ProgressInterval = 2 * time.Second

// Ticker calls fn with a counter's value every interval from one goroutine, and once more when stopped,
// so that a caller may update a status from fn without locking.
type Ticker struct {
	Count atomic.Int64
	stop  chan struct{}
	done  sync.WaitGroup
}

// StartTicker starts calling fn; a nil fn makes a Ticker that only counts.
func StartTicker(interval time.Duration, fn func(done int)) *Ticker {
	t := &Ticker{stop: make(chan struct{})}
	if fn == nil {
		return t
	}
	t.done.Add(1)
	go func() {
		defer t.done.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				fn(int(t.Count.Load()))
			case <-t.stop:
				fn(int(t.Count.Load()))
				return
			}
		}
	}()
	return t
}

// Stop makes the last call and waits for it.
func (t *Ticker) Stop() {
	close(t.stop)
	t.done.Wait()
}
