package apply

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestDiffLeavesOutWhatTheServerSets: objects that differ only in server-set fields, status, kubectl's
// last-applied annotation and the restore's labels have no diff; a Secret's values never show in clear.
func TestDiffLeavesOutWhatTheServerSets(t *testing.T) {
	obj := func(meta map[string]any, extra map[string]any) *unstructured.Unstructured {
		m := map[string]any{"name": "db", "namespace": "shop"}
		for k, v := range meta {
			m[k] = v
		}
		u := map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": m, "data": map[string]any{"password": "czNjcjN0"}}
		for k, v := range extra {
			u[k] = v
		}
		return &unstructured.Unstructured{Object: u}
	}
	live := obj(map[string]any{"uid": "1", "resourceVersion": "7", "generation": int64(2), "creationTimestamp": "2026-01-01T00:00:00Z",
		"managedFields": []any{map[string]any{"manager": "kubectl"}},
		"annotations":   map[string]any{lastApplied: `{"stringData":{"password":"s3cr3t"}}`}}, map[string]any{"status": map[string]any{"x": "y"}})
	restored := obj(map[string]any{"uid": "1", "resourceVersion": "8", "labels": map[string]any{LabelBackup: "b", LabelRestore: "r"}}, nil)
	if d, err := Diff(live, restored); err != nil || d != "" {
		t.Errorf("diff of objects equal but for what it leaves out: %q, %v", d, err)
	}
	restored.Object["data"] = map[string]any{"password": "cm90YXRlZA=="}
	restored.Object["stringData"] = map[string]any{"token": "plain-token"}
	d, err := Diff(live, restored)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--- live shop/Secret/db\n", "+++ restored shop/Secret/db\n",
		"-  password: hmac:", "+  password: hmac:", "+  token: hmac:"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	// A plain hash of a short value gives it away to anyone who hashes candidates; the diff's is keyed.
	plain := sha256.Sum256([]byte("s3cr3t"))
	for _, clear := range []string{"czNjcjN0", "s3cr3t", "cm90YXRlZA==", "rotated", "plain-token", hex.EncodeToString(plain[:])[:12]} {
		if strings.Contains(d, clear) {
			t.Errorf("diff shows %q:\n%s", clear, d)
		}
	}
	// The same value hashes alike, encoded in data or plain in stringData.
	hashed := map[string]any{"data": map[string]any{"a": "czNjcjN0"}, "stringData": map[string]any{"b": "s3cr3t"}}
	hashValues(hashed, "data", true)
	hashValues(hashed, "stringData", false)
	if a, b := hashed["data"].(map[string]any)["a"], hashed["stringData"].(map[string]any)["b"]; a != b {
		t.Errorf("s3cr3t hashes to %v in data, %v in stringData", a, b)
	}
}

func TestPlanFails(t *testing.T) {
	p := &Plan{Objects: []SummaryEntry{{Outcome: OutcomeWouldCreate}, {Outcome: OutcomeWouldUpdate}}, Volumes: []PlannedVolume{{Outcome: OutcomeWouldCreate}}}
	if p.Fails() {
		t.Error("a plan without failures fails")
	}
	p.Volumes = append(p.Volumes, PlannedVolume{Outcome: OutcomeWouldFail})
	if !p.Fails() {
		t.Error("a plan with a failing volume does not fail")
	}
	p.Volumes = nil
	p.Objects = append(p.Objects, SummaryEntry{Outcome: OutcomeWouldFail})
	if !p.Fails() {
		t.Error("a plan with a failing object does not fail")
	}
}
