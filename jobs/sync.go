package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/pager"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/human"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/store"
)

// SyncResult is what a sync found and did.
type SyncResult struct {
	// Backups is the number of backups the location holds.
	Backups int
	// New are the Backups ("namespace/name") created by this sync.
	New []string
	// Present are the backups whose Backup the cluster already had.
	Present []string
	// Failed are the backups that could not be made, with why ("namespace/name: reason").
	Failed []string
}

// maxNamed bounds the backups named in a status message; the counts are always complete.
const maxNamed = 10

// Message sums the result up for a status: "3 backups, 1 new (shop/nightly), 2 already present".
func (r *SyncResult) Message() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d backup%s, %d new", r.Backups, plural(r.Backups), len(r.New))
	if len(r.New) > 0 {
		b.WriteString(" (" + names(r.New) + ")")
	}
	fmt.Fprintf(&b, ", %d already present", len(r.Present))
	if len(r.Failed) > 0 {
		fmt.Fprintf(&b, ", %d could not be synced: %s", len(r.Failed), names(r.Failed))
	}
	return truncate(b.String(), 4096)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func names(list []string) string {
	if len(list) <= maxNamed {
		return strings.Join(list, ", ")
	}
	return strings.Join(list[:maxNamed], ", ") + fmt.Sprintf(" and %d more", len(list)-maxNamed)
}

// SyncLocation lists the backups in BackupLocation name and creates, for each one this cluster lacks, a
// Backup marked as synced (v1alpha1.SyncedLabel, v1alpha1.OriginClusterAnnotation) whose status is the one
// the backup ended with; a Backup that exists is left alone. The outcome goes into the location's status
// (v1alpha1.ConditionSynced, lastSyncTime). An error means the location could not be read or the status not written;
// backups that could not be synced are reported in the result and the status, not as an error.
func SyncLocation(ctx context.Context, cfg *rest.Config, name string, opts Options) (*SyncResult, error) {
	env, bl, err := locationEnv(ctx, cfg, name, jobspec.KindSync)
	if err != nil {
		return nil, err
	}
	res, syncErr := syncLocation(ctx, env, bl, opts)
	return res, errors.Join(syncErr, recordSync(ctx, env, name, res, syncErr))
}

// syncBeforeWork syncs loc, which a backup or restore job has just opened, so that every cluster using a
// location sees the backups the others wrote there without a manual sync. It costs a listing of the
// repository's snapshots and of the cluster's Backups, plus a read for each backup new to the cluster. It
// never fails the job: a sync that went wrong is a warning in the job log (and in the location's status).
// The job's own Backup exists, so it is never made again as a synced one (nor is its backup listed yet: it
// is sealed at the end).
func syncBeforeWork(ctx context.Context, env *jobenv.Env, loc *store.Location, log *jobLog) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	res, err := syncOpened(ctx, env, loc)
	if err = errors.Join(err, recordSync(ctx, env, loc.Name, res, err)); err != nil {
		log.Printf("warning: sync of location %s: %v", loc.Name, err)
		return
	}
	if len(res.Failed) > 0 {
		log.Printf("warning: sync of location %s: %s", loc.Name, res.Message())
		return
	}
	log.Printf("sync of location %s: %s", loc.Name, res.Message())
}

// recordSync writes the outcome of a sync of BackupLocation name into its status.
func recordSync(ctx context.Context, env *jobenv.Env, name string, res *SyncResult, syncErr error) error {
	now := metav1.Now()
	cond := metav1.Condition{Type: v1alpha1.ConditionSynced}
	switch {
	case syncErr != nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "LocationUnreadable", truncate(syncErr.Error(), 4096)
	case len(res.Failed) > 0:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "SomeBackupsNotSynced", res.Message()
	default:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, "Synced", res.Message()
	}
	return recordLocationCondition(ctx, env, name, cond, func(st *v1alpha1.BackupLocationStatus) {
		// The backups were listed into the cluster only when the location could be read.
		if syncErr == nil {
			st.LastSyncTime = &now
		}
	})
}

// recordLocationCondition sets cond in BackupLocation name's status, after stamp has set the status's own
// fields (the time of the sync or maintenance). It writes even when ctx is done: the outcome of work that
// was cut short must still be told. A False condition is also recorded as a Warning Event on the location
// each time, a True one only when it was not True before.
func recordLocationCondition(ctx context.Context, env *jobenv.Env, name string, cond metav1.Condition, stamp func(*v1alpha1.BackupLocationStatus)) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	target := jobspec.Ref{Resource: v1alpha1.BackupLocationsResource.Resource, Namespace: v1alpha1.SystemNamespace, Name: name}
	var loc *v1alpha1.BackupLocation
	wasTrue := false
	err := jobenv.UpdateStatusOf(sctx, env, target, func(l *v1alpha1.BackupLocation) error {
		wasTrue = meta.IsStatusConditionTrue(l.Status.Conditions, cond.Type)
		stamp(&l.Status)
		cond.ObservedGeneration = l.Generation
		meta.SetStatusCondition(&l.Status.Conditions, cond)
		loc = l
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case cond.Status != metav1.ConditionTrue:
		env.Events.Eventf(sctx, loc, corev1.EventTypeWarning, cond.Reason, cond.Type, "%s", cond.Message)
	case !wasTrue:
		env.Events.Eventf(sctx, loc, corev1.EventTypeNormal, cond.Reason, cond.Type, "%s", cond.Message)
	}
	return nil
}

func syncLocation(ctx context.Context, env *jobenv.Env, bl *v1alpha1.BackupLocation, opts Options) (*SyncResult, error) {
	empty, err := holdsNoRepository(ctx, env, bl, opts)
	if err != nil || empty {
		return &SyncResult{}, err
	}
	loc, err := store.OpenLocation(ctx, env.Kube, env.Dynamic, bl.Name, opts.Location, false)
	if err != nil {
		return &SyncResult{}, err
	}
	defer loc.Close()
	return syncOpened(ctx, env, loc)
}

// syncOpened is the sync of the opened location loc. The result is never nil.
func syncOpened(ctx context.Context, env *jobenv.Env, loc *store.Location) (*SyncResult, error) {
	res := &SyncResult{}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	snaps, err := loc.Repository().Snapshots(lctx)
	if err != nil {
		return res, fmt.Errorf("list the backups in %s: %s", loc.URL(""), location.Explain(err))
	}
	// A backup retried after a failed seal has several snapshots; it is one backup.
	seen := map[string]bool{}
	for _, sn := range snaps {
		if _, _, ok := layout.ParseBackupPrefix(sn.Source); ok {
			seen[sn.Source] = true
		}
	}
	units := slices.Sorted(maps.Keys(seen))
	res.Backups = len(units)
	if len(units) == 0 {
		return res, nil
	}
	have, err := backupsInCluster(lctx, env)
	if err != nil {
		return res, err
	}
	for _, unit := range units {
		ns, name, _ := layout.ParseBackupPrefix(unit)
		id := ns + "/" + name
		b, found := have[id]
		// A Backup of this cluster, or a synced one complete with its status, is left alone.
		if found && (!b.synced || b.phase != "") {
			res.Present = append(res.Present, id)
			continue
		}
		created, err := syncBackup(ctx, env, loc, ns, name, found)
		switch {
		case err != nil:
			res.Failed = append(res.Failed, id+": "+err.Error())
		case created:
			res.New = append(res.New, id)
		default:
			res.Present = append(res.Present, id)
		}
	}
	return res, nil
}

// clusterBackup is what sync needs to know of a Backup in the cluster.
type clusterBackup struct {
	synced bool
	phase  string
}

// backupsInCluster lists the Backups of every namespace, by "namespace/name": one paged list rather than a
// request per backup, so that syncing a location that holds many backups stays cheap.
func backupsInCluster(ctx context.Context, env *jobenv.Env) (map[string]clusterBackup, error) {
	backups := env.Dynamic.Resource(v1alpha1.BackupsResource)
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return backups.List(ctx, o)
	})
	have := map[string]clusterBackup{}
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return fmt.Errorf("list Backups: unexpected %T", obj)
		}
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		have[u.GetNamespace()+"/"+u.GetName()] = clusterBackup{synced: u.GetLabels()[v1alpha1.SyncedLabel] == "true", phase: phase}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list Backups: %w", err)
	}
	return have, nil
}

// holdsNoRepository says whether the location is empty (no backup was ever written to it), which is a
// sync of nothing rather than a failure.
func holdsNoRepository(ctx context.Context, env *jobenv.Env, bl *v1alpha1.BackupLocation, opts Options) (bool, error) {
	octx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	b, err := store.OpenBucket(octx, env.Kube, bl, opts.Location)
	if err != nil {
		return false, fmt.Errorf("open BackupLocation %s: %w", bl.Name, err)
	}
	defer b.Close()
	exists, err := repo.Exists(octx, b)
	if err != nil {
		return false, fmt.Errorf("BackupLocation %s: %s", bl.Name, location.Explain(err))
	}
	return !exists, nil
}

// syncBackup makes Backup namespace/name from what the location keeps of it, unless the cluster has it
// (found: a synced Backup whose status was not written yet, by a sync that stopped half-way, which gets it
// now); it says whether it created it.
func syncBackup(ctx context.Context, env *jobenv.Env, loc *store.Location, namespace, name string, found bool) (bool, error) {
	want, err := readSynced(ctx, loc, namespace, name)
	if err != nil {
		return false, err
	}
	if !found {
		created, err := createSynced(ctx, env, want)
		if err != nil || !created {
			return false, err
		}
	}
	target := jobspec.Ref{Resource: v1alpha1.BackupsResource.Resource, Namespace: namespace, Name: name}
	sctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	err = jobenv.UpdateStatusOf(sctx, env, target, func(b *v1alpha1.Backup) error {
		b.Status = want.Status
		return nil
	})
	return !found, err
}

// readSynced is the Backup that sync makes for the backup kept under namespace/name in loc: from its
// record, or rebuilt from its manifest for a backup made before records were kept.
func readSynced(ctx context.Context, loc *store.Location, namespace, name string) (*v1alpha1.Backup, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	kept := store.Prefixed(loc.Store, layout.BackupPrefix(namespace, name))
	rec, err := store.ReadBackupRecord(ctx, kept)
	if err == nil {
		return SyncedBackup(rec, loc.Name, namespace, name), nil
	}
	if !errors.Is(err, collect.ErrNotFound) {
		return nil, errors.New(location.Explain(err))
	}
	m, err := collect.ReadManifest(ctx, kept)
	if err != nil && !errors.Is(err, collect.ErrNotFound) {
		return nil, errors.New(location.Explain(err))
	}
	return BackupFromManifest(m, loc.Name, namespace, name), nil
}

// createSynced creates the Backup b (without its status, which only the status subresource takes), and
// the namespace it lives in when the cluster lacks it: a Backup can only be restored from its own
// namespace, and in a cluster the backups migrate to, that namespace often does not exist yet (the restore
// is what brings the application back). It reports false when the Backup was made meanwhile (by a user, or
// another sync), which is then left alone.
func createSynced(ctx context.Context, env *jobenv.Env, b *v1alpha1.Backup) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.Namespace}}
	if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("create namespace %s: %w", b.Namespace, err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if err != nil {
		return false, fmt.Errorf("encode Backup: %w", err)
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "status")
	_, err = env.Dynamic.Resource(v1alpha1.BackupsResource).Namespace(b.Namespace).Create(ctx, u, metav1.CreateOptions{FieldManager: "pxb-job"})
	if apierrors.IsAlreadyExists(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create Backup: %w", err)
	}
	return true, nil
}

// syncedMeta is the metadata of a synced Backup.
func syncedMeta(namespace, name, clusterID string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{v1alpha1.SyncedLabel: "true"}}
	if clusterID != "" {
		m.Annotations = map[string]string{v1alpha1.OriginClusterAnnotation: clusterID}
	}
	return m
}

// SyncedBackup is the Backup that sync creates from rec, in BackupLocation locName of this cluster: the
// spec and status the backup ended with, its location the local one. Labels of the original are not
// copied: in this cluster they could make it count as another schedule's backup.
func SyncedBackup(rec *store.BackupRecord, locName, namespace, name string) *v1alpha1.Backup {
	b := &v1alpha1.Backup{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: syncedMeta(namespace, name, rec.ClusterID),
		Spec:       *rec.Backup.Spec.DeepCopy(),
		Status:     *rec.Backup.Status.DeepCopy(),
	}
	b.Spec.Location = v1alpha1.ObjectName(locName)
	return b
}

// BackupFromManifest rebuilds, for a backup made before records were kept, what its manifest tells: when
// it ran, what it holds, its errors. A backup without a manifest (m nil) stopped before it finished.
func BackupFromManifest(m *collect.Manifest, locName, namespace, name string) *v1alpha1.Backup {
	b := &v1alpha1.Backup{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: syncedMeta(namespace, name, ""),
		Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)},
	}
	if m == nil {
		b.Status = v1alpha1.BackupStatus{
			Phase: v1alpha1.BackupFailed,
			OperationStatus: v1alpha1.OperationStatus{
				Message: "synced from the location, which holds no manifest of this backup: it did not finish",
			},
		}
		return b
	}
	if n := len(m.Namespaces); n > 0 && n <= 1024 {
		b.Spec.IncludeNamespaces = make([]v1alpha1.NamespacePattern, n)
		for i, ns := range m.Namespaces {
			b.Spec.IncludeNamespaces[i] = v1alpha1.NamespacePattern(ns)
		}
	}
	started, finished := metav1.NewTime(m.Started), metav1.NewTime(m.Finished)
	b.Status = v1alpha1.BackupStatus{
		Phase:           v1alpha1.BackupCompleted,
		Stage:           v1alpha1.BackupStageDone,
		OperationStatus: doneStatus(m.Total, m.ErrorCount, itemErrors(m.Errors), m.Warnings, &started, &finished),
		TotalBytes:      m.Bytes,
		Size:            human.Bytes(m.Bytes),
	}
	b.Status.Message = fmt.Sprintf("%d objects; synced from the location, status rebuilt from the backup's manifest (it has no record of its Backup)", m.Total)
	if m.ErrorCount > 0 {
		b.Status.Phase = v1alpha1.BackupPartiallySucceeded
	}
	return b
}
