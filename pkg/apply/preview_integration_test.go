//go:build integration

package apply_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestDryRunPreview backs up a ConfigMap, a Deployment and a Secret, changes the ConfigMap and rotates the
// Secret, and previews a restore over them: exactly those two would change, each with a diff of the change,
// the Secret's values as hashes only; nothing on the server changes. An admission policy that refuses the
// ConfigMap turns it into a failure with the API server's message.
func TestDryRunPreview(t *testing.T) {
	c := testbed.APIServer(t)
	kube := c.Clientset(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const oldSecret, newSecret = "backed-up-s3cret", "rotated-s3cret"
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"},
		Data: map[string]string{"greeting": "hello", "color": "blue"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Data: map[string][]byte{"password": []byte(oldSecret), "user": []byte("shop")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	store := newStore(t)
	backup(t, c, store, collect.Options{IncludeNamespaces: []string{ns}})

	if _, err := kube.CoreV1().ConfigMaps(ns).Patch(ctx, "settings", types.MergePatchType, []byte(`{"data":{"greeting":"changed"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().Secrets(ns).Patch(ctx, "db", types.MergePatchType, []byte(`{"stringData":{"password":"`+newSecret+`"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	before := versions(ctx, t, kube, ns)

	opts := apply.Options{DryRun: true, ExistingPolicy: apply.PolicyUpdate, BackupName: "b", RestoreName: "preview"}
	out := newStore(t)
	res, summary := restore(t, c, store, out, opts)
	if res.Phase != collect.PhaseCompleted {
		t.Errorf("phase %s, errors %v; want Completed", res.Phase, res.Errors)
	}
	cmKey, secretKey := "configmaps "+ns+"/settings", "secrets "+ns+"/db"
	var diffed []string
	for k, e := range summary {
		if e.Diff != "" {
			diffed = append(diffed, k)
		}
	}
	slices.Sort(diffed)
	if want := []string{cmKey, secretKey}; !slices.Equal(diffed, want) {
		t.Errorf("objects with a diff: %v, want %v (the Deployment, unchanged, has none)", diffed, want)
	}
	if e := summary["deployments.apps "+ns+"/web"]; e.Outcome != apply.OutcomeWouldUpdate {
		t.Errorf("deployment: %+v, want would-update", e)
	}
	cm := summary[cmKey]
	wantDiff(t, cm, apply.OutcomeWouldUpdate, "--- live "+ns+"/ConfigMap/settings\n", "+++ restored "+ns+"/ConfigMap/settings\n",
		"-  greeting: changed\n", "+  greeting: hello\n", "   color: blue\n")
	secret := summary[secretKey]
	wantDiff(t, secret, apply.OutcomeWouldUpdate, "-  password: hmac:", "+  password: hmac:")
	if strings.Contains(secret.Diff, "+  user:") || strings.Contains(secret.Diff, "-  user:") {
		t.Errorf("the secret's unchanged key is in the diff's changed lines:\n%s", secret.Diff)
	}
	noSecrets(t, "the summary", readAll(ctx, t, out, layout.RestoreSummaryKey), oldSecret, newSecret)
	if after := versions(ctx, t, kube, ns); !maps.Equal(after, before) {
		t.Errorf("the dry run changed objects: resource versions %v, before %v", after, before)
	}

	// Replace shows the same change, judged as the object that would take the live one's place.
	opts.ExistingPolicy = apply.PolicyReplace
	_, summary = restore(t, c, store, newStore(t), opts)
	wantDiff(t, summary[cmKey], apply.OutcomeWouldReplace, "-  greeting: changed\n", "+  greeting: hello\n")
	if after := versions(ctx, t, kube, ns); !maps.Equal(after, before) {
		t.Errorf("the replace dry run changed objects: resource versions %v, before %v", after, before)
	}

	// An admission policy refusing the ConfigMap speaks through the dry run.
	refuse(ctx, t, kube, ns, "settings")
	opts.ExistingPolicy = apply.PolicyUpdate
	res, summary = restore(t, c, store, newStore(t), opts)
	if e := summary[cmKey]; e.Outcome != apply.OutcomeWouldFail || !strings.Contains(e.Reason, "settings may not be restored here") ||
		!strings.Contains(e.Reason, "ValidatingAdmissionPolicy") || e.Diff != "" {
		t.Errorf("configmap refused by admission: %+v, want would-fail with the API server's message", e)
	}
	if e := summary[secretKey]; e.Outcome != apply.OutcomeWouldUpdate || e.Diff == "" {
		t.Errorf("secret beside a refused configmap: %+v, want would-update with its diff", e)
	}
	if res.Phase != collect.PhasePartiallySucceeded || res.ErrorCount != 1 {
		t.Errorf("phase %s errors %v; want PartiallySucceeded with one error", res.Phase, res.Errors)
	}
}

func wantDiff(t *testing.T, e apply.SummaryEntry, outcome apply.Outcome, lines ...string) {
	t.Helper()
	if e.Outcome != outcome {
		t.Errorf("%s %s/%s: outcome %s (%s), want %s", e.Resource, e.Namespace, e.Name, e.Outcome, e.Reason, outcome)
	}
	for _, l := range lines {
		if !strings.Contains(e.Diff, l) {
			t.Errorf("%s %s/%s: diff lacks %q:\n%s", e.Resource, e.Namespace, e.Name, l, e.Diff)
		}
	}
}

// noSecrets fails when any of values appears in what, in clear or base64.
func noSecrets(t *testing.T, what, text string, values ...string) {
	t.Helper()
	for _, v := range values {
		for _, s := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret value %q", what, s)
			}
		}
	}
}

func readAll(ctx context.Context, t *testing.T, s collect.Store, key string) string {
	t.Helper()
	r, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// versions are the resource versions of the objects in ns the test made.
func versions(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns string) map[string]string {
	t.Helper()
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := kube.CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"configmap": cm.ResourceVersion, "secret": s.ResourceVersion, "deployment": d.ResourceVersion}
}

// refuse installs a ValidatingAdmissionPolicy that refuses ConfigMap name in ns, and waits until it does.
func refuse(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns, name string) {
	t.Helper()
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-refuse"},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
				},
			}}},
			Validations: []admissionv1.Validation{{Expression: "object.metadata.name != '" + name + "'", Message: name + " may not be restored here"}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-refuse"},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}},
		},
	}
	adm := kube.AdmissionregistrationV1()
	if _, err := adm.ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = adm.ValidatingAdmissionPolicies().Delete(context.Background(), policy.Name, metav1.DeleteOptions{})
	})
	if _, err := adm.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = adm.ValidatingAdmissionPolicyBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{"probe": "x"}}})
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().ConfigMaps(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "may not be restored here"), nil
	})
	if err != nil {
		t.Fatalf("the policy never refused ConfigMap %s/%s", ns, name)
	}
}
