package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"sigs.k8s.io/yaml"
)

// runNowhere executes `kubectl pxb args...` with a kubeconfig whose context (namespace team-a) points at a
// port nothing listens on: any request to a cluster fails.
func runNowhere(t *testing.T, args ...string) (string, error) {
	t.Helper()
	path := nowhereKubeconfig(t)
	var out bytes.Buffer
	cmd := NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs(append(args, "--kubeconfig", path))
	err := cmd.Execute()
	return out.String(), err
}

// clientDryRun is --dry-run=client -o output.
func clientDryRun(output string) createFlags {
	c := newCreateFlags()
	c.DryRun = dryRunClient
	*c.PrintFlags.OutputFormat = output
	return c
}

// TestCreateClientDryRun runs every create command with --dry-run=client against a kubeconfig that
// points nowhere: each prints its object and reaches for no cluster.
func TestCreateClientDryRun(t *testing.T) {
	cred := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(cred, []byte("[default]\naws_access_key_id = AKIA\naws_secret_access_key = very-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args       []string
		kind, name string
		// named is what --dry-run=client alone prints.
		named string
	}{
		{[]string{"backup", "create", "nightly", "--include-namespaces", "shop", "--location", "main"}, "Backup", "nightly", "backup.pxb.dev/nightly created (dry run)\n"},
		{[]string{"restore", "create", "back", "--from-backup", "nightly"}, "Restore", "back", "restore.pxb.dev/back created (dry run)\n"},
		{[]string{"schedule", "create", "shop", "--policy", "standard", "--include-namespaces", "shop"}, "BackupSchedule", "shop", "backupschedule.pxb.dev/shop created (dry run)\n"},
		{[]string{"location", "create", "prod", "--provider", "s3", "--bucket", "b"}, "BackupLocation", "prod", "backuplocation.pxb.dev/prod created (dry run)\n"},
		{[]string{"credential", "create", "s3-prod", "--provider", "aws", "--from-file", cred}, "Secret", "s3-prod", "secret/s3-prod created (dry run)\n"},
	} {
		out, err := runNowhere(t, append(tc.args, "--dry-run=client", "-o", "yaml")...)
		if err != nil {
			t.Errorf("%v --dry-run=client -o yaml: %v\n%s", tc.args, err, out)
			continue
		}
		var obj struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal([]byte(out), &obj); err != nil || obj.Kind != tc.kind || obj.Metadata.Name != tc.name {
			t.Errorf("%v --dry-run=client -o yaml printed %s %s (%v):\n%s", tc.args, obj.Kind, obj.Metadata.Name, err, out)
		}
		if strings.Contains(out, "very-secret") {
			t.Errorf("%v printed a credential's value:\n%s", tc.args, out)
		}
		if out, err := runNowhere(t, append(tc.args, "--dry-run=client")...); err != nil || out != tc.named {
			t.Errorf("%v --dry-run=client printed %q (%v), want %q", tc.args, out, err, tc.named)
		}
	}
	if out, err := runNowhere(t, "restore", "create", "back", "--from-backup", "nightly", "--dry-run=client", "-o", "json"); err != nil || !strings.Contains(out, `"backupName": "nightly"`) || strings.Contains(out, `"dryRun"`) {
		t.Errorf("restore create --dry-run=client -o json: %v\n%s", err, out)
	}
}

func TestDryRunFlagValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backup", "create", "b", "--dry-run=maybe"}, "--dry-run must be none, client or server, not \"maybe\""},
		{[]string{"schedule", "create", "s", "--policy", "p", "--dry-run=plan"}, "--dry-run must be none, client or server, not \"plan\""},
		{[]string{"location", "create", "l", "--provider", "nfs", "--dry-run=yes"}, "--dry-run must be none, client or server"},
		{[]string{"restore", "create", "--from-backup", "b", "--dry-run=maybe"}, "--dry-run must be plan (the bare --dry-run), client, server or none, not \"maybe\""},
		{[]string{"backup", "create", "b", "--dry-run=client", "-o", "table"}, "--output"},
		{[]string{"backup", "create", "b", "--dry-run=client", "--wait"}, "--wait cannot be combined with --dry-run=client"},
		{[]string{"backup", "create", "b", "--dry-run=server", "--wait"}, "--wait cannot be combined with --dry-run=server"},
		{[]string{"restore", "create", "--from-backup", "b", "--dry-run=server", "--wait"}, "--wait cannot be combined with --dry-run=server"},
	} {
		out, err := runNowhere(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v (%s), want an error with %q", tc.args, err, out, tc.want)
		}
	}
}

func TestRestoreDryRunFlag(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		strategy cmdutil.DryRunStrategy
		plan     bool
	}{
		{nil, cmdutil.DryRunNone, false},
		{[]string{"--dry-run"}, cmdutil.DryRunNone, true},
		{[]string{"--dry-run=plan"}, cmdutil.DryRunNone, true},
		{[]string{"--dry-run=true"}, cmdutil.DryRunNone, true},
		{[]string{"--dry-run=false"}, cmdutil.DryRunNone, false},
		{[]string{"--dry-run=none"}, cmdutil.DryRunNone, false},
		{[]string{"--dry-run=client"}, cmdutil.DryRunClient, false},
		{[]string{"--dry-run=server"}, cmdutil.DryRunServer, false},
	} {
		c := newCreateFlags()
		cmd := &cobra.Command{}
		c.addPlanFlags(cmd)
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		s, plan, err := c.dryRunStrategy()
		if err != nil || s != tc.strategy || plan != tc.plan {
			t.Errorf("%v: strategy %v plan %v (%v), want %v %v", tc.args, s, plan, err, tc.strategy, tc.plan)
		}
		if err := c.Validate(true); (err == nil) != (s == cmdutil.DryRunNone) {
			t.Errorf("%v --wait: %v", tc.args, err)
		}
	}
	// A plan is a Restore with spec.dryRun that its job carries out: --wait follows it.
	o := &RestoreCreateOptions{Name: "r", FromBackup: "b", ExistingResourcePolicy: "retain", RestoreVolumes: true, Wait: true, Timeout: 1, Create: newCreateFlags()}
	o.Create.plan, o.Create.DryRun = true, dryRunPlan
	if err := o.Validate(); err != nil {
		t.Errorf("--dry-run --wait: %v", err)
	}
}
