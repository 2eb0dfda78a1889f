package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/install"
	"github.com/pxb-dev/pxb/pkg/version"
)

// clusterTimeout bounds the reads of commands that only look at the cluster.
const clusterTimeout = 30 * time.Second

// VersionOptions are the options of `kubectl pxb version`.
type VersionOptions struct {
	ClientOnly bool
	Output     string

	Kube   kubernetes.Interface
	Client install.Client
	genericiooptions.IOStreams
}

// NewCmdVersion returns `kubectl pxb version`.
func NewCmdVersion(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &VersionOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the versions of the plugin and of pxb in the cluster, and warn when they differ",
		Long: `Print the version of this plugin and, from the cluster of the current context, the version pxb was
installed at, the job image its Jobs run and the version of its custom resource definitions. When they
differ, a warning on standard error says which command brings them together.`,
		Example: `  # Versions of the plugin and of the installation in the current context
  kubectl pxb version

  # The plugin's version only, as JSON
  kubectl pxb version --client -o json`,
		Args: cobra.NoArgs,
		RunE: runE(f, o),
	}
	cmd.Flags().BoolVar(&o.ClientOnly, "client", o.ClientOnly, "Print the client version only, without contacting the cluster.")
	addReportOutputFlag(cmd, &o.Output)
	return cmd
}

// Complete builds the cluster clients unless only the client version is asked for.
func (o *VersionOptions) Complete(f cmdutil.Factory, _ *cobra.Command, _ []string) error {
	if o.ClientOnly {
		return nil
	}
	var err error
	if o.Kube, err = f.KubernetesClientSet(); err != nil {
		return err
	}
	o.Client, err = installClient(f)
	return err
}

// Validate checks the flags.
func (o *VersionOptions) Validate() error {
	return validateReportOutput(o.Output)
}

// Run prints the versions, and the skew between them on standard error.
func (o *VersionOptions) Run(ctx context.Context) error {
	info := install.Versions{Plugin: version.Version}
	var clusterErr error
	if !o.ClientOnly {
		info, clusterErr = o.read(ctx)
	}
	if o.Output != "" {
		if err := printReport(o.Out, o.Output, info); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(o.Out, "Client Version: %s\n", info.Plugin)
		if clusterErr == nil && !o.ClientOnly {
			installed := info.Installed
			if installed == "" {
				installed = "not installed"
			}
			fmt.Fprintf(o.Out, "Installed Version: %s\n", installed)
			if info.Installed != "" {
				fmt.Fprintf(o.Out, "Job Image: %s\n", info.JobImage)
			}
			if len(info.CRDs) > 0 {
				fmt.Fprintf(o.Out, "CRD Version: %s\n", strings.Join(info.CRDs, ", "))
			}
		}
	}
	if clusterErr != nil {
		return clusterErr
	}
	for _, w := range info.Skew() {
		fmt.Fprintf(o.ErrOut, "WARNING: %s\n", w)
	}
	return nil
}

func (o *VersionOptions) read(ctx context.Context) (install.Versions, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	info := install.Versions{Plugin: version.Version}
	data, err := install.InstalledConfig(ctx, o.Kube)
	if err != nil {
		return info, err
	}
	return o.Client.ReadVersions(ctx, version.Version, data)
}
