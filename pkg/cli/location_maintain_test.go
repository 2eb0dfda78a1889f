package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestLocationMaintainFlags: --read-data alone reads every pack, --read-data=N that percentage; both reach the
// Job's pod (now or on the CronJob) as --read-data N beside --safety; a percentage outside 1..100 is refused
// naming the flag and the range. A scheduled maintenance reads the packs in turn within 30 days by default.
func TestLocationMaintainFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		jobArgs []string
		err     string
	}{
		{nil, nil, ""},
		{[]string{"--read-data"}, []string{"--read-data", "100"}, ""},
		{[]string{"--read-data=10"}, []string{"--read-data", "10"}, ""},
		{[]string{"--read-data=100", "--safety=none"}, []string{"--safety", "none", "--read-data", "100"}, ""},
		{[]string{"--read-data=5", "--every=24h"}, []string{"--read-data", "5"}, ""},
		// Scheduled maintenance reads every pack within 30 days unless told otherwise.
		{[]string{"--every=24h"}, []string{"--read-data-period", "720h0m0s"}, ""},
		{[]string{"--every=24h", "--read-data-period=0"}, nil, ""},
		{[]string{"--every=24h", "--read-data-period=168h"}, []string{"--read-data-period", "168h0m0s"}, ""},
		{[]string{"--read-data-period=24h"}, []string{"--read-data-period", "24h0m0s"}, ""},
		{[]string{"--read-data", "--read-data-period=24h"}, nil, "--read-data and --read-data-period choose the packs to read in two ways: give one"},
		{[]string{"--read-data-period=30m"}, nil, "--read-data-period must be at least 1h (or 0: off), not 30m0s"},
		{[]string{"--read-data=0"}, nil, "--read-data must be a percentage of the packs from 1 to 100, not 0"},
		{[]string{"--read-data=101"}, nil, "--read-data must be a percentage of the packs from 1 to 100, not 101"},
		{[]string{"--read-data=-5"}, nil, "--read-data must be a percentage of the packs from 1 to 100, not -5"},
		{[]string{"--read-data=all"}, nil, `invalid argument "all" for "--read-data" flag`},
		{[]string{"--safety=some"}, nil, `--safety must be full or none, not "some"`},
	} {
		o := &LocationMaintainOptions{}
		cmd := &cobra.Command{}
		o.addFlags(cmd, "maintenance", "Maintain", "maintains")
		o.addMaintainFlags(cmd)
		err := cmd.ParseFlags(tc.args)
		if err == nil {
			o.complete(cmd)
			o.completeMaintainFlags(cmd)
			err = o.Validate()
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(o.jobArgs, tc.jobArgs) {
			t.Errorf("%q: job args %q, err %v; want %q", tc.args, o.jobArgs, err, tc.jobArgs)
		}
	}
}
