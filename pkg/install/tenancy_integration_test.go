//go:build integration

package install_test

import (
	"context"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// as is a dynamic client that impersonates user (in groups) through the admin's config.
func as(t *testing.T, c *testbed.Cluster, user string, groups ...string) dynamic.Interface {
	t.Helper()
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dyn
}

// grant binds ClusterRole role to user in namespace ns.
func grant(ctx context.Context, t *testing.T, c *testbed.Cluster, role, user, ns string) {
	t.Helper()
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user + "-" + role, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := c.Clientset(t).RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ns == v1alpha1.SystemNamespace {
		t.Cleanup(func() {
			_ = c.Clientset(t).RbacV1().RoleBindings(ns).Delete(context.Background(), rb.Name, metav1.DeleteOptions{})
		})
	}
}

// createAs creates u with dyn (on the server alone with dryRun) and returns the API server's answer.
func createAs(ctx context.Context, dyn dynamic.Interface, u *unstructured.Unstructured, dryRun bool) error {
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	gvr := v1alpha1.SchemeGroupVersion.WithResource(strings.ToLower(u.GetKind()) + "s")
	_, err := dyn.Resource(gvr).Namespace(u.GetNamespace()).Create(ctx, u.DeepCopy(), opts)
	return err
}

// refusedBy asserts that err is the refusal of ValidatingAdmissionPolicy policy, saying every part of want.
func refusedBy(t *testing.T, what string, err error, policy string, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted, want ValidatingAdmissionPolicy %s to refuse it", what, policy)
		return
	}
	for _, w := range append([]string{"ValidatingAdmissionPolicy '" + policy + "'"}, want...) {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %v\nwant it to say %q", what, err, w)
		}
	}
}

// untilRefused retries a dry-run create of u as dyn until policy refuses it: a new policy or binding, or a
// new parameter, takes a moment to reach the API server's admission.
func untilRefused(ctx context.Context, t *testing.T, dyn dynamic.Interface, u *unstructured.Unstructured, policy string) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = createAs(ctx, dyn, u, true)
		return last != nil && strings.Contains(last.Error(), "ValidatingAdmissionPolicy '"+policy+"'"), nil
	})
	if err != nil {
		t.Fatalf("ValidatingAdmissionPolicy %s never refused %s %s/%s; last answer: %v", policy, u.GetKind(), u.GetNamespace(), u.GetName(), last)
	}
}

func location(name string, allowed ...any) *unstructured.Unstructured {
	spec := map[string]any{"provider": "s3", "bucket": "backups", "encryptionKey": map[string]any{"name": name + "-key"}}
	if len(allowed) > 0 {
		spec["allowedNamespaces"] = allowed
	}
	return obj("BackupLocation", v1alpha1.SystemNamespace, name, spec)
}

// TestTeamsKeepToTheirNamespace installs pxb and gives alice the built-in edit role in namespace t1 alone:
// the aggregated pxb-tenant role lets her create pxb's objects there, and the API server's admission
// policies refuse, naming the field, what would reach beyond t1.
func TestTeamsKeepToTheirNamespace(t *testing.T) {
	c, admin := installed(t)
	t1, t2 := c.Namespace(t), c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	grant(ctx, t, c, "edit", "alice", t1)
	alice := as(t, c, "alice")

	team, closed := location(t1+"-loc", t1), location(t1+"-closed")
	for _, l := range []*unstructured.Unstructured{team, closed} {
		if err := createAs(ctx, admin, l, false); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = admin.Resource(v1alpha1.BackupLocationsResource).Namespace(v1alpha1.SystemNamespace).Delete(context.Background(), l.GetName(), metav1.DeleteOptions{})
		})
	}
	backup := func(name string, spec map[string]any, labels, annotations map[string]string) *unstructured.Unstructured {
		if spec["location"] == nil {
			spec["location"] = team.GetName()
		}
		u := obj("Backup", t1, name, spec)
		u.SetLabels(labels)
		u.SetAnnotations(annotations)
		return u
	}
	schedule := func(name string, template map[string]any) *unstructured.Unstructured {
		template["location"] = team.GetName()
		return obj("BackupSchedule", t1, name, map[string]any{"policy": "daily", "template": template})
	}
	kubeSystem := backup("kube-system", map[string]any{"includeNamespaces": []any{"kube-system"}}, nil, nil)
	// The aggregation controller gives edit pxb-tenant's rules, and the API server picks up the policies
	// and their parameters (the locations), each in its own time.
	untilRefused(ctx, t, alice, kubeSystem, "pxb-team-backups")
	untilRefused(ctx, t, alice, backup("closed", map[string]any{"location": closed.GetName()}, nil, nil), "pxb-team-locations")

	refusedBy(t, "a Backup in t1 naming kube-system", createAs(ctx, alice, kubeSystem, false), "pxb-team-backups",
		"spec.includeNamespaces: a Backup in namespace "+t1+" may only back up "+t1+" (kube-system named); create it in pxb-system as an administrator")
	refusedBy(t, "a Backup in t1 taking every cluster-scoped object",
		createAs(ctx, alice, backup("cluster", map[string]any{"clusterResources": "Include"}, nil, nil), false), "pxb-team-backups",
		"spec.clusterResources: a Backup in namespace "+t1+" may not take every cluster-scoped object (Include)")
	refusedBy(t, "a Backup in t1 on a location closed to t1",
		createAs(ctx, alice, backup("closed", map[string]any{"location": closed.GetName()}, nil, nil), false), "pxb-team-locations",
		"spec.location: BackupLocation "+closed.GetName()+" is not open to namespace "+t1)
	refusedBy(t, "a Restore in t1 mapping into t2",
		createAs(ctx, alice, obj("Restore", t1, "into-t2", map[string]any{"backupName": "ok", "namespaceMapping": map[string]any{t1: t2}}), false),
		"pxb-team-restores", "spec.namespaceMapping: a Restore in namespace "+t1+" may only restore into "+t1+" ("+t2+" named)")
	refusedBy(t, "a BackupSchedule in t1 whose template names kube-system",
		createAs(ctx, alice, schedule("kube-system", map[string]any{"includeNamespaces": []any{"kube-system"}}), false), "pxb-team-backups",
		"spec.template.includeNamespaces: a BackupSchedule in namespace "+t1+" may only back up "+t1+" (kube-system named)")
	for _, m := range []struct {
		what        string
		labels      map[string]string
		annotations map[string]string
		want        string
	}{
		{"label", map[string]string{v1alpha1.ScheduleLabel: "nightly"}, nil, "metadata.labels: pxb.dev/schedule is set by pxb alone"},
		{"annotation", nil, map[string]string{v1alpha1.ScheduledTimeAnnotation: "2026-01-01T00:00:00Z"}, "metadata.annotations: pxb.dev/scheduled-time is set by pxb alone"},
	} {
		refusedBy(t, "a Backup in t1 with pxb's "+m.what, createAs(ctx, alice, backup("marked", map[string]any{}, m.labels, m.annotations), false),
			"pxb-backup-marks", m.want)
	}

	// What keeps to t1 is accepted, and a valid schedule cannot be changed to reach beyond it.
	for _, u := range []*unstructured.Unstructured{
		backup("ok", map[string]any{}, map[string]string{"app": "shop"}, nil),
		obj("Restore", t1, "ok", map[string]any{"backupName": "ok", "namespaceMapping": map[string]any{t1: t1}}),
		schedule("nightly", map[string]any{}),
	} {
		if err := createAs(ctx, alice, u, false); err != nil {
			t.Errorf("%s %s in t1: %v, want it accepted", u.GetKind(), u.GetName(), err)
		}
	}
	schedules := alice.Resource(v1alpha1.BackupSchedulesResource).Namespace(t1)
	nightly, err := schedules.Get(ctx, "nightly", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedStringSlice(nightly.Object, []string{"kube-system"}, "spec", "template", "includeNamespaces"); err != nil {
		t.Fatal(err)
	}
	_, err = schedules.Update(ctx, nightly, metav1.UpdateOptions{})
	refusedBy(t, "an update of a schedule's template to name kube-system", err, "pxb-team-backups",
		"spec.template.includeNamespaces: a BackupSchedule in namespace "+t1+" may only back up "+t1+" (kube-system named)")

	// RBAC, not a policy, keeps alice out of t2.
	err = createAs(ctx, alice, obj("Backup", t2, "ok", map[string]any{"location": team.GetName()}), false)
	if !apierrors.IsForbidden(err) || strings.Contains(err.Error(), "ValidatingAdmissionPolicy") || !strings.Contains(err.Error(), `User "alice" cannot create resource "backups"`) {
		t.Errorf("alice's Backup in t2: %v, want RBAC to forbid it", err)
	}
}

// TestBackupsAndRestoresNeedTheirCreatorsRights checks the policies' authorization checks: pxb gives no one
// more than they may do themselves, in a team's namespace or in pxb-system, and only pxb's own
// ServiceAccounts set pxb's labels.
func TestBackupsAndRestoresNeedTheirCreatorsRights(t *testing.T) {
	c, admin := installed(t)
	t1 := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	loc := location(t1+"-loc", "*")
	if err := createAs(ctx, admin, loc, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Resource(v1alpha1.BackupLocationsResource).Namespace(v1alpha1.SystemNamespace).Delete(context.Background(), loc.GetName(), metav1.DeleteOptions{})
	})
	// bob may manage pxb's objects in t1 but not read its Secrets; carol may edit pxb-system and nothing else.
	grant(ctx, t, c, "pxb-tenant", "bob", t1)
	grant(ctx, t, c, "edit", "carol", v1alpha1.SystemNamespace)
	bob, carol := as(t, c, "bob"), as(t, c, "carol")
	spec := func(extra map[string]any) map[string]any {
		extra["location"] = loc.GetName()
		return extra
	}
	bobs := obj("Backup", t1, "bobs", spec(map[string]any{}))
	untilRefused(ctx, t, bob, bobs, "pxb-backup-rights")
	refusedBy(t, "a Backup by one who may not list its namespace's Secrets", createAs(ctx, bob, bobs, false), "pxb-backup-rights",
		"spec.includeNamespaces: bob may not list Secrets in "+t1+", which this Backup would read")
	refusedBy(t, "a Restore by one who may not create Secrets in its namespace",
		createAs(ctx, bob, obj("Restore", t1, "bobs", map[string]any{"backupName": "any"}), false), "pxb-restore-rights",
		"bob may not create Secrets in "+t1+", which this Restore would write into")

	sys := v1alpha1.SystemNamespace
	untilRefused(ctx, t, carol, obj("Backup", sys, "of-t1", spec(map[string]any{"includeNamespaces": []any{t1}})), "pxb-backup-rights")
	for _, tc := range []struct {
		u      *unstructured.Unstructured
		policy string
		want   string
	}{
		{obj("Backup", sys, "of-t1", spec(map[string]any{"includeNamespaces": []any{t1}})), "pxb-backup-rights",
			"spec.includeNamespaces: carol may not list Secrets in " + t1},
		{obj("Backup", sys, "of-all", spec(map[string]any{"includeNamespaces": []any{"*"}})), "pxb-backup-rights",
			"carol may not list Secrets in every namespace"},
		{obj("Backup", sys, "of-three", spec(map[string]any{"includeNamespaces": []any{sys, sys + "-a", sys + "-b"}})), "pxb-backup-rights",
			"may name at most 2 namespaces"},
		{obj("BackupSchedule", sys, "of-t1", map[string]any{"policy": "daily", "template": spec(map[string]any{"includeNamespaces": []any{t1}})}), "pxb-backup-rights",
			"spec.template.includeNamespaces: carol may not list Secrets in " + t1},
		{obj("Restore", sys, "into-t1", map[string]any{"backupName": "any", "includeNamespaces": []any{"shop"}, "namespaceMapping": map[string]any{"shop": t1}}), "pxb-restore-rights",
			"spec.namespaceMapping: carol may not create Secrets in " + t1},
		{obj("Restore", sys, "everything", map[string]any{"backupName": "any"}), "pxb-restore-rights",
			"carol may not create Secrets in every namespace"},
		{obj("Restore", sys, "cluster", map[string]any{"backupName": "any", "includeNamespaces": []any{sys}, "clusterResources": "Include"}), "pxb-restore-rights",
			"spec.clusterResources: carol may not create every kind of object"},
		{obj("Backup", sys, "marked", spec(map[string]any{})), "pxb-backup-marks", "metadata.labels: pxb.dev/synced is set by pxb alone"},
	} {
		if tc.u.GetName() == "marked" {
			tc.u.SetLabels(map[string]string{v1alpha1.SyncedLabel: "true"})
		}
		refusedBy(t, tc.u.GetKind()+" "+tc.u.GetName()+" by carol", createAs(ctx, carol, tc.u, true), tc.policy, tc.want)
	}
	// What carol may do herself, she may have pxb do: back up and restore pxb-system.
	for _, u := range []*unstructured.Unstructured{
		obj("Backup", sys, "of-sys", spec(map[string]any{})),
		obj("Restore", sys, "into-sys", map[string]any{"backupName": "any", "includeNamespaces": []any{sys}}),
	} {
		if err := createAs(ctx, carol, u, true); err != nil {
			t.Errorf("%s %s by carol: %v, want it accepted", u.GetKind(), u.GetName(), err)
		}
	}
	// pxb's own identity (a sync's) sets its labels.
	job := as(t, c, "system:serviceaccount:pxb-system:"+v1alpha1.LocationServiceAccount, "system:serviceaccounts", "system:serviceaccounts:pxb-system")
	synced := obj("Backup", t1, "synced", spec(map[string]any{}))
	synced.SetLabels(map[string]string{v1alpha1.SyncedLabel: "true", v1alpha1.ScheduleLabel: "nightly"})
	if err := createAs(ctx, job, synced, true); err != nil {
		t.Errorf("a synced Backup by pxb-location: %v, want it accepted", err)
	}
}
