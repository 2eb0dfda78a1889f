package apply

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/pxb-dev/pxb/pkg/collect"
)

var (
	nsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	scGVR  = schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"}
	crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// namespaceExists reports whether a target namespace exists in the cluster.
func (r *restorer) namespaceExists(ctx context.Context, ns string) (bool, error) {
	r.nsMu.Lock()
	defer r.nsMu.Unlock()
	if exists, ok := r.namespaces[ns]; ok {
		return exists, nil
	}
	gctx, cancel := context.WithTimeout(ctx, callTimeout)
	_, err := r.dyn.Resource(nsGVR).Get(gctx, ns, metav1.GetOptions{})
	cancel()
	switch {
	case err == nil:
		r.namespaces[ns] = true
		return true, nil
	case apierrors.IsNotFound(err):
		r.namespaces[ns] = false
		return false, nil
	case apierrors.IsForbidden(err):
		// A namespace admin may not read the Namespace object; creating inside it shows whether it exists.
		r.namespaces[ns] = true
		return true, nil
	default:
		return false, fmt.Errorf("namespace %s: %s", ns, reasonOf(err))
	}
}

// ensureNamespace creates a target namespace the backup does not hold (a mapped one, or a backup without
// cluster resources).
func (r *restorer) ensureNamespace(ctx context.Context, ns string) error {
	if r.opts.Namespace != "" {
		// A confined restore writes into its Restore's own namespace (outside skips every other), which
		// exists: it creates no namespace.
		return nil
	}
	if exists, err := r.namespaceExists(ctx, ns); err != nil || exists {
		return err
	}
	r.nsMu.Lock()
	defer r.nsMu.Unlock()
	if r.namespaces[ns] {
		return nil
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(ns)
	u.SetLabels(r.rw.labels(nil))
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	_, err := r.dyn.Resource(nsGVR).Create(cctx, u, metav1.CreateOptions{FieldManager: FieldManager})
	cancel()
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %s", ns, reasonOf(err))
	}
	r.namespaces[ns] = true
	if err == nil {
		return r.record(SummaryEntry{Resource: "namespaces", Name: ns, Outcome: OutcomeRestored,
			Reason: "created for the restored objects"}, collect.TypeRecord{Type: collect.Type{Version: "v1", Resource: "namespaces", Kind: "Namespace"}}, u)
	}
	return nil
}

// checkClaim warns when a claim names a StorageClass the target lacks and the restore does not bring.
func (r *restorer) checkClaim(ctx context.Context, t collect.TypeRecord, u *unstructured.Unstructured) string {
	if t.String() != "persistentvolumeclaims" {
		return ""
	}
	sc, _, _ := unstructured.NestedString(u.Object, "spec", "storageClassName")
	if sc == "" {
		return ""
	}
	r.mu.Lock()
	exists, known := r.classes[sc]
	r.mu.Unlock()
	if !known {
		gctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := r.dyn.Resource(scGVR).Get(gctx, sc, metav1.GetOptions{})
		cancel()
		exists = err == nil || !apierrors.IsNotFound(err)
		r.mu.Lock()
		r.classes[sc] = exists
		r.mu.Unlock()
		if !exists {
			r.warn(fmt.Sprintf("StorageClass %q not found; claims using it stay Pending until it exists", sc))
		}
	}
	if exists {
		return ""
	}
	return fmt.Sprintf("StorageClass %q not found: the claim stays Pending until it exists", sc)
}

// waitCRDs waits until the restored CRDs are Established and their types are served.
func (r *restorer) waitCRDs(ctx context.Context) error {
	r.mu.Lock()
	names := slices.Sorted(maps.Keys(r.crds))
	r.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	err := wait.PollUntilContextTimeout(ctx, pollInterval, r.opts.WaitTimeout, true, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			gctx, cancel := context.WithTimeout(ctx, callTimeout)
			u, err := r.dyn.Resource(crdGVR).Get(gctx, n, metav1.GetOptions{})
			cancel()
			if err != nil || !established(u) {
				return false, nil
			}
		}
		if err := r.discover(); err != nil {
			return false, nil
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, n := range names {
			if _, ok := r.served[n]; !ok {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		r.warn(fmt.Sprintf("CustomResourceDefinitions not all Established after %s: %s", r.opts.WaitTimeout, strings.Join(names, ", ")))
	}
	return nil
}

func established(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
