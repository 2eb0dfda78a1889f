package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

var completionShells = []string{"bash", "zsh", "fish", "powershell"}

// CompletionOptions are the options of `kubectl pxb completion`.
type CompletionOptions struct {
	Shell string
	Root  *cobra.Command
	genericiooptions.IOStreams
}

// NewCmdCompletion returns `kubectl pxb completion`.
func NewCmdCompletion(streams genericiooptions.IOStreams) *cobra.Command {
	o := &CompletionOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print a shell completion script for kubectl-pxb.

The script completes "kubectl-pxb ...". For "kubectl pxb ..." (kubectl 1.26 or later), put an executable
named kubectl_complete-pxb on your PATH that runs: kubectl pxb __complete "$@"`,
		Example: `  # Load completion into the current bash shell
  source <(kubectl pxb completion bash)

  # Complete "kubectl pxb ..." through kubectl's own completion
  printf '#!/bin/sh\nkubectl pxb __complete "$@"\n' > ~/bin/kubectl_complete-pxb && chmod +x ~/bin/kubectl_complete-pxb`,
		ValidArgs: completionShells,
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		// The script is made from the commands alone: no factory.
		RunE: runE(nil, o),
	}
	return cmd
}

// Complete takes the shell and the root command whose completions are generated.
func (o *CompletionOptions) Complete(_ cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.Shell = args[0]
	o.Root = cmd.Root()
	return nil
}

// Validate checks the shell.
func (o *CompletionOptions) Validate() error {
	for _, s := range completionShells {
		if o.Shell == s {
			return nil
		}
	}
	return fmt.Errorf("unsupported shell %q: use one of bash, zsh, fish, powershell", o.Shell)
}

// Run writes the script.
func (o *CompletionOptions) Run(context.Context) error {
	switch o.Shell {
	case "bash":
		return o.Root.GenBashCompletionV2(o.Out, true)
	case "zsh":
		return o.Root.GenZshCompletion(o.Out)
	case "fish":
		return o.Root.GenFishCompletion(o.Out, true)
	default:
		return o.Root.GenPowerShellCompletionWithDesc(o.Out)
	}
}
