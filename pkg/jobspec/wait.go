package jobspec

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// State is where a Job stands.
type State struct {
	Done   bool
	Failed bool
	// Reason says why the Job failed, or why its pod cannot start; never empty when Failed.
	Reason string
}

// stuckReasons are waiting states a pod does not leave on its own: the Job would only end at its deadline.
var stuckReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "ErrImageNeverPull": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true,
}

// Get reports the state of Job ns/name, with the reason of a failure taken from its pods.
func Get(ctx context.Context, kube kubernetes.Interface, ns, name string) (State, error) {
	gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	job, err := kube.BatchV1().Jobs(ns).Get(gctx, name, metav1.GetOptions{})
	cancel()
	if err != nil {
		return State{}, fmt.Errorf("get Job %s/%s: %w", ns, name, err)
	}
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			return State{Done: true}, nil
		case batchv1.JobFailed, batchv1.JobFailureTarget:
			reason := podReason(ctx, kube, job)
			if reason == "" {
				reason = strings.TrimSpace(c.Reason + ": " + c.Message)
			}
			return State{Done: true, Failed: true, Reason: reason}, nil
		}
	}
	if r := stuckReason(ctx, kube, job); r != "" {
		return State{Failed: true, Reason: r}, nil
	}
	return State{}, nil
}

func jobPods(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job) []corev1.Pod {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pods, err := kube.CoreV1().Pods(job.Namespace).List(lctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + job.Name})
	if err != nil {
		return nil
	}
	// The latest attempt tells the most.
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[j].CreationTimestamp.Before(&pods.Items[i].CreationTimestamp)
	})
	return pods.Items
}

// podReason is the termination message (or, with FallbackToLogsOnError, the log's tail) of the latest
// failed pod of job.
func podReason(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job) string {
	for _, p := range jobPods(ctx, kube, job) {
		for _, s := range p.Status.ContainerStatuses {
			if term := s.State.Terminated; term != nil && term.ExitCode != 0 {
				msg := strings.TrimSpace(term.Message)
				if msg == "" {
					msg = fmt.Sprintf("container %s exited with code %d (%s)", s.Name, term.ExitCode, term.Reason)
				}
				return msg
			}
		}
		if p.Status.Reason != "" || p.Status.Message != "" {
			return strings.TrimSpace(p.Status.Reason + ": " + p.Status.Message)
		}
	}
	return ""
}

// startGrace is how long a pod may stay unscheduled or unmounted, or a Job without its pod, before that is
// taken as final: a scheduler or a volume attach needs seconds, a quota or a missing path stays.
const startGrace = time.Minute

// mountFix is said of a pod whose volumes cannot be mounted: a FileSystem backup mounts the kubelet's
// directory of a claim's volume, under the root directory pxb was told or found.
const mountFix = "if the path is under the kubelet's root directory, set " + ConfigKubeletRootDir + " in " +
	v1alpha1.SystemNamespace + "/" + v1alpha1.ConfigMapName + " to the nodes' kubelet --root-dir"

// stuckReason says why job's pod cannot start, for causes that do not go away on their own: an image that
// cannot be pulled, a pod no node takes, volumes that cannot be mounted, or a pod the Job may not create
// (a quota); "" while it may still start.
func stuckReason(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job) string {
	pods := jobPods(ctx, kube, job)
	if len(pods) == 0 {
		if time.Since(job.CreationTimestamp.Time) < startGrace {
			return ""
		}
		if e := lastWarning(ctx, kube, job.Namespace, "Job", job.Name, "FailedCreate"); e != "" {
			return fmt.Sprintf("Job %s cannot create its pod: %s", job.Name, e)
		}
		return ""
	}
	p := &pods[0]
	for _, s := range p.Status.ContainerStatuses {
		if w := s.State.Waiting; w != nil && stuckReasons[w.Reason] {
			return fmt.Sprintf("pod %s cannot start: %s: %s", p.Name, w.Reason, w.Message)
		}
	}
	if p.Status.Phase != corev1.PodPending {
		return ""
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable &&
			time.Since(c.LastTransitionTime.Time) >= startGrace {
			return fmt.Sprintf("pod %s cannot be scheduled: %s", p.Name, c.Message)
		}
	}
	if time.Since(p.CreationTimestamp.Time) < startGrace {
		return ""
	}
	for _, reason := range []string{"FailedMount", "FailedAttachVolume"} {
		if e := lastWarning(ctx, kube, p.Namespace, "Pod", p.Name, reason); e != "" {
			return fmt.Sprintf("pod %s cannot mount its volumes: %s (%s)", p.Name, e, mountFix)
		}
	}
	return ""
}

// lastWarning is the message of the latest Warning event with reason about object kind ns/name, or "" when
// there is none or events cannot be read.
func lastWarning(ctx context.Context, kube kubernetes.Interface, ns, kind, name, reason string) string {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	events, err := kube.CoreV1().Events(ns).List(lctx, metav1.ListOptions{FieldSelector: fields.Set{
		"involvedObject.kind": kind, "involvedObject.name": name, "reason": reason, "type": corev1.EventTypeWarning}.String()})
	if err != nil || len(events.Items) == 0 {
		return ""
	}
	last := slices.MaxFunc(events.Items, func(a, b corev1.Event) int {
		return eventTime(a).Compare(eventTime(b))
	})
	return strings.TrimSpace(last.Message)
}

func eventTime(e corev1.Event) time.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp.Time
	}
	return e.EventTime.Time
}

// Output is the termination message of the pod that completed Job ns/name: what the job reported as its
// result.
func Output(ctx context.Context, kube kubernetes.Interface, ns, name string) (string, error) {
	pods := jobPods(ctx, kube, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	for _, p := range pods {
		for _, s := range p.Status.ContainerStatuses {
			if term := s.State.Terminated; term != nil && term.ExitCode == 0 {
				return term.Message, nil
			}
		}
	}
	return "", fmt.Errorf("Job %s/%s has no completed pod to read its result from", ns, name)
}

// Delete deletes Job ns/name and its pods; a Job already gone is no error.
func Delete(ctx context.Context, kube kubernetes.Interface, ns, name string) error {
	bg := metav1.DeletePropagationBackground
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := kube.BatchV1().Jobs(ns).Delete(dctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Job %s/%s: %w", ns, name, err)
	}
	return nil
}
