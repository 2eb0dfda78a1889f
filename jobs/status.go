package jobs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
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

// doneStatus is the status of an operation on total objects that ended, with these errors (errorCount
// counts those not listed too) and warnings.
func doneStatus(total, errorCount int, errs, warnings []string, started, finished *metav1.Time) v1alpha1.OperationStatus {
	return v1alpha1.OperationStatus{
		StartTimestamp:      started,
		CompletionTimestamp: finished,
		Progress:            &v1alpha1.Progress{Percent: 100, ItemsTotal: int32(total), ItemsDone: int32(total)},
		ErrorCount:          int32(errorCount),
		Errors:              bounded(errs),
		WarningCount:        int32(len(warnings)),
		Warnings:            bounded(warnings),
	}
}

// failedStatus is the status of an operation that failed with err.
func failedStatus(err error, started, finished *metav1.Time) v1alpha1.OperationStatus {
	return v1alpha1.OperationStatus{Message: truncate(err.Error(), 4096), StartTimestamp: started,
		CompletionTimestamp: finished, ErrorCount: 1, Errors: bounded([]string{err.Error()})}
}

// addVolumes reports vols in s: each volume's entry (up to the bound), the volume counts and bytes, and the
// reason of each failed volume as an error. It returns how many volumes completed and how many failed.
func addVolumes(s *v1alpha1.OperationStatus, vols []VolumeRecord) (completed, failed int) {
	if s.Progress == nil {
		s.Progress = &v1alpha1.Progress{}
	}
	var errs []string
	var bytes int64
	for i := range vols {
		v := &vols[i]
		if len(s.Volumes) < v1alpha1.MaxStatusVolumes {
			s.Volumes = append(s.Volumes, volumeStatus(v, v.Bytes, v.Bytes, v.Files, v.Files))
		}
		bytes += v.Bytes
		switch v.Phase {
		case v1alpha1.VolumeFailed:
			failed++
			errs = append(errs, v.Message)
		case v1alpha1.VolumeCompleted:
			completed++
		}
	}
	// Like the running count (tracker.publish), a volume is done once it is no longer worked on.
	s.Progress.VolumesTotal, s.Progress.VolumesDone = int32(len(vols)), int32(len(vols)-failed)
	s.Progress.BytesTotal, s.Progress.BytesDone = bytes, bytes
	s.ErrorCount += int32(failed)
	s.Errors = bounded(append(errs, s.Errors...))
	return completed, failed
}

// listVolumes lists vols in s, with nothing done yet, as an operation starts on them.
func listVolumes(s *v1alpha1.OperationStatus, vols []*VolumeRecord) {
	s.Volumes = nil
	for _, v := range vols {
		if len(s.Volumes) == v1alpha1.MaxStatusVolumes {
			break
		}
		s.Volumes = append(s.Volumes, volumeStatus(v, 0, 0, 0, 0))
	}
	if s.Progress == nil {
		s.Progress = &v1alpha1.Progress{}
	}
	s.Progress.VolumesTotal = int32(len(vols))
}

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
	return s.Put(ctx, layout.LogKey, bytes.NewReader(data))
}
