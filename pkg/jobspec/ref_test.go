package jobspec

import (
	"strings"
	"testing"
)

func TestTargetValidate(t *testing.T) {
	for _, tc := range []struct {
		target  Ref
		wantErr string
	}{
		{Ref{Resource: "backups", Namespace: "app", Name: "nightly"}, ""},
		{Ref{Resource: "schedulepolicies", Name: "daily"}, ""},
		{Ref{Resource: "pods", Name: "x"}, `--resource must be one of backuplocations, schedulepolicies, rules, backups, restores, backupschedules, not "pods"`},
		{Ref{Resource: "backups", Namespace: "app"}, "--name is required"},
	} {
		err := tc.target.Validate()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%+v: err = %v, want %q", tc.target, err, tc.wantErr)
		}
	}
	if got := (Ref{Resource: "backups", Namespace: "app", Name: "nightly"}).String(); got != "backups/app/nightly" {
		t.Errorf("String() = %q", got)
	}
}
