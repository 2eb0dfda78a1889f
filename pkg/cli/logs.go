package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/store"
)

func newCmdBackupLogs(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &BackupLogsOptions{ObjectOptions{IOStreams: streams}}
	return &cobra.Command{
		Use:     "logs NAME",
		Short:   "Print the log of a backup's job",
		Long:    "Print the log of a backup's job, kept in its location; while the backup runs, the Job pod's log.",
		Example: "  kubectl pxb backup logs shop-nightly -n pxb-system",
		Args:    cobra.ExactArgs(1),
		RunE:    runE(f, o),
	}
}

func newCmdRestoreLogs(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RestoreLogsOptions{ObjectOptions{IOStreams: streams}}
	return &cobra.Command{
		Use:     "logs NAME",
		Short:   "Print the log of a restore's job",
		Example: "  kubectl pxb restore logs shop-nightly-20250101120000 -n pxb-system",
		Args:    cobra.ExactArgs(1),
		RunE:    runE(f, o),
	}
}

// BackupLogsOptions are the options of `backup logs`.
type BackupLogsOptions struct{ ObjectOptions }

// Run prints the log of the Backup's job.
func (o *BackupLogsOptions) Run(ctx context.Context) error {
	b, err := o.getBackup(ctx)
	if err != nil {
		return err
	}
	return o.logs(ctx, string(b.Spec.Location), layout.BackupPrefix(b.Namespace, b.Name),
		jobspec.Target{Kind: jobspec.KindBackup, Namespace: b.Namespace, Name: b.Name})
}

// RestoreLogsOptions are the options of `restore logs`.
type RestoreLogsOptions struct{ ObjectOptions }

// Run prints the log of the Restore's job.
func (o *RestoreLogsOptions) Run(ctx context.Context) error {
	r, err := o.getRestore(ctx)
	if err != nil {
		return err
	}
	locName, err := o.restoreLocation(ctx, r)
	if err != nil {
		return err
	}
	return o.logs(ctx, locName, layout.RestorePrefix(r.Namespace, r.Name),
		jobspec.Target{Kind: jobspec.KindRestore, Namespace: r.Namespace, Name: r.Name})
}

// logs prints the job log kept under prefix in location, or the Job pod's log when there is none yet.
func (o *ObjectOptions) logs(ctx context.Context, location, prefix string, t jobspec.Target) error {
	loc, err := openLocation(ctx, o.clients, location)
	if err == nil {
		defer loc.Close()
		err = store.ReadLog(ctx, store.Prefixed(loc.Store, prefix), o.Out)
		if err == nil {
			return nil
		}
	}
	if perr := jobLogs(ctx, o.clients.Kube, jobspec.Name(t), o.Out); perr != nil {
		return fmt.Errorf("%v; %v", err, perr)
	}
	return nil
}
