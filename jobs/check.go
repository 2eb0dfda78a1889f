package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobrun"
	"github.com/pxb-dev/pxb/pkg/runjob"
)

// newCheckCmd checks a BackupLocation from inside the cluster, over the network path backups use, and
// writes the outcome into its status. An unavailable location is a result, not a failure of the Job: the
// Job fails only when it cannot report.
func newCheckCmd(target *jobrun.Target) *cobra.Command {
	return newObjectCmd(target, "check", v1alpha1.BackupLocationsResource.Resource,
		"Probe a backup location and write Available or Unavailable into its status",
		func(ctx context.Context, cfg *rest.Config, _, name string, opts runjob.Options) error {
			st, err := runjob.CheckLocation(ctx, cfg, name, opts)
			if err == nil {
				fmt.Printf("backuplocation %s: %s: %s\n", name, st.Phase, st.Message)
			}
			return err
		})
}
