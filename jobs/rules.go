package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/rules"
	"github.com/pxb-dev/pxb/pkg/vm"
)

// quiesce runs a backup's pre-exec rule and freezes its VMs' guests before its volumes are snapshotted, and
// thaws the guests and runs its post-exec rule once their data is fixed: after the snapshots, or, when a
// volume is read live, after its upload.
type quiesce struct {
	pre, post *v1alpha1.Rule
	// vms are the VirtualMachines whose guests are frozen; freezer is nil when none are.
	vms     []kubevirtv1.VirtualMachine
	freezer *vm.Freezer
	// namespaces are those being backed up, where the rules select their pods.
	namespaces []string
	runner     *rules.Runner
	target     jobspec.Ref
	env        *jobenv.Env
	log        *jobLog

	held     *rules.Held
	resumed  bool
	warnings []string
}

// loadRules reads the Rules a Backup names, before the backup starts: a missing one fails the backup at once.
func loadRules(ctx context.Context, env *jobenv.Env, b *v1alpha1.Backup, log *jobLog) (*quiesce, error) {
	q := &quiesce{env: env, log: log,
		target: jobspec.Ref{Resource: v1alpha1.BackupsResource.Resource, Namespace: b.Namespace, Name: b.Name},
		runner: &rules.Runner{Kube: env.Kube, Exec: rules.PodExec(env.Config, env.Kube), Logf: log.Printf}}
	for _, r := range []struct {
		field string
		name  v1alpha1.ObjectName
		into  **v1alpha1.Rule
	}{{"preExecRule", b.Spec.PreExecRule, &q.pre}, {"postExecRule", b.Spec.PostExecRule, &q.post}} {
		if r.name == "" {
			continue
		}
		var rule v1alpha1.Rule
		t := jobspec.Ref{Resource: v1alpha1.RulesResource.Resource, Namespace: b.Namespace, Name: string(r.name)}
		if err := get(ctx, env, "Rule", t, &rule); err != nil {
			return nil, fmt.Errorf("spec.%s: %w (a Backup's rules must be in its own namespace)", r.field, err)
		}
		*r.into = &rule
	}
	return q, nil
}

// before runs the pre-exec rule in the namespaces being backed up, then freezes the guests of the VMs.
// When either fails, what was done is undone (guests thawed, the post-exec rule run), and the error fails
// the backup.
func (q *quiesce) before(ctx context.Context) error {
	if q.pre == nil && q.freezer == nil {
		return nil
	}
	if err := q.quiesce(ctx); err != nil {
		if rerr := q.after(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	q.stage(ctx, v1alpha1.BackupStageSnapshots)
	return nil
}

func (q *quiesce) quiesce(ctx context.Context) error {
	if q.pre != nil {
		q.stage(ctx, v1alpha1.BackupStagePreExecRules)
		start := time.Now()
		held, warnings, err := q.runner.Run(ctx, "pre-exec rule", q.pre, q.namespaces)
		q.held = held
		q.warnings = append(q.warnings, warnings...)
		if err != nil {
			return err
		}
		q.log.Printf("pre-exec rule %s ran in %s", q.pre.Name, time.Since(start).Round(time.Millisecond))
	}
	if q.freezer != nil {
		warnings, err := q.freezer.Freeze(ctx, q.vms)
		q.warnings = append(q.warnings, warnings...)
		return err
	}
	return nil
}

// after stops the pre-exec rule's background commands, then runs the post-exec rule (which may need what
// they held released), once; it runs also when the backup failed in between, and on a context of its own
// so that a cancelled backup still resumes the application.
func (q *quiesce) after(ctx context.Context) error {
	if q.resumed {
		return nil
	}
	q.resumed = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Hour)
	defer cancel()
	var errs []error
	if q.freezer != nil {
		if held, expired := q.freezer.Expired(); expired {
			q.warnings = append(q.warnings, fmt.Sprintf("the VMs' guests were frozen for %s, longer than the %s after which KubeVirt "+
				"thaws them: their volumes may be only crash-consistent", held.Round(time.Second), vm.FreezeTimeout))
		}
		errs = append(errs, q.freezer.Thaw(ctx))
	}
	errs = append(errs, q.held.Stop(q.log.Printf))
	if q.post != nil {
		q.stage(ctx, v1alpha1.BackupStagePostExecRules)
		held, warnings, err := q.runner.Run(ctx, "post-exec rule", q.post, q.namespaces)
		q.warnings = append(q.warnings, warnings...)
		// A post-exec rule has nothing after it to hold a background command for.
		errs = append(errs, err, held.Stop(q.log.Printf))
	}
	err := errors.Join(errs...)
	if err == nil && q.post != nil {
		q.log.Printf("post-exec rule %s ran", q.post.Name)
	}
	return err
}

func (q *quiesce) stage(ctx context.Context, s v1alpha1.BackupStage) {
	if err := setBackupStatus(ctx, q.env, q.target, func(st *v1alpha1.BackupStatus) { st.Stage = s }); err != nil {
		q.log.Printf("%v", err)
	}
}
