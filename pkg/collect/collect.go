// Package collect discovers and selects the Kubernetes objects of a backup and writes them, with an index and
// a manifest, to a Store as JSON lines grouped by type and namespace, streaming: no backup is held in memory.
package collect

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/pager"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// Phase is the outcome of a backup or restore.
type Phase string

const (
	PhaseCompleted          Phase = "Completed"
	PhasePartiallySucceeded Phase = "PartiallySucceeded"
	PhaseFailed             Phase = "Failed"
)

// MaxReportedErrors bounds the errors kept in a Result and a manifest; ErrorCount has them all.
const MaxReportedErrors = 100

// Result is what a backup of objects did; it is small enough for a status.
type Result struct {
	Phase    Phase
	Started  time.Time
	Finished time.Time
	// Total is the number of objects written, Bytes their JSON size.
	Total int
	Bytes int64
	// Counts is the number of objects per type ("deployments.apps").
	Counts     map[string]int
	Namespaces []string
	// Claims are the PersistentVolumeClaims backed up, sorted: the volumes whose data the backup takes.
	Claims     []ktypes.NamespacedName
	Warnings   []string
	Errors     []ItemError
	ErrorCount int
}

// Per-call timeouts: one list page, one get.
const (
	pageTimeout = 2 * time.Minute
	getTimeout  = 30 * time.Second
	// A file of objects is closed after this many objects or bytes so that restores read bounded batches.
	maxPartObjects = 5000
	maxPartBytes   = 32 << 20
)

var (
	namespacesType = Type{Version: "v1", Resource: "namespaces", Kind: "Namespace"}
	pvType         = Type{Version: "v1", Resource: "persistentvolumes", Kind: "PersistentVolume"}
	scType         = Type{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses", Kind: "StorageClass"}
	crdType        = Type{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions", Kind: "CustomResourceDefinition"}
	crbType        = Type{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings", Kind: "ClusterRoleBinding"}
	crType         = Type{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles", Kind: "ClusterRole"}
)

// Run backs up the objects opts selects from the cluster at cfg into store. Objects that cannot be read
// make the result PartiallySucceeded with their reasons; an error is returned only for bad options (before
// any work) or when the backup cannot be written at all.
func Run(ctx context.Context, cfg *rest.Config, store Store, opts Options) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	// Listing deprecated types (v1 Endpoints) is expected here; the warnings would only flood the job log.
	cfg.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	c := &collector{
		opts:     opts,
		dyn:      dyn,
		store:    store,
		started:  time.Now().UTC(),
		records:  map[string]*TypeRecord{},
		related:  newRelated(),
		clusterW: map[string]bool{},
	}
	return c.run(ctx, dc)
}

type collector struct {
	opts  Options
	dyn   dynamic.Interface
	store Store

	started    time.Time
	types      []Type
	rf         ResourceFilter
	selector   string
	nsFilter   NamespaceFilter
	namespaces map[string]*unstructured.Unstructured // included namespaces; nil objects when only names are known
	allNS      bool                                  // every namespace of the cluster is included
	only       map[string]map[string]bool            // what Options.Narrow returned, if set

	progress *Ticker

	mu         sync.Mutex
	index      *bufio.Writer
	indexW     *StreamWriter
	records    map[string]*TypeRecord
	related    *related
	clusterW   map[string]bool // cluster-scoped objects written, "type/name"
	claims     []ktypes.NamespacedName
	warnings   []string
	errs       []ItemError
	errorCount int
}

func (c *collector) run(ctx context.Context, dc discovery.DiscoveryInterface) (*Result, error) {
	types, warnings, err := Discover(dc)
	if err != nil {
		return nil, err
	}
	c.types = types
	c.warnings = warnings
	c.rf = ResourceFilter{Include: c.opts.IncludeResources, Exclude: c.opts.ExcludeResources}
	if err := c.rf.Resolve(types); err != nil {
		return nil, err
	}
	nsSel, _ := labels.Parse(c.opts.NamespaceSelector)
	c.nsFilter = NamespaceFilter{Include: c.opts.IncludeNamespaces, Exclude: c.opts.ExcludeNamespaces, Selector: nsSel}
	if err := c.resolveNamespaces(ctx); err != nil {
		return nil, err
	}
	c.selector = c.opts.Selector
	if c.opts.Narrow != nil {
		if c.only, err = c.opts.Narrow(ctx, slices.Sorted(maps.Keys(c.namespaces))); err != nil {
			return nil, err
		}
		if c.only == nil {
			c.only = map[string]map[string]bool{}
		}
		// The backup holds the namespaces of what was selected, not every one that was searched.
		used := map[string]bool{}
		for _, objs := range c.only {
			for key := range objs {
				ns, _, _ := strings.Cut(key, "/")
				used[ns] = true
			}
		}
		maps.DeleteFunc(c.namespaces, func(ns string, _ *unstructured.Unstructured) bool { return !used[ns] })
		c.allNS = false
	}

	c.indexW = NewStreamWriter(ctx, c.store, layout.IndexKey)
	c.index = bufio.NewWriterSize(c.indexW, 64<<10)
	c.progress = StartTicker(ProgressInterval, c.opts.Progress)
	err = c.collect(ctx)
	c.progress.Stop()
	if err != nil {
		c.indexW.Abort(err)
		return nil, err
	}
	if err := c.index.Flush(); err != nil {
		c.indexW.Abort(err)
		return nil, fmt.Errorf("write index: %w", err)
	}
	if err := c.indexW.Close(); err != nil {
		return nil, fmt.Errorf("write index: %w", err)
	}
	m := c.manifest()
	if err := PutJSON(ctx, c.store, layout.ManifestKey, m); err != nil {
		return nil, err
	}
	res := &Result{
		Phase: PhaseCompleted, Started: m.Started, Finished: m.Finished, Total: m.Total, Bytes: m.Bytes,
		Counts: map[string]int{}, Namespaces: m.Namespaces, Warnings: m.Warnings, Errors: m.Errors, ErrorCount: m.ErrorCount,
		Claims: c.claims,
	}
	slices.SortFunc(res.Claims, func(a, b ktypes.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	for _, t := range m.Types {
		res.Counts[t.String()] = t.Count
	}
	if m.ErrorCount > 0 {
		res.Phase = PhasePartiallySucceeded
	}
	return res, nil
}

// Discover returns every served type that can be listed and read, at its preferred version. APIs that fail
// discovery (an aggregated API that is down) are returned as warnings.
func Discover(dc discovery.DiscoveryInterface) ([]Type, []string, error) {
	lists, err := discovery.ServerPreferredResources(dc)
	var warnings []string
	if err != nil {
		var gdf *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &gdf) {
			return nil, nil, fmt.Errorf("discover API resources: %w", err)
		}
		for gv, gerr := range gdf.Groups {
			warnings = append(warnings, fmt.Sprintf("API %s not discovered: %v", gv, gerr))
		}
		sort.Strings(warnings)
	}
	var types []Type
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "get") {
				continue
			}
			types = append(types, Type{
				Group: gv.Group, Version: gv.Version, Resource: r.Name, Kind: r.Kind,
				Namespaced: r.Namespaced, Singular: r.SingularName, ShortNames: r.ShortNames,
			})
		}
	}
	sort.Slice(types, func(i, j int) bool { return types[i].String() < types[j].String() })
	return types, warnings, nil
}

// resolveNamespaces finds the included namespaces. A client that may not list namespaces can still back up
// namespaces it names explicitly.
func (c *collector) resolveNamespaces(ctx context.Context) error {
	c.namespaces = map[string]*unstructured.Unstructured{}
	explicit, isExplicit := c.nsFilter.Explicit()
	all := map[string]*unstructured.Unstructured{}
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		ctx, cancel := context.WithTimeout(ctx, pageTimeout)
		defer cancel()
		return c.dyn.Resource(namespacesType.GVR()).List(ctx, o)
	})
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(o runtime.Object) error {
		u := o.(*unstructured.Unstructured)
		all[u.GetName()] = u
		return nil
	})
	switch {
	case err == nil:
		for name, u := range all {
			if c.nsFilter.Match(name, u.GetLabels()) {
				c.namespaces[name] = u
			}
		}
		if isExplicit {
			for _, n := range explicit {
				if all[n] == nil {
					return fmt.Errorf("IncludeNamespaces: namespace %q not found", n)
				}
			}
		}
		c.allNS = c.nsFilter.All()
	case isExplicit && (apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)):
		for _, n := range explicit {
			gctx, cancel := context.WithTimeout(ctx, getTimeout)
			u, gerr := c.dyn.Resource(namespacesType.GVR()).Get(gctx, n, metav1.GetOptions{})
			cancel()
			switch {
			case gerr == nil:
				c.namespaces[n] = u
			case apierrors.IsNotFound(gerr):
				return fmt.Errorf("IncludeNamespaces: namespace %q not found", n)
			default:
				// Reading inside the namespace may still be allowed; its Namespace object is then not kept.
				c.namespaces[n] = nil
				c.warn(fmt.Sprintf("namespace %s: %v", n, gerr))
			}
		}
	default:
		return fmt.Errorf("list namespaces: %w", err)
	}
	if len(c.namespaces) == 0 {
		c.warn("no namespace matches the selection")
	}
	return nil
}

func (c *collector) collect(ctx context.Context) error {
	var namespaced, cluster []Type
	var endpoints *Type
	for _, t := range c.types {
		if !c.rf.Match(t) {
			continue
		}
		if _, derived := DerivedType(t); derived && !c.rf.Named(t) {
			continue
		}
		if c.only != nil && t.Namespaced && len(c.only[t.String()]) == 0 {
			continue
		}
		switch {
		case t.String() == "endpoints":
			tt := t
			endpoints = &tt
		case t.Namespaced:
			namespaced = append(namespaced, t)
		case t.String() == namespacesType.String():
			// Namespaces are taken from the namespace selection, below.
		case c.opts.IncludeClusterResources == ClusterResourcesAll:
			cluster = append(cluster, t)
		}
	}
	if len(c.namespaces) > 0 || len(cluster) > 0 {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(c.opts.Parallelism)
		for _, t := range append(namespaced, cluster...) {
			if !t.Namespaced || len(c.namespaces) > 0 {
				g.Go(func() error { return c.listType(gctx, t) })
			}
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	// Endpoints of Services with selectors are made by the endpoints controller; the others are the user's.
	if endpoints != nil && len(c.namespaces) > 0 {
		if err := c.listType(ctx, *endpoints); err != nil {
			return err
		}
	}
	if c.opts.IncludeClusterResources != ClusterResourcesNone {
		return c.collectRelated(ctx)
	}
	return nil
}

// clusterWide reports whether namespaced types are listed across all namespaces (one request per page)
// rather than namespace by namespace.
func (c *collector) clusterWide() bool {
	return c.allNS || len(c.namespaces) > 10
}

func (c *collector) listType(ctx context.Context, t Type) error {
	w := c.newTypeWriter(t)
	scopes := []string{""}
	if t.Namespaced && !c.clusterWide() {
		scopes = slices.Sorted(maps.Keys(c.namespaces))
	}
	for i := 0; i < len(scopes); i++ {
		ns := scopes[i]
		err := c.list(ctx, t, ns, func(u *unstructured.Unstructured) error { return c.take(ctx, w, t, u) })
		if err != nil && ns == "" && t.Namespaced && !c.allNS && apierrors.IsForbidden(err) {
			// May not list across namespaces: list the included ones one by one.
			scopes = append(scopes, slices.Sorted(maps.Keys(c.namespaces))...)
			continue
		}
		if err != nil {
			var se storeError
			if errors.As(err, &se) {
				w.abort(err)
				return err
			}
			c.listFailed(t, ns, err)
		}
	}
	return w.close()
}

// storeError marks a failure to write the backup, which ends it.
type storeError struct{ error }

func (e storeError) Unwrap() error { return e.error }

func (c *collector) list(ctx context.Context, t Type, ns string, fn func(*unstructured.Unstructured) error) error {
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		ctx, cancel := context.WithTimeout(ctx, pageTimeout)
		defer cancel()
		return c.dyn.Resource(t.GVR()).Namespace(ns).List(ctx, o)
	})
	p.PageSize = c.opts.PageSize
	p.PageBufferSize = 2
	opts := metav1.ListOptions{LabelSelector: c.selector}
	return p.EachListItem(ctx, opts, func(o runtime.Object) error {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			return fmt.Errorf("unexpected list item %T", o)
		}
		return fn(u)
	})
}

// take writes u if the selection includes it.
func (c *collector) take(ctx context.Context, w *typeWriter, t Type, u *unstructured.Unstructured) error {
	if t.Namespaced {
		if _, ok := c.namespaces[u.GetNamespace()]; !ok {
			return nil
		}
	}
	if c.only != nil && t.Namespaced {
		if !c.only[t.String()][u.GetNamespace()+"/"+u.GetName()] {
			return nil
		}
	} else if !c.rf.Named(t) {
		if _, derived := DerivedObject(t, u); derived {
			return nil
		}
		if t.String() == "endpoints" && c.related.hasSelectorService(u.GetNamespace(), u.GetName()) {
			return nil
		}
	}
	c.related.observe(t, u)
	if err := w.write(ctx, u); err != nil {
		return err
	}
	if t.Group == "" && t.Resource == "persistentvolumeclaims" {
		c.mu.Lock()
		c.claims = append(c.claims, ktypes.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()})
		c.mu.Unlock()
	}
	return nil
}

func (c *collector) warn(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warnings = append(c.warnings, s)
}

// listFailed records a type that could not be listed. A type the backup's identity may not read is a
// warning unless it was named explicitly: a namespace admin's backup taking "*" should not fail for the
// types only cluster admins read.
func (c *collector) listFailed(t Type, ns string, err error) {
	if apierrors.IsForbidden(err) && !c.rf.Named(t) {
		where := "cluster-scoped"
		if ns != "" {
			where = "in namespace " + ns
		} else if t.Namespaced {
			where = "in any namespace"
		}
		c.warn(fmt.Sprintf("%s %s not backed up: not permitted to list them", t, where))
		return
	}
	c.itemError(ItemError{Resource: t.String(), Namespace: ns, Reason: "list: " + err.Error()})
}

func (c *collector) itemError(e ItemError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errorCount++
	if len(c.errs) < MaxReportedErrors {
		c.errs = append(c.errs, e)
	}
}

func (c *collector) manifest() *Manifest {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := &Manifest{
		FormatVersion: FormatVersion, Backup: c.opts.BackupName, Started: c.started, Finished: time.Now().UTC(),
		Namespaces: slices.Sorted(maps.Keys(c.namespaces)), Warnings: c.warnings, Errors: c.errs, ErrorCount: c.errorCount,
	}
	for _, r := range c.records {
		if r.Count == 0 {
			continue
		}
		m.Types = append(m.Types, *r)
		m.Total += r.Count
		m.Bytes += r.Bytes
	}
	sort.Slice(m.Types, func(i, j int) bool { return m.Types[i].String() < m.Types[j].String() })
	return m
}

// typeWriter writes the objects of one type, in files per namespace. A type is written by one goroutine.
type typeWriter struct {
	c      *collector
	t      Type
	rec    *TypeRecord
	owners map[string]bool
	cur    *StreamWriter
	buf    *bufio.Writer
	file   FileRecord
	bytes  int64
}

func (c *collector) newTypeWriter(t Type) *typeWriter {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.records[t.String()]
	if rec == nil {
		rec = &TypeRecord{Type: t, CustomResource: !BuiltinGroup(t.Group)}
		c.records[t.String()] = rec
	}
	w := &typeWriter{c: c, t: t, rec: rec, owners: map[string]bool{}}
	for _, k := range rec.OwnerKinds {
		w.owners[k] = true
	}
	return w
}

func (w *typeWriter) write(ctx context.Context, u *unstructured.Unstructured) error {
	ns := u.GetNamespace()
	if w.cur != nil && (ns != w.file.Namespace || w.file.Count >= maxPartObjects || w.bytes >= maxPartBytes) {
		if err := w.closeFile(); err != nil {
			return err
		}
	}
	if w.cur == nil {
		w.c.mu.Lock()
		seq := len(w.rec.Files)
		w.rec.Files = append(w.rec.Files, FileRecord{}) // reserve the sequence number
		w.c.mu.Unlock()
		w.file = FileRecord{Key: layout.ObjectsKey(w.t.String(), ns, seq), Namespace: ns}
		w.cur = NewStreamWriter(ctx, w.c.store, w.file.Key)
		w.buf = bufio.NewWriterSize(w.cur, 64<<10)
		w.bytes = 0
	}
	// Managed fields are the server's bookkeeping, large and never restored.
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	b, err := json.Marshal(u.Object)
	if err != nil {
		w.c.itemError(ItemError{Resource: w.t.String(), Namespace: ns, Name: u.GetName(), Reason: "encode: " + err.Error()})
		return nil
	}
	b = append(b, '\n')
	if _, err := w.buf.Write(b); err != nil {
		return storeError{fmt.Errorf("write %s: %w", w.file.Key, err)}
	}
	for _, ref := range u.GetOwnerReferences() {
		gv, _ := schema.ParseGroupVersion(ref.APIVersion)
		w.owners[GroupKind(gv.Group, ref.Kind)] = true
	}
	w.file.Count++
	w.bytes += int64(len(b))
	line, _ := json.Marshal(IndexEntry{
		Group: w.t.Group, Version: w.t.Version, Resource: w.t.Resource, Kind: w.t.Kind,
		Namespace: ns, Name: u.GetName(), Size: len(b), File: w.file.Key,
	})
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	w.rec.Count++
	w.rec.Bytes += int64(len(b))
	w.c.progress.Count.Add(1)
	if !w.t.Namespaced {
		w.c.clusterW[w.t.String()+"/"+u.GetName()] = true
	}
	if _, err := w.c.index.Write(append(line, '\n')); err != nil {
		return storeError{fmt.Errorf("write %s: %w", layout.IndexKey, err)}
	}
	return nil
}

func (w *typeWriter) closeFile() error {
	if w.cur == nil {
		return nil
	}
	err := w.buf.Flush()
	if err != nil {
		w.cur.Abort(err)
	} else {
		err = w.cur.Close()
	}
	w.cur = nil
	if err != nil {
		return storeError{fmt.Errorf("write %s: %w", w.file.Key, err)}
	}
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	for i := range w.rec.Files {
		if w.rec.Files[i].Key == "" {
			w.rec.Files[i] = w.file
			break
		}
	}
	return nil
}

func (w *typeWriter) close() error {
	err := w.closeFile()
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	w.rec.OwnerKinds = slices.Sorted(maps.Keys(w.owners))
	return err
}

func (w *typeWriter) abort(err error) {
	if w.cur != nil {
		w.cur.Abort(err)
		w.cur = nil
	}
}
