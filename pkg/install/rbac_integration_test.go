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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// identities are the ServiceAccounts pxb's Jobs and the reconciler run as.
var identities = []string{
	v1alpha1.BackupServiceAccount, v1alpha1.RestoreServiceAccount, v1alpha1.MoverServiceAccount,
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
		sys, rbac, app         = v1alpha1.SystemNamespace, "rbac.authorization.k8s.io", "shop"
		snap, pxb              = "snapshot.storage.k8s.io", "pxb.dev"
	)
	// A restore recreates objects of any type, roles and bindings included: pxb-restore is the one identity
	// that may grant permissions (escalate, bind), mint tokens and write anywhere.
	rows := []struct {
		access
		allowed []string
	}{
		// Taking over the cluster.
		{access{"bind", rbac, "clusterroles", "", ""}, []string{restore}},
		{access{"escalate", rbac, "clusterroles", "", ""}, []string{restore}},
		{access{"create", rbac, "clusterrolebindings", "", ""}, []string{restore}},
		{access{"create", rbac, "rolebindings", sys, ""}, []string{restore}},
		{access{"create", "", "serviceaccounts/token", "kube-system", ""}, []string{restore}},
		{access{"impersonate", "", "users", "", ""}, nil},
		{access{"impersonate", "", "serviceaccounts", "kube-system", ""}, nil},
		{access{"impersonate", "", "groups", "", ""}, nil},
		{access{"deletecollection", "", "secrets", app, ""}, nil},
		{access{"create", "", "pods/exec", app, ""}, []string{backup, restore}},
		{access{"get", "", "secrets", "kube-system", ""}, []string{backup, restore}},
		// Writing what is not pxb's own work.
		{access{"create", "", "pods", app, ""}, []string{restore}},
		{access{"delete", "apps", "deployments", app, ""}, []string{restore}},
		{access{"create", "", "secrets", sys, ""}, []string{restore}},
		{access{"update", "", "configmaps", sys, v1alpha1.ConfigMapName}, []string{restore}},
		{access{"update", "", "nodes", "", ""}, []string{restore}},
		{access{"delete", "", "namespaces", "", ""}, []string{restore}},
		{access{"update", pxb, "backuplocations", sys, ""}, []string{restore}},
		{access{"create", pxb, "restores", app, ""}, []string{restore}},
		{access{"create", "batch", "cronjobs", sys, ""}, []string{restore, rec}},
		{access{"create", "", "persistentvolumeclaims", app, ""}, []string{restore}},
		// NFS locations with mount options are mounted through a PersistentVolume made by whoever launches a Job.
		{access{"create", "", "persistentvolumes", "", ""}, []string{backup, restore, sched, rec}},
		// Reading.
		{access{"list", "", "secrets", "", ""}, []string{backup, restore}},
		{access{"get", "", "secrets", sys, ""}, []string{backup, restore, mover, location, sched}},
		{access{"get", "", "configmaps", sys, v1alpha1.ConfigMapName}, []string{backup, restore, sched, rec}},
		{access{"get", "", "persistentvolumeclaims", app, ""}, []string{backup, restore, mover}},
		{access{"list", "", "events", sys, ""}, []string{backup, restore}},
		{access{"list", "", "nodes", "", ""}, []string{backup, restore}},
		{access{"get", pxb, "backups", app, ""}, []string{backup, restore, mover, location, sched, rec}},
		{access{"get", pxb, "restores", app, ""}, []string{backup, restore, mover, rec}},
		{access{"get", pxb, "backuplocations", sys, ""}, []string{backup, restore, mover, location, sched, rec}},
		{access{"get", pxb, "backupschedules", app, ""}, []string{backup, restore, sched, rec}},
		// pxb's own work.
		{access{"update", pxb, "backups/status", app, ""}, []string{backup, restore, mover, location, rec}},
		{access{"update", pxb, "restores/status", app, ""}, []string{restore, mover, rec}},
		{access{"update", pxb, "backuplocations/status", sys, ""}, []string{backup, restore, location}},
		{access{"update", pxb, "backupschedules/status", app, ""}, []string{restore, sched, rec}},
		{access{"create", pxb, "backups", app, ""}, []string{backup, restore, location, sched}},
		{access{"delete", pxb, "backups", app, ""}, []string{restore, location, sched}},
		{access{"create", "", "namespaces", "", ""}, []string{backup, restore, location}},
		{access{"create", "batch", "jobs", sys, ""}, []string{backup, restore, sched, rec}},
		{access{"delete", "batch", "jobs", sys, ""}, []string{backup, restore, location, sched, rec}},
		{access{"create", "", "persistentvolumeclaims", sys, ""}, []string{backup, restore, sched, rec}},
		{access{"delete", "", "persistentvolumeclaims", sys, ""}, []string{backup, restore, location, sched}},
		{access{"create", snap, "volumesnapshots", app, ""}, []string{backup, restore}},
		{access{"delete", snap, "volumesnapshots", app, ""}, []string{backup, restore, location, sched}},
		{access{"delete", snap, "volumesnapshotcontents", "", ""}, []string{backup, restore, location, sched}},
		{access{"update", "subresources.kubevirt.io", "virtualmachineinstances/freeze", app, ""}, []string{backup, restore}},
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
