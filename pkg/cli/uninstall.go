package cli

import (
	"context"
	"fmt"
	"io"
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
		Use:   "uninstall [--force]",
		Short: "Remove pxb from the cluster",
		Long: `Remove pxb from the cluster: its custom resource definitions (and with them every pxb object), its RBAC and
the pxb-system namespace with the Secrets in it. Backup data in the buckets is not touched, but it can only be
read again with each location's encryption passphrase: keep a copy of those Secrets.

Uninstall refuses while Backups exist, since removing the definitions deletes them; --force removes them anyway.`,
		Example: `  # Remove pxb when no Backup is left
  kubectl pxb uninstall

  # Remove pxb and every Backup object (their data stays in the buckets)
  kubectl pxb uninstall --force`,
		Args: cobra.NoArgs,
		RunE: runE(f, o),
	}
	cmd.Flags().BoolVar(&o.Force, "force", o.Force, "Uninstall even though Backups exist; they are deleted.")
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
	return nil
}

// Run deletes what install applied.
func (o *UninstallOptions) Run(ctx context.Context) error {
	objs, err := installObjects(install.Options{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	writers, err := o.Client.RestoreWriters(ctx)
	if err != nil {
		return err
	}
	// Deleted last to first: the manifests, then what teams' restores made, then what earlier versions left.
	objs = append(append(install.Retired(), writers...), objs...)
	deleted, err := o.Client.Uninstall(ctx, objs, o.Force)
	if perr := printDeleted(o.Out, deleted); perr != nil {
		return perr
	}
	if err != nil {
		return err
	}
	if o.Wait {
		return o.Client.WaitForDeletion(ctx, deleted, o.Timeout)
	}
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
