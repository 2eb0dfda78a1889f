package jobspec

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
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

// TestRefArgsCarryUID: the object's UID reaches the pod's command line and back, and a Ref without one
// renders as before.
func TestRefArgsCarryUID(t *testing.T) {
	for _, r := range []Ref{
		{Resource: "backups", Namespace: "app", Name: "nightly", UID: "6c1f0d3e-8a0b-4c55-9a43-5b3f0e2d9a10"},
		{Resource: "backups", Namespace: "app", Name: "nightly"},
	} {
		var got Ref
		fs := pflag.NewFlagSet("job", pflag.ContinueOnError)
		got.AddFlags(fs)
		if err := fs.Parse(r.Args()); err != nil || got != r {
			t.Errorf("%+v through %q: %+v, %v", r, r.Args(), got, err)
		}
	}
	if args := (Ref{Resource: "backups", Name: "x"}).Args(); strings.Contains(strings.Join(args, " "), "--uid") {
		t.Errorf("a Ref without UID renders %q", args)
	}
}
