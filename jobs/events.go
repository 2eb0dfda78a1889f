package jobs

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobenv"
)

// Actions of the Events the jobs record (what the job was doing).
const (
	actionBackup   = "Backup"
	actionRestore  = "Restore"
	actionSchedule = "Schedule"
)

// locationError is a failure to open the location a backup or restore works with: the job records it on its
// object as the location being unavailable.
type locationError struct {
	name string
	err  error
}

func (e *locationError) Error() string { return e.err.Error() }
func (e *locationError) Unwrap() error { return e.err }

// recordLocationError records on obj that its location could not be opened, when that is why err happened.
func recordLocationError(ctx context.Context, env *jobenv.Env, obj runtime.Object, action string, err error) {
	var le *locationError
	if errors.As(err, &le) {
		env.Events.Eventf(ctx, obj, corev1.EventTypeWarning, jobenv.EventLocationUnavailable, action, "location %s is unavailable: %v", le.name, le.err)
	}
}

// recordEnd records the end of a backup or restore obj in phase, with status s as written into the object:
// each failed volume, then the outcome with the status's message.
func recordEnd(ctx context.Context, env *jobenv.Env, obj runtime.Object, action, phase string, s v1alpha1.OperationStatus) {
	for _, v := range s.Volumes {
		if v.Phase == v1alpha1.VolumeFailed {
			env.Events.Eventf(ctx, obj, corev1.EventTypeWarning, jobenv.EventVolumeFailed, action, "volume %s/%s failed: %s", v.Namespace, v.PVC, v.Message)
		}
	}
	note := s.Message
	if note == "" {
		note = fmt.Sprintf("%s %s", action, phase)
	}
	switch phase {
	case string(v1alpha1.BackupCompleted): // the same word for a Restore
		env.Events.Eventf(ctx, obj, corev1.EventTypeNormal, jobenv.EventCompleted, action, "%s", note)
	case string(v1alpha1.BackupPartiallySucceeded):
		env.Events.Eventf(ctx, obj, corev1.EventTypeWarning, jobenv.EventPartiallySucceeded, action, "%s", note)
	default:
		env.Events.Eventf(ctx, obj, corev1.EventTypeWarning, jobenv.EventFailed, action, "%s", note)
	}
}
