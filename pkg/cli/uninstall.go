package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/install"
)

// UninstallOptions are the options of `kubectl pxb uninstall`.
type UninstallOptions struct {
	Purge   bool
	Force   bool
	Wait    bool
	Timeout time.Duration

	Client install.Client
	genericiooptions.IOStreams
}

// NewCmdUninstall returns `kubectl pxb uninstall`.
func NewCmdUninstall(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &UninstallOptions{Wait: true, Timeout: 5 * time.Minute, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "uninstall [--purge [--force]]",
		Short: "Remove pxb from the cluster, keeping its backups unless --purge",
		Long: `Remove pxb from the cluster: its RBAC, admission policies, reconciler and the roles of teams, so that no
pxb Job runs any more. The CronJobs of schedules and locations are suspended, and resumed by the next
kubectl pxb install.

Kept, unless --purge: the custom resource definitions with every Backup, Restore, schedule and location,
the pxb-system namespace with the Secrets in it, and the settings of pxb-config. Uninstall says what it kept;
kubectl pxb install brings pxb back with all of it.

--purge also deletes the definitions (and with them every pxb object) and the pxb-system namespace with its
Secrets. It refuses while Backups exist; --force deletes them anyway. Backup data in the buckets is never
touched, but it can only be read again with each location's encryption passphrase: keep a copy of those
Secrets before a purge.`,
		Example: `  # Remove pxb, keeping its backups, schedules and locations
  kubectl pxb uninstall

  # Remove pxb and everything it kept, when no Backup is left
  kubectl pxb uninstall --purge

  # Remove pxb and every Backup object (their data stays in the buckets)
  kubectl pxb uninstall --purge --force`,
		Args: cobra.NoArgs,
		RunE: runE(f, o),
	}
	cmd.Flags().BoolVar(&o.Purge, "purge", o.Purge, "Also delete the custom resource definitions, every pxb object and the pxb-system namespace with its Secrets.")
	cmd.Flags().BoolVar(&o.Force, "force", o.Force, "With --purge: purge even though Backups exist; they are deleted.")
	cmd.Flags().BoolVar(&o.Wait, "wait", o.Wait, "Wait until everything is gone.")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for the removal to finish.")
	return cmd
}

// Complete builds the clients.
func (o *UninstallOptions) Complete(f cmdutil.Factory, _ *cobra.Command, _ []string) error {
	var err error
	o.Client, err = installClient(f)
	return err
}

// Validate checks the flags.
func (o *UninstallOptions) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	if o.Force && !o.Purge {
		return fmt.Errorf("--force only applies with --purge: uninstall without --purge keeps every Backup")
	}
	return nil
}

// Run deletes what install applied: all of it with --purge, otherwise all but what holds the backups.
func (o *UninstallOptions) Run(ctx context.Context) error {
	// What --monitoring installed goes too, when it is there.
	objs, err := installObjects(install.Options{Monitoring: true})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	writers, err := o.Client.RestoreWriters(ctx)
	if err != nil {
		return err
	}
	var keep []*unstructured.Unstructured
	if !o.Purge {
		objs, keep = install.Kept(objs)
	}
	// Deleted last to first: the manifests, then what teams' restores made, then what earlier versions left.
	objs = append(append(install.Retired(), writers...), objs...)
	deleted, err := o.Client.Uninstall(ctx, objs, o.Force || !o.Purge)
	if perr := printDeleted(o.Out, deleted); perr != nil {
		return perr
	}
	if err != nil {
		return err
	}
	if !o.Purge {
		if err := o.keep(ctx, keep); err != nil {
			return err
		}
	}
	if o.Wait {
		return o.Client.WaitForDeletion(ctx, deleted, o.Timeout)
	}
	return nil
}

// keep suspends pxb's CronJobs, gives up install's keys of pxb-config and says what stays.
func (o *UninstallOptions) keep(ctx context.Context, keep []*unstructured.Unstructured) error {
	suspended, err := o.Client.SuspendCronJobs(ctx)
	for _, name := range suspended {
		fmt.Fprintf(o.Out, "cronjob.batch/%s suspended\n", name)
	}
	if err != nil {
		return err
	}
	if err := o.Client.ReleaseConfig(ctx); err != nil {
		return err
	}
	printer := &printers.NamePrinter{Operation: "kept"}
	for _, obj := range keep {
		if err := printer.PrintObj(obj, o.Out); err != nil {
			return err
		}
	}
	counts, err := o.Client.CountObjects(ctx)
	if err != nil {
		return err
	}
	var kept []string
	for _, c := range counts {
		if c.N > 0 {
			kept = append(kept, fmt.Sprintf("%d %s", c.N, c.Resource.Resource))
		}
	}
	if len(kept) > 0 {
		fmt.Fprintf(o.Out, "Kept %s.\n", strings.Join(kept, ", "))
	}
	fmt.Fprintln(o.Out, "kubectl pxb install brings pxb back with them; kubectl pxb uninstall --purge deletes them.")
	return nil
}

// printDeleted names each object deleted, as kubectl delete does.
func printDeleted(out io.Writer, objs []*unstructured.Unstructured) error {
	printer := &printers.NamePrinter{Operation: "deleted"}
	for _, obj := range objs {
		if err := printer.PrintObj(obj, out); err != nil {
			return err
		}
	}
	return nil
}
