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
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/schedule"
	"github.com/pxb-dev/pxb/pkg/store"
)

// locationJobOptions are the options of a location command whose Job runs now or, with the schedule flags,
// on a CronJob (sync, maintain).
type locationJobOptions struct {
	Name    string
	Wait    bool
	Timeout time.Duration
	locationSchedule
	// jobArgs are the command's flags for its Job's pod, now or on the CronJob.
	jobArgs []string

	client clients
	genericiooptions.IOStreams
}

// Complete builds the clients and notes whether the command sets up the CronJob.
func (o *locationJobOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.Name = args[0]
	o.complete(cmd)
	var err error
	o.client, err = newClients(f)
	return err
}

// Validate checks the schedule flags.
func (o *locationJobOptions) Validate() error { return o.validate() }

// addFlags adds the flags of the Job run now, what it does naming it ("sync", "maintenance"), and the
// schedule flags.
func (o *locationJobOptions) addFlags(cmd *cobra.Command, what, verb, does3 string) {
	cmd.Flags().BoolVar(&o.Wait, "wait", o.Wait, "Wait for the "+what+"'s outcome.")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for the "+what+"'s Job.")
	o.locationSchedule.addFlags(cmd, verb, does3)
}

// run launches the Job of kind now and, with --wait, prints with report the outcome it wrote into the
// location's status; or, with the schedule flags, sets up or removes the CronJob. what, done and does3 say
// what the Job does ("sync", "synced", "syncs").
func (o *locationJobOptions) run(ctx context.Context, kind jobspec.Kind, what, done, does3 string,
	report func(io.Writer, *v1alpha1.BackupLocation, time.Time) error) error {
	if o.scheduling {
		return o.apply(ctx, o.client, kind, o.Name, done, does3, o.Out, o.jobArgs...)
	}
	job, err := runLocationJob(ctx, o.client, kind, o.Name, what, o.Wait, o.Timeout, o.Out, o.jobArgs...)
	if err != nil || job == nil {
		return err
	}
	loc, err := store.GetLocation(ctx, o.client.Dynamic, o.Name)
	if err != nil {
		return err
	}
	return report(o.Out, loc, job.CreationTimestamp.Time)
}

// locationSchedule is the --every, --schedule and --unschedule flags of a location command whose Job can run
// on a CronJob instead of now (sync, maintain).
type locationSchedule struct {
	Every      time.Duration
	Schedule   string
	Unschedule bool

	scheduling, everySet bool
}

// addFlags adds the flags; verb says what the Job does ("Sync", "Maintain") and does3 in the third person
// ("syncs", "maintains").
func (s *locationSchedule) addFlags(cmd *cobra.Command, verb, does3 string) {
	cmd.Flags().DurationVar(&s.Every, "every", 0, verb+" on this interval (e.g. 15m, 1h, 24h) with a CronJob instead of now; 0 removes the CronJob.")
	cmd.Flags().StringVar(&s.Schedule, "schedule", "", verb+" on this cron schedule (5 fields, e.g. \"*/30 * * * *\") with a CronJob instead of now.")
	cmd.Flags().BoolVar(&s.Unschedule, "unschedule", false, "Remove the CronJob that "+does3+" the location on an interval.")
}

// complete notes whether the command sets up the CronJob rather than running the Job now.
func (s *locationSchedule) complete(cmd *cobra.Command) {
	s.everySet = cmd.Flags().Changed("every")
	s.scheduling = s.everySet || cmd.Flags().Changed("schedule") || s.Unschedule
}

// validate checks that one way of scheduling is given, and turns --every into a schedule.
func (s *locationSchedule) validate() error {
	n := 0
	for _, set := range []bool{s.everySet, s.Schedule != "", s.Unschedule} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("--every, --schedule and --unschedule are mutually exclusive")
	}
	if s.Every < 0 {
		return fmt.Errorf("--every %s: the interval must not be negative", s.Every)
	}
	if s.Every == 0 && s.Schedule == "" {
		return nil
	}
	if s.Every > 0 {
		var err error
		if s.Schedule, err = schedule.Every(s.Every); err != nil {
			return fmt.Errorf("--every: %w (--schedule takes one)", err)
		}
	}
	if len(strings.Fields(s.Schedule)) != 5 && !strings.HasPrefix(s.Schedule, "@") {
		return fmt.Errorf("--schedule %q: want the 5 fields of a cron schedule (minute hour day-of-month month day-of-week)", s.Schedule)
	}
	return nil
}

// apply creates, updates or deletes the CronJob that runs kind on location name; done ("synced") and does3
// ("syncs") say what it does, for the message.
func (s *locationSchedule) apply(ctx context.Context, c clients, kind jobspec.Kind, name, done, does3 string, out io.Writer, more ...string) error {
	if s.Schedule == "" {
		deleted, err := jobspec.DeleteLocationCronJob(ctx, c.Kube, kind, name)
		switch {
		case err != nil:
			return err
		case deleted:
			fmt.Fprintf(out, "Location %s is no longer %s on a schedule (CronJob %s/%s deleted).\n",
				name, done, v1alpha1.SystemNamespace, jobspec.LocationCronJobName(kind, name))
		default:
			fmt.Fprintf(out, "Location %s was not %s on a schedule.\n", name, done)
		}
		return nil
	}
	loc, err := store.GetLocation(ctx, c.Dynamic, name)
	if err != nil {
		return err
	}
	cfg, err := jobspec.LoadConfig(ctx, c.Kube)
	if err != nil {
		return err
	}
	var every string
	if s.Every > 0 {
		every = shortDuration(s.Every)
	}
	cj, err := jobspec.ApplyLocationCronJob(ctx, c.Kube, kind, loc, cfg, s.Schedule, every, more...)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "CronJob %s/%s %s location %s %s.\n", cj.Namespace, cj.Name, does3, name, scheduleText(cj))
	return nil
}

// scheduleText says when a location's CronJob runs: "every 1h (0 * * * *)", or "on schedule
// \"*/30 * * * *\"".
func scheduleText(cj *batchv1.CronJob) string {
	if every := cj.Annotations[jobspec.AnnotationEvery]; every != "" {
		return fmt.Sprintf("every %s (%s)", every, cj.Spec.Schedule)
	}
	return fmt.Sprintf("on schedule %q", cj.Spec.Schedule)
}

// scheduleRow is what location describe says of the CronJob that runs kind on the location.
func scheduleRow(ctx context.Context, c clients, kind jobspec.Kind, name string) string {
	cj, err := jobspec.GetLocationCronJob(ctx, c.Kube, kind, name)
	switch {
	case err != nil:
		return fmt.Sprintf("unknown (%v)", err)
	case cj == nil:
		return "none"
	}
	text := scheduleText(cj) + ", CronJob " + cj.Namespace + "/" + cj.Name
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
