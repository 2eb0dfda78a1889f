// Package apply restores the objects of a backup into a cluster: in dependency order, rewritten for the
// target (server-set fields, namespace and StorageClass mappings, owner UIDs), with a policy for objects
// that exist, and a per-object summary streamed to a Store.
package apply

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
)

// Outcome is what a restore did, or in a dry run would do, with one object.
type Outcome string

const (
	OutcomeRestored Outcome = "restored"
	OutcomeRetained Outcome = "retained"
	OutcomeReplaced Outcome = "replaced"
	OutcomeUpdated  Outcome = "updated"
	OutcomeFailed   Outcome = "failed"
	OutcomeSkipped  Outcome = "skipped"

	OutcomeWouldCreate  Outcome = "would-create"
	OutcomeWouldRetain  Outcome = "would-retain"
	OutcomeWouldReplace Outcome = "would-replace"
	OutcomeWouldUpdate  Outcome = "would-update"
	OutcomeWouldFail    Outcome = "would-fail"
)

// SummaryEntry is one line of a restore's summary (layout.RestoreSummaryKey).
type SummaryEntry struct {
	Resource        string  `json:"resource"`
	Namespace       string  `json:"namespace,omitempty"`
	Name            string  `json:"name"`
	SourceNamespace string  `json:"sourceNamespace,omitempty"`
	Outcome         Outcome `json:"outcome"`
	Reason          string  `json:"reason,omitempty"`
}

// Result is what a restore did; it is small enough for a status. The per-object list is in the summary.
type Result struct {
	Phase    collect.Phase
	DryRun   bool
	Started  time.Time
	Finished time.Time
	// Total is the number of objects considered; Counts splits them by outcome.
	Total      int
	Counts     map[Outcome]int
	Warnings   []string
	Errors     []collect.ItemError
	ErrorCount int
}

const (
	callTimeout  = 30 * time.Second
	pollInterval = 200 * time.Millisecond
)

// ReadSummary calls fn for every entry of a restore summary in out.
func ReadSummary(ctx context.Context, out collect.Store, fn func(SummaryEntry) error) error {
	return collect.ReadJSONLines(ctx, out, layout.RestoreSummaryKey, fn)
}

// Run restores the objects opts selects from the backup in backup into the cluster at cfg, and writes the
// summary to out. Objects that fail make the result PartiallySucceeded (or Failed when none succeeds); an
// error is returned for bad options, an unreadable backup, or an unwritable summary, before or instead of
// changing the cluster where possible.
func Run(ctx context.Context, cfg *rest.Config, backup, out collect.Store, opts Options) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	m, err := collect.ReadManifest(ctx, backup)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	r := &restorer{
		opts: opts, m: m, dyn: dyn, dc: dc, backup: backup,
		res:        &Result{DryRun: opts.DryRun, Started: time.Now().UTC(), Counts: map[Outcome]int{}},
		uids:       map[types.UID]types.UID{},
		ownerKinds: map[string]bool{},
		namespaces: map[string]bool{},
		volumes:    map[string]bool{},
		classes:    map[string]bool{},
		crds:       map[string]bool{},
	}
	if err := r.prepare(); err != nil {
		return nil, err
	}
	sw := collect.NewStreamWriter(ctx, out, layout.RestoreSummaryKey)
	r.summary = bufio.NewWriterSize(sw, 64<<10)
	if err := r.run(ctx); err != nil {
		sw.Abort(err)
		return nil, err
	}
	if err := r.summary.Flush(); err != nil {
		sw.Abort(err)
		return nil, fmt.Errorf("write restore summary: %w", err)
	}
	if err := sw.Close(); err != nil {
		return nil, fmt.Errorf("write restore summary: %w", err)
	}
	res := r.res
	res.Finished = time.Now().UTC()
	failed := res.Counts[OutcomeFailed] + res.Counts[OutcomeWouldFail]
	switch {
	case failed == 0:
		res.Phase = collect.PhaseCompleted
	case failed == res.Total-res.Counts[OutcomeSkipped]:
		res.Phase = collect.PhaseFailed
	default:
		res.Phase = collect.PhasePartiallySucceeded
	}
	return res, nil
}

type restorer struct {
	opts     Options
	m        *collect.Manifest
	dyn      dynamic.Interface
	dc       discovery.DiscoveryInterface
	backup   collect.Store
	rf       collect.ResourceFilter
	nsFilter collect.NamespaceFilter
	selector labels.Selector
	scope    *clusterScope
	rw       Rewriter

	progress *collect.Ticker

	mu         sync.Mutex
	summary    *bufio.Writer
	res        *Result
	served     map[string]collect.Type // "resource.group" -> served type
	uids       map[types.UID]types.UID // backed-up UID -> UID in the target, for owners
	ownerKinds map[string]bool         // GroupKinds that own other backed-up objects
	nsMu       sync.Mutex
	namespaces map[string]bool // target namespace -> exists in the cluster
	volumes    map[string]bool // PersistentVolumes restored or present
	classes    map[string]bool // StorageClasses restored or present
	crds       map[string]bool // CRDs restored (or, in a dry run, to be)
}

// prepare checks the options against the backup and the target cluster, before any change.
func (r *restorer) prepare() error {
	o := r.opts
	r.rf = collect.ResourceFilter{Include: o.IncludeResources, Exclude: o.ExcludeResources}
	r.nsFilter = collect.NamespaceFilter{Include: o.IncludeNamespaces, Exclude: o.ExcludeNamespaces}
	r.selector, _ = labels.Parse(o.Selector)
	if err := r.discover(); err != nil {
		return err
	}
	known := make([]collect.Type, 0, len(r.m.Types)+len(r.served))
	for _, t := range r.m.Types {
		known = append(known, t.Type)
	}
	for _, t := range r.served {
		known = append(known, t)
	}
	if err := r.rf.Resolve(known); err != nil {
		return err
	}
	if names, ok := r.nsFilter.Explicit(); ok {
		for _, n := range names {
			if !slices.Contains(r.m.Namespaces, n) {
				return fmt.Errorf("IncludeNamespaces: namespace %q is not in the backup", n)
			}
		}
	}
	for _, from := range slices.Sorted(maps.Keys(o.NamespaceMapping)) {
		if !slices.Contains(r.m.Namespaces, from) {
			return fmt.Errorf("NamespaceMapping %s:%s: namespace %q is not in the backup", from, o.NamespaceMapping[from], from)
		}
	}
	for _, t := range r.m.Types {
		for _, k := range t.OwnerKinds {
			r.ownerKinds[k] = true
		}
	}
	r.rw = Rewriter{
		BackupName: o.BackupName, RestoreName: o.RestoreName,
		NamespaceMapping: o.NamespaceMapping, StorageClassMapping: o.StorageClassMapping,
		ClaimVolumes: o.ClaimVolumes,
		KeepVolume: func(name string) bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.volumes[name]
		},
	}
	return nil
}

func (r *restorer) discover() error {
	types, _, err := collect.Discover(r.dc)
	if err != nil {
		return err
	}
	served := map[string]collect.Type{}
	for _, t := range types {
		served[t.String()] = t
	}
	r.mu.Lock()
	r.served = served
	r.mu.Unlock()
	return nil
}

func (r *restorer) run(ctx context.Context) error {
	r.scope = newClusterScope(ctx, r)
	total := 0
	for _, t := range r.m.Types {
		for _, f := range t.Files {
			if r.rf.Match(t.Type) && (!t.Namespaced || r.nsFilter.Match(f.Namespace, nil)) {
				total += f.Count
			}
		}
	}
	var report func(int)
	if r.opts.Progress != nil {
		report = func(done int) { r.opts.Progress(done, total) }
	}
	r.progress = collect.StartTicker(collect.ProgressInterval, report)
	defer r.progress.Stop()
	for _, t := range OrderTypes(r.m.Types) {
		if !r.rf.Match(t.Type) {
			continue
		}
		for _, f := range t.Files {
			if t.Namespaced && !r.nsFilter.Match(f.Namespace, nil) {
				continue
			}
			if err := r.restoreFile(ctx, t, f); err != nil {
				return err
			}
		}
		if t.String() == crdType && !r.opts.DryRun {
			if err := r.waitCRDs(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *restorer) restoreFile(ctx context.Context, t collect.TypeRecord, f collect.FileRecord) error {
	objs, err := r.read(ctx, f.Key)
	if err != nil {
		// A damaged file costs its objects, not the restore.
		r.mu.Lock()
		r.res.Total += f.Count
		r.res.Counts[OutcomeFailed] += f.Count
		r.mu.Unlock()
		r.itemError(collect.ItemError{Resource: t.String(), Namespace: f.Namespace, Reason: err.Error()})
		return nil
	}
	kept := objs[:0]
	for _, u := range objs {
		if r.selected(t, u) {
			kept = append(kept, u)
		}
	}
	for _, level := range OwnerLevels(kept) {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(r.opts.Parallelism)
		for _, u := range level {
			g.Go(func() error { return r.restoreObject(gctx, t, u) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	return nil
}

func (r *restorer) read(ctx context.Context, key string) ([]*unstructured.Unstructured, error) {
	rc, err := r.backup.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	var out []*unstructured.Unstructured
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			u := &unstructured.Unstructured{}
			if uerr := u.UnmarshalJSON(line); uerr != nil {
				return nil, fmt.Errorf("decode %s: %w", key, uerr)
			}
			out = append(out, u)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
	}
}

// selected applies the filters that depend on the object itself.
func (r *restorer) selected(t collect.TypeRecord, u *unstructured.Unstructured) bool {
	if !t.Namespaced && !r.scope.takes(t, u) {
		return false
	}
	switch t.String() {
	case namespaceType:
		return r.nsFilter.Match(u.GetName(), nil)
	case crdType:
		return true
	case volumeType:
		if ns := ClaimNamespace(u); ns != "" && !r.nsFilter.Match(ns, nil) {
			return false
		}
	}
	return r.selector.Matches(labels.Set(u.GetLabels()))
}

func (r *restorer) restoreObject(ctx context.Context, t collect.TypeRecord, u *unstructured.Unstructured) error {
	e := SummaryEntry{Resource: t.String(), Name: u.GetName()}
	oldUID := u.GetUID()
	sourceNS := u.GetNamespace()
	if skip := r.rw.Rewrite(t, u); skip != "" {
		e.Namespace = u.GetNamespace()
		e.Outcome, e.Reason = OutcomeSkipped, skip
		return r.record(e, t, u)
	}
	e.Name, e.Namespace = u.GetName(), u.GetNamespace()
	if sourceNS != e.Namespace {
		e.SourceNamespace = sourceNS
	}
	r.fixOwners(u)
	var newUID types.UID
	if r.opts.DryRun {
		e.Outcome, e.Reason = r.dryRun(ctx, t, u)
	} else {
		e.Outcome, e.Reason, newUID = r.apply(ctx, t, u)
	}
	if newUID != "" && oldUID != "" && r.ownerKinds[t.GroupKind()] {
		r.mu.Lock()
		r.uids[oldUID] = newUID
		r.mu.Unlock()
	}
	return r.record(e, t, u)
}

// record writes e to the summary and remembers what later objects depend on.
func (r *restorer) record(e SummaryEntry, t collect.TypeRecord, u *unstructured.Unstructured) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode summary entry: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Total++
	r.res.Counts[e.Outcome]++
	r.progress.Count.Add(1)
	if e.Outcome == OutcomeFailed || e.Outcome == OutcomeWouldFail {
		r.res.ErrorCount++
		if len(r.res.Errors) < collect.MaxReportedErrors {
			r.res.Errors = append(r.res.Errors, collect.ItemError{Resource: e.Resource, Namespace: e.Namespace, Name: e.Name, Reason: e.Reason})
		}
	}
	// What is (or in a dry run would be) in the cluster now, for the objects that need it.
	if present := e.Outcome != OutcomeFailed && e.Outcome != OutcomeWouldFail && e.Outcome != OutcomeSkipped; present {
		switch t.String() {
		case volumeType:
			r.volumes[e.Name] = true
		case storageClassType:
			r.classes[e.Name] = true
		case crdType:
			r.crds[e.Name] = true
		}
	}
	if _, err := r.summary.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write restore summary: %w", err)
	}
	return nil
}

func (r *restorer) warn(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.res.Warnings) < collect.MaxReportedErrors {
		r.res.Warnings = append(r.res.Warnings, s)
	}
}

func (r *restorer) itemError(e collect.ItemError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.ErrorCount++
	if len(r.res.Errors) < collect.MaxReportedErrors {
		r.res.Errors = append(r.res.Errors, e)
	}
}

// fixOwners points owner references at the owners' new UIDs. References to owners that are not restored are
// dropped: the garbage collector would otherwise delete the object as orphaned.
func (r *restorer) fixOwners(u *unstructured.Unstructured) {
	refs := u.GetOwnerReferences()
	if len(refs) == 0 {
		return
	}
	r.mu.Lock()
	kept := refs[:0]
	for _, ref := range refs {
		if uid, ok := r.uids[ref.UID]; ok {
			ref.UID = uid
			kept = append(kept, ref)
		}
	}
	r.mu.Unlock()
	if len(kept) == 0 {
		unstructured.RemoveNestedField(u.Object, "metadata", "ownerReferences")
		return
	}
	u.SetOwnerReferences(kept)
}

// target returns the client for u, or why its type cannot be restored.
func (r *restorer) target(t collect.TypeRecord, u *unstructured.Unstructured) (dynamic.ResourceInterface, string) {
	r.mu.Lock()
	_, ok := r.served[t.String()]
	crdPlanned := r.crds[t.Resource+"."+t.Group]
	r.mu.Unlock()
	if !ok {
		if t.CustomResource && crdPlanned && r.opts.DryRun {
			return nil, ""
		}
		if t.CustomResource {
			return nil, fmt.Sprintf("resource type %s is not served by the cluster: its CustomResourceDefinition is missing", t)
		}
		return nil, fmt.Sprintf("resource type %s is not served by the cluster", t)
	}
	ri := r.dyn.Resource(t.GVR())
	if t.Namespaced {
		return ri.Namespace(u.GetNamespace()), ""
	}
	return ri, ""
}

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
	if !apierrors.IsAlreadyExists(err) && !(apierrors.IsForbidden(err) && r.exists(ctx, ri, u)) {
		// A namespace admin may not create its own Namespace object, which exists: that is handled by the
		// policy like any existing object.
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

func (r *restorer) exists(ctx context.Context, ri dynamic.ResourceInterface, u *unstructured.Unstructured) bool {
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

func (r *restorer) dryRun(ctx context.Context, t collect.TypeRecord, u *unstructured.Unstructured) (Outcome, string) {
	ri, reason := r.target(t, u)
	if ri == nil {
		if reason == "" {
			return OutcomeWouldCreate, "its CustomResourceDefinition is created by this restore"
		}
		return OutcomeWouldFail, reason
	}
	nsExists := true
	if t.Namespaced {
		var err error
		if nsExists, err = r.namespaceExists(ctx, u.GetNamespace()); err != nil {
			return OutcomeWouldFail, err.Error()
		}
	}
	warning := r.checkClaim(ctx, t, u)
	if !nsExists {
		// Nothing to check against: the namespace is created by the restore.
		return OutcomeWouldCreate, joinReasons("namespace "+u.GetNamespace()+" is created by this restore", warning)
	}
	{
		gctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := ri.Get(gctx, u.GetName(), metav1.GetOptions{})
		cancel()
		switch {
		case err == nil:
			switch r.opts.ExistingPolicy {
			case PolicyUpdate:
				if _, err := r.serverSideApply(ctx, ri, u, []string{metav1.DryRunAll}); err != nil {
					return OutcomeWouldFail, "update: " + reasonOf(err)
				}
				return OutcomeWouldUpdate, ""
			case PolicyReplace:
				if undeletable(t) {
					return OutcomeWouldUpdate, "updated, not replaced: deleting it would delete everything it holds"
				}
				return OutcomeWouldReplace, ""
			default:
				return OutcomeWouldRetain, "already exists"
			}
		case !apierrors.IsNotFound(err):
			return OutcomeWouldFail, reasonOf(err)
		}
		// The server validates the object without storing it.
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err = ri.Create(cctx, u, metav1.CreateOptions{FieldManager: FieldManager, DryRun: []string{metav1.DryRunAll}})
		cancel()
		if err != nil {
			return OutcomeWouldFail, reasonOf(err)
		}
	}
	return OutcomeWouldCreate, warning
}

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
