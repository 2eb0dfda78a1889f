package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// ObjectOptions are the options of the commands that act on one named Backup or Restore.
type ObjectOptions struct {
	Name      string
	Namespace string
	clients   clients
	genericiooptions.IOStreams
}

// commandOptions are the options of a command in kubectl's pattern: Complete fills them from the factory,
// the command and its arguments, Validate checks them without the cluster, Run does the work.
type commandOptions interface {
	Complete(f cmdutil.Factory, cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runE is the RunE of a command with options o: Complete, Validate, Run.
func runE(f cmdutil.Factory, o commandOptions) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(f, cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

// Complete names the object and builds the clients.
func (o *ObjectOptions) Complete(f cmdutil.Factory, _ *cobra.Command, args []string) error {
	return o.complete(f, args)
}

// Validate has nothing to check: the object is looked up by the name given.
func (o *ObjectOptions) Validate() error { return nil }

func (o *ObjectOptions) complete(f cmdutil.Factory, args []string) error {
	o.Name = args[0]
	var err error
	if o.Namespace, _, err = namespaceOf(f); err != nil {
		return err
	}
	o.clients, err = newClients(f)
	return err
}

func (o *ObjectOptions) getBackup(ctx context.Context) (*v1alpha1.Backup, error) {
	var b v1alpha1.Backup
	if err := getTyped(ctx, o.clients, v1alpha1.BackupsResource, "Backup", o.Namespace, o.Name, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

func (o *ObjectOptions) getRestore(ctx context.Context) (*v1alpha1.Restore, error) {
	var r v1alpha1.Restore
	if err := getTyped(ctx, o.clients, v1alpha1.RestoresResource, "Restore", o.Namespace, o.Name, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// restoreLocation is the location of a Restore's Backup, where its summary and log are kept.
func (o *ObjectOptions) restoreLocation(ctx context.Context, r *v1alpha1.Restore) (string, error) {
	var b v1alpha1.Backup
	if err := getTyped(ctx, o.clients, v1alpha1.BackupsResource, "Backup", r.Namespace, string(r.Spec.BackupName), &b); err != nil {
		return "", err
	}
	return string(b.Spec.Location), nil
}

func getTyped(ctx context.Context, c clients, gvr schema.GroupVersionResource, kind, ns, name string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	u, err := c.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %q not found in namespace %s", kind, name, ns)
	}
	if err != nil {
		return err
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out)
}
