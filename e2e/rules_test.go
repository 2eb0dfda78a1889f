//go:build e2e

// The tests in this file prove pre-exec and post-exec rules as a user relies on them: commands run in the
// application's pods through the real kubelet's exec, the snapshot is taken while what the pre-exec rule
// set up (a marker file, a held "lock") is in place, and the post-exec rule and the end of the background
// command undo it before the backup ends.
package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/pxb-dev/pxb/e2e/framework"
)

// Files the rules' commands create in the application's volume.
const (
	quiescedFile = "quiesced" // by the pre-exec rule's foreground command; the post-exec rule removes it
	lockedFile   = "locked"   // by the pre-exec rule's background command, while it runs
)

// hasEntry reports whether a volume's manifest lists path (relative to the volume's root).
func hasEntry(m framework.Manifest, path string) bool {
	for _, l := range m.Lines {
		if strings.HasPrefix(l, strconv.Quote(path)+" ") {
			return true
		}
	}
	return false
}

// without is a manifest's lines but for those of paths.
func without(lines []string, paths ...string) []string {
	var out []string
	for _, l := range lines {
		if !slices.ContainsFunc(paths, func(p string) bool { return strings.HasPrefix(l, strconv.Quote(p)+" ") }) {
			out = append(out, l)
		}
	}
	return out
}

// applyRules creates the Rules pre and post in pxb-system: pre marks the volume and holds a lock in the
// background (failing afterwards with an unknown command when failPre), post removes the mark.
func applyRules(t *testing.T, c *framework.Cluster, pre, post string, failPre bool) {
	t.Helper()
	extra := ""
	if failPre {
		extra = `
  - podSelector: {matchLabels: {app: app}}
    command: [/e2etool, no-such-command]`
	}
	c.Apply(t, "pxb-system", fmt.Sprintf(`apiVersion: pxb.dev/v1alpha1
kind: Rule
metadata: {name: %s}
spec:
  actions:
  - podSelector: {matchLabels: {app: app}}
    command: [/e2etool, mark, -file, /data/%s]
  - podSelector: {matchLabels: {app: app}}
    container: app
    background: true
    timeoutSeconds: 60
    command: [/e2etool, lock, -file, /data/%s]%s
---
apiVersion: pxb.dev/v1alpha1
kind: Rule
metadata: {name: %s}
spec:
  actions:
  - podSelector: {matchLabels: {app: app}}
    command: [/e2etool, mark, -remove, -file, /data/%s]
`, pre, quiescedFile, lockedFile, extra, post, quiescedFile))
	t.Cleanup(func() {
		ctx := framework.Context(t, 30*time.Second)
		_ = c.KubectlCmd(ctx, "delete", "-n", "pxb-system", "rule/"+pre, "rule/"+post, "--ignore-not-found").Run()
	})
}

// TestBackupRules: a backup with a pre-exec and a post-exec rule snapshots the volume while the pre-exec
// rule's mark and its background command's lock are there, and leaves the live volume without either; a
// restore brings back the volume as the snapshot saw it. A failing pre-exec rule fails the backup with the
// command's exit code and output, and the post-exec rule still runs.
func TestBackupRules(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		c.PVC(t, ns, "data", framework.StorageClass, nil)
		want := c.WriteRich(t, ns, "data", framework.Rich{Seed: 21, Small: 10, Large: 256 << 10})
		deployApp(t, c, ns, "data")
		id := suffix(ns)
		pre, post := "pre-"+id, "post-"+id
		applyRules(t, c, pre, post, false)

		backup := "rules-" + id
		b, err := backupCreate(t, c, backup, ns, loc, 10*time.Minute, "--pre-exec-rule", pre, "--post-exec-rule", post)
		requireEnded(t, c, b, err, "Completed", "pxb.dev/backup")
		if w, _, _ := unstructured.NestedStringSlice(b.Object, "status", "warnings"); len(w) > 0 {
			t.Errorf("backup with rules that matched the application's pod has warnings: %q", w)
		}
		live := c.Manifest(t, ns, "data")
		if hasEntry(live, quiescedFile) || hasEntry(live, lockedFile) {
			t.Errorf("after the backup the live volume still has %s or %s: the post-exec rule or the end of the background command did not run:\n%s",
				quiescedFile, lockedFile, strings.Join(live.Lines, "\n"))
		}
		desc, err := kubectlPxb(t, c, time.Minute, "backup", "describe", backup, "-n", "pxb-system")
		if err != nil || !regexp.MustCompile(`Pre-exec rule:\s+`+pre+`\n`).MatchString(desc) || !regexp.MustCompile(`Post-exec rule:\s+`+post+`\n`).MatchString(desc) {
			t.Errorf("backup describe (%v) does not show the rules %s and %s", err, pre, post)
		}
		logs, err := kubectlPxb(t, c, time.Minute, "backup", "logs", backup, "-n", "pxb-system")
		if err != nil {
			t.Fatalf("backup logs: %v", err)
		}
		for _, line := range []string{`"/e2etool" "mark" "-file" "/data/` + quiescedFile, `started ["/e2etool" "lock"`,
			"locked /data/" + lockedFile, "released /data/" + lockedFile, "post-exec rule " + post + " ran"} {
			if !strings.Contains(logs, line) {
				t.Errorf("the backup's log lacks %q", line)
			}
		}

		loseNamespace(t, c, ns)
		rs, err := restoreCreate(t, c, backup+"-r", backup, 10*time.Minute)
		requireEnded(t, c, rs, err, "Completed", "pxb.dev/restore")
		restored := c.Manifest(t, ns, "data")
		if !hasEntry(restored, quiescedFile) || !hasEntry(restored, lockedFile) {
			t.Errorf("the restored volume lacks %s or %s: the snapshot was not taken between the pre-exec and the post-exec rule:\n%s",
				quiescedFile, lockedFile, strings.Join(restored.Lines, "\n"))
		}
		// The rest is the dataset as written; the root's mtime changed with the rules' files.
		framework.CompareManifests(t, "restored volume, but for the rules' files and the root",
			framework.Manifest{Lines: without(want.Lines, ".")},
			framework.Manifest{Lines: without(restored.Lines, ".", quiescedFile, lockedFile)})

		// A pre-exec rule whose last action fails: the backup fails naming the command, the pod and its
		// exit code, and the post-exec rule still removes the mark.
		waitAvailable(t, c, ns, "app")
		failPre, failPost := "failpre-"+id, "failpost-"+id
		applyRules(t, c, failPre, failPost, true)
		failed := "rules-fail-" + id
		fb, err := backupCreate(t, c, failed, ns, loc, 10*time.Minute, "--pre-exec-rule", failPre, "--post-exec-rule", failPost)
		requireEnded(t, c, fb, err, "Failed", "pxb.dev/backup")
		msg, _, _ := unstructured.NestedString(fb.Object, "status", "message")
		for _, part := range []string{"pre-exec rule pxb-system/" + failPre + " action 3 in pod " + ns + "/app-",
			`["/e2etool" "no-such-command"] failed: exit code 1`, `unknown command "no-such-command"`} {
			if !strings.Contains(msg, part) {
				t.Errorf("failed backup's message %q lacks %q", msg, part)
			}
		}
		// The failure is final: the Job fails with its one pod instead of running the rules again.
		var job *batchv1.Job
		err = wait.PollUntilContextCancel(framework.Context(t, time.Minute), 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			jobs, err := c.Kube.BatchV1().Jobs("pxb-system").List(ctx, metav1.ListOptions{LabelSelector: "pxb.dev/backup=" + failed})
			if err != nil || len(jobs.Items) != 1 {
				return false, nil
			}
			job = &jobs.Items[0]
			return slices.ContainsFunc(job.Status.Conditions, func(c batchv1.JobCondition) bool {
				return c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue
			}), nil
		})
		if job == nil {
			t.Errorf("no Job of the failed backup %s failed: %v", failed, err)
		} else if err != nil || job.Status.Failed != 1 || !slices.ContainsFunc(job.Status.Conditions, func(c batchv1.JobCondition) bool {
			return c.Type == batchv1.JobFailed && c.Reason == batchv1.JobReasonPodFailurePolicy
		}) {
			t.Errorf("Job of the failed backup: %v; failed pods %d, conditions %+v", err, job.Status.Failed, job.Status.Conditions)
		}
		after := c.Manifest(t, ns, "data")
		if hasEntry(after, quiescedFile) || hasEntry(after, lockedFile) {
			t.Errorf("after the failed pre-exec rule the live volume still has %s or %s: the post-exec rule did not undo it:\n%s",
				quiescedFile, lockedFile, strings.Join(after.Lines, "\n"))
		}
	})
}
