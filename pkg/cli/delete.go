package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/store"
)

// DeleteOptions are the options of `backup delete`.
type DeleteOptions struct {
	ObjectOptions
	Yes        bool
	DeleteData bool
}

func newCmdBackupDelete(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &DeleteOptions{ObjectOptions: ObjectOptions{IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "delete NAME [--yes]",
		Short: "Delete a backup and its data in the location",
		Long: `Delete a Backup: its data in the location first, then the Backup itself and its Job. Objects in the
cluster are not touched.

A Backup made by kubectl pxb location sync (labelled pxb.dev/synced=true) belongs to the cluster that made
it: deleting it removes the Backup resource alone and leaves the data in the location, unless --delete-data
is given. A later sync of the location brings such a Backup back.

In a location with object lock (objectLockDays), a backup cannot be deleted before its data unlocks: the
command refuses, naming the date, and deletes nothing.`,
		Example: `  kubectl pxb backup delete shop-nightly -n pxb-system --yes

  # A Backup synced from another cluster's location, with its data
  kubectl pxb backup delete shop-nightly -n shop --delete-data`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "Delete without asking.")
	cmd.Flags().BoolVar(&o.DeleteData, "delete-data", false,
		"Also delete the data of a synced Backup (pxb.dev/synced=true) in its location; other Backups' data is always deleted.")
	return cmd
}

// Run asks, deletes the data (unless the Backup is synced and --delete-data not given), then the Backup and
// its Job.
func (o *DeleteOptions) Run(ctx context.Context) error {
	b, err := o.getBackup(ctx)
	if err != nil {
		return err
	}
	if b.Labels[v1alpha1.SyncedLabel] == "true" && !o.DeleteData {
		if !o.Yes && !confirm(o.In, o.Out, fmt.Sprintf("Delete Backup %s/%s? Its data stays in location %s.", b.Namespace, b.Name, b.Spec.Location)) {
			return errors.New("not deleted")
		}
		if err := deleteObjectAndJob(ctx, o.clients, jobspec.Target{Kind: jobspec.KindBackup, Namespace: b.Namespace, Name: b.Name}, "Backup", o.Out); err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "Its data stays in location %s (the next kubectl pxb location sync %s brings the Backup back); delete it with --delete-data.\n",
			b.Spec.Location, b.Spec.Location)
		return nil
	}
	if err := store.RefuseLocked(ctx, o.clients.Dynamic, b, time.Now()); err != nil {
		return err
	}
	if !o.Yes && !confirm(o.In, o.Out, fmt.Sprintf("Delete Backup %s/%s and its data in location %s?", b.Namespace, b.Name, b.Spec.Location)) {
		return errors.New("not deleted")
	}
	d, err := store.DeleteBackup(ctx, o.clients.Config, o.clients.Kube, o.clients.Dynamic, b, location.Options{}, time.Now())
	if d.Reached && (err == nil || d.Snapshots > 0) {
		fmt.Fprintf(o.Out, "Deleted %d snapshots of %s; their data is freed at the location's next maintenance (kubectl pxb location maintain %s)\n",
			d.Snapshots, d.URL, b.Spec.Location)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "Backup %s/%s deleted\n", b.Namespace, b.Name)
	return nil
}

func newCmdRestoreDelete(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RestoreDeleteOptions{ObjectOptions{IOStreams: streams}}
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a restore, its summary and its log",
		Long: `Delete a Restore, with its summary and log in the location, and its Job. The restored objects stay in
the cluster.`,
		Example: "  kubectl pxb restore delete shop-nightly-20250101120000 -n pxb-system",
		Args:    cobra.ExactArgs(1),
		RunE:    runE(f, o),
	}
}

// RestoreDeleteOptions are the options of `restore delete`.
type RestoreDeleteOptions struct{ ObjectOptions }

// Run deletes the Restore's summary and log in the location, then the Restore, its Job and its temporary
// objects.
func (o *RestoreDeleteOptions) Run(ctx context.Context) error {
	r, err := o.getRestore(ctx)
	if err != nil {
		return err
	}
	// The summary goes with the Restore; a Backup already deleted has taken its location's data along.
	if locName, err := o.restoreLocation(ctx, r); err == nil {
		if loc, err := openLocation(ctx, o.clients, locName); err == nil {
			defer loc.Close()
			if _, err := loc.Delete(ctx, layout.RestorePrefix(r.Namespace, r.Name)); err != nil {
				return fmt.Errorf("Restore %s/%s kept: its summary could not be deleted: %w", r.Namespace, r.Name, err)
			}
		}
	}
	if err := deleteObjectAndJob(ctx, o.clients, jobspec.Target{Kind: jobspec.KindRestore, Namespace: r.Namespace, Name: r.Name}, "Restore", o.Out); err != nil {
		return err
	}
	return deleteTemporary(ctx, o.clients, jobspec.Target{Kind: jobspec.KindRestore, Namespace: r.Namespace, Name: r.Name})
}

// deleteTemporary deletes the temporary objects of a Backup's or Restore's volume work.
func deleteTemporary(ctx context.Context, c clients, t jobspec.Target) error {
	snap, err := snapclient.NewForConfig(c.Config)
	if err != nil {
		return fmt.Errorf("snapshot client: %w", err)
	}
	return jobspec.DeleteTemporary(ctx, c.Kube, snap, t)
}

// deleteObjectAndJob deletes the Backup or Restore of t and its Job, and says so.
func deleteObjectAndJob(ctx context.Context, c clients, t jobspec.Target, kind string, out io.Writer) error {
	if err := jobspec.DeleteObjectAndJob(ctx, c.Kube, c.Dynamic, t); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s %s/%s deleted\n", kind, t.Namespace, t.Name)
	return nil
}
