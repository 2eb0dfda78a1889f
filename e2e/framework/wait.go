//go:build e2e

package framework

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
)

// WaitFor polls cond every 500ms until it returns true; it fails the test on an error or at timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx := Context(t, timeout)
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return cond(cctx)
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// WaitForPhase waits until the object's status.phase is phase, failing early on one of the failed phases.
func (c *Cluster) WaitForPhase(t testing.TB, gvr schema.GroupVersionResource, ns, name, phase string, timeout time.Duration, failed ...string) *unstructured.Unstructured {
	t.Helper()
	var obj *unstructured.Unstructured
	WaitFor(t, timeout, fmt.Sprintf("%s %s/%s in phase %s", gvr.Resource, ns, name, phase), func(ctx context.Context) (bool, error) {
		o, err := c.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil // not created yet, or a passing API error
		}
		obj = o
		got, _, _ := unstructured.NestedString(o.Object, "status", "phase")
		for _, f := range failed {
			if got == f {
				return false, fmt.Errorf("phase is %s: status %v", got, o.Object["status"])
			}
		}
		return got == phase, nil
	})
	return obj
}

// WaitForJob waits until the Job completes; on failure the test fails with the Job's pod logs.
func (c *Cluster) WaitForJob(t testing.TB, ns, name string, timeout time.Duration) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	var failure string
	ctx := Context(t, timeout)
	_ = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		j, err := c.Kube.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		job = j
		for _, cond := range j.Status.Conditions {
			if cond.Status != corev1.ConditionTrue {
				continue
			}
			switch cond.Type {
			case batchv1.JobComplete:
				return true, nil
			case batchv1.JobFailed:
				failure = cond.Reason + ": " + cond.Message
				return true, nil
			}
		}
		return false, nil
	})
	if job != nil && failure == "" && job.Status.Succeeded > 0 {
		return job
	}
	if failure == "" {
		failure = "timed out after " + timeout.String()
	}
	t.Fatalf("Job %s/%s did not complete: %s\n%s", ns, name, failure, c.PodLogs(t, ns, "job-name="+name))
	return nil
}

// PodLogs returns the logs and states of the pods matching selector, for failure messages.
func (c *Cluster) PodLogs(t testing.TB, ns, selector string) string {
	ctx := Context(t, 30*time.Second)
	pods, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "list pods: " + err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "--- pod %s: phase %s %s\n", p.Name, p.Status.Phase, p.Status.Message)
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Waiting != nil {
				fmt.Fprintf(&b, "    %s waiting: %s %s\n", s.Name, s.State.Waiting.Reason, s.State.Waiting.Message)
			}
		}
		logs, err := c.Kube.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			fmt.Fprintf(&b, "    logs: %v\n", err)
			continue
		}
		b.Write(logs)
	}
	events, err := c.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, e := range events.Items {
			if e.Type == corev1.EventTypeWarning {
				fmt.Fprintf(&b, "event %s %s: %s %s\n", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
			}
		}
	}
	return b.String()
}
