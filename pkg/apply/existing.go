package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/pxb-dev/pxb/pkg/collect"
)

func (r *restorer) apply(ctx context.Context, t collect.TypeRecord, u *unstructured.Unstructured) (Outcome, string, types.UID) {
	ri, reason := r.target(t, u)
	if ri == nil {
		return OutcomeFailed, reason, ""
	}
	if t.Namespaced {
		if err := r.ensureNamespace(ctx, u.GetNamespace()); err != nil {
			return OutcomeFailed, err.Error(), ""
		}
	}
	warning := r.checkClaim(ctx, t, u)
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	created, err := ri.Create(cctx, u, metav1.CreateOptions{FieldManager: FieldManager})
	cancel()
	if err == nil {
		return OutcomeRestored, warning, created.GetUID()
	}
	if !apierrors.IsAlreadyExists(err) && !(apierrors.IsForbidden(err) && r.exists(ctx, t, u)) {
		// A namespace admin may not create its own Namespace object, nor a team's writer a RoleBinding, which
		// exists: that is handled by the policy like any existing object.
		return OutcomeFailed, reasonOf(err), ""
	}
	policy := r.opts.ExistingPolicy
	note := ""
	if policy == PolicyReplace && undeletable(t) {
		policy, note = PolicyUpdate, "updated, not replaced: deleting it would delete everything it holds"
	}
	switch policy {
	case PolicyUpdate:
		obj, err := r.serverSideApply(ctx, ri, u, nil)
		if err != nil {
			return OutcomeFailed, "update: " + reasonOf(err), ""
		}
		return OutcomeUpdated, note, obj.GetUID()
	case PolicyReplace:
		obj, note, err := r.replace(ctx, ri, u)
		if err != nil {
			return OutcomeFailed, "replace: " + reasonOf(err), ""
		}
		return OutcomeReplaced, joinReasons(note, warning), obj.GetUID()
	default:
		var uid types.UID
		if r.ownerKinds[t.GroupKind()] {
			gctx, cancel := context.WithTimeout(ctx, callTimeout)
			if existing, err := ri.Get(gctx, u.GetName(), metav1.GetOptions{}); err == nil {
				uid = existing.GetUID()
			}
			cancel()
		}
		return OutcomeRetained, "already exists", uid
	}
}

// exists says whether u exists, as seen by the reader, which may see what the writer may not.
func (r *restorer) exists(ctx context.Context, t collect.TypeRecord, u *unstructured.Unstructured) bool {
	var ri dynamic.ResourceInterface = r.reader.Resource(t.GVR())
	if t.Namespaced {
		ri = r.reader.Resource(t.GVR()).Namespace(u.GetNamespace())
	}
	gctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := ri.Get(gctx, u.GetName(), metav1.GetOptions{})
	return err == nil
}

// undeletable types are never deleted by a restore: a Namespace or CRD takes all its objects with it.
func undeletable(t collect.TypeRecord) bool {
	switch t.String() {
	case namespaceType, crdType:
		return true
	}
	return false
}

func (r *restorer) serverSideApply(ctx context.Context, ri dynamic.ResourceInterface, u *unstructured.Unstructured, dryRun []string) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	force := true
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return ri.Patch(cctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: &force, DryRun: dryRun})
}

// replace deletes the existing object, waits until it is gone and creates u. An object a controller
// recreates at once (a namespace's default ServiceAccount) is brought to the backup's state instead.
func (r *restorer) replace(ctx context.Context, ri dynamic.ResourceInterface, u *unstructured.Unstructured) (*unstructured.Unstructured, string, error) {
	gctx, cancel := context.WithTimeout(ctx, callTimeout)
	existing, err := ri.Get(gctx, u.GetName(), metav1.GetOptions{})
	cancel()
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, "", err
	}
	if err == nil {
		uid := existing.GetUID()
		dctx, cancel := context.WithTimeout(ctx, callTimeout)
		bg := metav1.DeletePropagationBackground
		err = ri.Delete(dctx, u.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}})
		cancel()
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return nil, "", err
		}
		err = wait.PollUntilContextTimeout(ctx, pollInterval, r.opts.WaitTimeout, true, func(ctx context.Context) (bool, error) {
			gctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			cur, err := ri.Get(gctx, u.GetName(), metav1.GetOptions{})
			return apierrors.IsNotFound(err) || (err == nil && cur.GetUID() != uid), nil
		})
		if err != nil {
			return nil, "", fmt.Errorf("the existing object was not gone after %s (finalizers: %v)", r.opts.WaitTimeout, existing.GetFinalizers())
		}
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	created, err := ri.Create(cctx, u, metav1.CreateOptions{FieldManager: FieldManager})
	cancel()
	if apierrors.IsAlreadyExists(err) {
		obj, err := r.serverSideApply(ctx, ri, u, nil)
		return obj, "recreated by the cluster at once; updated to the backup's state", err
	}
	return created, "", err
}

func (r *restorer) dryRun(ctx context.Context, t collect.TypeRecord, u *unstructured.Unstructured) (outcome Outcome, reason, diff string) {
	ri, reason := r.target(t, u)
	if ri == nil {
		if reason == "" {
			return OutcomeWouldCreate, "its CustomResourceDefinition is created by this restore", ""
		}
		return OutcomeWouldFail, reason, ""
	}
	nsExists := true
	if t.Namespaced {
		var err error
		if nsExists, err = r.namespaceExists(ctx, u.GetNamespace()); err != nil {
			return OutcomeWouldFail, err.Error(), ""
		}
	}
	warning := r.checkClaim(ctx, t, u)
	if !nsExists {
		// Nothing to check against: the namespace is created by the restore.
		return OutcomeWouldCreate, joinReasons("namespace "+u.GetNamespace()+" is created by this restore", warning), ""
	}
	gctx, cancel := context.WithTimeout(ctx, callTimeout)
	live, err := ri.Get(gctx, u.GetName(), metav1.GetOptions{})
	cancel()
	switch {
	case err == nil:
		return r.dryRunExisting(ctx, t, ri, live, u, nil)
	case apierrors.IsForbidden(err) && r.exists(ctx, t, u):
		// As in a real restore: it exists, though the writer may not read it.
		return r.dryRunExisting(ctx, t, ri, nil, u, err)
	case !apierrors.IsNotFound(err):
		return OutcomeWouldFail, reasonOf(err), ""
	}
	// The server validates the object, admission included, without storing it.
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	_, err = ri.Create(cctx, u, metav1.CreateOptions{FieldManager: FieldManager, DryRun: []string{metav1.DryRunAll}})
	cancel()
	if err != nil {
		return OutcomeWouldFail, reasonOf(err), ""
	}
	return OutcomeWouldCreate, warning, ""
}

// dryRunExisting says what the policy would do with an object that exists (live; nil when the writer may
// not read it, for the reason readErr), has the API server judge each write without storing it, and diffs
// live against what the server returns.
func (r *restorer) dryRunExisting(ctx context.Context, t collect.TypeRecord, ri dynamic.ResourceInterface, live, u *unstructured.Unstructured, readErr error) (Outcome, string, string) {
	policy := r.opts.ExistingPolicy
	outcome, note := OutcomeWouldUpdate, ""
	switch {
	case policy == PolicyRetain:
		return OutcomeWouldRetain, "already exists", ""
	case policy == PolicyReplace && undeletable(t):
		note = "updated, not replaced: deleting it would delete everything it holds"
	case policy == PolicyReplace:
		outcome = OutcomeWouldReplace
	}
	var written *unstructured.Unstructured
	var err error
	if outcome == OutcomeWouldReplace {
		if live == nil {
			return OutcomeWouldFail, "replace: " + reasonOf(readErr), ""
		}
		written, note, err = dryRunReplace(ctx, ri, live, u)
	} else {
		written, err = r.serverSideApply(ctx, ri, u, []string{metav1.DryRunAll})
	}
	if err != nil {
		return OutcomeWouldFail, string(policy) + ": " + reasonOf(err), ""
	}
	if live == nil {
		return outcome, joinReasons(note, "no diff: the live object may not be read"), ""
	}
	diff, err := Diff(live, written)
	if err != nil {
		return outcome, joinReasons(note, "no diff: "+err.Error()), ""
	}
	return outcome, note, diff
}

// dryRunReplace has the API server judge the deletion of live and u in its place, without storing either,
// and returns what it would write. u is judged as an update of the whole object, since a dry-run create
// would find live in the way; a field the server lets only a new object set (an immutable one) cannot be
// judged so, and the object is then returned as the restore would create it.
func dryRunReplace(ctx context.Context, ri dynamic.ResourceInterface, live, u *unstructured.Unstructured) (*unstructured.Unstructured, string, error) {
	uid := live.GetUID()
	dctx, cancel := context.WithTimeout(ctx, callTimeout)
	err := ri.Delete(dctx, u.GetName(), metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}, Preconditions: &metav1.Preconditions{UID: &uid}})
	cancel()
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, "", fmt.Errorf("delete: %w", err)
	}
	c := u.DeepCopy()
	c.SetResourceVersion(live.GetResourceVersion())
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	written, err := ri.Update(cctx, c, metav1.UpdateOptions{FieldManager: FieldManager, DryRun: []string{metav1.DryRunAll}})
	cancel()
	if apierrors.IsInvalid(err) && strings.Contains(err.Error(), "immutable") {
		return u, "recreated with fields an update may not change; the server judges those only when it is", nil
	}
	return written, "", err
}

// reasonOf is the part of an API error a user acts on.
func reasonOf(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		if msg := se.Status().Message; msg != "" {
			return msg
		}
	}
	return err.Error()
}

func joinReasons(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}
