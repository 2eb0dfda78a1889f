package main

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/jobspec"
)

// newMaintenanceCmd verifies a BackupLocation's repository and removes the data no backup needs any more,
// writing the outcome into the location's status. The Job fails when the repository is damaged or cannot
// be read, so that a scheduled maintenance shows up as a failed Job.
func newMaintenanceCmd(target *jobspec.Ref) *cobra.Command {
	return newLocationCmd(target, jobspec.KindMaintenance, "Verify a location's repository and remove the data no backup needs",
		func(ctx context.Context, cfg *rest.Config, name string, opts jobs.Options) (string, error) {
			res, err := jobs.MaintainLocation(ctx, cfg, name, opts)
			if err != nil {
				return "", err
			}
			return res.Message(), nil
		})
}
