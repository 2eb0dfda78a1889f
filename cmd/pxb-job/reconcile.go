package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
)

// reconcileTimeout bounds one reconciliation, within its Job's deadline.
const reconcileTimeout = 4 * time.Minute

// newReconcileCmd is what the reconciler's CronJob runs every minute: it launches the Jobs of objects
// applied without the plugin and keeps schedules' CronJobs in step. What it could not do it prints, and the
// next run tries again; it fails only when it could not look at all.
func newReconcileCmd() *cobra.Command {
	return &cobra.Command{
		Use:   string(jobspec.KindReconcile),
		Short: "Launch the Jobs of Backups and Restores that have none, and keep schedules' CronJobs in step",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := jobenv.NewEnv()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), reconcileTimeout)
			defer cancel()
			res, err := jobs.Reconcile(ctx, env.Config)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", time.Now().UTC().Format(time.RFC3339), res.Message())
			return nil
		},
	}
}
