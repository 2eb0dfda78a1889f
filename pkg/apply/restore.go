// Package apply restores the objects of a backup into a cluster: in dependency order, rewritten for the
// target (server-set fields, namespace and StorageClass mappings, owner UIDs), with a policy for objects
// that exist, and a per-object summary streamed to a Store.
package apply

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
)

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
	reader, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	dyn := reader
	if opts.WriteAs != nil {
		wcfg := rest.CopyConfig(opts.WriteAs)
		wcfg.QPS, wcfg.Burst = opts.QPS, opts.Burst
		if dyn, err = dynamic.NewForConfig(wcfg); err != nil {
			return nil, fmt.Errorf("dynamic client as %s: %w", wcfg.Impersonate.UserName, err)
		}
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	r := &restorer{
		opts: opts, m: m, dyn: dyn, reader: reader, dc: dc, backup: backup,
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
	dyn      dynamic.Interface // writes, and reads what it writes
	reader   dynamic.Interface // tells what exists (Options.WriteAs)
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
	sourceNS, sourceName := u.GetNamespace(), u.GetName()
	skip := r.rw.Rewrite(t, u)
	if skip == "" {
		skip = r.outside(t, u)
	}
	var held string
	if skip == "" {
		if skip, held = r.hold(t, u); skip != "" || held != "" {
			r.mu.Lock()
			r.res.Held++
			r.mu.Unlock()
		}
	}
	if skip != "" {
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
		e.Outcome, e.Reason, e.Diff = r.dryRun(ctx, t, u)
	} else {
		e.Outcome, e.Reason, newUID = r.apply(ctx, t, u)
	}
	e.Reason = joinReasons(held, e.Reason)
	if newUID != "" && oldUID != "" && r.ownerKinds[t.GroupKind()] {
		r.mu.Lock()
		r.uids[oldUID] = newUID
		r.mu.Unlock()
	}
	// A Namespace takes its mapped name; a binding left beside its original while its subjects moved, one
	// derived from the original's (Rewriter.Rewrite).
	if e.Name != sourceName && t.String() != namespaceType {
		e.Reason = joinReasons(fmt.Sprintf("derived from %[1]s for the mapped ServiceAccounts; %[1]s is left to the original", sourceName), e.Reason)
	}
	return r.record(e, t, u)
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
