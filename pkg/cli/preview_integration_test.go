//go:build integration

package cli_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// restoreWhenCreated stands in for the Job of Restore ns/name, which the test bed cannot run: once the
// Restore exists, it runs the restore job's code in-process, as the pod would.
func restoreWhenCreated(t *testing.T, c *testbed.Cluster, ns, name string) <-chan error {
	t.Helper()
	dyn := c.Dynamic(t)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, err := dyn.Resource(v1alpha1.RestoresResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
			return err == nil, nil
		})
		if err == nil {
			err = jobs.Restore(ctx, c.Config, ns, name, jobs.Options{})
		}
		done <- err
	}()
	return done
}

// previewCLI runs `kubectl pxb restore create NAME -n ns args...` with the restore's job run in-process.
func previewCLI(t *testing.T, c *testbed.Cluster, ns, name string, args ...string) (string, error) {
	t.Helper()
	job := restoreWhenCreated(t, c, ns, name)
	out, err := pxb(t, c, append([]string{"restore", "create", name, "-n", ns}, args...)...)
	if jerr := <-job; jerr != nil {
		t.Fatalf("restore job of %s: %v", name, jerr)
	}
	return out, err
}

// TestRestorePreview previews restores with `restore create --dry-run -o diff` as a team member would: the
// live objects changed since the backup show as diffs, a Secret's values only as hashes (nowhere in clear:
// not in the output, the plan, the Restore's status or its job's log), nothing changes, and the command
// exits non-zero when an object would fail (here a Role the team's `edit` may not create).
func TestRestorePreview(t *testing.T) {
	c := testbed.APIServer(t)
	kube := c.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	mustPxb(t, c, "install")
	t.Cleanup(func() { _, _ = pxb(t, c, "uninstall", "--force") })
	st := testbed.S3(t)
	s3Location(t, c, "lab", st, st.AccessKeyID, st.SecretAccessKey)

	ns := c.Namespace(t)
	const oldSecret, newSecret = "backed-up-s3cret", "rotated-s3cret"
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"},
		Data: map[string]string{"greeting": "hello"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Data: map[string][]byte{"password": []byte(oldSecret)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "escalate"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	backupIn(t, c, ns, "app", "lab")
	if _, err := kube.CoreV1().ConfigMaps(ns).Patch(ctx, "settings", types.MergePatchType, []byte(`{"data":{"greeting":"changed"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	secret, err := kube.CoreV1().Secrets(ns).Patch(ctx, "db", types.MergePatchType, []byte(`{"stringData":{"password":"`+newSecret+`"}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := kube.RbacV1().Roles(ns).Delete(ctx, "escalate", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	noSecret := func(what, text string) {
		t.Helper()
		for _, v := range []string{oldSecret, newSecret} {
			if strings.Contains(text, v) || strings.Contains(text, base64.StdEncoding.EncodeToString([]byte(v))) {
				t.Errorf("%s holds the secret value %q:\n%s", what, v, text)
			}
		}
	}

	out, err := previewCLI(t, c, ns, "preview", "--from-backup", "app", "--existing-resource-policy", "update",
		"--exclude-resources", "roles.rbac.authorization.k8s.io", "--dry-run", "-o", "diff")
	if err != nil {
		t.Fatalf("preview without the Role: %v, want success\n%s", err, out)
	}
	wantLines(t, out, "--- live "+ns+"/ConfigMap/settings\n", "+++ restored "+ns+"/ConfigMap/settings\n",
		"-  greeting: changed\n", "+  greeting: hello\n", "--- live "+ns+"/Secret/db\n", "-  password: hmac:", "+  password: hmac:")
	if strings.Count(out, "--- live ") != 2 {
		t.Errorf("diffs of %d objects, want 2 (the ConfigMap and the Secret):\n%s", strings.Count(out, "--- live "), out)
	}
	noSecret("the preview", out)
	plan := mustPxb(t, c, "restore", "plan", "preview", "-n", ns, "-o", "json")
	wantLines(t, plan, `"outcome": "would-update"`, `"existingResourcePolicy": "update"`)
	noSecret("the plan", plan)
	noSecret("the job log", mustPxb(t, c, "restore", "logs", "preview", "-n", ns))
	r, err := c.Dynamic(t).Resource(v1alpha1.RestoresResource).Namespace(ns).Get(ctx, "preview", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	status, _ := json.Marshal(r.Object["status"])
	noSecret("the Restore's status", string(status))
	if after, err := kube.CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{}); err != nil || after.ResourceVersion != secret.ResourceVersion {
		t.Errorf("the preview changed the Secret: %v", err)
	}

	out, err = previewCLI(t, c, ns, "preview-role", "--from-backup", "app", "--existing-resource-policy", "update", "--dry-run", "-o", "diff")
	if err == nil || !strings.Contains(err.Error(), "would not succeed: 1 objects and 0 volumes would fail") {
		t.Fatalf("preview with a Role edit may not create: %v, want it to fail\n%s", err, out)
	}
	wantLines(t, out, "-  greeting: changed\n", "1 failing\n")
	if !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool {
		return strings.Contains(l, "would-fail") && strings.Contains(l, ns+"/escalate") && strings.Contains(l, "is forbidden")
	}) {
		t.Errorf("no line says the Role would fail, forbidden:\n%s", out)
	}
	if _, err := kube.RbacV1().Roles(ns).Get(ctx, "escalate", metav1.GetOptions{}); err == nil {
		t.Error("the preview created the Role")
	}
}
