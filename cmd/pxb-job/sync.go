package main

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/jobspec"
)

// newSyncCmd creates the Backups found in a BackupLocation that the cluster lacks, and writes the outcome
// into the location's status. Backups that could not be synced are a result, reported there; the Job fails
// only when the location cannot be read or the status not written.
func newSyncCmd(target *jobspec.Ref) *cobra.Command {
	return newLocationCmd(target, jobspec.KindSync, "Create the Backup objects of a location that the cluster lacks",
		func(ctx context.Context, cfg *rest.Config, name string, opts jobs.Options) (string, error) {
			res, err := jobs.SyncLocation(ctx, cfg, name, opts)
			if err != nil {
				return "", err
			}
			return res.Message(), nil
		})
}
