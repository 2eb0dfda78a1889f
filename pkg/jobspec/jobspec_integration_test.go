//go:build integration

package jobspec_test

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

// TestLaunchAndFailureReason: a Job is launched once per object, replaced for a new object of the same name,
// and when its pod fails, the pod's termination message is the reason Get reports.
func TestLaunchAndFailureReason(t *testing.T) {
	c := testbed.APIServer(t)
	kube := c.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.SystemNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := jobspec.DefaultConfig()
	cfg.BackoffLimit = 0
	loc := &v1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: "main"}, Spec: v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderS3, Bucket: "b"}}
	target := jobspec.Target{Kind: jobspec.KindBackup, Namespace: "shop", Name: "nightly", UID: "uid-1"}
	first, err := jobspec.Launch(ctx, kube, target, cfg, loc)
	if err != nil {
		t.Fatal(err)
	}
	again, err := jobspec.Launch(ctx, kube, target, cfg, loc)
	if err != nil || again.UID != first.UID {
		t.Fatalf("second Launch for the same object: %v, Job %s then %s", err, first.UID, again.UID)
	}
	st, err := jobspec.Get(ctx, kube, v1alpha1.SystemNamespace, first.Name)
	if err != nil || st.Done || st.Failed {
		t.Fatalf("a fresh Job: %+v, %v", st, err)
	}

	// No Job controller, scheduler or kubelet runs here: the test plays their parts, making the pod from the
	// Job's template, failing it with a termination message, and failing the Job.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: first.Name + "-x", Namespace: v1alpha1.SystemNamespace,
			Labels: map[string]string{"batch.kubernetes.io/job-name": first.Name}},
		Spec: first.Spec.Template.Spec,
	}
	if _, err := kube.CoreV1().ServiceAccounts(v1alpha1.SystemNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.BackupServiceAccount}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err = kube.CoreV1().Pods(v1alpha1.SystemNamespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reason := `open BackupLocation main: access denied: the credential is wrong`
	pod.Status.Phase = corev1.PodFailed
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "pxb-job", Image: cfg.Image, ImageID: "sha256:0",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: reason}},
	}}
	if _, err := kube.CoreV1().Pods(v1alpha1.SystemNamespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	first.Status = batchv1.JobStatus{StartTime: &now, Failed: 1, Conditions: []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
	}}
	if _, err := kube.BatchV1().Jobs(v1alpha1.SystemNamespace).UpdateStatus(ctx, first, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err = jobspec.Get(ctx, kube, v1alpha1.SystemNamespace, first.Name)
	if err != nil || !st.Done || !st.Failed || st.Reason != reason {
		t.Fatalf("failed Job: %+v, %v; want Failed with %q", st, err, reason)
	}

	// A new object of the same name gets a new Job.
	target.UID = "uid-2"
	third, err := jobspec.Launch(ctx, kube, target, cfg, loc)
	if err != nil || third.UID == first.UID || third.Annotations[jobspec.AnnotationOwnerUID] != "uid-2" {
		t.Fatalf("Launch for a recreated object: %v, Job %s (first %s)", err, third.UID, first.UID)
	}
	if !strings.HasPrefix(third.Name, "pxb-backup-shop-nightly-") {
		t.Errorf("Job name %q", third.Name)
	}
}
