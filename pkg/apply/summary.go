package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
)

// Outcome is what a restore did, or in a dry run would do, with one object.
type Outcome string

const (
	OutcomeRestored Outcome = "restored"
	OutcomeRetained Outcome = "retained"
	OutcomeReplaced Outcome = "replaced"
	OutcomeUpdated  Outcome = "updated"
	OutcomeFailed   Outcome = "failed"
	OutcomeSkipped  Outcome = "skipped"

	OutcomeWouldCreate  Outcome = "would-create"
	OutcomeWouldRetain  Outcome = "would-retain"
	OutcomeWouldReplace Outcome = "would-replace"
	OutcomeWouldUpdate  Outcome = "would-update"
	OutcomeWouldFail    Outcome = "would-fail"
)

// SummaryEntry is one line of a restore's summary (layout.RestoreSummaryKey).
type SummaryEntry struct {
	Resource        string  `json:"resource"`
	Namespace       string  `json:"namespace,omitempty"`
	Name            string  `json:"name"`
	SourceNamespace string  `json:"sourceNamespace,omitempty"`
	Outcome         Outcome `json:"outcome"`
	Reason          string  `json:"reason,omitempty"`
	// Diff is, in a dry run that would update or replace the object, the unified diff between the live
	// object and what would be written (Diff).
	Diff string `json:"diff,omitempty"`
}

// Result is what a restore did; it is small enough for a status. The per-object list is in the summary.
type Result struct {
	Phase    collect.Phase
	DryRun   bool
	Started  time.Time
	Finished time.Time
	// Total is the number of objects considered; Counts splits them by outcome.
	Total      int
	Counts     map[Outcome]int
	Warnings   []string
	Errors     []collect.ItemError
	ErrorCount int
	// Planned is, in a dry run, every entry of the summary, for the restore's plan (Plan); it is not for a
	// status, which it would outgrow.
	Planned []SummaryEntry
	// Held is the number of objects held back because a claim's data did not arrive (Options.MissingData):
	// claims not restored, workloads scaled to zero, suspended, halted or not restored.
	Held int
}

const (
	callTimeout  = 30 * time.Second
	pollInterval = 200 * time.Millisecond
)

// ReadSummary calls fn for every entry of a restore summary in out.
func ReadSummary(ctx context.Context, out collect.Store, fn func(SummaryEntry) error) error {
	return collect.ReadJSONLines(ctx, out, layout.RestoreSummaryKey, fn)
}

// record writes e to the summary and remembers what later objects depend on.
func (r *restorer) record(e SummaryEntry, t collect.TypeRecord, u *unstructured.Unstructured) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode summary entry: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Total++
	r.res.Counts[e.Outcome]++
	r.progress.Count.Add(1)
	if e.Outcome == OutcomeFailed || e.Outcome == OutcomeWouldFail {
		r.res.ErrorCount++
		if len(r.res.Errors) < collect.MaxReportedErrors {
			r.res.Errors = append(r.res.Errors, collect.ItemError{Resource: e.Resource, Namespace: e.Namespace, Name: e.Name, Reason: e.Reason})
		}
	}
	// What is (or in a dry run would be) in the cluster now, for the objects that need it.
	if present := e.Outcome != OutcomeFailed && e.Outcome != OutcomeWouldFail && e.Outcome != OutcomeSkipped; present {
		switch t.String() {
		case volumeType:
			r.volumes[e.Name] = true
		case storageClassType:
			r.classes[e.Name] = true
		case crdType:
			r.crds[e.Name] = true
		}
	}
	if r.opts.DryRun {
		r.res.Planned = append(r.res.Planned, e)
	}
	if _, err := r.summary.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write restore summary: %w", err)
	}
	return nil
}

func (r *restorer) warn(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.res.Warnings) < collect.MaxReportedErrors {
		r.res.Warnings = append(r.res.Warnings, s)
	}
}

func (r *restorer) itemError(e collect.ItemError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.ErrorCount++
	if len(r.res.Errors) < collect.MaxReportedErrors {
		r.res.Errors = append(r.res.Errors, e)
	}
}
