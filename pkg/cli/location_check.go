package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/store"
)

// LocationCheckOptions are the options of `kubectl pxb location check`.
type LocationCheckOptions struct {
	systemObjectOptions
	Wait    bool
	Timeout time.Duration
}

func newCmdLocationCheck(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &LocationCheckOptions{systemObjectOptions: systemObjectOptions{IOStreams: streams}, Wait: true, Timeout: 5 * time.Minute}
	cmd := &cobra.Command{
		Use:   "check NAME",
		Short: "Check from inside the cluster that a backup location can be written, read, listed and deleted",
		Long: `Run a Job in pxb-system that opens the location over the network path backups use, writes, reads, lists
and deletes a probe object, and looks up whether the bucket has object lock. It then opens the repository
under the location's prefix with the location's encryption key: a wrong passphrase, a repository of a newer
format, or a prefix holding something that is not a pxb repository makes the location Unavailable, with
the fix; a prefix with no repository yet is reported as such (the first backup creates it). The outcome
(Available or Unavailable, and why in plain words) goes into the location's status; kubectl pxb location
describe shows it.

The command exits with an error when the location is Unavailable.`,
		Example: `  kubectl pxb location check prod

  # Start the check and return; read the outcome later
  kubectl pxb location check prod --wait=false
  kubectl pxb location describe prod`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	cmd.Flags().BoolVar(&o.Wait, "wait", o.Wait, "Wait for the check's outcome.")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for the check's Job.")
	return cmd
}

// Run launches the check's Job and, with --wait, prints the outcome it wrote into the location's status.
func (o *LocationCheckOptions) Run(ctx context.Context) error {
	job, err := runLocationJob(ctx, o.client, jobspec.KindCheck, o.Name, "check", o.Wait, o.Timeout, o.Out)
	if err != nil || job == nil {
		return err
	}
	loc, err := store.GetLocation(ctx, o.client.Dynamic, o.Name)
	if err != nil {
		return err
	}
	return reportCheck(o.Out, loc, job.CreationTimestamp.Time)
}

// reportCheck prints the outcome of a check that started at since, and fails when the location is unusable.
func reportCheck(w io.Writer, loc *v1alpha1.BackupLocation, since time.Time) error {
	st := loc.Status
	// Creation times have whole seconds: a status written in the same second is this check's.
	if st.LastValidationTime == nil || st.LastValidationTime.Time.Before(since.Truncate(time.Second)) {
		return fmt.Errorf("the check of location %s ended without writing its outcome into the location's status", loc.Name)
	}
	tw := newTabWriter(w)
	fmt.Fprintf(tw, "Location:\t%s\n", loc.Name)
	fmt.Fprintf(tw, "Phase:\t%s\n", st.Phase)
	fmt.Fprintf(tw, "Message:\t%s\n", st.Message)
	fmt.Fprintf(tw, "Checked:\t%s\n", st.LastValidationTime.UTC().Format("2006-01-02 15:04:05 MST"))
	repo := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionRepository)
	if repo != nil {
		fmt.Fprintf(tw, "Repository:\t%s: %s\n", repo.Reason, repo.Message)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.Phase != v1alpha1.LocationAvailable {
		return fmt.Errorf("location %s is %s: %s", loc.Name, st.Phase, st.Message)
	}
	if repo != nil && repo.Status == metav1.ConditionFalse {
		return fmt.Errorf("the repository of location %s has a problem (%s): %s", loc.Name, repo.Reason, repo.Message)
	}
	return nil
}
