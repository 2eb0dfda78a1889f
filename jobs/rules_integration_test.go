//go:build integration

package jobs_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestBackupRulesOnTheAPIServer drives a Backup's rules as far as an API server without a kubelet allows (the
// commands themselves run in the e2e suite's TestBackupRules): a missing Rule fails the backup before
// anything is written, naming the field, and a Rule whose pods are not running leaves a completed backup
// with a warning per rule.
func TestBackupRulesOnTheAPIServer(t *testing.T) {
	c := testbed.APIServer(t)
	loc := setup(t, c)
	ns := c.Namespace(t)
	app(t, c.Clientset(t), ns)

	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "no-rule", Namespace: ns},
		Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(loc), PreExecRule: "flush"},
	})
	err := jobs.Backup(ctxT(t, time.Minute), c.Config, ns, "no-rule", jobs.Options{})
	want := "spec.preExecRule: Rule " + ns + "/flush not found (a Backup's rules must be in its own namespace)"
	if err == nil || err.Error() != want {
		t.Errorf("backup naming a missing Rule: %v, want %s", err, want)
	}
	var b v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, "no-rule", &b)
	if b.Status.Phase != v1alpha1.BackupFailed || b.Status.Message != want {
		t.Errorf("status of the backup naming a missing Rule: %s %q", b.Status.Phase, b.Status.Message)
	}

	// A pod the rules select, which never runs here (there is no kubelet).
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0", Namespace: ns, Labels: map[string]string{"app": "db"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db"}}}}
	if _, err := c.Clientset(t).CoreV1().Pods(ns).Create(ctxT(t, 30*time.Second), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"flush", "unflush"} {
		create(t, c, v1alpha1.RulesResource, &v1alpha1.Rule{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.RuleSpec{Actions: []v1alpha1.RuleAction{{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, Command: []string{name}}}},
		})
	}
	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "idle", Namespace: ns},
		Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(loc), PreExecRule: "flush", PostExecRule: "unflush"},
	})
	if err := jobs.Backup(ctxT(t, 2*time.Minute), c.Config, ns, "idle", jobs.Options{}); err != nil {
		t.Fatalf("backup whose rules select no running pod: %v", err)
	}
	get(t, c, v1alpha1.BackupsResource, ns, "idle", &b)
	if b.Status.Phase != v1alpha1.BackupCompleted {
		t.Fatalf("backup whose rules select no running pod ended %s: %s", b.Status.Phase, b.Status.Message)
	}
	for _, rule := range []string{"pre-exec rule " + ns + "/flush", "post-exec rule " + ns + "/unflush"} {
		found := false
		for _, w := range b.Status.Warnings {
			found = found || strings.HasPrefix(w, rule+" action 1: no running pod in "+ns+" matches podSelector app=db")
		}
		if !found {
			t.Errorf("backup warnings %q lack the %s's", b.Status.Warnings, rule)
		}
	}
	if b.Status.WarningCount != int32(len(b.Status.Warnings)) || b.Status.WarningCount < 2 {
		t.Errorf("warningCount %d for warnings %q", b.Status.WarningCount, b.Status.Warnings)
	}
}
