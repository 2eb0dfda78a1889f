package runjob

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/jobrun"
	"github.com/pxb-dev/pxb/pkg/location"
)

// Options are what a job is given beyond the object it works for.
type Options struct {
	// Location is passed to location.Open (the NFS mount of the Job's pod).
	Location location.Options
}

// Backup carries out Backup namespace/name: it backs up the objects its spec selects into its location and
// reports through its status. A Backup that already finished is left alone, so a retried Job does no harm.
// The error says why the backup failed; the status then says the same.
func Backup(ctx context.Context, cfg *rest.Config, namespace, name string, opts Options) error {
	env, err := jobrun.NewEnvForConfig(cfg)
	if err != nil {
		return err
	}
	target := jobrun.Target{Resource: v1alpha1.BackupsResource.Resource, Namespace: namespace, Name: name}
	var b v1alpha1.Backup
	if err := get(ctx, env, "Backup", target, &b); err != nil {
		return err
	}
	switch b.Status.Phase {
	case v1alpha1.BackupCompleted, v1alpha1.BackupPartiallySucceeded, v1alpha1.BackupDeleting:
		return nil
	}
	log := newJobLog()
	started := metav1.Now()
	if err := setBackupStatus(ctx, env, target, func(s *v1alpha1.BackupStatus) {
		*s = v1alpha1.BackupStatus{Phase: v1alpha1.BackupInProgress, Stage: v1alpha1.BackupStageResources, StartTimestamp: &started}
	}); err != nil {
		return err
	}
	log.Printf("backup %s/%s: location %s", namespace, name, b.Spec.Location)

	res, loc, runErr := runBackup(ctx, env, &b, opts, log)
	if loc != nil {
		defer loc.Close()
	}
	finished := metav1.Now()
	if runErr != nil {
		log.Printf("backup failed: %v", runErr)
	}
	if loc != nil {
		if err := finish(ctx, loc, log, BackupPrefix(namespace, name)); err != nil && runErr == nil {
			runErr = err
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if runErr != nil {
		if err := setBackupStatus(sctx, env, target, func(s *v1alpha1.BackupStatus) {
			s.Phase, s.Message, s.CompletionTimestamp = v1alpha1.BackupFailed, truncate(runErr.Error(), 4096), &finished
			s.ErrorCount = max(s.ErrorCount, 1)
			s.Errors = bounded([]string{runErr.Error()})
		}); err != nil {
			log.Printf("%v", err)
		}
		return runErr
	}
	return setBackupStatus(sctx, env, target, func(s *v1alpha1.BackupStatus) {
		s.Phase = v1alpha1.BackupCompleted
		s.Message = fmt.Sprintf("%d objects backed up to %s", res.Total, loc.URL(BackupPrefix(namespace, name)))
		if res.Phase != collect.PhaseCompleted {
			s.Phase = v1alpha1.BackupPartiallySucceeded
			s.Message = fmt.Sprintf("%d objects backed up, %d errors (the first are listed; all are in the job log)", res.Total, res.ErrorCount)
		}
		s.Stage = v1alpha1.BackupStageDone
		s.CompletionTimestamp = &finished
		total := int32(res.Total)
		s.Progress = &v1alpha1.Progress{Percent: 100, ItemsTotal: total, ItemsDone: total}
		s.TotalBytes = res.Bytes
		s.Size = HumanBytes(res.Bytes)
		s.ErrorCount = int32(res.ErrorCount)
		s.Errors = bounded(itemErrors(res.Errors))
		s.WarningCount = int32(len(res.Warnings))
		s.Warnings = bounded(res.Warnings)
	})
}

// finish keeps the job log under prefix and seals everything the job wrote there into the repository: the
// backup or restore is readable only once this succeeded.
func finish(ctx context.Context, loc *Location, log *jobLog, prefix string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	if err := log.save(ctx, Prefixed(loc.Store, prefix)); err != nil {
		log.Printf("keep the job log: %v", err)
	}
	if err := loc.Commit(ctx, prefix); err != nil {
		return fmt.Errorf("seal %s in the repository: %s", loc.URL(prefix), location.Explain(err))
	}
	return nil
}

func setBackupStatus(ctx context.Context, env *jobrun.Env, t jobrun.Target, mutate func(*v1alpha1.BackupStatus)) error {
	return jobrun.UpdateStatusOf(ctx, env, t, func(b *v1alpha1.Backup) error {
		mutate(&b.Status)
		return nil
	})
}

// get reads the job's object, saying plainly when it does not exist.
func get(ctx context.Context, env *jobrun.Env, kind string, t jobrun.Target, obj any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	err := env.Get(ctx, t, obj)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s/%s not found", kind, t.Namespace, t.Name)
	}
	return err
}

func runBackup(ctx context.Context, env *jobrun.Env, b *v1alpha1.Backup, opts Options, log *jobLog) (*collect.Result, *Location, error) {
	co, err := BackupOptions(b.Namespace, b.Name, b.Spec)
	if err != nil {
		return nil, nil, err
	}
	loc, err := OpenLocation(ctx, env.Kube, env.Dynamic, string(b.Spec.Location), opts.Location, true)
	if err != nil {
		return nil, nil, err
	}
	res, err := collect.Run(ctx, env.Config, Prefixed(loc.Store, BackupPrefix(b.Namespace, b.Name)), co)
	if err != nil {
		return nil, loc, errors.New(location.Explain(err))
	}
	for _, t := range slices.Sorted(maps.Keys(res.Counts)) {
		log.Printf("%s: %d", t, res.Counts[t])
	}
	for _, w := range res.Warnings {
		log.Printf("warning: %s", w)
	}
	for _, e := range res.Errors {
		log.Printf("error: %s", e)
	}
	log.Printf("backed up %d objects (%s) in %s", res.Total, HumanBytes(res.Bytes), res.Finished.Sub(res.Started).Round(time.Millisecond))
	return res, loc, nil
}
