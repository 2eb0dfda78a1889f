package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"sigs.k8s.io/yaml"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/store"
)

// The formats a dry run's plan prints in: the diffs and a summary, or the whole plan.
var planFormats = []string{"diff", "yaml", "json"}

func validatePlanOutput(format string) error {
	if !slices.Contains(planFormats, format) {
		return fmt.Errorf("--output %q: a restore's plan prints as diff, yaml or json", format)
	}
	return nil
}

func newCmdRestorePlan(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RestorePlanOptions{ObjectOptions: ObjectOptions{IOStreams: streams}, Output: "diff"}
	cmd := &cobra.Command{
		Use:   "plan NAME [-o diff|yaml|json]",
		Short: "Show what a dry-run restore would do: each object's outcome, diffs of the changed ones, volumes",
		Long: `Print the plan of a Restore created with --dry-run, once it has ended: the diff between each live
object it would update or replace and what it would write (server-set fields left out, Secret values
as sha256 hashes), what it would create, keep or fail with the API server's reason, and the claims it
would make. Exits non-zero when any object or volume would fail.`,
		Example: `  kubectl pxb restore plan shop-nightly-20250101120000 -n pxb-system
  kubectl pxb restore plan shop-nightly-20250101120000 -n pxb-system -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "Output format: diff (the diffs, then a summary), yaml or json (the whole plan).")
	return cmd
}

// RestorePlanOptions are the options of `restore plan`.
type RestorePlanOptions struct {
	ObjectOptions
	Output string
}

// Validate checks -o.
func (o *RestorePlanOptions) Validate() error { return validatePlanOutput(o.Output) }

// Run prints the plan of a dry-run Restore that has ended.
func (o *RestorePlanOptions) Run(ctx context.Context) error {
	r, err := o.getRestore(ctx)
	if err != nil {
		return err
	}
	if !r.Spec.DryRun {
		return fmt.Errorf("Restore %s/%s is no dry run and has no plan: kubectl pxb restore describe %s shows what it did", r.Namespace, r.Name, r.Name)
	}
	if r.Status.CompletionTimestamp == nil {
		return fmt.Errorf("Restore %s/%s has not ended (phase %s): its plan is written when it ends", r.Namespace, r.Name, orDefault(string(r.Status.Phase), "Pending"))
	}
	location, err := o.restoreLocation(ctx, r)
	if err != nil {
		return err
	}
	p, err := readPlan(ctx, o.clients, location, r.Namespace, r.Name)
	if err != nil {
		return err
	}
	return printPlan(o.Out, p, o.Output)
}

// runPlan creates the dry-run Restore r, waits for its job (its progress on stderr), and prints its plan.
func (o *RestoreCreateOptions) runPlan(ctx context.Context, r *v1alpha1.Restore, location string) error {
	progress := genericiooptions.IOStreams{In: o.In, Out: o.ErrOut, ErrOut: o.ErrOut}
	waitErr := submit(ctx, o.clients, jobspec.KindRestore, r, location, &o.Create, true, o.Timeout, progress)
	p, err := readPlan(ctx, o.clients, location, r.GetNamespace(), r.GetName())
	if err != nil {
		// A restore that ended without a plan (or did not end) says why itself.
		return errors.Join(waitErr, err)
	}
	return printPlan(o.Out, p, o.planOutput)
}

// readPlan reads the plan of Restore ns/name from its Backup's location.
func readPlan(ctx context.Context, c clients, location, ns, name string) (*apply.Plan, error) {
	loc, err := openLocation(ctx, c, location)
	if err != nil {
		return nil, fmt.Errorf("the plan of Restore %s/%s is in location %s, which cannot be read: %w", ns, name, location, err)
	}
	defer loc.Close()
	return apply.ReadPlan(ctx, store.Prefixed(loc.Store, layout.RestorePrefix(ns, name)))
}

// printPlan prints p as format (planFormats) and returns an error when the restore would not succeed as a
// whole, so that the command exits non-zero.
func printPlan(w io.Writer, p *apply.Plan, format string) error {
	switch format {
	case "yaml", "json":
		var data []byte
		var err error
		if format == "yaml" {
			data, err = yaml.Marshal(p)
		} else {
			data, err = json.MarshalIndent(p, "", "  ")
			data = append(data, '\n')
		}
		if err != nil {
			return fmt.Errorf("encode the plan: %w", err)
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	default:
		if err := printPlanDiff(w, p); err != nil {
			return err
		}
	}
	objects, volumes := 0, 0
	for _, e := range p.Objects {
		if e.Outcome == apply.OutcomeWouldFail || e.Outcome == apply.OutcomeFailed {
			objects++
		}
	}
	for _, v := range p.Volumes {
		if v.Outcome == apply.OutcomeWouldFail {
			volumes++
		}
	}
	if p.Fails() {
		return fmt.Errorf("restore %s would not succeed: %d objects and %d volumes would fail", p.Restore, objects, volumes)
	}
	return nil
}

// printPlanDiff prints, as kubectl diff does, the diff of every object the restore would change, then the
// outcome of every object it would not leave as it is, and its volumes.
func printPlanDiff(out io.Writer, p *apply.Plan) error {
	counts := map[apply.Outcome]int{}
	changed := 0
	for _, e := range p.Objects {
		counts[e.Outcome]++
		if e.Diff != "" {
			changed++
			if _, err := io.WriteString(out, e.Diff); err != nil {
				return err
			}
		}
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "\nRestore %s of Backup %s (existing objects: %s) would write %d objects: %d created, %d updated or replaced (%d changed), %d kept, %d skipped, %d failing\n",
		p.Restore, p.Backup, p.ExistingPolicy, len(p.Objects), counts[apply.OutcomeWouldCreate],
		counts[apply.OutcomeWouldUpdate]+counts[apply.OutcomeWouldReplace], changed,
		counts[apply.OutcomeWouldRetain], counts[apply.OutcomeSkipped], counts[apply.OutcomeWouldFail]+counts[apply.OutcomeFailed])
	header := false
	for _, e := range p.Objects {
		unchanged := (e.Outcome == apply.OutcomeWouldUpdate || e.Outcome == apply.OutcomeWouldReplace) && e.Diff == "" && e.Reason == ""
		if e.Outcome == apply.OutcomeWouldRetain || unchanged {
			continue
		}
		if !header {
			fmt.Fprintln(w, "  OUTCOME\tRESOURCE\tNAME\tREASON")
			header = true
		}
		name := e.Name
		if e.Namespace != "" {
			name = e.Namespace + "/" + e.Name
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", e.Outcome, e.Resource, name, e.Reason)
	}
	if len(p.Volumes) > 0 {
		fmt.Fprintln(w, "\nVolumes:")
		fmt.Fprintln(w, "  OUTCOME\tCLAIM\tFROM SNAPSHOT\tSTORAGECLASS\tSIZE\tREASON")
		for _, v := range p.Volumes {
			claim := v.Namespace + "/" + v.Claim
			if v.SourceNamespace != "" {
				claim += " (from " + v.SourceNamespace + ")"
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\n", v.Outcome, claim, orDefault(v.Snapshot, "<none>"), orDefault(v.StorageClass, "<default>"), v.Size, v.Reason)
		}
	}
	return w.Flush()
}
