//go:build integration

package jobenv_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/install"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

// installPxb applies pxb's manifests to c and waits for its CRDs.
func installPxb(ctx context.Context, t *testing.T, c *testbed.Cluster) install.Client {
	t.Helper()
	client := install.Client{Dynamic: c.Dynamic(t), Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Clientset(t).Discovery()))}
	objs, err := install.Objects(install.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Apply(ctx, objs, false); err != nil {
		t.Fatal(err)
	}
	if err := client.WaitForCRDs(ctx, install.CRDNames(objs), time.Minute); err != nil {
		t.Fatal(err)
	}
	return client
}

// TestStatusReportsAsTheJobIdentity reads a Backup and writes its status as the pxb-job ServiceAccount, so
// that the installed RBAC is what allows it.
func TestStatusReportsAsTheJobIdentity(t *testing.T) {
	c := testbed.APIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := installPxb(ctx, t, c)
	ns := c.Namespace(t)
	backup := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "pxb.dev/v1alpha1", "kind": "Backup",
		"metadata": map[string]any{"name": "nightly", "namespace": ns},
		"spec":     map[string]any{"location": "s3"},
	}}
	if _, err := client.Dynamic.Resource(v1alpha1.BackupsResource).Namespace(ns).Create(ctx, backup, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	env, err := jobenv.NewEnvForConfig(c.UserConfig(t, "system:serviceaccount:pxb-system:"+v1alpha1.BackupServiceAccount,
		"system:serviceaccounts", "system:serviceaccounts:pxb-system", "system:authenticated"))
	if err != nil {
		t.Fatal(err)
	}
	target := jobspec.Ref{Resource: "backups", Namespace: ns, Name: "nightly"}
	err = jobenv.UpdateStatusOf(ctx, env, target, func(b *v1alpha1.Backup) error {
		b.Status.Phase = v1alpha1.BackupInProgress
		b.Status.Progress = &v1alpha1.Progress{Percent: 10}
		return nil
	})
	if err != nil {
		t.Fatalf("typed status update: %v", err)
	}
	if err := env.SetCondition(ctx, target, metav1.Condition{Type: "Probed", Status: metav1.ConditionTrue, Reason: "Test", Message: "reached"}); err != nil {
		t.Fatalf("set condition: %v", err)
	}
	var got v1alpha1.Backup
	if err := env.Get(ctx, target, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != v1alpha1.BackupInProgress || got.Status.Progress == nil || got.Status.Progress.Percent != 10 {
		t.Errorf("status = %+v, want InProgress at 10%%", got.Status)
	}
	if len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Type != "Probed" || got.Status.Conditions[0].ObservedGeneration != got.Generation {
		t.Errorf("conditions = %+v, want one Probed at generation %d", got.Status.Conditions, got.Generation)
	}
	if got.Spec.Location != "s3" {
		t.Errorf("status update changed the spec: location %q", got.Spec.Location)
	}

	// The status subresource is all it writes: a spec change through it is ignored.
	err = jobenv.UpdateStatusOf(ctx, env, target, func(b *v1alpha1.Backup) error {
		b.Spec.Location = "elsewhere"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Get(ctx, target, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Location != "s3" {
		t.Errorf("spec.location = %q after a status update, want s3", got.Spec.Location)
	}
}

// TestCheckUIDRefusesARecreatedObject: a Job launched for a Backup that was deleted and made again under the
// same name refuses the new one, finally and naming both UIDs; the Job of the new one goes on.
func TestCheckUIDRefusesARecreatedObject(t *testing.T) {
	c := testbed.APIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := installPxb(ctx, t, c)
	ns := c.Namespace(t)
	backups := client.Dynamic.Resource(v1alpha1.BackupsResource).Namespace(ns)
	create := func() *unstructured.Unstructured {
		t.Helper()
		u, err := backups.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "pxb.dev/v1alpha1", "kind": "Backup",
			"metadata": map[string]any{"name": "nightly", "namespace": ns},
			"spec":     map[string]any{"location": "s3"},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	first := create()
	env, err := jobenv.NewEnvForConfig(c.UserConfig(t, "system:serviceaccount:pxb-system:"+v1alpha1.BackupServiceAccount,
		"system:serviceaccounts", "system:serviceaccounts:pxb-system", "system:authenticated"))
	if err != nil {
		t.Fatal(err)
	}
	target := jobspec.Ref{Resource: "backups", Namespace: ns, Name: "nightly", UID: first.GetUID()}
	if err := env.CheckUID(ctx, target); err != nil {
		t.Fatalf("the Job's own object: %v", err)
	}
	if err := backups.Delete(ctx, "nightly", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	second := create()
	err = env.CheckUID(ctx, target)
	var final *jobenv.FinalError
	if !errors.As(err, &final) || !strings.Contains(err.Error(), "is not the object this Job was launched for (UID "+string(first.GetUID())+", now "+string(second.GetUID())+")") {
		t.Errorf("a recreated Backup: %v; want a final refusal naming both UIDs", err)
	}
	if err := env.CheckUID(ctx, jobspec.Ref{Resource: "backups", Namespace: ns, Name: "nightly"}); err != nil {
		t.Errorf("a Job without a UID checks nothing: %v", err)
	}
}
