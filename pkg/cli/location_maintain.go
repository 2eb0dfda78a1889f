package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
)

// LocationMaintainOptions are the options of `kubectl pxb location maintain`.
type LocationMaintainOptions struct {
	locationJobOptions
	// Safety is full (data written within a lease's time is kept) or none.
	Safety string
	// ReadData is the percentage of the packs whose data the maintenance reads and verifies (1 to 100), with
	// --read-data; 0 without it.
	ReadData int
	// ReadDataPeriod has each maintenance read the packs in turn so that every pack is read within it; a
	// scheduled maintenance does so every 30 days unless told otherwise.
	ReadDataPeriod time.Duration

	readDataSet, readDataPeriodSet bool
}

// scheduledReadDataPeriod is the period within which a scheduled maintenance reads every pack by default.
const scheduledReadDataPeriod = 30 * 24 * time.Hour

func newCmdLocationMaintain(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &LocationMaintainOptions{locationJobOptions: locationJobOptions{IOStreams: streams, Wait: true, Timeout: time.Hour}}
	cmd := &cobra.Command{
		Use:   "maintain NAME",
		Short: "Verify a location's repository and remove the data that no backup needs any more",
		Long: `Run a Job in pxb-system that verifies the structure of the location's repository (every index readable,
every pack present with the size and header its index states, every backup's file trees readable) and,
when it is sound, removes the data that only deleted backups used: packs no backup needs are deleted,
packs mostly unneeded are rewritten with what is still needed, and uploads that killed jobs abandoned are
aborted. Deleting a backup removes it from the location at once; its data goes at the next maintenance.

Data written less than 35 minutes before (a lease's time, plus an allowance for clocks that differ) stays
until a later maintenance, so that a backup that stalled or whose clock is off never loses data it is about
to reference. --safety=none frees it now: use it only when nothing else uses the location meanwhile.

Maintenance never runs while a backup or a restore uses the location: it then reports the location busy and
removes nothing, and the next maintenance does. Data still under object lock (objectLockDays) is kept and
reported with the date it unlocks. A damaged repository is reported and nothing is deleted.

The structure check does not read the data itself: a byte flipped inside a pack goes unnoticed until a
restore needs it. --read-data reads every pack and decrypts and hashes every piece of data in it;
--read-data=PERCENT reads that share of the packs, picked at random each time. --read-data-period=DURATION
reads the packs in turn instead, the share whose turn came since the last read, so that every pack is read
within that period; a scheduled maintenance does this with a period of 30 days unless --read-data or
--read-data-period (0: off) says otherwise. It reports "read N of M packs" with their size, and for
each damaged pack the backups (and volumes) it breaks; each such Backup gets the condition DataVerified=False
(reason DataDamaged) naming the packs, which kubectl pxb describe shows. Reading costs the packs' download.

The outcome goes into the location's status; kubectl pxb location describe shows it. With --every (or
--schedule) the command does not run now: it creates or updates a CronJob in pxb-system that maintains the
location on that interval; --every 0 or --unschedule removes it.

The command exits with an error when the repository is damaged or busy, or could not be read.`,
		Example: `  kubectl pxb location maintain prod

  # Maintain every day, or on a cron schedule; stop maintaining on a schedule
  kubectl pxb location maintain prod --every 24h
  kubectl pxb location maintain prod --schedule "0 3 * * 0"
  kubectl pxb location maintain prod --unschedule

  # Also read and verify all the data; or a random tenth of the packs every day
  kubectl pxb location maintain prod --read-data
  kubectl pxb location maintain prod --read-data=10 --every 24h`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	o.addFlags(cmd, "maintenance", "Maintain", "maintains")
	o.addMaintainFlags(cmd)
	return cmd
}

// addMaintainFlags adds the flags of maintenance itself: --safety and --read-data.
func (o *LocationMaintainOptions) addMaintainFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.Safety, "safety", "full", "full keeps unused data written in the last 35 minutes for a later maintenance; none frees it now (only when nothing else uses the location).")
	cmd.Flags().IntVar(&o.ReadData, "read-data", 0, "Also read and verify the data of this percentage of the packs (1 to 100; --read-data alone reads all), "+
		"naming each damaged pack and the backups it breaks. Give the percentage as --read-data=PERCENT.")
	cmd.Flags().Lookup("read-data").NoOptDefVal = "100"
	cmd.Flags().DurationVar(&o.ReadDataPeriod, "read-data-period", 0, "Read and verify the packs' data in turn, so that every pack is read within this period "+
		"(scheduled maintenance: 720h unless --read-data is given; 0: off).")
}

// Complete builds the clients and notes the flags given.
func (o *LocationMaintainOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.completeMaintainFlags(cmd)
	return o.locationJobOptions.Complete(f, cmd, args)
}

func (o *LocationMaintainOptions) completeMaintainFlags(cmd *cobra.Command) {
	o.readDataSet = cmd.Flags().Changed("read-data")
	o.readDataPeriodSet = cmd.Flags().Changed("read-data-period")
}

// Validate checks --safety, --read-data and the schedule flags, and passes --safety and --read-data on to the
// Job.
func (o *LocationMaintainOptions) Validate() error {
	o.jobArgs = nil
	switch o.Safety {
	case "full":
	case "none":
		o.jobArgs = append(o.jobArgs, "--safety", o.Safety)
	default:
		return fmt.Errorf("--safety must be full or none, not %q", o.Safety)
	}
	if o.readDataSet {
		if o.ReadData < 1 || o.ReadData > 100 {
			return fmt.Errorf("--read-data must be a percentage of the packs from 1 to 100, not %d", o.ReadData)
		}
		o.jobArgs = append(o.jobArgs, "--read-data", strconv.Itoa(o.ReadData))
	}
	if err := o.locationJobOptions.Validate(); err != nil {
		return err
	}
	switch {
	case o.readDataSet && o.readDataPeriodSet && o.ReadDataPeriod != 0:
		return fmt.Errorf("--read-data and --read-data-period choose the packs to read in two ways: give one")
	case o.ReadDataPeriod < 0 || (o.ReadDataPeriod > 0 && o.ReadDataPeriod < time.Hour):
		return fmt.Errorf("--read-data-period must be at least 1h (or 0: off), not %s", o.ReadDataPeriod)
	case o.scheduling && !o.readDataSet && !o.readDataPeriodSet:
		o.ReadDataPeriod = scheduledReadDataPeriod
	}
	if o.ReadDataPeriod > 0 {
		o.jobArgs = append(o.jobArgs, "--read-data-period", o.ReadDataPeriod.String())
	}
	return nil
}

// Run launches the maintenance's Job and, with --wait, prints the outcome it wrote into the location's
// status; or sets up or removes the scheduled maintenance.
func (o *LocationMaintainOptions) Run(ctx context.Context) error {
	return o.run(ctx, jobspec.KindMaintenance, "maintenance", "maintained", "maintains", reportMaintenance)
}

// reportMaintenance prints the outcome of a maintenance that started at since, and fails when it did not
// succeed.
func reportMaintenance(w io.Writer, loc *v1alpha1.BackupLocation, since time.Time) error {
	cond := meta.FindStatusCondition(loc.Status.Conditions, v1alpha1.ConditionMaintained)
	t := loc.Status.LastMaintenanceTime
	// Creation times have whole seconds: a status written in the same second is this maintenance's.
	if t == nil || t.Time.Before(since.Truncate(time.Second)) || cond == nil {
		return fmt.Errorf("the maintenance of location %s ended without writing its outcome into the location's status", loc.Name)
	}
	tw := newTabWriter(w)
	fmt.Fprintf(tw, "Location:\t%s\n", loc.Name)
	fmt.Fprintf(tw, "Maintenance:\t%s\n", cond.Message)
	fmt.Fprintf(tw, "Last maintained:\t%s\n", t.UTC().Format("2006-01-02 15:04:05 MST"))
	if err := tw.Flush(); err != nil {
		return err
	}
	if cond.Status != metav1.ConditionTrue {
		return fmt.Errorf("location %s: %s", loc.Name, cond.Message)
	}
	return nil
}
