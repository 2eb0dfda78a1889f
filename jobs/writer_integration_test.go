//go:build integration

package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestTeamRestoreWritesWithTheTeamsRights restores, as a team, a backup holding two RoleBindings, which `edit`
// may neither create nor read: the one that still exists is retained, the lost one is not restored. The restore job runs as its own identity and writes as pxb-restore-writer of the team's
// namespace, which it binds to edit: the API server refuses the RoleBinding and the rest is restored. Once
// the namespace's admin binds the writer to admin instead, the same restore writes the RoleBinding too.
func TestTeamRestoreWritesWithTheTeamsRights(t *testing.T) {
	c := testbed.APIServer(t)
	locName := setup(t, c)
	kube := c.Clientset(t)
	ns := c.Namespace(t)
	ctx := ctxT(t, 5*time.Minute)
	const writer = v1alpha1.RestoreWriterServiceAccount

	settings := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": "prod"}}
	readers := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "readers"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "bob"}},
	}
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, settings, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, readers, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// One the team keeps: the writer may not even read it, and the restore retains it rather than fail.
	kept := readers.DeepCopy()
	kept.Name = "kept"
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, kept, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns},
		Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)}})
	if err := jobs.Backup(ctx, jobIdentity(t, c, jobspec.KindBackup), ns, "shop", jobs.Options{}); err != nil {
		t.Fatal(err)
	}
	gone := func() {
		t.Helper()
		if err := kube.CoreV1().ConfigMaps(ns).Delete(ctx, "settings", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := kube.RbacV1().RoleBindings(ns).Delete(ctx, "readers", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	restore := func(name string) v1alpha1.RestoreStatus {
		t.Helper()
		create(t, c, v1alpha1.RestoresResource, &v1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.RestoreSpec{BackupName: "shop"}})
		if err := jobs.Restore(ctx, jobIdentity(t, c, jobspec.KindRestore), ns, name, jobs.Options{}); err != nil {
			t.Fatalf("restore %s: %v", name, err)
		}
		var r v1alpha1.Restore
		get(t, c, v1alpha1.RestoresResource, ns, name, &r)
		return r.Status
	}

	gone()
	st := restore("as-edit")
	if st.Phase != v1alpha1.RestorePartiallySucceeded || st.Counts == nil || st.Counts.Failed != 1 {
		t.Fatalf("restore with the writer bound to edit: phase %q counts %+v errors %v", st.Phase, st.Counts, st.Errors)
	}
	// The refusal is the API server's RBAC answer to the writer, not a check of pxb's.
	want := `User "system:serviceaccount:` + ns + `:` + writer + `" cannot create resource "rolebindings"`
	if len(st.Errors) != 1 || !strings.Contains(st.Errors[0], want) || !strings.Contains(st.Errors[0], "readers") {
		t.Errorf("restore errors %q, want one saying %s", st.Errors, want)
	}
	if cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{}); err != nil || cm.Data["mode"] != "prod" {
		t.Errorf("restored ConfigMap: %v %v", cm.Data, err)
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Get(ctx, "readers", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("RoleBinding readers after the restore: %v, want NotFound", err)
	}
	rb, err := kube.RbacV1().RoleBindings(ns).Get(ctx, writer, metav1.GetOptions{})
	if err != nil || rb.RoleRef.Name != "edit" || len(rb.Subjects) != 1 || rb.Subjects[0].Name != writer || rb.Subjects[0].Namespace != ns {
		t.Fatalf("the writer's binding: %+v %v", rb, err)
	}

	// The namespace's admin lets restores write what admin may: RoleBindings included.
	if err := kube.RbacV1().RoleBindings(ns).Delete(ctx, writer, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rb.ObjectMeta = metav1.ObjectMeta{Name: writer}
	rb.RoleRef.Name = "admin"
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := kube.CoreV1().ConfigMaps(ns).Delete(ctx, "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The binding reaches the authorizer through a watch.
	as := c.UserConfig(t, "system:serviceaccount:"+ns+":"+writer, "system:serviceaccounts", "system:serviceaccounts:"+ns, "system:authenticated")
	asWriter, err := kubernetes.NewForConfig(as)
	if err != nil {
		t.Fatal(err)
	}
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: rbacv1.GroupName, Resource: "rolebindings"}}}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		out, err := asWriter.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		return err == nil && out.Status.Allowed, nil
	}); err != nil {
		t.Fatalf("the writer bound to admin may not create RoleBindings: %v", err)
	}
	st = restore("as-admin")
	if st.Phase != v1alpha1.RestoreCompleted || st.Counts == nil || st.Counts.Failed != 0 {
		t.Fatalf("restore with the writer bound to admin: phase %q counts %+v errors %v", st.Phase, st.Counts, st.Errors)
	}
	if got, err := kube.RbacV1().RoleBindings(ns).Get(ctx, "readers", metav1.GetOptions{}); err != nil || got.Subjects[0].Name != "bob" {
		t.Errorf("restored RoleBinding readers: %+v %v", got, err)
	}
	if got, _ := kube.RbacV1().RoleBindings(ns).Get(ctx, writer, metav1.GetOptions{}); got.RoleRef.Name != "admin" {
		t.Errorf("the restore changed the admin's binding of the writer: %+v", got.RoleRef)
	}
}
