package repo

import (
	"context"
	"io"

	"golang.org/x/time/rate"
)

// throttledWriter holds writes to w to the rate of a limiter shared by every pack upload of a repository,
// so that Options.UploadLimit bounds the whole process however many packs upload at once.
type throttledWriter struct {
	ctx     context.Context
	limiter *rate.Limiter
	w       io.Writer
}

func (t *throttledWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), t.limiter.Burst())
		if err := t.limiter.WaitN(t.ctx, n); err != nil {
			return written, err
		}
		m, err := t.w.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// newLimiter is the limiter of bytesPerSecond, or nil for no limit. Its burst is small enough that a limit
// holds over a second, and large enough that the waits are few.
func newLimiter(bytesPerSecond int64) *rate.Limiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	burst := int(min(bytesPerSecond/4+1, 1<<20))
	return rate.NewLimiter(rate.Limit(bytesPerSecond), burst)
}
