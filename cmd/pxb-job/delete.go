package main

import (
	"github.com/spf13/cobra"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
)

// newDeleteCmd deletes one Backup's data in its location, then the Backup, for `kubectl pxb backup delete`
// when the plugin cannot reach the location. What it deleted is its termination message (JSON), which the
// plugin reads; why the Backup was kept is the reason of the failed Job.
func newDeleteCmd(target *jobspec.Ref) *cobra.Command {
	return &cobra.Command{
		Use:   string(jobspec.KindDelete),
		Short: "Delete a Backup's data in its location, then the Backup",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, opts, err := prepare(target, jobspec.KindDelete, v1alpha1.BackupsResource.Resource)
			if err != nil {
				return report(err)
			}
			d, err := jobs.DeleteBackup(cmd.Context(), env.Config, target.Namespace, target.Name, opts)
			if err != nil {
				return report(err)
			}
			return writeResult(d)
		},
	}
}
