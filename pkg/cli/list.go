package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// ListOptions are the options of `backup get` and `restore get`.
type ListOptions struct {
	Names         []string
	Namespace     string
	AllNamespaces bool
	Selector      string
	PrintFlags    *PrintFlags

	// gvr and kind are what the command lists: Backups or Restores.
	gvr     schema.GroupVersionResource
	kind    string
	clients clients
	genericiooptions.IOStreams
}

func newCmdList(f cmdutil.Factory, streams genericiooptions.IOStreams, noun, kind string, gvr schema.GroupVersionResource) *cobra.Command {
	o := &ListOptions{PrintFlags: NewPrintFlags(), gvr: gvr, kind: kind, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "get [NAME...]",
		Short: fmt.Sprintf("List %ss", kind),
		Example: fmt.Sprintf(`  # %[1]ss of the current namespace
  kubectl pxb %[2]s get

  # Every %[1]s of the cluster, as YAML
  kubectl pxb %[2]s get -A -o yaml`, kind, noun),
		RunE: runE(f, o),
	}
	o.PrintFlags.AddFlags(cmd)
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "List across all namespaces.")
	cmd.Flags().StringVarP(&o.Selector, "selector", "l", "", "Only those matching this label selector.")
	return cmd
}

// Complete names the objects, reads the namespace (none with --all-namespaces) and builds the clients.
func (o *ListOptions) Complete(f cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Names = args
	var err error
	if o.Namespace, _, err = namespaceOf(f); err != nil {
		return err
	}
	if o.AllNamespaces {
		o.Namespace = ""
		o.PrintFlags.WithNamespace = true
	}
	o.clients, err = newClients(f)
	return err
}

// Validate refuses names with --all-namespaces.
func (o *ListOptions) Validate() error {
	if o.AllNamespaces && len(o.Names) > 0 {
		return errors.New("NAME cannot be combined with --all-namespaces")
	}
	return nil
}

// Run prints the objects as a table, or in the -o format.
func (o *ListOptions) Run(ctx context.Context) error {
	gvr, kind := o.gvr, o.kind
	printer, err := o.PrintFlags.ToPrinter()
	if err != nil {
		return err
	}
	if o.PrintFlags.IsTable() {
		t, err := getTable(ctx, o.clients.Kube, gvr, o.Namespace, o.Names, o.Selector)
		if err != nil {
			return err
		}
		if len(t.Rows) == 0 {
			where := "in namespace " + o.Namespace
			if o.Namespace == "" {
				where = "in the cluster"
			}
			fmt.Fprintf(o.ErrOut, "No %ss found %s.\n", kind, where)
			return nil
		}
		return printer.PrintObj(t, o.Out)
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	ri := o.clients.Dynamic.Resource(gvr).Namespace(o.Namespace)
	if len(o.Names) == 0 {
		list, err := ri.List(ctx, metav1.ListOptions{LabelSelector: o.Selector})
		if err != nil {
			return err
		}
		return printer.PrintObj(list, o.Out)
	}
	for _, n := range o.Names {
		u, err := ri.Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := printer.PrintObj(u, o.Out); err != nil {
			return err
		}
	}
	return nil
}
