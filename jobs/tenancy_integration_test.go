//go:build integration

package jobs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/install"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

var bindingsResource = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}

// withoutBinding deletes the binding of pxb's admission policy name, as an administrator might, until the
// test ends.
func withoutBinding(t *testing.T, c *testbed.Cluster, name string) {
	t.Helper()
	bindings := c.Dynamic(t).Resource(bindingsResource)
	if err := bindings.Delete(ctxT(t, 30*time.Second), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		objs, err := install.Objects(install.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetKind() == "ValidatingAdmissionPolicyBinding" && o.GetName() == name {
				if _, err := bindings.Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
					t.Errorf("put back binding %s: %v", name, err)
				}
			}
		}
	})
}

// TestBackupJobRefusesATeamsReachWithoutThePolicy: with the admission policy's binding deleted, the API
// server accepts a Backup in a team's namespace that names kube-system; its job refuses it before it reads
// or writes anything: the Backup is Failed, naming the field, and the bucket stays empty.
func TestBackupJobRefusesATeamsReachWithoutThePolicy(t *testing.T) {
	c := testbed.APIServer(t)
	st := testbed.S3(t)
	locName := setupOn(t, c, st, 0)
	ns := c.Namespace(t)
	withoutBinding(t, c, "pxb-team-backups")
	b := &v1alpha1.Backup{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: "reach", Namespace: ns},
		Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName),
			Selection: v1alpha1.Selection{IncludeNamespaces: []v1alpha1.NamespacePattern{"kube-system"}}},
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if err != nil {
		t.Fatal(err)
	}
	// The API server forgets the binding in a moment.
	backups := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns)
	var last error
	if err := wait.PollUntilContextTimeout(ctxT(t, time.Minute), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, last = backups.Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{})
		return last == nil, nil
	}); err != nil {
		t.Fatalf("the API server still refuses the Backup: %v", last)
	}

	want := "spec.includeNamespaces: a Backup in namespace " + ns + " may only back up " + ns + " (kube-system named); create it in pxb-system as an administrator"
	err = jobs.Backup(ctxT(t, time.Minute), c.Config, ns, "reach", jobs.Options{})
	var final *jobenv.FinalError
	if !errors.As(err, &final) || !strings.Contains(err.Error(), want) {
		t.Errorf("backup job: %v, want a final refusal saying %q", err, want)
	}
	var got v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, "reach", &got)
	if got.Status.Phase != v1alpha1.BackupFailed || !strings.Contains(got.Status.Message, want) || got.Status.CompletionTimestamp == nil {
		t.Errorf("refused backup status: %+v", got.Status)
	}
	if keys := testbed.Keys(t, st.OpenT(t)); len(keys) > 0 {
		t.Errorf("the refused backup wrote %d objects to its location: %v", len(keys), keys)
	}
}
