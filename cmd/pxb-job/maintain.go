package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/jobspec"
)

// newMaintenanceCmd verifies a BackupLocation's repository and removes the data no backup needs any more,
// writing the outcome into the location's status. The Job fails when the repository is damaged or cannot
// be read, so that a scheduled maintenance shows up as a failed Job.
func newMaintenanceCmd(target *jobspec.Ref) *cobra.Command {
	var safety string
	var readData int
	var readDataPeriod time.Duration
	cmd := newLocationCmd(target, jobspec.KindMaintenance, "Verify a location's repository and remove the data no backup needs",
		func(ctx context.Context, cfg *rest.Config, name string, opts jobs.Options) (string, error) {
			switch safety {
			case "full":
			case "none":
				opts.FreeRecent = true
			default:
				return "", fmt.Errorf("--safety must be full or none, not %q", safety)
			}
			if readData < 0 || readData > 100 {
				return "", fmt.Errorf("--read-data must be a percentage from 1 to 100 (0: do not read the data), not %d", readData)
			}
			if readDataPeriod < 0 || (readDataPeriod > 0 && readDataPeriod < time.Hour) {
				return "", fmt.Errorf("--read-data-period must be at least 1h (or 0: off), not %s", readDataPeriod)
			}
			opts.ReadDataPercent, opts.ReadDataPeriod = readData, readDataPeriod
			res, err := jobs.MaintainLocation(ctx, cfg, name, opts)
			if err != nil {
				return "", err
			}
			return res.Message(), nil
		})
	cmd.Flags().StringVar(&safety, "safety", "full", "full keeps unused data written within a lease's time; none frees it now.")
	cmd.Flags().IntVar(&readData, "read-data", 0, "Also read and verify the data of this percentage of the packs (1 to 100; 0: only the structure).")
	cmd.Flags().DurationVar(&readDataPeriod, "read-data-period", 0, "Without --read-data, read the packs in turn so that every pack is read within this period (0: off).")
	return cmd
}
