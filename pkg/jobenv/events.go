package jobenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
)

// Reasons of the Events jobs record on their objects (kubectl describe and kubectl get events show them).
const (
	EventStarted             = "Started"
	EventCompleted           = "Completed"
	EventPartiallySucceeded  = "PartiallySucceeded"
	EventFailed              = "Failed"
	EventVolumeFailed        = "VolumeFailed"
	EventLocationUnavailable = "LocationUnavailable"
	EventLocationAvailable   = "LocationAvailable"
	EventBackupCreated       = "BackupCreated"
	EventRetentionDeleted    = "RetentionDeleted"
)

// eventTimeout bounds the write of one Event; it is given even when the job's context is done, so that the
// Event of a job cut short is still written.
const eventTimeout = 10 * time.Second

// noteMax is the longest note the events API accepts, in bytes.
const noteMax = 1024

// Recorder records Kubernetes Events (events.k8s.io/v1) on the pxb objects a job works for, as reporting
// controller pxb.dev/<kind>-job and instance the pod's name. Each Event is written before Eventf returns, so
// that nothing is lost when the job exits right after: client-go's broadcaster writes in the background with
// no way to flush, and merges Events of one reason on one object into a series that keeps the first note,
// which would lose the names of all failed volumes but one. A nil Recorder records nothing.
//
// Notes come from what the job also writes into the object's status (its message, a volume's message), which
// carries errors and never a Secret's data: jobs read credentials into clients, not into messages.
type Recorder struct {
	sink       events.EventSink
	controller string
	instance   string
}

// NewRecorder is the Recorder of a job of kind.
func NewRecorder(kube kubernetes.Interface, kind jobspec.Kind) *Recorder {
	// A pod's hostname is its name.
	instance, err := os.Hostname()
	if err != nil || instance == "" {
		instance = "unknown"
	}
	return &Recorder{
		sink:       &events.EventSinkImpl{Interface: kube.EventsV1()},
		controller: "pxb.dev/" + string(kind) + "-job",
		instance:   instance,
	}
}

// Eventf records an Event of eventtype (corev1.EventTypeNormal or corev1.EventTypeWarning) regarding obj, a
// pxb object read from the API server (so that it carries its kind). The Event goes in obj's namespace.
// Failing to record is logged: it is never the job's failure.
func (r *Recorder) Eventf(ctx context.Context, obj runtime.Object, eventtype, reason, action, note string, args ...any) {
	if r == nil {
		return
	}
	if err := r.record(ctx, obj, eventtype, reason, action, fmt.Sprintf(note, args...)); err != nil {
		fmt.Fprintf(os.Stderr, "warning: record event %s: %v\n", reason, err)
	}
}

func (r *Recorder) record(ctx context.Context, obj runtime.Object, eventtype, reason, action, note string) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Empty() {
		return fmt.Errorf("%s has no kind", m.GetName())
	}
	ns := m.GetNamespace()
	if ns == "" {
		ns = v1alpha1.SystemNamespace
	}
	if len(note) > noteMax {
		note = strings.ToValidUTF8(note[:noteMax-3], "") + "..."
	}
	now := time.Now()
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: util.GenerateEventName(m.GetName(), now.UnixNano()), Namespace: ns},
		EventTime:  metav1.NewMicroTime(now),
		Regarding: corev1.ObjectReference{
			APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind,
			Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID(), ResourceVersion: m.GetResourceVersion(),
		},
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Type:                eventtype,
		Reason:              reason,
		Action:              action,
		Note:                note,
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
	defer cancel()
	_, err = r.sink.Create(ctx, ev)
	return err
}
