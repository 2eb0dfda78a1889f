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

// newSyncCmd creates the Backups found in a BackupLocation that the cluster lacks, and writes the outcome
// into the location's status. Backups that could not be synced are a result, reported there; the Job fails
// only when the location cannot be read or the status not written.
func newSyncCmd(target *jobrun.Target) *cobra.Command {
	return newObjectCmd(target, "sync", v1alpha1.BackupLocationsResource.Resource,
		"Create the Backup objects of a location that the cluster lacks",
		func(ctx context.Context, cfg *rest.Config, _, name string, opts runjob.Options) error {
			res, err := runjob.SyncLocation(ctx, cfg, name, opts)
			if err == nil {
				fmt.Printf("backuplocation %s: %s\n", name, res.Message())
			}
			return err
		})
}
