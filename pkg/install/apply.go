package install

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// FieldManager owns the fields pxb applies.
const FieldManager = "pxb"

// CRDResource is the resource of CustomResourceDefinitions.
var CRDResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Client reaches the cluster for installing and uninstalling.
type Client struct {
	Dynamic dynamic.Interface
	Mapper  meta.RESTMapper
}

func (c Client) resourceFor(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", gvk, err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.Dynamic.Resource(mapping.Resource).Namespace(obj.GetNamespace()), nil
	}
	return c.Dynamic.Resource(mapping.Resource), nil
}

// Apply server-side applies objs in order and returns them as the server stored them. pxb owns these objects,
// so conflicts with other field managers are forced in its favour. With dryRun the server validates and
// returns the result without persisting it.
func (c Client) Apply(ctx context.Context, objs []*unstructured.Unstructured, dryRun bool) ([]*unstructured.Unstructured, error) {
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	applied := make([]*unstructured.Unstructured, 0, len(objs))
	for _, obj := range objs {
		ri, err := c.resourceFor(obj)
		if err != nil {
			return applied, err
		}
		out, err := ri.Apply(ctx, obj.GetName(), obj, opts)
		if err != nil {
			return applied, fmt.Errorf("apply %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
		applied = append(applied, out)
	}
	return applied, nil
}

// WaitForCRDs waits until every named CRD is Established, so that its resources are served.
func (c Client) WaitForCRDs(ctx context.Context, names []string, timeout time.Duration) error {
	pending := ""
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			crd, err := c.Dynamic.Resource(CRDResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) {
					pending = name
					return false, nil
				}
				return false, fmt.Errorf("get CRD %s: %w", name, err)
			}
			if !Established(crd) {
				pending = name
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && pending != "" && wait.Interrupted(err) {
		return fmt.Errorf("CRD %s not established after %s", pending, timeout)
	}
	return err
}

// Established reports whether a CustomResourceDefinition's resources are served.
func Established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// ErrBackupsExist is returned by Uninstall when Backups exist and force is off.
var ErrBackupsExist = errors.New("backups exist")

// AnyBackup returns the namespace/name of one Backup in the cluster, or "" when there is none or the Backup
// type is not installed.
func (c Client) AnyBackup(ctx context.Context) (string, error) {
	list, err := c.Dynamic.Resource(v1alpha1.BackupsResource).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("list backups: %w", err)
	}
	if len(list.Items) == 0 {
		return "", nil
	}
	return list.Items[0].GetNamespace() + "/" + list.Items[0].GetName(), nil
}

// Uninstall deletes objs in reverse order, which removes the CRDs (and with them every pxb object) and the
// namespace. It refuses while Backups exist unless force is set. Data in the buckets is left alone. Objects
// of kinds the cluster does not serve (a PrometheusRule without the Prometheus operator) do not exist, and
// are passed over. It returns the objects it deleted.
func (c Client) Uninstall(ctx context.Context, objs []*unstructured.Unstructured, force bool) ([]*unstructured.Unstructured, error) {
	if !force {
		backup, err := c.AnyBackup(ctx)
		if err != nil {
			return nil, err
		}
		if backup != "" {
			return nil, fmt.Errorf("%w (for example %s): deleting pxb would delete them; delete them first or pass --force (their data stays in the bucket)", ErrBackupsExist, backup)
		}
	}
	var deleted []*unstructured.Unstructured
	policy := metav1.DeletePropagationBackground
	for i := len(objs) - 1; i >= 0; i-- {
		obj := objs[i]
		ri, err := c.resourceFor(obj)
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return deleted, err
		}
		err = ri.Delete(ctx, obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return deleted, fmt.Errorf("delete %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
		deleted = append(deleted, obj)
	}
	return deleted, nil
}

// WaitForDeletion waits until none of objs exists any more.
func (c Client) WaitForDeletion(ctx context.Context, objs []*unstructured.Unstructured, timeout time.Duration) error {
	pending := ""
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, obj := range objs {
			ri, err := c.resourceFor(obj)
			if err != nil {
				return false, err
			}
			_, err = ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return false, fmt.Errorf("get %s %s: %w", obj.GetKind(), obj.GetName(), err)
			}
			pending = obj.GetKind() + " " + obj.GetName()
			return false, nil
		}
		return true, nil
	})
	if err != nil && pending != "" && wait.Interrupted(err) {
		return fmt.Errorf("%s still exists after %s", pending, timeout)
	}
	return err
}
