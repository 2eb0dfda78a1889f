package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/schedule"
)

// newScheduleCmd is what a BackupSchedule's CronJob runs: one start of one of its policy's schedules.
func newScheduleCmd(target *jobspec.Ref) *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   string(jobspec.KindSchedule) + " --kind KIND",
		Short: "Create a Backup from a BackupSchedule when one is due, and apply retention",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := schedule.ParseKind(kind)
			if err != nil {
				return report(fmt.Errorf("--kind: %w", err))
			}
			env, opts, err := prepare(target, jobspec.KindSchedule, v1alpha1.BackupSchedulesResource.Resource)
			if err != nil {
				return report(err)
			}
			out, err := jobs.Schedule(cmd.Context(), env.Config, target.Namespace, target.Name, k, opts, time.Now())
			if out != nil {
				w := cmd.OutOrStdout()
				if out.Backup != "" {
					fmt.Fprintf(w, "created Backup %s/%s\n", target.Namespace, out.Backup)
				}
				if out.Skipped != "" {
					fmt.Fprintf(w, "no backup: %s\n", out.Skipped)
				}
				if len(out.Deleted) > 0 {
					fmt.Fprintf(w, "retention deleted %s\n", strings.Join(out.Deleted, ", "))
				}
				for _, k := range out.Kept {
					fmt.Fprintf(w, "retention: %s\n", k)
				}
			}
			return report(err)
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "The policy's schedule this start is for: interval, daily, weekly or monthly.")
	return cmd
}
