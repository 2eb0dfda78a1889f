// Package cli holds the commands of `kubectl pxb`, one file per noun, each following kubectl's
// Options/Complete/Validate/Run pattern.
package cli

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// NewRootCmd returns `kubectl pxb` with every standard kubectl flag (--kubeconfig, --context, -n, --as,
// --request-timeout, ...) and its subcommands.
func NewRootCmd(streams genericiooptions.IOStreams) *cobra.Command {
	configFlags := genericclioptions.NewConfigFlags(true)
	f := cmdutil.NewFactory(configFlags)

	cmd := &cobra.Command{
		Use:   "kubectl-pxb",
		Short: "Back up and restore Kubernetes applications, their volumes and VMs",
		Long: `kubectl pxb backs up and restores Kubernetes applications with their volumes and KubeVirt VMs.

The plugin writes pxb.dev custom resources and starts short-lived Jobs that do the work and report into
them; the data goes to object storage (S3, Azure Blob, GCS) or NFS. There is no server to run.

Start with "kubectl pxb install".`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl pxb"},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	configFlags.AddFlags(cmd.PersistentFlags())
	// The completion command below explains how to hook into kubectl's plugin completion.
	cmd.CompletionOptions.DisableDefaultCmd = true

	cmd.AddCommand(
		NewCmdInstall(f, streams),
		NewCmdUninstall(f, streams),
		NewCmdStatus(f, streams),
		NewCmdVersion(f, streams),
		NewCmdCompletion(streams),
		NewCmdBackup(f, streams),
		NewCmdRestore(f, streams),
		NewCmdSchedule(f, streams),
		NewCmdLocation(f, streams),
		NewCmdCredential(f, streams),
		NewCmdCluster(f, streams),
		NewCmdUI(f, streams),
	)
	return cmd
}
