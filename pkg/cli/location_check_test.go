package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// TestReportCheckWrongPassphrase: a check that found the location's passphrase does not open its repository
// (Unavailable, Repository False WrongPassphrase) makes `location check` fail naming the wrong passphrase;
// an empty location with no repository yet passes and says so.
func TestReportCheckWrongPassphrase(t *testing.T) {
	since := time.Now().Add(-time.Minute)
	now := metav1.Now()
	msg := "wrong passphrase: the location's encryption key (Secret pxb-system/b-key) does not open the repository"
	loc := &v1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Status: v1alpha1.BackupLocationStatus{
		Phase: v1alpha1.LocationUnavailable, Message: msg, LastValidationTime: &now,
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionRepository, Status: metav1.ConditionFalse, Reason: "WrongPassphrase", Message: msg}},
	}}
	var out bytes.Buffer
	err := reportCheck(&out, loc, since)
	if err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Errorf("reportCheck: %v, want an error naming the wrong passphrase", err)
	}
	if !strings.Contains(out.String(), "WrongPassphrase") {
		t.Errorf("output does not name the reason:\n%s", out.String())
	}

	loc.Status.Phase, loc.Status.Message = v1alpha1.LocationAvailable, "write, read, list and delete of a probe object succeeded"
	loc.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionRepository, Status: metav1.ConditionTrue, Reason: "NoRepository",
		Message: "no repository yet: the first backup creates it"}}
	out.Reset()
	if err := reportCheck(&out, loc, since); err != nil || !strings.Contains(out.String(), "the first backup creates it") {
		t.Errorf("empty location: %v\n%s", err, out.String())
	}
}
