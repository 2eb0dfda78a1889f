package apply

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
)

// Plan is what a dry-run restore would do (layout.RestorePlanKey): every object with its outcome, the diff
// of each one it would update or replace, and every volume it would make. It is kept in the bucket rather
// than in the Restore's status, which it would outgrow.
type Plan struct {
	// Restore and Backup are "namespace/name".
	Restore        string          `json:"restore"`
	Backup         string          `json:"backup"`
	ExistingPolicy Policy          `json:"existingResourcePolicy"`
	Objects        []SummaryEntry  `json:"objects"`
	Volumes        []PlannedVolume `json:"volumes,omitempty"`
}

// PlannedVolume is a claim a dry-run restore would make and fill from the backup, or why it would not.
type PlannedVolume struct {
	// Namespace and Claim are the claim in the target; SourceNamespace is the backup's when mapped.
	Namespace       string `json:"namespace"`
	Claim           string `json:"claim"`
	SourceNamespace string `json:"sourceNamespace,omitempty"`
	// Snapshot is the repository snapshot holding the volume's files.
	Snapshot string `json:"snapshot,omitempty"`
	// StorageClass is the class of the new volume, after the StorageClass mapping.
	StorageClass string  `json:"storageClass,omitempty"`
	Size         string  `json:"size,omitempty"`
	Outcome      Outcome `json:"outcome"`
	Reason       string  `json:"reason,omitempty"`
}

// Fails reports whether any object or volume of the plan would fail, which fails the restore as a whole.
func (p *Plan) Fails() bool {
	for _, e := range p.Objects {
		if e.Outcome == OutcomeWouldFail || e.Outcome == OutcomeFailed {
			return true
		}
	}
	for _, v := range p.Volumes {
		if v.Outcome == OutcomeWouldFail {
			return true
		}
	}
	return false
}

// WritePlan writes p under a restore's prefix in out.
func WritePlan(ctx context.Context, out collect.Store, p *Plan) error {
	if err := collect.PutJSON(ctx, out, layout.RestorePlanKey, p); err != nil {
		return fmt.Errorf("write restore plan: %w", err)
	}
	return nil
}

// ReadPlan reads the plan kept under a restore's prefix in s; a restore that was no dry run has none, and
// the error then wraps collect.ErrNotFound.
func ReadPlan(ctx context.Context, s collect.Store) (*Plan, error) {
	var p *Plan
	err := collect.ReadJSONLines(ctx, s, layout.RestorePlanKey, func(v Plan) error {
		p = &v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore plan: %w", err)
	}
	if p == nil {
		return nil, fmt.Errorf("restore plan: %s is empty", layout.RestorePlanKey)
	}
	return p, nil
}

// diffOmitted are the metadata fields a diff leaves out: the API server sets them on every write.
var diffOmitted = []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"}

// lastApplied is kubectl apply's record of what it applied; it may hold a Secret's values in clear.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Diff is the unified diff, as YAML, between the live object and what a restore would write over it (as the
// API server's dry run returned it); "" when they differ only in what the diff leaves out: the fields the
// server sets, status, kubectl's last-applied annotation, and the restore's own labels. A Secret's values are
// shown as "hmac:" and the first 12 hex digits of a keyed hash (see secretKey), never in clear.
func Diff(live, restored *unstructured.Unstructured) (string, error) {
	a, err := diffText(live)
	if err != nil {
		return "", err
	}
	b, err := diffText(restored)
	if err != nil {
		return "", err
	}
	if a == b {
		return "", nil
	}
	id := live.GetKind() + "/" + live.GetName()
	if ns := live.GetNamespace(); ns != "" {
		id = ns + "/" + id
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b), FromFile: "live " + id, ToFile: "restored " + id, Context: 3,
	})
}

func diffText(u *unstructured.Unstructured) (string, error) {
	c := u.DeepCopy()
	for _, f := range diffOmitted {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(c.Object, "status")
	unstructured.RemoveNestedField(c.Object, "metadata", "annotations", lastApplied)
	unstructured.RemoveNestedField(c.Object, "metadata", "labels", LabelBackup)
	unstructured.RemoveNestedField(c.Object, "metadata", "labels", LabelRestore)
	for _, f := range []string{"labels", "annotations"} {
		if m, _, _ := unstructured.NestedMap(c.Object, "metadata", f); len(m) == 0 {
			unstructured.RemoveNestedField(c.Object, "metadata", f)
		}
	}
	if c.GetAPIVersion() == "v1" && c.GetKind() == "Secret" {
		hashValues(c.Object, "data", true)
		hashValues(c.Object, "stringData", false)
	}
	y, err := yaml.Marshal(c.Object)
	if err != nil {
		return "", fmt.Errorf("encode %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return string(y), nil
}

// secretKey keys the hashes of Secret values, anew in every process: within one plan equal values show alike
// and a changed value differs, while a short value (a PIN, a word) cannot be found by hashing candidates, as it
// could from a plain hash.
var secretKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read does not fail
	return k
}()

// hashValues replaces the values of a Secret's field by their keyed hashes; data's are base64 and hashed
// decoded, so that the same value hashes alike in data and stringData.
func hashValues(obj map[string]any, field string, encoded bool) {
	m, ok := obj[field].(map[string]any)
	if !ok {
		return
	}
	for k, v := range m {
		s, _ := v.(string)
		value := []byte(s)
		if encoded {
			if d, err := base64.StdEncoding.DecodeString(s); err == nil {
				value = d
			}
		}
		mac := hmac.New(sha256.New, secretKey)
		mac.Write(value)
		m[k] = "hmac:" + hex.EncodeToString(mac.Sum(nil))[:12]
	}
}
