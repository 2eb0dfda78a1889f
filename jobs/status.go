package jobs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/store"
)

// bounded keeps at most v1alpha1.MaxStatusMessages messages of at most 1024 bytes for a status.
func bounded(msgs []string) []string {
	if len(msgs) == 0 {
		return nil
	}
	if len(msgs) > v1alpha1.MaxStatusMessages {
		msgs = msgs[:v1alpha1.MaxStatusMessages]
	}
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = truncate(m, 1024)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	cut := n - 3
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func itemErrors(errs []collect.ItemError) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.String())
	}
	return out
}

// jobLog is the log of one job: printed to stderr as it goes (kubectl logs) and kept, up to a bound, to be
// stored in the location next to the backup or restore (pxb backup logs).
type jobLog struct {
	mu      sync.Mutex
	out     io.Writer
	buf     bytes.Buffer
	dropped int
}

const maxJobLog = 4 << 20

func newJobLog() *jobLog { return &jobLog{out: os.Stderr} }

func (l *jobLog) Printf(format string, args ...any) {
	line := time.Now().UTC().Format(time.RFC3339) + " " + fmt.Sprintf(format, args...) + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.out, line)
	if l.buf.Len()+len(line) > maxJobLog {
		l.dropped++
		return
	}
	l.buf.WriteString(line)
}

// save stores the log under key in s.
func (l *jobLog) save(ctx context.Context, s collect.Store) error {
	l.mu.Lock()
	data := bytes.Clone(l.buf.Bytes())
	if l.dropped > 0 {
		data = fmt.Appendf(data, "... %d more lines not kept\n", l.dropped)
	}
	l.mu.Unlock()
	return s.Put(ctx, store.LogKey, bytes.NewReader(data))
}
