package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// Values of --dry-run.
const (
	dryRunNone   = "none"
	dryRunClient = "client"
	dryRunServer = "server"
	// dryRunPlan is restore create's bare --dry-run: a Restore with spec.dryRun, whose job reports what it
	// would do and changes nothing.
	dryRunPlan = "plan"
)

// createFlags are the --dry-run and -o flags of the create commands, as kubectl create has them:
// --dry-run=client prints the object without sending it, --dry-run=server has the API server validate it
// (schema and rules) without storing it, and -o prints the object in a format (yaml, json, name, ...) —
// the created one unless with --dry-run=client.
type createFlags struct {
	// DryRun is the value of --dry-run; empty means none.
	DryRun     string
	PrintFlags *genericclioptions.PrintFlags
	// plan allows --dry-run=plan, which a bare --dry-run means (restore create).
	plan bool
}

func newCreateFlags() createFlags {
	return createFlags{DryRun: dryRunNone, PrintFlags: genericclioptions.NewPrintFlags("created").WithTypeSetter(Scheme)}
}

// AddFlags adds --dry-run, as kubectl create has it, and the -o flags to cmd.
func (c *createFlags) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.DryRun, "dry-run", c.DryRun,
		`Must be "none", "server", or "client". If client strategy, only print the object that would be sent, without sending it. If server strategy, submit server-side request without persisting the resource.`)
	// A bare --dry-run is client, as in kubectl.
	cmd.Flags().Lookup("dry-run").NoOptDefVal = "unchanged"
	c.PrintFlags.AddFlags(cmd)
}

// addPlanFlags adds restore create's --dry-run, whose bare form asks for a plan, and the -o flags to cmd.
func (c *createFlags) addPlanFlags(cmd *cobra.Command) {
	c.plan = true
	cmd.Flags().StringVar(&c.DryRun, "dry-run", c.DryRun,
		`Must be "plan", "none", "server", or "client". The bare --dry-run is plan: the Restore is created with spec.dryRun and its job reports what it would restore, changing nothing. If client strategy, only print the Restore that would be sent, without sending it. If server strategy, submit server-side request without persisting the Restore; no job runs.`)
	cmd.Flags().Lookup("dry-run").NoOptDefVal = dryRunPlan
	c.PrintFlags.AddFlags(cmd)
}

// dryRunStrategy is kubectl's strategy for --dry-run, and whether it asks for a plan.
func (c *createFlags) dryRunStrategy() (cmdutil.DryRunStrategy, bool, error) {
	switch c.DryRun {
	case "", dryRunNone, "false":
		return cmdutil.DryRunNone, false, nil
	case dryRunClient:
		return cmdutil.DryRunClient, false, nil
	case dryRunServer:
		return cmdutil.DryRunServer, false, nil
	case dryRunPlan, "true":
		if c.plan {
			return cmdutil.DryRunNone, true, nil
		}
	case "unchanged":
		// A bare --dry-run, as kubectl reads it.
		return cmdutil.DryRunClient, false, nil
	}
	if c.plan {
		return cmdutil.DryRunNone, false, fmt.Errorf("--dry-run must be plan (the bare --dry-run), client, server or none, not %q", c.DryRun)
	}
	return cmdutil.DryRunNone, false, fmt.Errorf("--dry-run must be none, client or server, not %q", c.DryRun)
}

// clientOnly reports whether the command prints the object without reaching for the cluster.
func (c *createFlags) clientOnly() bool {
	s, _, err := c.dryRunStrategy()
	return err == nil && s == cmdutil.DryRunClient
}

// serverDryRun reports whether the API server is to check the object without storing it.
func (c *createFlags) serverDryRun() bool {
	s, _, err := c.dryRunStrategy()
	return err == nil && s == cmdutil.DryRunServer
}

// printing reports whether -o asks for the object in a format.
func (c *createFlags) printing() bool {
	return c.PrintFlags != nil && c.PrintFlags.OutputFormat != nil && *c.PrintFlags.OutputFormat != ""
}

// Validate checks --dry-run and -o, and that a dry run is not waited for; errors name the flags.
func (c *createFlags) Validate(wait bool) error {
	s, _, err := c.dryRunStrategy()
	if err != nil {
		return err
	}
	if wait && s != cmdutil.DryRunNone {
		return fmt.Errorf("--wait cannot be combined with --dry-run=%s: nothing is created to wait for", c.DryRun)
	}
	if c.PrintFlags != nil {
		if _, err := c.PrintFlags.ToPrinter(); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
	}
	return nil
}

// createOptions are the options of the create request: a dry run on the server with --dry-run=server.
func (c *createFlags) createOptions() metav1.CreateOptions {
	o := metav1.CreateOptions{FieldManager: "kubectl-pxb"}
	if c.serverDryRun() {
		o.DryRun = []string{metav1.DryRunAll}
	}
	return o
}

// print prints obj as -o says (by default its name and operation, as kubectl create does), noting a dry
// run. A typed object not from the server is printed without its status and creation time.
func (c *createFlags) print(obj runtime.Object, operation string, out io.Writer) error {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return err
		}
		u = &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	}
	pf := *c.PrintFlags
	name := *pf.NamePrintFlags
	name.Operation = operation
	pf.NamePrintFlags = &name
	s, _, err := c.dryRunStrategy()
	if err != nil {
		return err
	}
	p, err := cmdutil.PrintFlagsWithDryRunStrategy(&pf, s).ToPrinter()
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	return p.PrintObj(u, out)
}
