package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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
	"github.com/pxb-dev/pxb/pkg/runjob"
)

// LocationSyncOptions are the options of `kubectl pxb location sync`.
type LocationSyncOptions struct {
	Name    string
	Wait    bool
	Timeout time.Duration
	// Every, Schedule and Unschedule set up or remove the CronJob that syncs on an interval instead.
	Every      time.Duration
	Schedule   string
	Unschedule bool

	scheduling, everySet bool

	client clients
	genericiooptions.IOStreams
}

func newCmdLocationSync(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &LocationSyncOptions{IOStreams: streams, Wait: true, Timeout: 10 * time.Minute}
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(f, cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&o.Wait, "wait", o.Wait, "Wait for the sync's outcome.")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for the sync's Job.")
	cmd.Flags().DurationVar(&o.Every, "every", 0, "Sync on this interval (e.g. 15m, 1h, 24h) with a CronJob instead of now; 0 removes the CronJob.")
	cmd.Flags().StringVar(&o.Schedule, "schedule", "", "Sync on this cron schedule (5 fields, e.g. \"*/30 * * * *\") with a CronJob instead of now.")
	cmd.Flags().BoolVar(&o.Unschedule, "unschedule", false, "Remove the CronJob that syncs the location on an interval.")
	return cmd
}

// Complete builds the clients and notes whether the command sets up the scheduled sync.
func (o *LocationSyncOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.Name = args[0]
	o.everySet = cmd.Flags().Changed("every")
	o.scheduling = o.everySet || cmd.Flags().Changed("schedule") || o.Unschedule
	var err error
	o.client, err = newClients(f)
	return err
}

// Validate checks that one way of scheduling is given, and turns --every into a schedule.
func (o *LocationSyncOptions) Validate() error {
	n := 0
	for _, set := range []bool{o.everySet, o.Schedule != "", o.Unschedule} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("--every, --schedule and --unschedule are mutually exclusive")
	}
	if o.Every < 0 {
		return fmt.Errorf("--every %s: the interval must not be negative", o.Every)
	}
	if o.Every == 0 && o.Schedule == "" {
		return nil
	}
	if o.Every > 0 {
		var err error
		if o.Schedule, err = jobspec.ScheduleEvery(o.Every); err != nil {
			return fmt.Errorf("--every: %w (--schedule takes one)", err)
		}
	}
	if len(strings.Fields(o.Schedule)) != 5 && !strings.HasPrefix(o.Schedule, "@") {
		return fmt.Errorf("--schedule %q: want the 5 fields of a cron schedule (minute hour day-of-month month day-of-week)", o.Schedule)
	}
	return nil
}

// Run launches the sync's Job and, with --wait, prints the outcome it wrote into the location's status;
// or sets up or removes the scheduled sync.
func (o *LocationSyncOptions) Run(ctx context.Context) error {
	if o.scheduling {
		return o.schedule(ctx)
	}
	job, err := runLocationJob(ctx, o.client, jobspec.KindSync, o.Name, "sync", o.Wait, o.Timeout, o.Out)
	if err != nil || job == nil {
		return err
	}
	loc, err := runjob.GetLocation(ctx, o.client.Dynamic, o.Name)
	if err != nil {
		return err
	}
	return reportSync(o.Out, loc, job.CreationTimestamp.Time)
}

// schedule creates, updates or deletes the location's sync CronJob.
func (o *LocationSyncOptions) schedule(ctx context.Context) error {
	if o.Schedule == "" {
		deleted, err := jobspec.DeleteLocationCronJob(ctx, o.client.Kube, jobspec.KindSync, o.Name)
		switch {
		case err != nil:
			return err
		case deleted:
			fmt.Fprintf(o.Out, "Location %s is no longer synced on a schedule (CronJob %s/%s deleted).\n",
				o.Name, v1alpha1.SystemNamespace, jobspec.LocationCronJobName(jobspec.KindSync, o.Name))
		default:
			fmt.Fprintf(o.Out, "Location %s was not synced on a schedule.\n", o.Name)
		}
		return nil
	}
	loc, err := runjob.GetLocation(ctx, o.client.Dynamic, o.Name)
	if err != nil {
		return err
	}
	cfg, err := jobspec.LoadConfig(ctx, o.client.Kube)
	if err != nil {
		return err
	}
	var every string
	if o.Every > 0 {
		every = shortDuration(o.Every)
	}
	cj, err := jobspec.ApplyLocationCronJob(ctx, o.client.Kube, jobspec.KindSync, loc, cfg, o.Schedule, every)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "CronJob %s/%s syncs location %s %s.\n", cj.Namespace, cj.Name, o.Name, syncScheduleText(cj))
	return nil
}

// syncScheduleText says when a location's sync CronJob runs: "every 1h (0 * * * *)", or "on schedule
// \"*/30 * * * *\"".
func syncScheduleText(cj *batchv1.CronJob) string {
	if every := cj.Annotations[jobspec.AnnotationEvery]; every != "" {
		return fmt.Sprintf("every %s (%s)", every, cj.Spec.Schedule)
	}
	return fmt.Sprintf("on schedule %q", cj.Spec.Schedule)
}

// syncScheduleRow is what location describe says of the location's scheduled sync.
func syncScheduleRow(ctx context.Context, c clients, name string) string {
	cj, err := jobspec.GetLocationCronJob(ctx, c.Kube, jobspec.KindSync, name)
	switch {
	case err != nil:
		return fmt.Sprintf("unknown (%v)", err)
	case cj == nil:
		return "none"
	}
	text := syncScheduleText(cj) + ", CronJob " + cj.Namespace + "/" + cj.Name
	if t := cj.Status.LastScheduleTime; t != nil {
		text += ", last run " + t.UTC().Format("2006-01-02 15:04:05 MST")
	}
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		text += " (suspended)"
	}
	return text
}

// shortDuration prints d the way people write it: 1h rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// runLocationJob launches a Job of kind on BackupLocation name (what it does is said by what: "check",
// "sync") and, with await, waits up to timeout for it to end. It returns the Job once it succeeded, nil when
// not waiting, and an error with the reason when it failed or did not end in time.
func runLocationJob(ctx context.Context, c clients, kind jobspec.Kind, name, what string, await bool, timeout time.Duration, out io.Writer) (*batchv1.Job, error) {
	loc, err := runjob.GetLocation(ctx, c.Dynamic, name)
	if err != nil {
		return nil, err
	}
	cfg, err := jobspec.LoadConfig(ctx, c.Kube)
	if err != nil {
		return nil, err
	}
	job, err := jobspec.LaunchLocationJob(ctx, c.Kube, kind, loc, cfg)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "Job %s/%s runs the %s of location %s.\n", job.Namespace, job.Name, what, name)
	if !await {
		fmt.Fprintf(out, "See the outcome with: kubectl pxb location describe %s\n", name)
		return nil, nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var st jobspec.State
	err = wait.PollUntilContextCancel(wctx, time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		st, err = jobspec.Get(ctx, c.Kube, job.Namespace, job.Name)
		return err == nil && (st.Done || st.Failed), nil
	})
	if err == nil && st.Failed {
		err = errors.New(st.Reason)
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("the %s of location %s did not finish within %s (Job %s/%s goes on; see kubectl pxb location describe %s)",
				what, name, timeout, job.Namespace, job.Name, name)
		}
		return nil, fmt.Errorf("the %s of location %s failed: %w", what, name, err)
	}
	return job, nil
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
	cond := meta.FindStatusCondition(loc.Status.Conditions, runjob.ConditionSynced)
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
