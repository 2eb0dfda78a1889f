package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"golang.org/x/term"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/human"
	"github.com/pxb-dev/pxb/pkg/jobspec"
)

// progress is what --wait shows of a Backup's or Restore's status (both have these fields).
type progress struct {
	Phase, Stage, Message string
	Percent               int64
	Done, Total           int64
	ErrorCount            int64
	Errors                []string
	Volumes               []volumeProgress
}

// volumeProgress is one volume's line under the bar.
type volumeProgress struct {
	Name, Method, Phase string
	Done, Total         int64
}

func (v volumeProgress) line() string {
	s := fmt.Sprintf("volume %s  %s", v.Name, v.Phase)
	if v.Method != "" {
		s += " (" + v.Method + ")"
	}
	if v.Total > 0 {
		s += fmt.Sprintf("  %s/%s", human.Bytes(v.Done), human.Bytes(v.Total))
	}
	return s
}

func (v volumeProgress) bar(width int) string {
	pct := int64(0)
	if v.Total > 0 {
		pct = min(v.Done*100/v.Total, 100)
	}
	if v.Phase == string(v1alpha1.VolumeCompleted) {
		pct = 100
	}
	filled := int(pct) * width / 100
	return "  [" + strings.Repeat("=", filled) + strings.Repeat(" ", width-filled) + fmt.Sprintf("] %3d%%  ", pct) + v.line()
}

func progressOf(u *unstructured.Unstructured) progress {
	var p progress
	p.Phase, _, _ = unstructured.NestedString(u.Object, "status", "phase")
	p.Stage, _, _ = unstructured.NestedString(u.Object, "status", "stage")
	p.Message, _, _ = unstructured.NestedString(u.Object, "status", "message")
	p.Percent, _, _ = unstructured.NestedInt64(u.Object, "status", "progress", "percent")
	p.Done, _, _ = unstructured.NestedInt64(u.Object, "status", "progress", "itemsDone")
	p.Total, _, _ = unstructured.NestedInt64(u.Object, "status", "progress", "itemsTotal")
	p.ErrorCount, _, _ = unstructured.NestedInt64(u.Object, "status", "errorCount")
	p.Errors, _, _ = unstructured.NestedStringSlice(u.Object, "status", "errors")
	vols, _, _ := unstructured.NestedSlice(u.Object, "status", "volumes")
	for _, raw := range vols {
		m, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		ns, _, _ := unstructured.NestedString(m, "namespace")
		pvc, _, _ := unstructured.NestedString(m, "pvc")
		v := volumeProgress{Name: ns + "/" + pvc}
		v.Method, _, _ = unstructured.NestedString(m, "method")
		v.Phase, _, _ = unstructured.NestedString(m, "phase")
		v.Done, _, _ = unstructured.NestedInt64(m, "bytesDone")
		v.Total, _, _ = unstructured.NestedInt64(m, "bytesTotal")
		p.Volumes = append(p.Volumes, v)
	}
	return p
}

// maxVolumeBars is how many volumes --wait draws a bar for.
const maxVolumeBars = 10

func (p progress) final() bool {
	switch p.Phase {
	case string(v1alpha1.BackupCompleted), string(v1alpha1.BackupPartiallySucceeded), string(v1alpha1.BackupFailed):
		return true
	}
	return false
}

// line is the one-line form of p, for logs and for the end of the bar.
func (p progress) line() string {
	phase := p.Phase
	if phase == "" {
		phase = string(v1alpha1.BackupPending)
	}
	parts := []string{phase}
	if p.Stage != "" && p.Stage != string(v1alpha1.BackupStageDone) {
		parts = append(parts, p.Stage)
	}
	if p.Total > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d objects", p.Done, p.Total))
	}
	if p.ErrorCount > 0 {
		parts = append(parts, fmt.Sprintf("%d errors", p.ErrorCount))
	}
	return strings.Join(parts, "  ")
}

// bar draws p as a progress bar of width cells.
func (p progress) bar(width int) string {
	pct := min(max(p.Percent, 0), 100)
	filled := int(pct) * width / 100
	return "[" + strings.Repeat("=", filled) + strings.Repeat(" ", width-filled) + fmt.Sprintf("] %3d%%  ", pct) + p.line()
}

// failure is the error --wait exits with for a phase that is not Completed.
func (p progress) failure(kind, ns, name string) error {
	msg := p.Message
	if len(p.Errors) > 0 && !strings.Contains(msg, p.Errors[0]) {
		msg = strings.TrimSpace(msg + "\n  " + strings.Join(p.Errors, "\n  "))
	}
	if msg == "" {
		msg = "no reason given"
	}
	return fmt.Errorf("%s %s/%s %s: %s", kind, ns, name, p.Phase, msg)
}

// isTerminal reports whether w is a terminal, where a bar can be redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// follow waits until the Backup or Restore ns/name ends, drawing its progress on out, and returns an error
// saying why when it does not complete. The Job is watched too: a pod that cannot start, or a Job that fails
// without reporting, ends the wait with the pod's reason.
func follow(ctx context.Context, c clients, gvr schema.GroupVersionResource, kind, ns, name, job string, out io.Writer, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	tty := isTerminal(out)
	label := fmt.Sprintf("%s %s/%s ", kind, ns, name)
	last := ""
	lastVolume := map[string]string{}
	drawn := 0 // lines drawn under the bar, to redraw in place
	show := func(p progress) {
		if tty {
			if drawn > 0 {
				fmt.Fprintf(out, "\033[%dA", drawn)
			}
			fmt.Fprintf(out, "\r\033[K%s%s", label, p.bar(30))
			drawn = 0
			for i, v := range p.Volumes {
				if i == maxVolumeBars {
					fmt.Fprintf(out, "\n\r\033[K  ... and %d more volumes", len(p.Volumes)-i)
					drawn++
					break
				}
				fmt.Fprintf(out, "\n\r\033[K%s", v.bar(20))
				drawn++
			}
			return
		}
		if l := p.line(); l != last {
			fmt.Fprintf(out, "%s%s\n", label, l)
			last = l
		}
		// Without a terminal, a volume's line is printed when its phase changes.
		for _, v := range p.Volumes {
			if lastVolume[v.Name] != v.Phase {
				fmt.Fprintf(out, "%s%s\n", label, v.line())
				lastVolume[v.Name] = v.Phase
			}
		}
	}
	endLine := func() {
		if tty {
			fmt.Fprintln(out)
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		gctx, cancel := context.WithTimeout(ctx, clusterTimeout)
		u, err := c.Dynamic.Resource(gvr).Namespace(ns).Get(gctx, name, metav1.GetOptions{})
		cancel()
		switch {
		case apierrors.IsNotFound(err):
			endLine()
			return fmt.Errorf("%s %s/%s was deleted while waiting for it", kind, ns, name)
		case err != nil && ctx.Err() == nil:
			// A transient API error: try again at the next tick.
		case err == nil:
			p := progressOf(u)
			show(p)
			st, jerr := jobspec.Get(ctx, c.Kube, v1alpha1.SystemNamespace, job)
			// A team member may not read Jobs in pxb-system: the final status is then the whole answer.
			jobGone := apierrors.IsNotFound(jerr) || apierrors.IsForbidden(jerr)
			if p.final() && (p.Phase != string(v1alpha1.BackupFailed) || st.Done || jobGone) {
				endLine()
				if p.Phase == string(v1alpha1.BackupCompleted) {
					return nil
				}
				return p.failure(kind, ns, name)
			}
			// A Job that failed (or cannot start its pod) without a final status says why itself.
			if jerr == nil && st.Failed && !p.final() {
				endLine()
				return fmt.Errorf("%s %s/%s: Job %s/%s failed: %s", kind, ns, name, v1alpha1.SystemNamespace, job, st.Reason)
			}
		}
		select {
		case <-ctx.Done():
			endLine()
			return fmt.Errorf("%s %s/%s did not finish within %s (it goes on; follow it with kubectl pxb %s describe %s)",
				kind, ns, name, timeout, strings.ToLower(kind), name)
		case <-tick.C:
		}
	}
}
