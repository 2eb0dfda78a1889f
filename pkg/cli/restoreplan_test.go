package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pxb-dev/pxb/pkg/apply"
)

// TestPrintPlan prints a stored plan as a user reads it: the diffs, the objects that would not stay as they
// are, the volumes; and fails when a volume would.
func TestPrintPlan(t *testing.T) {
	p := &apply.Plan{Restore: "shop/preview", Backup: "shop/nightly", ExistingPolicy: apply.PolicyUpdate,
		Objects: []apply.SummaryEntry{
			{Resource: "configmaps", Namespace: "shop", Name: "settings", Outcome: apply.OutcomeWouldUpdate, Diff: "--- live shop/ConfigMap/settings\n+++ restored shop/ConfigMap/settings\n"},
			{Resource: "services", Namespace: "shop", Name: "web", Outcome: apply.OutcomeWouldUpdate},
			{Resource: "deployments.apps", Namespace: "shop", Name: "api", Outcome: apply.OutcomeWouldCreate},
		},
		Volumes: []apply.PlannedVolume{
			{Namespace: "shop", Claim: "data", Snapshot: "20260101T000000Z-abcd", StorageClass: "fast", Size: "1Gi", Outcome: apply.OutcomeWouldCreate},
		},
	}
	var out bytes.Buffer
	if err := printPlan(&out, p, "diff"); err != nil {
		t.Fatalf("a plan without failures: %v", err)
	}
	for _, want := range []string{"--- live shop/ConfigMap/settings\n", "would write 3 objects: 1 created, 2 updated or replaced (1 changed)",
		"shop/api", "20260101T000000Z-abcd", "fast", "1Gi"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "shop/web") {
		t.Errorf("an unchanged object is listed:\n%s", out.String())
	}
	p.Volumes[0].Outcome, p.Volumes[0].Reason = apply.OutcomeWouldFail, `StorageClass "fast" not found`
	out.Reset()
	if err := printPlan(&out, p, "yaml"); err == nil || !strings.Contains(err.Error(), "0 objects and 1 volumes would fail") {
		t.Errorf("a plan with a failing volume: %v", err)
	}
	if !strings.Contains(out.String(), "outcome: would-fail") || !strings.Contains(out.String(), "claim: data") {
		t.Errorf("yaml plan:\n%s", out.String())
	}
}
