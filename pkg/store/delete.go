package store

import (
	"context"
	"fmt"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/human"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
)

// LockedError says that a Backup's data stays under its location's object lock, and until when.
type LockedError struct{ msg string }

func (e *LockedError) Error() string { return e.msg }

// RefuseLocked refuses to delete the data of b while its location's object lock keeps it, with a
// *LockedError naming the date. A location that cannot be read is judged by the delete itself.
func RefuseLocked(ctx context.Context, dyn dynamic.Interface, b *v1alpha1.Backup, now time.Time) error {
	loc, err := GetLocation(ctx, dyn, string(b.Spec.Location))
	if err != nil {
		return nil
	}
	until := LockedUntil(b, loc.Spec.ObjectLockDays, now)
	if until.IsZero() {
		return nil
	}
	return &LockedError{fmt.Sprintf("Backup %s/%s kept: location %s keeps its data under object lock (%d days) until %s (%s); nothing was deleted",
		b.Namespace, b.Name, loc.Name, loc.Spec.ObjectLockDays, until.UTC().Format(time.RFC3339), human.Until(until, now))}
}

// DeletedBackup is what DeleteBackup removed from the location. A delete Job reports it to the plugin as
// JSON.
type DeletedBackup struct {
	// Snapshots is how many repository snapshots were deleted from URL; Reached is false when the location
	// could not be opened and the Backup, failed or never run, was deleted without its data.
	Snapshots int    `json:"snapshots"`
	URL       string `json:"url,omitempty"`
	Reached   bool   `json:"reached"`
}

// DeleteBackup deletes Backup b's data in its location (opened with opts: a job's NFS mount), then the
// Backup and its Job, then the temporary objects of its volume work, with the clients of cfg (the user's,
// or a job's). Nothing is deleted while object lock keeps the data (a *LockedError), nor when the data
// cannot be reached (unless the Backup failed or never ran); the error says which.
func DeleteBackup(ctx context.Context, cfg *rest.Config, kube kubernetes.Interface, dyn dynamic.Interface, b *v1alpha1.Backup, opts location.Options, now time.Time) (DeletedBackup, error) {
	if err := RefuseLocked(ctx, dyn, b, now); err != nil {
		return DeletedBackup{}, err
	}
	loc, err := OpenLocation(ctx, kube, dyn, string(b.Spec.Location), opts, false)
	return DeleteFromLocation(ctx, cfg, kube, dyn, b, loc, err)
}

// DeleteFromLocation is DeleteBackup once RefuseLocked passed and b's location was opened: loc, or the error
// opening it ended with (loc is then nil). It lets a caller decide by that error where the deletion runs (the
// plugin hands it to a Job when the location cannot be reached from its machine) without opening the
// location twice. It closes loc.
func DeleteFromLocation(ctx context.Context, cfg *rest.Config, kube kubernetes.Interface, dyn dynamic.Interface, b *v1alpha1.Backup, loc *Location, openErr error) (DeletedBackup, error) {
	var d DeletedBackup
	switch {
	case openErr == nil:
		defer loc.Close()
		d.Reached, d.URL = true, loc.URL(layout.BackupPrefix(b.Namespace, b.Name))
		var err error
		if d.Snapshots, err = loc.DeleteBackup(ctx, b.Namespace, b.Name); err != nil {
			return d, fmt.Errorf("Backup %s/%s kept: its data could not be deleted: %w", b.Namespace, b.Name, err)
		}
	case b.Status.Phase == "" || b.Status.Phase == v1alpha1.BackupFailed:
		// Nothing was written, or nothing worth keeping the Backup for.
	default:
		return d, fmt.Errorf("Backup %s/%s kept: its data could not be reached: %w", b.Namespace, b.Name, openErr)
	}
	t := jobspec.Target{Kind: jobspec.KindBackup, Namespace: b.Namespace, Name: b.Name}
	if err := jobspec.DeleteObjectAndJob(ctx, kube, dyn, t); err != nil {
		return d, err
	}
	// A Backup deleted while its job ran leaves snapshots, claims and upload Jobs behind.
	snap, err := snapclient.NewForConfig(cfg)
	if err != nil {
		return d, fmt.Errorf("snapshot client: %w", err)
	}
	return d, jobspec.DeleteTemporary(ctx, kube, snap, t)
}
