//go:build integration

package install_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/install"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// identities are the ServiceAccounts pxb's Jobs and the reconciler run as.
var identities = []string{
	v1alpha1.BackupServiceAccount, v1alpha1.RestoreServiceAccount, v1alpha1.ClusterRestoreServiceAccount, v1alpha1.MoverServiceAccount,
	v1alpha1.LocationServiceAccount, v1alpha1.ScheduleServiceAccount, v1alpha1.ReconcilerServiceAccount,
}

// identity is a client config that acts as ServiceAccount sa of pxb-system, with the groups its token has.
func identity(t *testing.T, c *testbed.Cluster, sa string) *rest.Config {
	return c.UserConfig(t, "system:serviceaccount:"+v1alpha1.SystemNamespace+":"+sa,
		"system:serviceaccounts", "system:serviceaccounts:"+v1alpha1.SystemNamespace, "system:authenticated")
}

// access is one thing an identity may be asked to do: verb on resource (with its subresource after a slash),
// in namespace ns ("" for cluster-scoped or every namespace), of the object name ("" for any).
type access struct {
	verb, group, resource, ns, name string
}

func (a access) String() string {
	s := a.verb + " " + a.resource
	if a.group != "" {
		s += "." + a.group
	}
	if a.name != "" {
		s += " " + a.name
	}
	if a.ns != "" {
		s += " in " + a.ns
	}
	return s
}

// canI asks the apiserver, as the identity of cfg, whether it may do a.
func canI(ctx context.Context, t *testing.T, cfg *rest.Config, a access) bool {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, sub, _ := strings.Cut(a.resource, "/")
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: res, Subresource: sub, Namespace: a.ns, Name: a.name,
		},
	}}
	out, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("access review %s: %v", a, err)
	}
	return out.Status.Allowed
}

// TestEachIdentityMayDoOnlyItsWork installs pxb and asks the API server, as each of pxb's ServiceAccounts,
// whether it may do what is dangerous in a cluster and what its work needs. Each row names every identity
// allowed; all others must be denied. That a Job's identity is enough for its work is proven by the jobs'
// integration tests, which run each kind as its own identity.
func TestEachIdentityMayDoOnlyItsWork(t *testing.T) {
	c, _ := installed(t)
	const (
		backup, restore, mover = v1alpha1.BackupServiceAccount, v1alpha1.RestoreServiceAccount, v1alpha1.MoverServiceAccount
		location, sched, rec   = v1alpha1.LocationServiceAccount, v1alpha1.ScheduleServiceAccount, v1alpha1.ReconcilerServiceAccount
		crestore               = v1alpha1.ClusterRestoreServiceAccount
		sys, rbac, app         = v1alpha1.SystemNamespace, "rbac.authorization.k8s.io", "shop"
		snap, pxb              = "snapshot.storage.k8s.io", "pxb.dev"
		writer, cwriter        = v1alpha1.RestoreWriterServiceAccount, v1alpha1.ClusterWriterServiceAccount
	)
	// No Job identity writes restored objects: restores impersonate a writer, a team's restore the writer of
	// its namespace (bound there to edit by the first restore), an administrator's pxb-cluster-writer.
	rows := []struct {
		access
		allowed []string
	}{
		// Taking over the cluster.
		{access{"bind", rbac, "clusterroles", "", ""}, nil},
		{access{"bind", rbac, "clusterroles", "", "cluster-admin"}, nil},
		{access{"bind", rbac, "clusterroles", "", "edit"}, []string{restore}},
		{access{"escalate", rbac, "clusterroles", "", ""}, nil},
		{access{"create", rbac, "clusterrolebindings", "", ""}, nil},
		// RBAC cannot say where; admission keeps it to writers' bindings (TestTeamRestoreBindsOnlyItsWriter).
		{access{"create", rbac, "rolebindings", sys, ""}, []string{restore}},
		{access{"create", "", "serviceaccounts", app, ""}, []string{restore}},
		{access{"create", "", "serviceaccounts/token", "kube-system", ""}, nil},
		{access{"impersonate", "", "users", "", ""}, nil},
		{access{"impersonate", "", "serviceaccounts", "kube-system", ""}, nil},
		{access{"impersonate", "", "groups", "", ""}, nil},
		{access{"impersonate", "", "serviceaccounts", app, writer}, []string{restore}},
		{access{"impersonate", "", "serviceaccounts", sys, cwriter}, []string{crestore}},
		{access{"impersonate", "", "serviceaccounts", app, cwriter}, nil},
		{access{"deletecollection", "", "secrets", app, ""}, nil},
		{access{"create", "", "pods/exec", app, ""}, []string{backup}},
		{access{"get", "", "secrets", "kube-system", ""}, []string{backup, restore, crestore}},
		// Writing what is not pxb's own work.
		{access{"create", "", "pods", app, ""}, nil},
		{access{"delete", "apps", "deployments", app, ""}, nil},
		{access{"create", "", "secrets", sys, ""}, nil},
		{access{"update", "", "configmaps", sys, v1alpha1.ConfigMapName}, nil},
		{access{"update", "", "nodes", "", ""}, nil},
		{access{"delete", "", "namespaces", "", ""}, nil},
		{access{"update", pxb, "backuplocations", sys, ""}, nil},
		{access{"create", pxb, "restores", app, ""}, nil},
		{access{"create", "batch", "cronjobs", sys, ""}, []string{rec}},
		{access{"create", "", "persistentvolumeclaims", app, ""}, nil},
		// NFS locations with mount options are mounted through a PersistentVolume made by whoever launches a Job.
		{access{"create", "", "persistentvolumes", "", ""}, []string{backup, restore, crestore, sched, rec}},
		// A restored volume is handed over to its claim.
		{access{"update", "", "persistentvolumes", "", ""}, []string{restore, crestore}},
		// Reading.
		{access{"list", "", "secrets", "", ""}, []string{backup, restore, crestore}},
		{access{"get", "", "secrets", sys, ""}, []string{backup, restore, crestore, location, sched}},
		{access{"get", "", "configmaps", sys, v1alpha1.ConfigMapName}, []string{backup, restore, crestore, sched, rec}},
		{access{"get", "", "persistentvolumeclaims", app, ""}, []string{backup, restore, crestore, mover}},
		{access{"list", "", "events", sys, ""}, []string{backup, restore, crestore}},
		{access{"list", "", "nodes", "", ""}, []string{backup, restore, crestore}},
		{access{"get", pxb, "backups", app, ""}, []string{backup, restore, crestore, mover, location, sched, rec}},
		{access{"get", pxb, "restores", app, ""}, []string{backup, restore, crestore, mover, rec}},
		{access{"get", pxb, "backuplocations", sys, ""}, []string{backup, restore, crestore, mover, location, sched, rec}},
		{access{"get", pxb, "backupschedules", app, ""}, []string{backup, restore, crestore, sched, rec}},
		// pxb's own work.
		{access{"update", pxb, "backups/status", app, ""}, []string{backup, restore, crestore, mover, location, rec}},
		{access{"update", pxb, "restores/status", app, ""}, []string{restore, crestore, mover, rec}},
		{access{"update", pxb, "backuplocations/status", sys, ""}, []string{backup, restore, crestore, location}},
		{access{"update", pxb, "backupschedules/status", app, ""}, []string{sched, rec}},
		// Events on the objects of their work: Backups, Restores and schedules in a team's namespace, locations
		// in pxb-system.
		{access{"create", "events.k8s.io", "events", app, ""}, []string{backup, restore, crestore, sched}},
		{access{"create", "events.k8s.io", "events", sys, ""}, []string{backup, restore, crestore, location, sched}},
		{access{"update", "events.k8s.io", "events", app, ""}, nil},
		{access{"delete", "events.k8s.io", "events", sys, ""}, nil},
		{access{"create", "", "events", app, ""}, nil},
		{access{"create", pxb, "backups", app, ""}, []string{backup, restore, crestore, location, sched}},
		{access{"delete", pxb, "backups", app, ""}, []string{location, sched}},
		{access{"create", "", "namespaces", "", ""}, []string{backup, restore, crestore, location}},
		{access{"create", "batch", "jobs", sys, ""}, []string{backup, restore, crestore, sched, rec}},
		{access{"delete", "batch", "jobs", sys, ""}, []string{backup, restore, crestore, location, sched, rec}},
		{access{"create", "", "persistentvolumeclaims", sys, ""}, []string{backup, restore, crestore, sched, rec}},
		{access{"delete", "", "persistentvolumeclaims", sys, ""}, []string{backup, restore, crestore, location, sched}},
		{access{"create", snap, "volumesnapshots", app, ""}, []string{backup}},
		{access{"delete", snap, "volumesnapshots", app, ""}, []string{backup, location, sched}},
		{access{"delete", snap, "volumesnapshotcontents", "", ""}, []string{backup, location, sched}},
		{access{"update", "subresources.kubevirt.io", "virtualmachineinstances/freeze", app, ""}, []string{backup}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, sa := range identities {
		cfg := identity(t, c, sa)
		var wrong []string
		for _, r := range rows {
			want := slices.Contains(r.allowed, sa)
			if got := canI(ctx, t, cfg, r.access); got != want {
				wrong = append(wrong, fmt.Sprintf("%s: allowed %v, want %v", r.access, got, want))
			}
		}
		if len(wrong) > 0 {
			t.Errorf("%s:\n  %s", sa, strings.Join(wrong, "\n  "))
		}
	}
}

// TestTeamRestoreBindsOnlyItsWriter shows where the one binding pxb-restore may make is kept in bounds: RBAC
// lets it create RoleBindings of edit anywhere, and the admission policy pxb-restore-writer-binding refuses
// every one but that of pxb-restore-writer to edit in a team's namespace.
func TestTeamRestoreBindsOnlyItsWriter(t *testing.T) {
	c, _ := installed(t)
	app := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const writer = v1alpha1.RestoreWriterServiceAccount
	job := identity(t, c, v1alpha1.RestoreServiceAccount)
	kube, err := kubernetes.NewForConfig(job)
	if err != nil {
		t.Fatal(err)
	}
	binding := func(ns, name, role string, subject rbacv1.Subject) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{subject},
		}
	}
	sa := func(ns, name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
	}
	create := func(rb *rbacv1.RoleBinding) error {
		_, err := kube.RbacV1().RoleBindings(rb.Namespace).Create(ctx, rb, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	// The first refusal waits for the policy to reach admission; RBAC allowed it all along.
	inSystem := binding(v1alpha1.SystemNamespace, writer, "edit", sa(v1alpha1.SystemNamespace, writer))
	if !canI(ctx, t, job, access{"create", rbacv1.GroupName, "rolebindings", v1alpha1.SystemNamespace, writer}) {
		t.Fatal("RBAC denies pxb-restore RoleBindings in pxb-system; this test wants admission to be what refuses them")
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = create(inSystem)
		return last != nil && strings.Contains(last.Error(), "ValidatingAdmissionPolicy 'pxb-restore-writer-binding'"), nil
	})
	if err != nil {
		t.Fatalf("a binding of edit in pxb-system was never refused by pxb-restore-writer-binding; last answer: %v", last)
	}
	refusedBy(t, "edit in pxb-system", last, "pxb-restore-writer-binding", "not edit as RoleBinding pxb-system/"+writer)
	refusedBy(t, "edit for another subject", create(binding(app, writer, "edit", rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "mallory"})),
		"pxb-restore-writer-binding", "RoleBinding "+app+"/"+writer)
	refusedBy(t, "edit under another name", create(binding(app, "mallory-edit", "edit", sa(app, writer))),
		"pxb-restore-writer-binding", "RoleBinding "+app+"/mallory-edit")
	refusedBy(t, "another namespace's writer", create(binding(app, writer, "edit", sa(v1alpha1.SystemNamespace, writer))),
		"pxb-restore-writer-binding", "RoleBinding "+app+"/"+writer)
	// RBAC, not admission, refuses a binding of any other role.
	err = create(binding(app, writer, "admin", sa(app, writer)))
	if !apierrors.IsForbidden(err) || strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
		t.Errorf("binding the writer to admin: %v, want RBAC to forbid it", err)
	}
	if err := create(binding(app, writer, "edit", sa(app, writer))); err != nil {
		t.Errorf("the writer's own binding: %v", err)
	}
}

// TestJobsRunOnlyPxbsImageAsTheirKind: RBAC lets the reconciler create any Job in pxb-system, naming any
// image and any ServiceAccount there; the admission policy pxb-job-identity admits only pxb-config's job
// image, run as the ServiceAccount of the Job's kind.
func TestJobsRunOnlyPxbsImageAsTheirKind(t *testing.T) {
	c, _ := installed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cm, err := c.Clientset(t).CoreV1().ConfigMaps(v1alpha1.SystemNamespace).Get(ctx, v1alpha1.ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := jobspec.DefaultConfig()
	cfg.Image = cm.Data[install.ConfigJobImage]
	reconciler := identity(t, c, v1alpha1.ReconcilerServiceAccount)
	kube, err := kubernetes.NewForConfig(reconciler)
	if err != nil {
		t.Fatal(err)
	}
	if !canI(ctx, t, reconciler, access{"create", "batch", "jobs", v1alpha1.SystemNamespace, ""}) {
		t.Fatal("RBAC denies the reconciler Jobs in pxb-system; this test wants admission to be what refuses them")
	}
	create := func(mutate func(*batchv1.Job)) error {
		job := jobspec.Job(jobspec.Target{Kind: jobspec.KindBackup, Namespace: "shop", Name: "nightly"}, cfg)
		mutate(job)
		_, err := kube.BatchV1().Jobs(v1alpha1.SystemNamespace).Create(ctx, job, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = create(func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "registry.example/miner:1" })
		return last != nil && strings.Contains(last.Error(), "ValidatingAdmissionPolicy 'pxb-job-identity'"), nil
	})
	if err != nil {
		t.Fatalf("a Job of another image was never refused by pxb-job-identity; last answer: %v", last)
	}
	refusedBy(t, "another image", last, "pxb-job-identity", "may run only the job image of pxb-config ("+cfg.Image+"), not registry.example/miner:1")
	refusedBy(t, "a backup as the cluster's writer", create(func(j *batchv1.Job) {
		j.Spec.Template.Spec.ServiceAccountName = v1alpha1.ClusterWriterServiceAccount
	}), "pxb-job-identity", "serviceAccountName: a Job of kind 'backup' (label pxb.dev/job) may not run as 'pxb-cluster-writer'")
	refusedBy(t, "a Job of no kind", create(func(j *batchv1.Job) {
		delete(j.Labels, jobspec.LabelJob)
	}), "pxb-job-identity", "serviceAccountName: a Job of kind ''")
	if err := create(func(*batchv1.Job) {}); err != nil {
		t.Errorf("the backup Job the reconciler launches: %v", err)
	}
}
