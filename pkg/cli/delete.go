package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/store"
)

// DeleteOptions are the options of `backup delete`.
type DeleteOptions struct {
	ObjectOptions
	Yes        bool
	DeleteData bool
	// Timeout bounds the wait for the Job that deletes the data in the cluster, when this machine cannot
	// reach the location.
	Timeout time.Duration
}

func newCmdBackupDelete(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &DeleteOptions{ObjectOptions: ObjectOptions{IOStreams: streams}, Timeout: 10 * time.Minute}
	cmd := &cobra.Command{
		Use:   "delete NAME [--yes]",
		Short: "Delete a backup and its data in the location",
		Long: `Delete a Backup: its data in the location first, then the Backup itself and its Job. Objects in the
cluster are not touched.

The data is deleted from this machine when it can reach the location. Otherwise a Job in pxb-system deletes
it from inside the cluster, and the command waits for it (up to --timeout) and says so: always for an NFS
location (only pods mount its export), and for a location whose endpoint does not resolve or answer here
(a name only the cluster resolves, a network only the cluster reaches). A wrong credential or passphrase
is reported as it is.

A Backup made by kubectl pxb location sync (labelled pxb.dev/synced=true) belongs to the cluster that made
it: deleting it removes the Backup resource alone and leaves the data in the location, unless --delete-data
is given. A later sync of the location brings such a Backup back.

In a location with object lock (objectLockDays), a backup cannot be deleted before its data unlocks: the
command refuses, naming the date, and deletes nothing. Whenever the data could not be deleted, the Backup is
kept (unless it failed or never ran).`,
		Example: `  kubectl pxb backup delete shop-nightly -n pxb-system --yes

  # A Backup synced from another cluster's location, with its data
  kubectl pxb backup delete shop-nightly -n shop --delete-data`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "Delete without asking.")
	cmd.Flags().BoolVar(&o.DeleteData, "delete-data", false,
		"Also delete the data of a synced Backup (pxb.dev/synced=true) in its location; other Backups' data is always deleted.")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout,
		"How long to wait for the Job that deletes the data in the cluster when this machine cannot reach the location.")
	return cmd
}

// Validate checks --timeout.
func (o *DeleteOptions) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, not %s", o.Timeout)
	}
	return nil
}

// Run asks, deletes the data (unless the Backup is synced and --delete-data not given), then the Backup and
// its Job: from this machine, or through a Job in the cluster when this machine cannot reach the location.
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
	loc, openErr := openLocation(ctx, o.clients, string(b.Spec.Location))
	if openErr != nil {
		if bl, err := store.GetLocation(ctx, o.clients.Dynamic, string(b.Spec.Location)); err == nil {
			if why := inClusterReason(bl, openErr); why != "" {
				return o.deleteInCluster(ctx, b, bl, why)
			}
		}
	}
	d, err := store.DeleteFromLocation(ctx, o.clients.Config, o.clients.Kube, o.clients.Dynamic, b, loc, openErr)
	return o.report(b, d, err)
}

// inClusterReason says why the data of a Backup in location bl must be deleted by a Job in the cluster,
// given how opening bl from this machine failed (openErr), or "" when it need not be. Only a pod mounts an
// NFS export; an endpoint whose name does not resolve here, or that refuses or drops the connection, may
// well be reachable from the cluster (a Service name, a private network). Other failures (a wrong credential
// or passphrase, a missing bucket or Secret, TLS) would fail the same in the cluster and are reported as they
// are.
func inClusterReason(bl *v1alpha1.BackupLocation, openErr error) string {
	if bl.Spec.Provider == v1alpha1.ProviderNFS {
		return fmt.Sprintf("location %s is an NFS export, which only pods in the cluster mount", bl.Name)
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var cause error
	switch {
	case errors.As(openErr, &dnsErr):
		cause = dnsErr
	case errors.As(openErr, &opErr) && opErr.Op == "dial":
		cause = opErr
	default:
		return ""
	}
	return fmt.Sprintf("location %s cannot be reached from this machine (%v)", bl.Name, cause)
}

// deleteInCluster launches a Job in the cluster that deletes Backup b's data in location bl (which this
// machine cannot reach, for the reason why) and then b, waits for it, prints its outcome as a deletion from
// here does, and deletes the Job. A Job that does not end within --timeout is left to go on.
func (o *DeleteOptions) deleteInCluster(ctx context.Context, b *v1alpha1.Backup, bl *v1alpha1.BackupLocation, why string) error {
	cfg, err := jobspec.LoadConfig(ctx, o.clients.Kube)
	if err != nil {
		return err
	}
	t := jobspec.Target{Kind: jobspec.KindDelete, Namespace: b.Namespace, Name: b.Name, UID: b.UID}
	job, err := jobspec.Launch(ctx, o.clients.Kube, t, cfg, bl)
	if err != nil {
		return fmt.Errorf("Backup %s/%s kept: %s, and the Job to delete it in the cluster could not be created: %w", b.Namespace, b.Name, why, err)
	}
	fmt.Fprintf(o.Out, "The data is deleted in the cluster by Job %s/%s: %s.\n", job.Namespace, job.Name, why)
	err = awaitJob(ctx, o.clients, job, o.Timeout)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("the deletion of Backup %s/%s did not finish within %s (Job %s/%s goes on; run kubectl pxb backup delete %s -n %s again to see its outcome)",
			b.Namespace, b.Name, o.Timeout, job.Namespace, job.Name, b.Name, b.Namespace)
	}
	// The outcome is read below; the Job has nothing more to tell.
	defer func() {
		if err := jobspec.Delete(context.WithoutCancel(ctx), o.clients.Kube, job.Namespace, job.Name); err != nil {
			fmt.Fprintf(o.ErrOut, "warning: %v (it goes %s after it ended)\n", err, cfg.TTLAfterFinished)
		}
	}()
	if err != nil {
		return fmt.Errorf("the deletion in the cluster failed: %w", err)
	}
	out, err := jobspec.Output(ctx, o.clients.Kube, job.Namespace, job.Name)
	if err != nil {
		return err
	}
	var d store.DeletedBackup
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return fmt.Errorf("Job %s/%s reported %q, not what it deleted: %w", job.Namespace, job.Name, out, err)
	}
	return o.report(b, d, nil)
}

// report prints what deleting Backup b removed from its location (d) and that b is gone; err says why b was
// kept, and is returned.
func (o *DeleteOptions) report(b *v1alpha1.Backup, d store.DeletedBackup, err error) error {
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
