package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/store"
)

// LocationSyncOptions are the options of `kubectl pxb location sync`.
type LocationSyncOptions struct{ locationJobOptions }

func newCmdLocationSync(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &LocationSyncOptions{locationJobOptions{IOStreams: streams, Wait: true, Timeout: 10 * time.Minute}}
	cmd := &cobra.Command{
		Use:   "sync NAME",
		Short: "Create the Backups found in a backup location that this cluster lacks",
		Long: `Run a Job in pxb-system that lists the backups in the location and, for each one this cluster has no
Backup for, creates it in the backup's namespace (creating the namespace if needed), with the status the
backup ended with. Such Backups are labelled pxb.dev/synced=true and annotated pxb.dev/origin-cluster with
the ID of the cluster that made them; they can be restored like any other. Backups that exist are left alone.

This is how a second cluster sees a first one's backups (migration, disaster recovery): create the same
location there, with the key from kubectl pxb location export-key, and sync.

Deleting a synced Backup leaves its data in the location (a later sync brings it back) unless
kubectl pxb backup delete is given --delete-data.

Every backup and restore Job also syncs its location before it starts, so a cluster that backs up to or
restores from a location sees the others' backups there without this command.

With --every (or --schedule) the command does not sync now: it creates or updates a CronJob in pxb-system
that runs the sync on that interval; --every 0 or --unschedule removes it. kubectl pxb location describe
shows the schedule.

The command exits with an error when some backups could not be synced.`,
		Example: `  kubectl pxb location sync prod

  # Start the sync and return; read the outcome later
  kubectl pxb location sync prod --wait=false
  kubectl pxb location describe prod

  # Sync every hour, or on a cron schedule; stop syncing on a schedule
  kubectl pxb location sync prod --every 1h
  kubectl pxb location sync prod --schedule "*/30 * * * *"
  kubectl pxb location sync prod --unschedule`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	o.addFlags(cmd, "sync", "Sync", "syncs")
	return cmd
}

// Run launches the sync's Job and, with --wait, prints the outcome it wrote into the location's status;
// or sets up or removes the scheduled sync.
func (o *LocationSyncOptions) Run(ctx context.Context) error {
	return o.run(ctx, jobspec.KindSync, "sync", "synced", "syncs", reportSync)
}

// runLocationJob launches a Job of kind on BackupLocation name (what it does is said by what: "check",
// "sync") and, with await, waits up to timeout for it to end. It returns the Job once it succeeded, nil when
// not waiting, and an error with the reason when it failed or did not end in time.
func runLocationJob(ctx context.Context, c clients, kind jobspec.Kind, name, what string, await bool, timeout time.Duration, out io.Writer, more ...string) (*batchv1.Job, error) {
	loc, err := store.GetLocation(ctx, c.Dynamic, name)
	if err != nil {
		return nil, err
	}
	cfg, err := jobspec.LoadConfig(ctx, c.Kube)
	if err != nil {
		return nil, err
	}
	job, err := jobspec.LaunchLocationJob(ctx, c.Kube, kind, loc, cfg, more...)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "Job %s/%s runs the %s of location %s.\n", job.Namespace, job.Name, what, name)
	if !await {
		fmt.Fprintf(out, "See the outcome with: kubectl pxb location describe %s\n", name)
		return nil, nil
	}
	if err := awaitJob(ctx, c, job, timeout); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("the %s of location %s did not finish within %s (Job %s/%s goes on; see kubectl pxb location describe %s)",
				what, name, timeout, job.Namespace, job.Name, name)
		}
		return nil, fmt.Errorf("the %s of location %s failed: %w", what, name, err)
	}
	return job, nil
}

// awaitJob waits up to timeout for job to end. It returns nil once the Job succeeded, an error with the reason
// when it failed, and one wrapping context.DeadlineExceeded when it did not end in time.
func awaitJob(ctx context.Context, c clients, job *batchv1.Job, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var st jobspec.State
	err := wait.PollUntilContextCancel(wctx, time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		st, err = jobspec.Get(ctx, c.Kube, job.Namespace, job.Name)
		return err == nil && (st.Done || st.Failed), nil
	})
	if err == nil && st.Failed {
		err = errors.New(st.Reason)
	}
	return err
}

// syncedSince says whether loc's status reports a sync that started at since or later. Creation times have
// whole seconds: a status written in the same second is this sync's.
func syncedSince(loc *v1alpha1.BackupLocation, since time.Time) bool {
	t := loc.Status.LastSyncTime
	return t != nil && !t.Time.Before(since.Truncate(time.Second))
}

// reportSync prints the outcome of a sync that started at since, and fails when some backups could not be
// synced.
func reportSync(w io.Writer, loc *v1alpha1.BackupLocation, since time.Time) error {
	cond := meta.FindStatusCondition(loc.Status.Conditions, v1alpha1.ConditionSynced)
	if !syncedSince(loc, since) || cond == nil {
		return fmt.Errorf("the sync of location %s ended without writing its outcome into the location's status", loc.Name)
	}
	tw := newTabWriter(w)
	fmt.Fprintf(tw, "Location:\t%s\n", loc.Name)
	fmt.Fprintf(tw, "Synced:\t%s\n", cond.Message)
	fmt.Fprintf(tw, "Last synced:\t%s\n", loc.Status.LastSyncTime.UTC().Format("2006-01-02 15:04:05 MST"))
	if err := tw.Flush(); err != nil {
		return err
	}
	if cond.Status != metav1.ConditionTrue {
		return fmt.Errorf("location %s: %s", loc.Name, cond.Message)
	}
	return nil
}
