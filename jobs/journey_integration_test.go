//go:build integration

package jobs_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/cli"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// pxb runs `kubectl pxb ARGS...` against the test cluster and returns its output and error.
func pxb(t *testing.T, c *testbed.Cluster, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := cli.NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs(append([]string{"--kubeconfig", c.Kubeconfig}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// runJobWhenLaunched stands in for the kubelet, which this test cluster lacks: once the plugin has created
// the Job for target, it runs the Job's code in-process, as the pod would.
func runJobWhenLaunched(t *testing.T, c *testbed.Cluster, target jobspec.Target) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		kube := c.Clientset(t)
		name := jobspec.Name(target)
		err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, err := kube.BatchV1().Jobs(v1alpha1.SystemNamespace).Get(ctx, name, metav1.GetOptions{})
			return err == nil, nil
		})
		if err != nil {
			done <- err
			return
		}
		run := jobs.Backup
		if target.Kind == jobspec.KindRestore {
			run = jobs.Restore
		}
		done <- run(ctx, c.Config, target.Namespace, target.Name, jobs.Options{})
	}()
	return done
}

// TestPluginJourney: kubectl pxb backup create --wait, get, describe, logs; the application deleted;
// kubectl pxb restore create --wait, describe; the application back, field for field.
func TestPluginJourney(t *testing.T) {
	c := testbed.APIServer(t)
	loc := setup(t, c)
	kube := c.Clientset(t)
	ns := c.Namespace(t)
	app(t, kube, ns)
	sys := v1alpha1.SystemNamespace
	backup := "journey-" + ns[len(ns)-6:]

	job := runJobWhenLaunched(t, c, jobspec.Target{Kind: jobspec.KindBackup, Namespace: sys, Name: backup})
	out, err := pxb(t, c, "backup", "create", backup, "--include-namespaces", ns, "--location", loc, "--wait")
	if err != nil {
		t.Fatalf("backup create --wait: %v\n%s", err, out)
	}
	if err := <-job; err != nil {
		t.Fatalf("backup job: %v", err)
	}
	// Spanning another namespace than the current one, the Backup goes to pxb-system.
	if !strings.Contains(out, "Backup "+sys+"/"+backup+" created") || !strings.Contains(out, "Completed") {
		t.Errorf("backup create --wait printed:\n%s", out)
	}

	out, err = pxb(t, c, "backup", "get", "-n", sys, backup)
	if err != nil || !strings.Contains(out, "PHASE") || !lineHas(out, backup, "Completed", loc) {
		t.Errorf("backup get: %v\n%s", err, out)
	}
	out, err = pxb(t, c, "backup", "describe", backup, "-n", sys)
	if err != nil || !strings.Contains(out, "Phase:") || !lineHas(out, "deployments.apps", "1") || !strings.Contains(out, "s3://") ||
		!strings.Contains(out, "/backups/"+sys+"/"+backup+"/") {
		t.Errorf("backup describe: %v\n%s", err, out)
	}
	out, err = pxb(t, c, "backup", "logs", backup, "-n", sys)
	if err != nil || !strings.Contains(out, "backed up") {
		t.Errorf("backup logs: %v\n%s", err, out)
	}

	// Bad input is refused before anything is created, naming the flag.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backup", "create", "bad1", "--include-namespaces", "no-such-ns", "--location", loc}, `--include-namespaces: namespace "no-such-ns" not found`},
		{[]string{"backup", "create", "bad2", "--include-namespaces", ns, "--include-resources", "widgets", "--location", loc}, `--include-resources: unknown resource type "widgets"`},
		{[]string{"backup", "create", "bad3", "--include-namespaces", ns, "--location", "no-such-location"}, `--location: BackupLocation "no-such-location" not found`},
		{[]string{"backup", "create", "bad4", "-n", ns, "-l", "app in (web", "--location", loc}, `--selector "app in (web"`},
		{[]string{"backup", "create", backup, "--include-namespaces", ns, "--location", loc}, "already exists"},
		{[]string{"restore", "create", "--from-backup", "no-such-backup", "-n", ns}, `--from-backup: Backup "no-such-backup" not found`},
		{[]string{"restore", "create", "--from-backup", backup, "--namespace-mappings", "elsewhere:copy"}, `--namespace-mappings: namespace "elsewhere" is not in the backup`},
		{[]string{"restore", "create", "--from-backup", backup, "--namespace-mappings", ns + ":Bad_Name"}, "--namespace-mappings"},
	} {
		out, err := pxb(t, c, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("kubectl pxb %s: %v, want an error with %q\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
	}
	bads, err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(sys).List(ctxT(t, time.Minute), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bads.Items {
		if strings.HasPrefix(b.GetName(), "bad") {
			t.Errorf("refused Backup %s was created", b.GetName())
		}
	}

	// Lose the application, then bring it back.
	deleteApp(t, kube, ns)
	job = runJobWhenLaunched(t, c, jobspec.Target{Kind: jobspec.KindRestore, Namespace: sys, Name: "back-" + backup})
	out, err = pxb(t, c, "restore", "create", "back-"+backup, "--from-backup", backup, "--wait")
	if err != nil {
		t.Fatalf("restore create --wait: %v\n%s", err, out)
	}
	if err := <-job; err != nil {
		t.Fatalf("restore job: %v", err)
	}
	checkApp(t, kube, ns, "back-"+backup)
	out, err = pxb(t, c, "restore", "describe", "back-"+backup, "-n", sys)
	if err != nil || !lineHas(out, "restored", "deployments.apps", ns+"/web") || !lineHas(out, "restored", "secrets", ns+"/db") {
		t.Errorf("restore describe: %v\n%s", err, out)
	}
	out, err = pxb(t, c, "restore", "get", "-n", sys)
	if err != nil || !lineHas(out, "back-"+backup, backup, "Completed") {
		t.Errorf("restore get: %v\n%s", err, out)
	}

	// Delete asks first; --yes deletes the data and the Backup.
	out, err = pxb(t, c, "backup", "delete", backup, "-n", sys)
	if err == nil || !strings.Contains(out, "[y/N]") {
		t.Errorf("backup delete without an answer: %v\n%s", err, out)
	}
	out, err = pxb(t, c, "backup", "delete", backup, "-n", sys, "--yes")
	if err != nil || !strings.Contains(out, "Deleted") {
		t.Fatalf("backup delete --yes: %v\n%s", err, out)
	}
	if _, err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(sys).Get(ctxT(t, time.Minute), backup, metav1.GetOptions{}); err == nil {
		t.Error("the Backup still exists after delete --yes")
	}
}

// TestWaitReportsFailure: --wait ends non-zero with the job's reason.
func TestWaitReportsFailure(t *testing.T) {
	c := testbed.APIServer(t)
	loc := setup(t, c)
	kube := c.Clientset(t)
	ns := c.Namespace(t)
	// The location exists, so the plugin accepts it; its credential is wrong, which only the job finds.
	ctx := ctxT(t, time.Minute)
	sec, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Get(ctx, loc+"-cred", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec.Data[v1alpha1.S3SecretAccessKey] = []byte("wrong")
	if _, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	target := jobspec.Target{Kind: jobspec.KindBackup, Namespace: ns, Name: "doomed"}
	job := runJobWhenLaunched(t, c, target)
	go func() {
		// The job fails; with no Job controller here, the plugin learns the Job is over when it is gone.
		if err := <-job; err != nil {
			bg := metav1.DeletePropagationBackground
			_ = kube.BatchV1().Jobs(v1alpha1.SystemNamespace).Delete(context.Background(), jobspec.Name(target), metav1.DeleteOptions{PropagationPolicy: &bg})
		}
	}()
	out, err := pxb(t, c, "backup", "create", "doomed", "-n", ns, "--location", loc, "--wait")
	if err == nil || !strings.Contains(err.Error(), "Backup "+ns+"/doomed Failed") || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("backup create --wait of a failing backup: %v\n%s", err, out)
	}
}

// lineHas reports whether one line of out holds every word, in order.
func lineHas(out string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := line, true
		for _, w := range words {
			i := strings.Index(rest, w)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(w):]
		}
		if ok {
			return true
		}
	}
	return false
}
