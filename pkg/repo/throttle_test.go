package repo

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// callSizes records the size of every Write it gets.
type callSizes struct {
	bytes.Buffer
	sizes []int
}

func (c *callSizes) Write(p []byte) (int, error) {
	c.sizes = append(c.sizes, len(p))
	return c.Buffer.Write(p)
}

func TestThrottledWriterPassesEveryByteInBursts(t *testing.T) {
	lim := newLimiter(8 << 20)
	if lim.Burst() != 1<<20 {
		t.Fatalf("burst %d, want 1 MiB", lim.Burst())
	}
	var out callSizes
	w := &throttledWriter{ctx: context.Background(), limiter: lim, w: &out}
	data := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+5)
	n, err := w.Write(data)
	if err != nil || n != len(data) {
		t.Fatalf("write: %d, %v; want %d, nil", n, err, len(data))
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("the bytes written differ from the bytes given")
	}
	for _, s := range out.sizes {
		if s > lim.Burst() {
			t.Errorf("a write of %d bytes passed the limiter's burst of %d", s, lim.Burst())
		}
	}
}

func TestThrottledWriterStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out callSizes
	w := &throttledWriter{ctx: ctx, limiter: newLimiter(1 << 10), w: &out}
	n, err := w.Write(make([]byte, 1<<20))
	if !errors.Is(err, context.Canceled) || n != 0 || out.Len() != 0 {
		t.Errorf("write after cancel: %d, %v, %d bytes out; want 0, context canceled, 0", n, err, out.Len())
	}
}

func TestNewLimiterOffAtZero(t *testing.T) {
	if newLimiter(0) != nil || newLimiter(-5) != nil {
		t.Error("a limit of 0 or less must mean no limiter")
	}
	if b := newLimiter(100).Burst(); b != 26 {
		t.Errorf("burst of 100 B/s: %d, want 26 (a quarter second)", b)
	}
}
