package jobs

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/store"
)

// DeleteBackup deletes Backup namespace/name's data in its location, then the Backup, its Job and the
// temporary objects of its volume work: store.DeleteBackup run where the location is reached the way backups
// reach it (an NFS export mounted into the pod, an endpoint only the cluster resolves), for `kubectl pxb
// backup delete` when the plugin cannot reach the location itself. What it deleted is the result; an error
// says why the Backup was kept (object lock, data out of reach), which a retry would only repeat, so it is
// final.
func DeleteBackup(ctx context.Context, cfg *rest.Config, namespace, name string, opts Options) (store.DeletedBackup, error) {
	env, err := jobenv.NewEnvForConfig(cfg)
	if err != nil {
		return store.DeletedBackup{}, err
	}
	var b v1alpha1.Backup
	if err := get(ctx, env, "Backup", jobspec.Ref{Resource: v1alpha1.BackupsResource.Resource, Namespace: namespace, Name: name}, &b); err != nil {
		return store.DeletedBackup{}, err
	}
	d, err := store.DeleteBackup(ctx, env.Config, env.Kube, env.Dynamic, &b, opts.Location, time.Now())
	if err != nil && d.Snapshots > 0 {
		// The plugin reads only the error of a failed Job: it must say what is gone already.
		err = fmt.Errorf("%w (%d snapshots of %s were deleted before)", err, d.Snapshots, d.URL)
	}
	if err != nil {
		return d, jobenv.Final(err)
	}
	return d, nil
}
