package jobs

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/tenancy"
)

// A job checks the rules of pkg/tenancy before it acts, whether or not the API server's admission policies
// are in place: a refusal is the final failure of its object, with nothing done. err is for what kept the
// job from checking.

// backupRefusal is why Backup b, of a team, may not run.
func backupRefusal(ctx context.Context, env *jobenv.Env, b *v1alpha1.Backup) (refusal, err error) {
	loc, err := teamLocation(ctx, env, b.Namespace, b.Spec.Location)
	if err != nil {
		return nil, err
	}
	return tenancy.CheckBackup(b, loc), nil
}

// scheduleRefusal is why BackupSchedule bs, of a team, may not run.
func scheduleRefusal(ctx context.Context, env *jobenv.Env, bs *v1alpha1.BackupSchedule) (refusal, err error) {
	loc, err := teamLocation(ctx, env, bs.Namespace, bs.Spec.Template.Location)
	if err != nil {
		return nil, err
	}
	return tenancy.CheckSchedule(bs, loc), nil
}

// restoreRefusal is why Restore r, of a team, may not run: besides its spec, its Backup must keep to r's
// namespace and be kept in a location open to it. A Backup that does not exist is left to the restore,
// which says so.
func restoreRefusal(ctx context.Context, env *jobenv.Env, r *v1alpha1.Restore) (refusal, err error) {
	if !tenancy.Confined(r.Namespace) {
		return nil, nil
	}
	b, err := getBackup(ctx, env, r.Namespace, string(r.Spec.BackupName))
	if apierrors.IsNotFound(err) {
		return tenancy.CheckRestore(r, nil, nil), nil
	}
	if err != nil {
		return nil, err
	}
	loc, err := teamLocation(ctx, env, r.Namespace, b.Spec.Location)
	if err != nil {
		return nil, err
	}
	return tenancy.CheckRestore(r, b, loc), nil
}

// teamLocation reads BackupLocation name for the checks of an object in namespace ns. It is nil in
// pxb-system, whose objects may use every location, and when the location does not exist: the job then
// fails to open it, saying so.
func teamLocation(ctx context.Context, env *jobenv.Env, ns string, name v1alpha1.ObjectName) (*v1alpha1.BackupLocation, error) {
	if !tenancy.Confined(ns) {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var loc v1alpha1.BackupLocation
	err := env.Get(ctx, jobspec.Ref{Resource: v1alpha1.BackupLocationsResource.Resource, Namespace: v1alpha1.SystemNamespace, Name: string(name)}, &loc)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &loc, nil
}
