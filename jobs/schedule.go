package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/schedule"
	"github.com/pxb-dev/pxb/pkg/store"
)

// ScheduleOutcome is what one start of a schedule's CronJob did.
type ScheduleOutcome struct {
	// Backup is the Backup created, empty when none was due.
	Backup string
	// Skipped says why no Backup was created.
	Skipped string
	// Deleted are the Backups retention deleted; Kept says why some it let go are still there.
	Deleted []string
	Kept    []string
}

// Schedule carries out one start of BackupSchedule namespace/name's CronJob of kind: unless the schedule
// is suspended, the kind's last backup is still running, or no backup is due, it creates a Backup from
// the schedule's template and starts its Job; then it deletes the kind's backups past the policy's
// retention. The outcome goes into the schedule's status; the error is for what failed.
func Schedule(ctx context.Context, cfg *rest.Config, namespace, name string, kind schedule.Kind, opts Options, now time.Time) (*ScheduleOutcome, error) {
	env, err := jobenv.NewEnvForConfig(cfg)
	if err != nil {
		return nil, err
	}
	env.Events = jobenv.NewRecorder(env.Kube, jobspec.KindSchedule)
	target := jobspec.Ref{Resource: v1alpha1.BackupSchedulesResource.Resource, Namespace: namespace, Name: name}
	var bs v1alpha1.BackupSchedule
	if err := get(ctx, env, "BackupSchedule", target, &bs); err != nil {
		return nil, err
	}
	var out *scheduleOutcome
	refusal, err := scheduleRefusal(ctx, env, &bs)
	switch {
	case refusal != nil:
		// No Backup is created and retention waits: the schedule's status says why.
		err = jobenv.Final(refusal)
	case err == nil:
		out, err = runSchedule(ctx, env, &bs, kind, opts, now)
	}
	serr := jobenv.UpdateStatusOf(ctx, env, target, func(cur *v1alpha1.BackupSchedule) error {
		s := &cur.Status
		if out != nil && out.Backup != "" {
			s.LastScheduleTime, s.LastBackupName = &metav1.Time{Time: now}, v1alpha1.ObjectName(out.Backup)
		}
		if out != nil && out.lastSuccessful != "" {
			s.LastSuccessfulBackupName = v1alpha1.ObjectName(out.lastSuccessful)
			if s.LastSuccessfulBackupTime == nil || out.lastSuccessfulTime.After(s.LastSuccessfulBackupTime.Time) {
				s.LastSuccessfulBackupTime = &metav1.Time{Time: out.lastSuccessfulTime}
			}
		}
		if out != nil && out.interval > 0 {
			s.IntervalSeconds = int64(out.interval / time.Second)
		}
		if out != nil {
			forget := append(slices.Clone(out.Deleted), out.gone...)
			s.Backups = slices.DeleteFunc(s.Backups, func(r v1alpha1.ScheduledBackup) bool { return slices.Contains(forget, string(r.Name)) })
		}
		s.Message = ""
		if err != nil {
			s.Message = truncate(fmt.Sprintf("%s: %v", kind, err), 4096)
		}
		return nil
	})
	if out != nil && out.Backup != "" {
		env.Events.Eventf(ctx, &bs, corev1.EventTypeNormal, jobenv.EventBackupCreated, actionSchedule, "%s run created Backup %s", kind, out.Backup)
	}
	if out != nil && len(out.Deleted) > 0 {
		env.Events.Eventf(ctx, &bs, corev1.EventTypeNormal, jobenv.EventRetentionDeleted, actionSchedule, "retention of the %s run deleted Backups %s", kind, strings.Join(out.Deleted, ", "))
	}
	if err != nil {
		env.Events.Eventf(ctx, &bs, corev1.EventTypeWarning, jobenv.EventFailed, actionSchedule, "%s: %v", kind, err)
	}
	return out.public(), errors.Join(err, serr)
}

// scheduleOutcome is the outcome, with what the status also needs.
type scheduleOutcome struct {
	ScheduleOutcome
	lastSuccessful     string
	lastSuccessfulTime time.Time
	// interval is the period of the policy's most frequent run.
	interval time.Duration
	// gone are the recorded Backups that no longer exist.
	gone []string
}

func (o *scheduleOutcome) public() *ScheduleOutcome {
	if o == nil {
		return nil
	}
	return &o.ScheduleOutcome
}

func runSchedule(ctx context.Context, env *jobenv.Env, bs *v1alpha1.BackupSchedule, kind schedule.Kind, opts Options, now time.Time) (*scheduleOutcome, error) {
	out := &scheduleOutcome{}
	var policy v1alpha1.SchedulePolicy
	if err := get(ctx, env, "SchedulePolicy", jobspec.Ref{Resource: v1alpha1.SchedulePoliciesResource.Resource, Name: string(bs.Spec.Policy)}, &policy); err != nil {
		return out, fmt.Errorf("spec.policy: %w", err)
	}
	run, err := schedule.RunOf(policy.Spec, kind)
	if err != nil {
		return out, fmt.Errorf("SchedulePolicy %s: %w", policy.Name, err)
	}
	runs, _ := schedule.Runs(policy.Spec) // RunOf succeeded, so Runs does
	out.interval = slices.MinFunc(runs, func(a, b schedule.Run) int { return cmp.Compare(a.Period, b.Period) }).Period
	tz, err := time.LoadLocation(policy.Spec.TimeZone)
	if err != nil {
		return out, fmt.Errorf("SchedulePolicy %s: timeZone %q: %w", policy.Name, policy.Spec.TimeZone, err)
	}
	items, gone, err := scheduledBackups(ctx, env, bs, kind, now)
	if err != nil {
		return out, err
	}
	out.gone = gone
	var last, lastOK time.Time
	for _, it := range items {
		if it.Created.After(last) {
			last = it.Created
		}
		if (it.Phase == v1alpha1.BackupCompleted || it.Phase == v1alpha1.BackupPartiallySucceeded) && it.Created.After(lastOK) {
			out.lastSuccessful, lastOK = it.Name, it.Created
		}
	}
	out.lastSuccessfulTime = lastOK
	busy := running(items)
	switch {
	case bs.Spec.Suspend:
		out.Skipped = "the schedule is suspended"
	case busy != nil:
		out.Skipped = fmt.Sprintf("Backup %s/%s of the last %s run has not ended", bs.Namespace, busy.Name, kind)
		if busy.Phase == "" {
			// Made by a start that failed before its Job was launched: launch it now.
			if err := launchBackupJob(ctx, env, bs.Namespace, busy.Name); err != nil {
				return out, err
			}
		}
	case !schedule.Due(policy.Spec, run, last, now.In(tz)):
		out.Skipped = fmt.Sprintf("no %s backup is due", kind)
	default:
		if out.Backup, err = startScheduledBackup(ctx, env, bs, kind, now); err != nil {
			return out, err
		}
	}
	// Retention: the newest run.Retain completed backups stay.
	var errs []error
	for _, name := range schedule.Expired(items, run.Retain) {
		b, err := getBackup(ctx, env, bs.Namespace, name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err == nil {
			_, err = store.DeleteBackup(ctx, env.Config, env.Kube, env.Dynamic, b, opts.Location, now)
		}
		var locked *store.LockedError
		switch {
		case err == nil:
			out.Deleted = append(out.Deleted, name)
		case errors.As(err, &locked):
			out.Kept = append(out.Kept, err.Error())
		default:
			errs = append(errs, fmt.Errorf("retention: %w", err))
		}
	}
	return out, errors.Join(errs...)
}

// forgetAfter is how long a recorded Backup may be missing before the record goes: a run records its
// Backup before it creates it.
const forgetAfter = 10 * time.Minute

// scheduledBackups are the Backups BackupSchedule bs created for kind, as its status records them, each at
// the time recorded there; gone are the records whose Backups no longer exist. A Backup that only carries
// the schedule's labels is not one of them, nor is one synced from another cluster's location.
func scheduledBackups(ctx context.Context, env *jobenv.Env, bs *v1alpha1.BackupSchedule, kind schedule.Kind, now time.Time) (items []schedule.Item, gone []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	sel := v1alpha1.ScheduleLabel + "=" + jobspec.LabelValue(bs.Name) + "," + v1alpha1.SyncedLabel + "!=true"
	list, err := env.Dynamic.Resource(v1alpha1.BackupsResource).Namespace(bs.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, nil, fmt.Errorf("list the schedule's Backups: %w", err)
	}
	phases := make(map[string]v1alpha1.BackupPhase, len(list.Items))
	for _, u := range list.Items {
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		phases[u.GetName()] = v1alpha1.BackupPhase(phase)
	}
	for _, r := range bs.Status.Backups {
		phase, ok := phases[string(r.Name)]
		switch {
		case !ok && now.Sub(r.StartTime.Time) > forgetAfter:
			gone = append(gone, string(r.Name))
		case ok && r.Kind == string(kind):
			items = append(items, schedule.Item{Name: string(r.Name), Created: r.StartTime.Time, Phase: phase})
		}
	}
	return items, gone, nil
}

// running is a scheduled backup that has not ended, if any.
func running(items []schedule.Item) *schedule.Item {
	for i := range items {
		if p := items[i].Phase; p == "" || p == v1alpha1.BackupPending || p == v1alpha1.BackupInProgress {
			return &items[i]
		}
	}
	return nil
}

// ScheduledBackupName names the Backup of a schedule's kind started at t: a retried start in the same
// second finds the Backup it made.
func ScheduledBackupName(schedule string, kind schedule.Kind, t time.Time) string {
	stamp := t.UTC().Format("20060102-150405")
	name := fmt.Sprintf("%s-%s-%s", schedule, kind, stamp)
	if max := 253; len(name) > max {
		name = strings.TrimRight(schedule[:max-len(kind)-len(stamp)-2], "-.") + "-" + string(kind) + "-" + stamp
	}
	return name
}

// startScheduledBackup creates the Backup of bs's template for kind and launches its Job, as `kubectl pxb
// backup create` would.
func startScheduledBackup(ctx context.Context, env *jobenv.Env, bs *v1alpha1.BackupSchedule, kind schedule.Kind, now time.Time) (string, error) {
	name := ScheduledBackupName(bs.Name, kind, now)
	// Recorded first, so that no Backup of the schedule escapes retention.
	target := jobspec.Ref{Resource: v1alpha1.BackupSchedulesResource.Resource, Namespace: bs.Namespace, Name: bs.Name}
	err := jobenv.UpdateStatusOf(ctx, env, target, func(cur *v1alpha1.BackupSchedule) error {
		if !slices.ContainsFunc(cur.Status.Backups, func(r v1alpha1.ScheduledBackup) bool { return string(r.Name) == name }) {
			cur.Status.Backups = append(cur.Status.Backups, v1alpha1.ScheduledBackup{Name: v1alpha1.ObjectName(name), Kind: string(kind), StartTime: metav1.Time{Time: now}})
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("record Backup %s/%s in the schedule's status: %w", bs.Namespace, name, err)
	}
	b := &v1alpha1.Backup{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bs.Namespace,
			Labels:      map[string]string{v1alpha1.ScheduleLabel: jobspec.LabelValue(bs.Name), v1alpha1.ScheduleKindLabel: string(kind)},
			Annotations: map[string]string{v1alpha1.ScheduledTimeAnnotation: now.UTC().Format(time.RFC3339Nano)}},
		Spec: *bs.Spec.Template.DeepCopy(),
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if err != nil {
		return "", err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err = env.Dynamic.Resource(v1alpha1.BackupsResource).Namespace(b.Namespace).Create(cctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create Backup %s/%s: %w", b.Namespace, b.Name, err)
	}
	return b.Name, launchBackupJob(ctx, env, b.Namespace, b.Name)
}

// launchBackupJob launches the Job of Backup namespace/name, unless it exists.
func launchBackupJob(ctx context.Context, env *jobenv.Env, namespace, name string) error {
	b, err := getBackup(ctx, env, namespace, name)
	if err != nil {
		return fmt.Errorf("get Backup %s/%s: %w", namespace, name, err)
	}
	c, err := jobspec.LoadConfig(ctx, env.Kube)
	if err == nil {
		var loc *v1alpha1.BackupLocation
		if loc, err = store.GetLocation(ctx, env.Dynamic, string(b.Spec.Location)); err == nil {
			t := jobspec.Target{Kind: jobspec.KindBackup, Namespace: namespace, Name: name, UID: b.UID}
			_, err = jobspec.Launch(ctx, env.Kube, t, c, loc)
		}
	}
	if err != nil {
		return fmt.Errorf("Backup %s/%s created, but its Job was not: %w", namespace, name, err)
	}
	return nil
}

func getBackup(ctx context.Context, env *jobenv.Env, namespace, name string) (*v1alpha1.Backup, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var b v1alpha1.Backup
	err := env.Get(ctx, jobspec.Ref{Resource: v1alpha1.BackupsResource.Resource, Namespace: namespace, Name: name}, &b)
	return &b, err
}
