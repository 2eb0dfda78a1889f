package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/install"
	"github.com/pxb-dev/pxb/pkg/version"
)

// InstallOptions are the options of `kubectl pxb install`.
type InstallOptions struct {
	PrintFlags *genericclioptions.PrintFlags
	PrintObj   func(obj runtime.Object) error

	Image          string
	TenantRole     string
	Monitoring     bool
	Force          bool
	Wait           bool
	Timeout        time.Duration
	DryRunStrategy cmdutil.DryRunStrategy

	Client install.Client
	genericiooptions.IOStreams
}

// NewCmdInstall returns `kubectl pxb install`.
func NewCmdInstall(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &InstallOptions{
		PrintFlags: genericclioptions.NewPrintFlags("serverside-applied").WithTypeSetter(Scheme),
		TenantRole: string(install.TenantRoleAggregate),
		Wait:       true,
		Timeout:    2 * time.Minute,
		IOStreams:  streams,
	}
	cmd := &cobra.Command{
		Use:   "install [--image IMAGE] [--tenant-role=aggregate|none] [--dry-run=server|client|none]",
		Short: "Install or upgrade pxb in the cluster",
		Long: `Install or upgrade pxb in the cluster of the current context: the pxb-system namespace, the pxb.dev
custom resource definitions, the Jobs' ServiceAccounts with their RBAC, the admission policies that keep
each team's backups and restores to its own namespace, the roles of teams (--tenant-role), the
pxb-config ConfigMap, and the reconciler: a CronJob that every minute launches the Jobs of Backups and
Restores applied without kubectl pxb and keeps BackupSchedules' CronJobs in step with their policies.

Objects are applied server-side with the field manager "pxb", so running install again is harmless and
upgrades an older installation, keeping every Backup, Restore, schedule, location and Secret. Install
refuses to replace the definitions of a newer pxb with older ones unless --force, and resumes the CronJobs
an uninstall without --purge suspended. It waits until the definitions are established.`,
		Example: `  # Install into the current context
  kubectl pxb install

  # Give teams no role for pxb's objects: grant them with roles of your own
  kubectl pxb install --tenant-role=none

  # Also install pxb's alert rules and kube-state-metrics configuration (needs the Prometheus operator)
  kubectl pxb install --monitoring

  # Use a job image of your own registry
  kubectl pxb install --image registry.example.com/pxb-job:v0.1.0

  # Print what would be applied
  kubectl pxb install --dry-run=client -o yaml`,
		Args: cobra.NoArgs,
		RunE: runE(f, o),
	}
	o.PrintFlags.AddFlags(cmd)
	cmdutil.AddDryRunFlag(cmd)
	cmd.Flags().StringVar(&o.Image, "image", install.DefaultImage(), "Image of the pxb-job runner.")
	cmd.Flags().StringVar(&o.TenantRole, "tenant-role", o.TenantRole,
		"aggregate: whoever may edit (or view) a namespace may back it up and restore it (or see its backups), through ClusterRoles aggregated into admin, edit and view; none: no such role (one installed before stays).")
	cmd.Flags().BoolVar(&o.Monitoring, "monitoring", o.Monitoring,
		"Also apply pxb's Prometheus alert rules (PrometheusRule pxb) and kube-state-metrics configuration (ConfigMap pxb-kube-state-metrics) in pxb-system; needs the Prometheus operator's CRDs.")
	cmd.Flags().BoolVar(&o.Force, "force", o.Force, "Install even over the custom resource definitions of a newer pxb, which downgrades them.")
	cmd.Flags().BoolVar(&o.Wait, "wait", o.Wait, "Wait until the custom resource definitions are established.")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for the installation to finish.")
	return cmd
}

// Complete reads the dry-run mode, builds the printer and, unless nothing is sent, the clients.
func (o *InstallOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, _ []string) error {
	var err error
	o.DryRunStrategy, err = cmdutil.GetDryRunStrategy(cmd)
	if err != nil {
		return err
	}
	cmdutil.PrintFlagsWithDryRunStrategy(o.PrintFlags, o.DryRunStrategy)
	printer, err := o.PrintFlags.ToPrinter()
	if err != nil {
		return err
	}
	o.PrintObj = func(obj runtime.Object) error { return printer.PrintObj(obj, o.Out) }
	if o.DryRunStrategy == cmdutil.DryRunClient {
		return nil
	}
	o.Client, err = installClient(f)
	return err
}

func installClient(f cmdutil.Factory) (install.Client, error) {
	dyn, err := f.DynamicClient()
	if err != nil {
		return install.Client{}, err
	}
	mapper, err := f.ToRESTMapper()
	if err != nil {
		return install.Client{}, err
	}
	return install.Client{Dynamic: dyn, Mapper: mapper}, nil
}

// Validate checks the flags.
func (o *InstallOptions) Validate() error {
	if o.Image == "" || strings.ContainsAny(o.Image, " \t\n") {
		return fmt.Errorf("--image must be an image reference, not %q", o.Image)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	if _, err := install.ParseTenantRole(o.TenantRole); err != nil {
		return fmt.Errorf("--tenant-role: %w", err)
	}
	return nil
}

// Run applies the objects, or prints them for a client dry run, and waits for the CRDs.
func (o *InstallOptions) Run(ctx context.Context) error {
	objs, err := installObjects(install.Options{Image: o.Image, TenantRole: install.TenantRole(o.TenantRole), Monitoring: o.Monitoring})
	if err != nil {
		return err
	}
	if o.Monitoring && o.DryRunStrategy != cmdutil.DryRunClient {
		// Before anything is applied: an install that stops half way helps no one.
		if err := o.Client.CheckMonitoring(); err != nil {
			return err
		}
	}
	if o.DryRunStrategy == cmdutil.DryRunClient {
		for _, obj := range objs {
			if err := o.PrintObj(obj); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if !o.Force {
		if err := o.Client.CheckDowngrade(ctx, version.Version); err != nil {
			return err
		}
	}
	applied, err := o.Client.Apply(ctx, objs, o.DryRunStrategy == cmdutil.DryRunServer)
	for _, obj := range applied {
		if perr := o.PrintObj(obj); perr != nil {
			return perr
		}
	}
	if err != nil {
		return err
	}
	if o.DryRunStrategy == cmdutil.DryRunNone {
		// An upgrade takes away what earlier versions granted and this one does not.
		retired, err := o.Client.Uninstall(ctx, install.Retired(), true)
		if perr := printDeleted(o.Out, retired); perr != nil {
			return perr
		}
		if err != nil {
			return err
		}
		// What an uninstall without --purge suspended runs again.
		resumed, err := o.Client.ResumeCronJobs(ctx)
		for _, name := range resumed {
			fmt.Fprintf(o.Out, "cronjob.batch/%s resumed\n", name)
		}
		if err != nil {
			return err
		}
	}
	if o.Wait && o.DryRunStrategy == cmdutil.DryRunNone {
		return o.Client.WaitForCRDs(ctx, install.CRDNames(objs), o.Timeout)
	}
	return nil
}
