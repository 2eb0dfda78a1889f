package cli

import (
	"context"
	"fmt"
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

// VersionInfo is what `kubectl pxb version` reports.
type VersionInfo struct {
	ClientVersion string `json:"clientVersion"`
	// InstalledVersion is empty when pxb is not installed in the cluster.
	InstalledVersion string `json:"installedVersion,omitempty"`
}

// VersionOptions are the options of `kubectl pxb version`.
type VersionOptions struct {
	ClientOnly bool
	Output     string

	Kube kubernetes.Interface
	genericiooptions.IOStreams
}

// NewCmdVersion returns `kubectl pxb version`.
func NewCmdVersion(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &VersionOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client version and the version installed in the cluster",
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

// Complete builds the cluster client unless only the client version is asked for.
func (o *VersionOptions) Complete(f cmdutil.Factory, _ *cobra.Command, _ []string) error {
	if o.ClientOnly {
		return nil
	}
	var err error
	o.Kube, err = f.KubernetesClientSet()
	return err
}

// Validate checks the flags.
func (o *VersionOptions) Validate() error {
	return validateReportOutput(o.Output)
}

// Run prints the versions.
func (o *VersionOptions) Run(ctx context.Context) error {
	info := VersionInfo{ClientVersion: version.Version}
	var clusterErr error
	if !o.ClientOnly {
		ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
		defer cancel()
		data, err := install.InstalledConfig(ctx, o.Kube)
		if err != nil {
			clusterErr = err
		} else if data != nil {
			info.InstalledVersion = data[install.ConfigVersion]
			if info.InstalledVersion == "" {
				info.InstalledVersion = "unknown"
			}
		}
	}
	if o.Output != "" {
		if err := printReport(o.Out, o.Output, info); err != nil {
			return err
		}
		return clusterErr
	}
	fmt.Fprintf(o.Out, "Client Version: %s\n", info.ClientVersion)
	if clusterErr != nil {
		return clusterErr
	}
	if !o.ClientOnly {
		installed := info.InstalledVersion
		if installed == "" {
			installed = "not installed"
		}
		fmt.Fprintf(o.Out, "Installed Version: %s\n", installed)
	}
	return nil
}
