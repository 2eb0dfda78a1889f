// Command pxb-job runs pxb's work inside the cluster, one subcommand per job kind. Each Job that the plugin
// or a CronJob launches runs one of them against one pxb object and reports into that object's status.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
	// Schedules run in their policy's time zone; the job's image has no zoneinfo of its own.
	_ "time/tzdata"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		var final *jobenv.FinalError
		if errors.As(err, &final) {
			os.Exit(jobspec.ExitFinal)
		}
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	target := &jobspec.Ref{}
	root := &cobra.Command{
		Use:           "pxb-job",
		Short:         "Run one step of a pxb backup or restore inside the cluster",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	target.AddFlags(root.PersistentFlags())
	root.AddCommand(newProbeCmd(target), newBackupCmd(target), newRestoreCmd(target))
	root.AddCommand(newCheckCmd(target), newSyncCmd(target), newMaintenanceCmd(target), newUploadCmd(target), newDownloadCmd(target))
	root.AddCommand(newScheduleCmd(target), newDeleteCmd(target), newReconcileCmd())
	return root
}

// newProbeCmd proves the plumbing: the job's identity can read its object and write its status.
func newProbeCmd(target *jobspec.Ref) *cobra.Command {
	return &cobra.Command{
		Use:   "probe",
		Short: "Read the target object and set its Probed condition",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := target.Validate(); err != nil {
				return err
			}
			env, err := jobenv.NewEnv()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			err = env.SetCondition(ctx, *target, metav1.Condition{
				Type:    "Probed",
				Status:  metav1.ConditionTrue,
				Reason:  "JobRunnerReachedObject",
				Message: "pxb-job " + version.Version + " read this object and wrote its status",
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "probed %s\n", target)
			return nil
		},
	}
}
