package jobrun

import (
	"strings"
	"testing"
)

func TestTargetValidate(t *testing.T) {
	for _, tc := range []struct {
		target  Target
		wantErr string
	}{
		{Target{Resource: "backups", Namespace: "app", Name: "nightly"}, ""},
		{Target{Resource: "schedulepolicies", Name: "daily"}, ""},
		{Target{Resource: "pods", Name: "x"}, `--resource must be one of backuplocations, schedulepolicies, rules, backups, restores, backupschedules, not "pods"`},
		{Target{Resource: "backups", Namespace: "app"}, "--name is required"},
	} {
		err := tc.target.Validate()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%+v: err = %v, want %q", tc.target, err, tc.wantErr)
		}
	}
	if got := (Target{Resource: "backups", Namespace: "app", Name: "nightly"}).String(); got != "backups/app/nightly" {
		t.Errorf("String() = %q", got)
	}
}
