// Package jobs holds pxb-job's job kinds, what each subcommand of the binary does: back up, restore,
// upload and download a volume, check, sync and maintain a location, run a schedule. Each reads its pxb
// object, does the work through the engines (pkg/collect, pkg/apply, pkg/mover, pkg/rules, pkg/vm) and what
// pkg/store keeps in the location, and reports through the object's status.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/human"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/vm"
)

// callTimeout bounds one call to the API server.
const callTimeout = 30 * time.Second

// Options are what a job is given beyond the object it works for.
type Options struct {
	// Location is passed to location.Open (the NFS mount of the Job's pod).
	Location location.Options
	// FreeRecent has a maintenance free unused data however recently it was written (repo.GCOptions.MinAge
	// negative), which is safe only while nothing else uses the location.
	FreeRecent bool
	// ReadDataPercent has a maintenance read and verify the data of that share of the packs (1 to 100; 0: only
	// the structure is verified).
	ReadDataPercent int
	// ReadDataPeriod, when ReadDataPercent is 0, has each maintenance read the packs whose turn came since the
	// location's last data read, so that every pack is read once per period (see readDataRotation).
	ReadDataPeriod time.Duration
}

// Backup carries out Backup namespace/name: it backs up the objects its spec selects into its location and
// reports through its status. A Backup that already finished is left alone, so a retried Job does no harm.
// The error says why the backup failed; the status then says the same.
func Backup(ctx context.Context, cfg *rest.Config, namespace, name string, opts Options) error {
	env, err := jobenv.NewEnvForConfig(cfg)
	if err != nil {
		return err
	}
	env.Events = jobenv.NewRecorder(env.Kube, jobspec.KindBackup)
	target := jobspec.Ref{Resource: v1alpha1.BackupsResource.Resource, Namespace: namespace, Name: name}
	var b v1alpha1.Backup
	if err := get(ctx, env, "Backup", target, &b); err != nil {
		return err
	}
	switch b.Status.Phase {
	case v1alpha1.BackupCompleted, v1alpha1.BackupPartiallySucceeded, v1alpha1.BackupDeleting:
		return nil
	}
	refusal, err := backupRefusal(ctx, env, &b)
	if err != nil {
		return err
	}
	if refusal != nil {
		now := metav1.Now()
		if err := setBackupStatus(ctx, env, target, func(s *v1alpha1.BackupStatus) { *s = failedBackupStatus(refusal, &now, &now) }); err != nil {
			return err
		}
		recordEnd(ctx, env, &b, actionBackup, string(v1alpha1.BackupFailed), failedStatus(refusal, &now, &now))
		return jobenv.Final(refusal)
	}
	log := newJobLog()
	started := metav1.Now()
	if err := setBackupStatus(ctx, env, target, func(s *v1alpha1.BackupStatus) {
		*s = v1alpha1.BackupStatus{Phase: v1alpha1.BackupInProgress, Stage: v1alpha1.BackupStageResources,
			OperationStatus: v1alpha1.OperationStatus{StartTimestamp: &started}}
	}); err != nil {
		return err
	}
	log.Printf("backup %s/%s: location %s", namespace, name, b.Spec.Location)
	env.Events.Eventf(ctx, &b, corev1.EventTypeNormal, jobenv.EventStarted, actionBackup, "backup into location %s started", b.Spec.Location)

	res, loc, runErr := runBackup(ctx, env, &b, opts, log)
	if loc != nil {
		defer loc.Close()
	}
	finished := metav1.Now()
	if runErr != nil {
		log.Printf("backup failed: %v", runErr)
	}
	prefix := layout.BackupPrefix(namespace, name)
	var final v1alpha1.BackupStatus
	if runErr == nil {
		final = BackupStatus(res, &started, &finished, loc.URL(prefix))
	}
	if loc != nil {
		// The record lets another cluster's sync recreate this Backup, failed ones as failed; it is sealed
		// with the backup.
		rec := b.DeepCopy()
		rec.Status = final
		if runErr != nil {
			rec.Status = failedBackupStatus(runErr, &started, &finished)
		}
		if err := saveRecord(ctx, env, store.Prefixed(loc.Store, prefix), rec, log); err != nil {
			log.Printf("warning: %v (a sync in another cluster rebuilds the Backup from its manifest)", err)
		}
		id, err := finish(ctx, loc, log, prefix)
		if err != nil && runErr == nil {
			runErr = err
		}
		if runErr == nil {
			if runErr = proveBackup(ctx, loc, res, id, log); runErr != nil {
				log.Printf("backup failed: %v", runErr)
			}
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if runErr != nil {
		var failed v1alpha1.BackupStatus
		if err := setBackupStatus(sctx, env, target, func(s *v1alpha1.BackupStatus) {
			failed = failedBackupStatus(runErr, &started, &finished)
			// How far the volumes got stays visible.
			failed.Volumes, failed.Progress = s.Volumes, s.Progress
			*s = failed
		}); err != nil {
			log.Printf("%v", err)
			return runErr
		}
		recordLocationError(sctx, env, &b, actionBackup, runErr)
		recordEnd(sctx, env, &b, actionBackup, string(failed.Phase), failed.OperationStatus)
		return jobenv.Final(runErr)
	}
	if err := setBackupStatus(sctx, env, target, func(s *v1alpha1.BackupStatus) { *s = final }); err != nil {
		return err
	}
	recordEnd(sctx, env, &b, actionBackup, string(final.Phase), final.OperationStatus)
	return nil
}

// failedBackupStatus is the status of a backup that failed with err.
func failedBackupStatus(err error, started, finished *metav1.Time) v1alpha1.BackupStatus {
	return v1alpha1.BackupStatus{Phase: v1alpha1.BackupFailed, OperationStatus: failedStatus(err, started, finished)}
}

// saveRecord keeps b, with the cluster it was made in, in its backup's store.
func saveRecord(ctx context.Context, env *jobenv.Env, s collect.Store, b *v1alpha1.Backup, log *jobLog) error {
	id, err := store.ClusterID(ctx, env.Kube)
	if err != nil {
		log.Printf("warning: the record of the backup names no origin cluster: %v", err)
	}
	return store.SaveBackupRecord(ctx, s, b, id)
}

// BackupStatus is the status that reports a finished backup.
func BackupStatus(res *backupResult, started, finished *metav1.Time, url string) v1alpha1.BackupStatus {
	s := v1alpha1.BackupStatus{
		Phase:           v1alpha1.BackupCompleted,
		Stage:           v1alpha1.BackupStageDone,
		OperationStatus: doneStatus(res.Total, res.ErrorCount, itemErrors(res.Errors), res.Warnings, started, finished),
	}
	volDone, volFailed := addVolumes(&s.OperationStatus, res.Volumes)
	for i := range res.Volumes {
		s.UploadedBytes += res.Volumes[i].UploadedBytes
	}
	// The size people see is the data: the volumes' bytes when there are volumes, else the objects'.
	s.TotalBytes = res.Bytes + s.Progress.BytesTotal
	s.Size = human.Bytes(s.TotalBytes)
	s.Message = fmt.Sprintf("%d objects (%s) backed up to %s", res.Total, s.Size, url)
	if len(res.Volumes) > 0 {
		s.Message = fmt.Sprintf("%d objects and %d volumes (%s) backed up to %s", res.Total, volDone, s.Size, url)
	}
	if res.Phase != collect.PhaseCompleted || volFailed > 0 {
		s.Phase = v1alpha1.BackupPartiallySucceeded
		s.Message = fmt.Sprintf("%d objects and %d of %d volumes backed up, %d errors (the first are listed; all are in the job log)",
			res.Total, volDone, len(res.Volumes), s.ErrorCount)
	}
	return s
}

// finish keeps the job log under prefix and seals everything the job wrote there into the repository: the
// backup or restore is readable only once this succeeded. It returns the snapshot that holds it.
func finish(ctx context.Context, loc *store.Location, log *jobLog, prefix string) (string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	if err := log.save(ctx, store.Prefixed(loc.Store, prefix)); err != nil {
		log.Printf("keep the job log: %v", err)
	}
	id, err := loc.Commit(ctx, prefix)
	if err != nil {
		return "", fmt.Errorf("seal %s in the repository: %s", loc.URL(prefix), location.Explain(err))
	}
	return id, nil
}

// proveBackup reads back what backup res wrote, its objects' snapshot and its volumes', before it may be
// reported a success.
func proveBackup(ctx context.Context, loc *store.Location, res *backupResult, objects string, log *jobLog) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
	defer cancel()
	snaps := []string{objects}
	for _, v := range res.Volumes {
		if v.Snapshot != "" {
			snaps = append(snaps, v.Snapshot)
		}
	}
	started := time.Now()
	if err := loc.ProveReadable(ctx, snaps...); err != nil {
		return err
	}
	log.Printf("read back %d snapshot%s with the location's key in %s", len(snaps), plural(len(snaps)), time.Since(started).Round(time.Millisecond))
	return nil
}

func setBackupStatus(ctx context.Context, env *jobenv.Env, t jobspec.Ref, mutate func(*v1alpha1.BackupStatus)) error {
	return jobenv.UpdateStatusOf(ctx, env, t, func(b *v1alpha1.Backup) error {
		mutate(&b.Status)
		return nil
	})
}

// get reads the job's object, saying plainly when it does not exist.
func get(ctx context.Context, env *jobenv.Env, kind string, t jobspec.Ref, obj any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	err := env.Get(ctx, t, obj)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s/%s not found", kind, t.Namespace, t.Name)
	}
	return err
}

// selectVMs finds the VirtualMachines a Backup selects in the namespaces it includes.
func selectVMs(ctx context.Context, env *jobenv.Env, namespaces []string, sel *v1alpha1.VirtualMachineSelection, log *jobLog) ([]kubevirtv1.VirtualMachine, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	vms, err := vm.Select(ctx, env.Dynamic, namespaces, sel)
	if err != nil {
		return nil, err
	}
	for _, v := range vms {
		log.Printf("VirtualMachine %s/%s selected", v.Namespace, v.Name)
	}
	return vms, nil
}

// backupResult is what a backup did: its objects, and its volumes.
type backupResult struct {
	*collect.Result
	Volumes []VolumeRecord
}

func runBackup(ctx context.Context, env *jobenv.Env, b *v1alpha1.Backup, opts Options, log *jobLog) (*backupResult, *store.Location, error) {
	co, err := BackupOptions(b.Namespace, b.Name, b.Spec)
	if err != nil {
		return nil, nil, err
	}
	q, err := loadRules(ctx, env, b, log)
	if err != nil {
		return nil, nil, err
	}
	loc, err := store.OpenLocation(ctx, env.Kube, env.Dynamic, string(b.Spec.Location), opts.Location, true)
	if err != nil {
		return nil, nil, &locationError{name: string(b.Spec.Location), err: err}
	}
	syncBeforeWork(ctx, env, loc, log)
	if sel := b.Spec.VirtualMachines; sel != nil {
		co.Narrow = func(ctx context.Context, namespaces []string) (map[string]map[string]bool, error) {
			vms, err := selectVMs(ctx, env, namespaces, sel, log)
			if err != nil {
				return nil, err
			}
			q.vms = vms
			if sel.Freeze == nil || *sel.Freeze {
				q.freezer = &vm.Freezer{Dyn: env.Dynamic, REST: env.Kube.Discovery().RESTClient(), Logf: log.Printf}
			}
			uses := vm.Uses(vms)
			return uses, vm.AddStateClaims(ctx, env.Kube, vms, uses)
		}
	}
	kept := store.Prefixed(loc.Store, layout.BackupPrefix(b.Namespace, b.Name))
	res, err := collect.Run(ctx, env.Config, kept, co)
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
	log.Printf("backed up %d objects (%s) in %s", res.Total, human.Bytes(res.Bytes), res.Finished.Sub(res.Started).Round(time.Millisecond))
	q.namespaces = res.Namespaces
	vols, err := backupVolumes(ctx, env, b, loc, res.Claims, q, log)
	res.Warnings = append(res.Warnings, q.warnings...)
	for _, w := range q.warnings {
		log.Printf("warning: %s", w)
	}
	if err != nil {
		return nil, loc, err
	}
	if len(vols) > 0 {
		if err := collect.PutJSON(ctx, kept, layout.VolumesKey, vols); err != nil {
			return nil, loc, err
		}
	}
	return &backupResult{Result: res, Volumes: vols}, loc, nil
}
