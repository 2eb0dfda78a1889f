package jobs

import (
	"context"
	"fmt"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/tenancy"
)

// writerRole is what a team's restore writer is bound to in its namespace the first time the team restores.
const writerRole = "edit"

// restoreWriter is the client config the objects of a Restore in namespace ns are written with: the
// Restore's job impersonates a ServiceAccount, so that the API server, by that account's RBAC, refuses what
// the restore may not write. A team's restore writes as pxb-restore-writer of its own namespace, made and
// bound to `edit` there if it does not exist yet; an administrator's (in pxb-system) as pxb-cluster-writer.
// The job's own identity may impersonate only the one of the two its kind of Restore needs.
func restoreWriter(ctx context.Context, env *jobenv.Env, ns string) (*rest.Config, error) {
	name, made := v1alpha1.ClusterWriterServiceAccount, false
	if tenancy.Confined(ns) {
		name = v1alpha1.RestoreWriterServiceAccount
		var err error
		if made, err = ensureWriter(ctx, env.Kube, ns); err != nil {
			return nil, err
		}
	}
	cfg := rest.CopyConfig(env.Config)
	// Without groups named, the API server gives an impersonated ServiceAccount the groups of its tokens; naming
	// them would take the right to impersonate groups.
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + name}
	if made {
		if err := waitForBinding(ctx, cfg, ns); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// ensureWriter makes pxb-restore-writer in ns and binds it to writerRole, leaving both alone when they exist
// (made says whether it made the binding): a namespace's admin may have bound the writer to another role, to
// let restores write more (admin) or less.
func ensureWriter(ctx context.Context, kube kubernetes.Interface, ns string) (made bool, err error) {
	name := v1alpha1.RestoreWriterServiceAccount
	labels := map[string]string{jobspec.LabelManagedBy: "pxb"}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	sa := &corev1.ServiceAccount{
		ObjectMeta:                   metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		AutomountServiceAccountToken: ptr.To(false),
	}
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(cctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("create ServiceAccount %s/%s, which restores into %s write as: %w", ns, name, ns, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: writerRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}
	_, err = kube.RbacV1().RoleBindings(ns).Create(cctx, rb, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bind ServiceAccount %s/%s to ClusterRole %s in %s: %w", ns, name, writerRole, ns, err)
	}
	return true, nil
}

// waitForBinding waits until the writer of cfg may create ConfigMaps in ns: bindings reach the API server's
// authorizer through a watch, and the restore's first writes could come before a new one.
func waitForBinding(ctx context.Context, cfg *rest.Config, ns string) error {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client as %s: %w", cfg.Impersonate.UserName, err)
	}
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "configmaps"},
	}}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, callTimeout, true, func(ctx context.Context) (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		out, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(rctx, review, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return out.Status.Allowed, nil
	})
	if err != nil {
		return fmt.Errorf("%s, just bound to ClusterRole %s, may not create ConfigMaps in %s yet: %w", cfg.Impersonate.UserName, writerRole, ns, err)
	}
	return nil
}
