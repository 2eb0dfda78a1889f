package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
)

// newCheckCmd checks a BackupLocation from inside the cluster, over the network path backups use, and
// writes the outcome into its status. An unavailable location is a result, not a failure of the Job: the
// Job fails only when it cannot report.
func newCheckCmd(target *jobspec.Ref) *cobra.Command {
	return newLocationCmd(target, jobspec.KindCheck, "Probe a backup location and write Available or Unavailable into its status",
		func(ctx context.Context, cfg *rest.Config, name string, opts jobs.Options) (string, error) {
			st, err := jobs.CheckLocation(ctx, cfg, name, opts)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%s: %s", st.Phase, st.Message), nil
		})
}

// newLocationCmd is a job kind that works on one BackupLocation (named by --name) and writes its outcome
// into the location's status; run returns that outcome in a line, which the job prints.
func newLocationCmd(target *jobspec.Ref, kind jobspec.Kind, short string,
	run func(ctx context.Context, cfg *rest.Config, name string, opts jobs.Options) (string, error)) *cobra.Command {
	return newObjectCmd(target, kind, v1alpha1.BackupLocationsResource.Resource, short,
		func(ctx context.Context, cfg *rest.Config, _, name string, opts jobs.Options) error {
			outcome, err := run(ctx, cfg, name, opts)
			if err == nil {
				fmt.Printf("backuplocation %s: %s\n", name, outcome)
			}
			return err
		})
}
