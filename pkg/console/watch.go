package console

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// watched are the resources the console keeps in step with each cluster, by the name its events use.
var watched = map[string]schema.GroupVersionResource{
	"backup":   v1alpha1.BackupsResource,
	"location": v1alpha1.BackupLocationsResource,
	"restore":  v1alpha1.RestoresResource,
	"schedule": v1alpha1.BackupSchedulesResource,
	"policy":   v1alpha1.SchedulePoliciesResource,
}

// watch keeps a cluster's pxb objects through informers: a list, then a watch, never polling.
type watch struct {
	factory   dynamicinformer.DynamicSharedInformerFactory
	informers map[string]cache.SharedIndexInformer
	err       error
	// namespace is the one namespace watched when the user may not list all; empty for all.
	namespace string

	mu sync.Mutex
	// errs holds the last list or watch failure of each resource (a user who may not list it cluster-wide).
	errs map[string]string
}

// newWatch prepares the informers of the cluster of cfg; changed is told the kind and key (namespace/name)
// of every object added, updated or deleted. A user who may not list Backups in every namespace (a team)
// watches namespace, the context's, alone.
func newWatch(ctx context.Context, cfg *rest.Config, namespace string, timeout time.Duration, changed func(kind, key string)) *watch {
	w := &watch{informers: map[string]cache.SharedIndexInformer{}, errs: map[string]string{}}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		w.err = fmt.Errorf("dynamic client: %w", err)
		return w
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := dyn.Resource(v1alpha1.BackupsResource).List(lctx, metav1.ListOptions{Limit: 1}); apierrors.IsForbidden(err) {
		w.namespace = namespace
	}
	w.factory = dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, w.namespace, nil)
	for kind, gvr := range watched {
		inf := w.factory.ForResource(gvr).Informer()
		_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			w.mu.Lock()
			w.errs[kind] = err.Error()
			w.mu.Unlock()
		})
		notify := func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				w.mu.Lock()
				delete(w.errs, kind)
				w.mu.Unlock()
				changed(kind, key)
			}
		}
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    notify,
			UpdateFunc: func(_, obj any) { notify(obj) },
			DeleteFunc: notify,
		})
		w.informers[kind] = inf
	}
	return w
}

// start runs the informers until ctx ends and waits up to timeout for their first lists, so that the
// first page shows the cluster's objects.
func (w *watch) start(ctx context.Context, timeout time.Duration) {
	if w.factory == nil {
		return
	}
	w.factory.Start(ctx.Done())
	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w.factory.WaitForCacheSync(wait.Done())
}

// problem says why the objects of kind may be missing: the client could not be built, or listing failed.
func (w *watch) problem(kind string) string {
	if w.err != nil {
		return w.err.Error()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errs[kind]
}

// list returns the objects of kind the informer holds, converted to T.
func list[T any](w *watch, kind string) []*T {
	if w == nil || w.informers[kind] == nil {
		return nil
	}
	var out []*T
	for _, obj := range w.informers[kind].GetStore().List() {
		if t := convert[T](obj); t != nil {
			out = append(out, t)
		}
	}
	return out
}

// get returns the object of kind under key (namespace/name), or nil.
func get[T any](w *watch, kind, key string) *T {
	if w == nil || w.informers[kind] == nil {
		return nil
	}
	obj, ok, err := w.informers[kind].GetStore().GetByKey(key)
	if err != nil || !ok {
		return nil
	}
	return convert[T](obj)
}

func convert[T any](obj any) *T {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	var t T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &t); err != nil {
		return nil
	}
	return &t
}

// backups returns the cluster's Backups, newest first.
func (w *watch) backups() []*v1alpha1.Backup {
	bs := list[v1alpha1.Backup](w, "backup")
	slices.SortFunc(bs, func(a, b *v1alpha1.Backup) int {
		if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return bs
}
