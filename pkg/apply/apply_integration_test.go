//go:build integration

package apply_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

func newStore(t testing.TB) collect.Store {
	b := testbed.Dir(t).OpenT(t)
	return collect.NewBucketStore(b)
}

func backup(t *testing.T, c *testbed.Cluster, store collect.Store, opts collect.Options) *collect.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := collect.Run(ctx, c.Config, store, opts)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return res
}

func restore(t *testing.T, c *testbed.Cluster, store, out collect.Store, opts apply.Options) (*apply.Result, map[string]apply.SummaryEntry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := apply.Run(ctx, c.Config, store, out, opts)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	summary := map[string]apply.SummaryEntry{}
	if err := apply.ReadSummary(ctx, out, func(e apply.SummaryEntry) error {
		summary[e.Resource+" "+e.Namespace+"/"+e.Name] = e
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return res, summary
}

func indexed(t *testing.T, store collect.Store) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	err := collect.ReadIndex(context.Background(), store, func(e collect.IndexEntry) error {
		r := e.Resource
		if e.Group != "" {
			r += "." + e.Group
		}
		got[r+" "+e.Namespace+"/"+e.Name] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestBackupSelects checks what a backup of one namespace takes: the application, the cluster-scoped objects
// it needs, and none of what the cluster derives.
func TestBackupSelects(t *testing.T) {
	c := testbed.APIServer(t)
	dyn := c.Dynamic(t)
	ns := c.Namespace(t)
	id := uniqueID(t)
	f := createApp(t, dyn, ns, id)
	deployUID := string(f.find("Deployment").GetUID())
	ctx := context.Background()
	for _, doc := range render(derivedManifests, map[string]string{"ns": ns, "deployuid": deployUID}) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON([]byte(doc)); err != nil {
			t.Fatal(err)
		}
		createWait(ctx, t, dyn, u)
	}
	// Cluster-scoped objects nothing in the namespace uses stay out.
	unrelated := createWait(ctx, t, dyn, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
		"metadata": map[string]any{"name": id + "-unrelated"}, "rules": []any{}}})
	t.Cleanup(func() { forceDelete(t, dyn, unrelated) })

	store := newStore(t)
	res := backup(t, c, store, collect.Options{IncludeNamespaces: []string{ns}, BackupName: "b1"})
	if res.Phase != collect.PhaseCompleted || res.ErrorCount != 0 {
		t.Errorf("phase %s, errors %v; want Completed without errors", res.Phase, res.Errors)
	}
	got := indexed(t, store)
	want := []string{
		"namespaces /" + ns,
		"customresourcedefinitions.apiextensions.k8s.io /widgets." + id + ".pxb.test",
		"storageclasses.storage.k8s.io /" + id + "-fast",
		"persistentvolumes /" + id + "-pv",
		"clusterroles.rbac.authorization.k8s.io /" + id + "-reader",
		"clusterrolebindings.rbac.authorization.k8s.io /" + id + "-reader",
		"serviceaccounts " + ns + "/shop", "serviceaccounts " + ns + "/default",
		"roles.rbac.authorization.k8s.io " + ns + "/shop", "rolebindings.rbac.authorization.k8s.io " + ns + "/shop",
		"secrets " + ns + "/shop-db", "configmaps " + ns + "/shop-config", "persistentvolumeclaims " + ns + "/data",
		"deployments.apps " + ns + "/web", "statefulsets.apps " + ns + "/db", "daemonsets.apps " + ns + "/agent",
		"services " + ns + "/web", "ingresses.networking.k8s.io " + ns + "/web",
		"widgets." + id + ".pxb.test " + ns + "/gizmo",
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("backup lacks %s", w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("backup holds %d objects, want %d: %v", len(got), len(want), got)
	}
	for _, not := range []string{"configmaps " + ns + "/kube-root-ca.crt", "secrets " + ns + "/shop-token",
		"replicasets.apps " + ns + "/web-1", "clusterroles.rbac.authorization.k8s.io /" + id + "-unrelated"} {
		if got[not] {
			t.Errorf("backup holds %s, which it must skip", not)
		}
	}
	if res.Counts["configmaps"] != 1 || res.Total != len(want) {
		t.Errorf("counts %v total %d; want 1 configmap, %d objects", res.Counts, res.Total, len(want))
	}

	// Named explicitly, a derived type is taken; a selector narrows the objects.
	store2 := newStore(t)
	backup(t, c, store2, collect.Options{IncludeNamespaces: []string{ns}, IncludeResources: []string{"replicasets", "configmaps"},
		Selector: "!tier", IncludeClusterResources: collect.ClusterResourcesNone})
	got = indexed(t, store2)
	if !got["replicasets.apps "+ns+"/web-1"] || !got["configmaps "+ns+"/kube-root-ca.crt"] || got["configmaps "+ns+"/shop-config"] || len(got) != 2 {
		t.Errorf("backup of named types with selector !tier holds %v; want the ReplicaSet and kube-root-ca.crt", got)
	}

	// Namespaces by glob and label; every cluster-scoped object of the selected types.
	if _, err := c.Clientset(t).CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"backup":"yes"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	store3 := newStore(t)
	res = backup(t, c, store3, collect.Options{IncludeNamespaces: []string{"testbackupselects-*"}, NamespaceSelector: "backup=yes",
		IncludeResources: []string{"secrets", "clusterroles"}, IncludeClusterResources: collect.ClusterResourcesAll})
	got = indexed(t, store3)
	if !got["secrets "+ns+"/shop-db"] || !got["clusterroles.rbac.authorization.k8s.io /"+id+"-unrelated"] || !got["namespaces /"+ns] {
		t.Errorf("backup of namespaces by glob and label with all cluster resources holds %v", got)
	}
	if len(res.Namespaces) != 1 || res.Namespaces[0] != ns {
		t.Errorf("namespaces %v, want [%s]", res.Namespaces, ns)
	}
	res = backup(t, c, newStore(t), collect.Options{IncludeNamespaces: []string{"testbackupselects-*"}, NamespaceSelector: "backup=no"})
	if res.Total != 0 || len(res.Warnings) == 0 {
		t.Errorf("backup of no matching namespace: %d objects, warnings %v; want none and a warning", res.Total, res.Warnings)
	}
}

// TestRoundTripSameNamespace backs up the application, deletes it (cluster-scoped parts too) and restores
// it in place: every object comes back field for field, the CRD and its custom resource in one restore.
func TestRoundTripSameNamespace(t *testing.T) {
	c := testbed.APIServer(t)
	dyn := c.Dynamic(t)
	ns := c.Namespace(t)
	f := createApp(t, dyn, ns, uniqueID(t))
	store := newStore(t)
	backedUp := -1
	res := backup(t, c, store, collect.Options{IncludeNamespaces: []string{ns}, BackupName: "nightly",
		Progress: func(done int) { backedUp = done }})
	if res.Phase != collect.PhaseCompleted {
		t.Fatalf("backup phase %s: %v", res.Phase, res.Errors)
	}
	if backedUp != res.Total {
		t.Errorf("backup progress ended at %d, want %d", backedUp, res.Total)
	}
	// Delete dependants before what they need (custom resources before their CRD).
	rev := make([]*unstructured.Unstructured, len(f.objects))
	for i, o := range f.objects {
		rev[len(f.objects)-1-i] = o
	}
	deleteAndWait(t, dyn, rev)

	out := newStore(t)
	var restored, total int
	rres, summary := restore(t, c, store, out, apply.Options{BackupName: "nightly", RestoreName: "r1",
		Progress: func(done, all int) { restored, total = done, all }})
	if rres.Phase != collect.PhaseCompleted {
		t.Errorf("restore phase %s, errors %v", rres.Phase, rres.Errors)
	}
	if restored != rres.Total || total != res.Total {
		t.Errorf("restore progress ended at %d of %d, want %d of %d", restored, total, rres.Total, res.Total)
	}
	for k, e := range summary {
		if e.Outcome != apply.OutcomeRestored && !(e.Outcome == apply.OutcomeRetained && (strings.HasPrefix(k, "namespaces ") || strings.HasSuffix(k, "/default"))) {
			t.Errorf("%s: outcome %s (%s), want restored", k, e.Outcome, e.Reason)
		}
	}
	if rres.Counts[apply.OutcomeRestored] != len(f.objects) {
		t.Errorf("restored %d objects, want %d: %v", rres.Counts[apply.OutcomeRestored], len(f.objects), rres.Counts)
	}
	compareRestored(t, dyn, f, ns, "nightly", "r1")
}

// TestRoundTripMappedNamespace restores into another namespace: namespaced objects are copied with every
// namespace reference mapped; cluster-scoped objects that exist are retained.
func TestRoundTripMappedNamespace(t *testing.T) {
	c := testbed.APIServer(t)
	dyn := c.Dynamic(t)
	ns := c.Namespace(t)
	f := createApp(t, dyn, ns, uniqueID(t))
	// Owner references: a ConfigMap owned by the custom resource, and one owned by that ConfigMap.
	ctx := context.Background()
	owner := f.find("Widget")
	for _, name := range []string{"owned-by-widget", "owned-by-configmap"} {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": name, "namespace": ns}, "data": map[string]any{"k": name}}}
		u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: owner.GetAPIVersion(), Kind: owner.GetKind(), Name: owner.GetName(), UID: owner.GetUID()}})
		owner = createWait(ctx, t, dyn, u)
		f.objects = append(f.objects, owner)
	}
	store := newStore(t)
	backup(t, c, store, collect.Options{IncludeNamespaces: []string{ns}, BackupName: "b2"})

	versions := resourceVersions(t, dyn, f)
	target := fmt.Sprintf("mapped-%d", time.Now().UnixNano()%1_000_000_000)
	out := newStore(t)
	res, summary := restore(t, c, store, out, apply.Options{BackupName: "b2", RestoreName: "r2",
		NamespaceMapping: map[string]string{ns: target}})
	if res.Phase != collect.PhaseCompleted {
		t.Errorf("restore phase %s, errors %v", res.Phase, res.Errors)
	}
	if e := summary["namespaces /"+target]; e.Outcome != apply.OutcomeRestored {
		t.Errorf("namespace %s: %+v, want restored", target, e)
	}
	if e := summary["configmaps "+target+"/shop-config"]; e.Outcome != apply.OutcomeRestored || e.SourceNamespace != ns {
		t.Errorf("configmap summary %+v, want restored from %s", e, ns)
	}
	if e := summary["storageclasses.storage.k8s.io /"+f.id+"-fast"]; e.Outcome != apply.OutcomeRetained {
		t.Errorf("existing StorageClass summary %+v, want retained", e)
	}
	compareRestored(t, dyn, f, target, "b2", "r2")
	// Owner references point at the restored owners.
	widget, err := client(t, dyn, f.find("Widget"), target).Get(ctx, "gizmo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm1, err := dyn.Resource(kinds["ConfigMap"]).Namespace(target).Get(ctx, "owned-by-widget", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm2, err := dyn.Resource(kinds["ConfigMap"]).Namespace(target).Get(ctx, "owned-by-configmap", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if refs := cm1.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != widget.GetUID() {
		t.Errorf("owned-by-widget owner references %+v, want the restored widget %s", refs, widget.GetUID())
	}
	if refs := cm2.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != cm1.GetUID() {
		t.Errorf("owned-by-configmap owner references %+v, want the restored configmap %s", refs, cm1.GetUID())
	}
	// The source is untouched.
	if after := resourceVersions(t, dyn, f); !reflect.DeepEqual(after, versions) {
		t.Errorf("the restore changed source objects: resource versions %v, before %v", after, versions)
	}
}

// resourceVersions are the current versions of the fixture's objects that exist.
func resourceVersions(t *testing.T, dyn dynamic.Interface, f *fixture) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range f.objects {
		if got, err := client(t, dyn, o, o.GetNamespace()).Get(context.Background(), o.GetName(), metav1.GetOptions{}); err == nil {
			out[o.GetKind()+"/"+o.GetName()] = got.GetResourceVersion()
		}
	}
	return out
}

// backedUpApp creates the application in a fresh namespace and backs it up.
func backedUpApp(t *testing.T) (*testbed.Cluster, dynamic.Interface, *fixture, collect.Store) {
	c := testbed.APIServer(t)
	dyn := c.Dynamic(t)
	f := createApp(t, dyn, c.Namespace(t), uniqueID(t))
	store := newStore(t)
	backup(t, c, store, collect.Options{IncludeNamespaces: []string{f.ns}})
	return c, dyn, f, store
}

// TestExistingPolicies changes restored objects after the backup and restores with each policy.
func TestExistingPolicies(t *testing.T) {
	c, dyn, f, store := backedUpApp(t)
	ns := f.ns
	ctx := context.Background()
	cm, widget := f.find("ConfigMap"), f.find("Widget")
	cmClient := client(t, dyn, cm, ns)
	drift := func() {
		t.Helper()
		if _, err := cmClient.Patch(ctx, cm.GetName(), types.MergePatchType, []byte(`{"data":{"greeting":"changed"}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := client(t, dyn, widget, ns).Patch(ctx, widget.GetName(), types.MergePatchType, []byte(`{"spec":{"size":99}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(policy apply.Policy, wantGreeting string, wantSize int64, wantOutcome apply.Outcome) {
		t.Helper()
		before, _ := cmClient.Get(ctx, cm.GetName(), metav1.GetOptions{})
		res, summary := restore(t, c, store, newStore(t), apply.Options{ExistingPolicy: policy,
			IncludeResources: []string{"configmaps", "widgets"}})
		after, err := cmClient.Get(ctx, cm.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if g, _, _ := unstructured.NestedString(after.Object, "data", "greeting"); g != wantGreeting {
			t.Errorf("%s: greeting %q, want %q", policy, g, wantGreeting)
		}
		w, _ := client(t, dyn, widget, ns).Get(ctx, widget.GetName(), metav1.GetOptions{})
		if s, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); s != wantSize {
			t.Errorf("%s: widget size %d, want %d", policy, s, wantSize)
		}
		if (after.GetUID() != before.GetUID()) != (policy == apply.PolicyReplace) {
			t.Errorf("%s: uid %s -> %s; only replace recreates", policy, before.GetUID(), after.GetUID())
		}
		for _, k := range []string{"configmaps " + ns + "/shop-config", "widgets." + f.id + ".pxb.test " + ns + "/gizmo"} {
			if e := summary[k]; e.Outcome != wantOutcome {
				t.Errorf("%s: %s outcome %s (%s), want %s", policy, k, e.Outcome, e.Reason, wantOutcome)
			}
		}
		if len(summary) != 2 || res.Counts[wantOutcome] != 2 || res.Phase != collect.PhaseCompleted {
			t.Errorf("%s: summary %v counts %v phase %s; want 2 objects %s", policy, summary, res.Counts, res.Phase, wantOutcome)
		}
	}
	drift()
	check(apply.PolicyRetain, "changed", 99, apply.OutcomeRetained)
	check("", "changed", 99, apply.OutcomeRetained) // retain is the default
	check(apply.PolicyUpdate, "hello", 3, apply.OutcomeUpdated)
	drift()
	check(apply.PolicyReplace, "hello", 3, apply.OutcomeReplaced)

	// Every kind can be updated and replaced (claims and volumes are not replaced here: nothing in this
	// cluster removes their protection finalizers).
	for _, policy := range []apply.Policy{apply.PolicyUpdate, apply.PolicyReplace} {
		res, summary := restore(t, c, store, newStore(t), apply.Options{ExistingPolicy: policy,
			ExcludeResources: []string{"persistentvolumeclaims", "persistentvolumes"}})
		if res.Phase != collect.PhaseCompleted {
			t.Errorf("%s of every kind: phase %s, errors %v", policy, res.Phase, res.Errors)
		}
		if e := summary["namespaces /"+ns]; e.Outcome != apply.OutcomeUpdated {
			t.Errorf("%s: namespace %+v, want updated (never deleted)", policy, e)
		}
	}
	compareRestored(t, dyn, f, ns, "", "")
}

// TestDryRunChangesNothing predicts a restore without changing the cluster.
func TestDryRunChangesNothing(t *testing.T) {
	c, dyn, f, store := backedUpApp(t)
	ns := f.ns
	ctx := context.Background()
	cm := f.find("ConfigMap")
	deleteAndWait(t, dyn, []*unstructured.Unstructured{cm})
	versions := resourceVersions(t, dyn, f)

	for _, policy := range []apply.Policy{apply.PolicyRetain, apply.PolicyReplace, apply.PolicyUpdate} {
		res, summary := restore(t, c, store, newStore(t), apply.Options{DryRun: true, ExistingPolicy: policy})
		if !res.DryRun {
			t.Error("result does not say dry run")
		}
		if e := summary["configmaps "+ns+"/shop-config"]; e.Outcome != apply.OutcomeWouldCreate {
			t.Errorf("%s: deleted configmap: %+v, want would-create", policy, e)
		}
		want := map[apply.Policy]apply.Outcome{apply.PolicyRetain: apply.OutcomeWouldRetain,
			apply.PolicyReplace: apply.OutcomeWouldReplace, apply.PolicyUpdate: apply.OutcomeWouldUpdate}[policy]
		if e := summary["deployments.apps "+ns+"/web"]; e.Outcome != want {
			t.Errorf("%s: existing deployment: %+v, want %s", policy, e, want)
		}
	}
	// Into a new namespace, with a missing StorageClass mapped in.
	target := fmt.Sprintf("dry-%d", time.Now().UnixNano()%1_000_000_000)
	res, summary := restore(t, c, store, newStore(t), apply.Options{DryRun: true,
		NamespaceMapping: map[string]string{ns: target}, StorageClassMapping: map[string]string{f.id + "-fast": "missing-class"}})
	if e := summary["persistentvolumeclaims "+target+"/data"]; e.Outcome != apply.OutcomeWouldCreate || !strings.Contains(e.Reason, `StorageClass "missing-class" not found`) {
		t.Errorf("claim with a missing class: %+v", e)
	}
	if len(res.Warnings) == 0 {
		t.Error("no warning about the missing StorageClass")
	}
	if _, err := c.Clientset(t).CoreV1().Namespaces().Get(ctx, target, metav1.GetOptions{}); err == nil {
		t.Errorf("dry run created namespace %s", target)
	}
	if _, err := client(t, dyn, cm, ns).Get(ctx, cm.GetName(), metav1.GetOptions{}); err == nil {
		t.Error("dry run created the deleted configmap")
	}
	if after := resourceVersions(t, dyn, f); !reflect.DeepEqual(after, versions) {
		t.Errorf("the dry run changed objects: resource versions %v, before %v", after, versions)
	}
}

// TestBadInput fails before any work, naming the field.
func TestBadInput(t *testing.T) {
	c := testbed.APIServer(t)
	ns := c.Namespace(t)
	ctx := context.Background()
	store := newStore(t)
	for _, tc := range []struct {
		opts collect.Options
		want string
	}{
		{collect.Options{IncludeNamespaces: []string{"no-such-namespace"}}, `IncludeNamespaces: namespace "no-such-namespace" not found`},
		{collect.Options{IncludeNamespaces: []string{ns}, IncludeResources: []string{"widgetz"}}, `IncludeResources: unknown resource type "widgetz"`},
		{collect.Options{IncludeNamespaces: []string{ns}, Selector: "a in ("}, "Selector"},
	} {
		if _, err := collect.Run(ctx, c.Config, store, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("backup %+v: %v, want %q", tc.opts, err, tc.want)
		}
	}
	if _, err := collect.ReadManifest(ctx, store); !errors.Is(err, collect.ErrNotFound) {
		t.Errorf("a failed backup wrote a manifest (%v)", err)
	}
	backup(t, c, store, collect.Options{IncludeNamespaces: []string{ns}})
	for _, tc := range []struct {
		opts apply.Options
		want string
	}{
		{apply.Options{IncludeResources: []string{"widgetz"}}, `IncludeResources: unknown resource type "widgetz"`},
		{apply.Options{NamespaceMapping: map[string]string{ns: "Not_Valid"}}, "is not a valid namespace name"},
		{apply.Options{NamespaceMapping: map[string]string{"elsewhere": "x"}}, `namespace "elsewhere" is not in the backup`},
		{apply.Options{IncludeNamespaces: []string{"elsewhere"}}, `IncludeNamespaces: namespace "elsewhere" is not in the backup`},
		{apply.Options{ExistingPolicy: "merge"}, "ExistingPolicy"},
	} {
		out := newStore(t)
		if _, err := apply.Run(ctx, c.Config, store, out, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("restore %+v: %v, want %q", tc.opts, err, tc.want)
		}
		if r, err := out.Get(ctx, layout.RestoreSummaryKey); err == nil {
			r.Close()
			t.Errorf("restore %+v wrote a summary", tc.opts)
		}
	}
}

// TestNamespaceAdmin backs up and restores with the identity of a user who may only act inside one
// namespace, as self-service backups run: what the user may not read is a warning, not a failure.
func TestNamespaceAdmin(t *testing.T) {
	c := testbed.APIServer(t)
	dyn := c.Dynamic(t)
	ns := c.Namespace(t)
	ctx := context.Background()
	var cm *unstructured.Unstructured
	for _, doc := range render(`
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"all","namespace":"{{ns}}"},"rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]}
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"alice","namespace":"{{ns}}"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"all"},"subjects":[{"kind":"User","name":"alice"}]}
{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"{{ns}}"},"data":{"k":"v"}}`, map[string]string{"ns": ns}) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON([]byte(doc)); err != nil {
			t.Fatal(err)
		}
		cm = createWait(ctx, t, dyn, u)
	}
	alice := c.UserConfig(t, "alice")
	store := newStore(t)
	res, err := collect.Run(ctx, alice, store, collect.Options{IncludeNamespaces: []string{ns}})
	if err != nil {
		t.Fatalf("backup as a namespace admin: %v", err)
	}
	if res.Phase != collect.PhaseCompleted || res.Counts["configmaps"] != 1 || res.Counts["roles.rbac.authorization.k8s.io"] != 1 {
		t.Errorf("backup as a namespace admin: phase %s counts %v errors %v", res.Phase, res.Counts, res.Errors)
	}
	if len(res.Warnings) == 0 {
		t.Error("no warning about the cluster-scoped objects the user may not read")
	}
	deleteAndWait(t, dyn, []*unstructured.Unstructured{cm})
	out := newStore(t)
	rres, err := apply.Run(ctx, alice, store, out, apply.Options{})
	if err != nil {
		t.Fatalf("restore as a namespace admin: %v", err)
	}
	if rres.Phase != collect.PhaseCompleted || rres.Counts[apply.OutcomeRestored] != 1 || rres.Counts[apply.OutcomeRetained] != rres.Total-1 {
		t.Errorf("restore as a namespace admin: phase %s counts %v errors %v; want the configmap restored, the rest retained", rres.Phase, rres.Counts, rres.Errors)
	}
	err = apply.ReadSummary(ctx, out, func(e apply.SummaryEntry) error {
		if e.Resource == "configmaps" && e.Name == "settings" && e.Outcome != apply.OutcomeRestored {
			t.Errorf("configmap: %+v, want restored", e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSelectiveRestore restores only what a label selector picks, into another namespace.
func TestSelectiveRestore(t *testing.T) {
	c, _, f, store := backedUpApp(t)
	target := fmt.Sprintf("sel-%d", time.Now().UnixNano()%1_000_000_000)
	res, summary := restore(t, c, store, newStore(t), apply.Options{Selector: "tier=web", NamespaceMapping: map[string]string{f.ns: target}})
	want := map[string]apply.Outcome{
		"namespaces /" + target: apply.OutcomeRestored,
		"customresourcedefinitions.apiextensions.k8s.io /widgets." + f.id + ".pxb.test": apply.OutcomeRetained,
		"configmaps " + target + "/shop-config":                                         apply.OutcomeRestored,
	}
	for k, e := range summary {
		if want[k] != e.Outcome {
			t.Errorf("%s: %s (%s), want %q", k, e.Outcome, e.Reason, want[k])
		}
	}
	if len(summary) != len(want) || res.Phase != collect.PhaseCompleted {
		t.Errorf("summary %v phase %s; want %v", summary, res.Phase, want)
	}
}

// TestMissingCRD restores custom resources whose CRD is neither in the cluster nor restored: they fail with
// the reason, everything else is restored, and a dry run predicts exactly that.
func TestMissingCRD(t *testing.T) {
	c, dyn, f, store := backedUpApp(t)
	deleteAndWait(t, dyn, []*unstructured.Unstructured{f.find("Widget"), f.find("CustomResourceDefinition")})
	target := fmt.Sprintf("nocrd-%d", time.Now().UnixNano()%1_000_000_000)
	opts := apply.Options{DryRun: true, NamespaceMapping: map[string]string{f.ns: target},
		ExcludeResources: []string{"customresourcedefinitions"}}
	widget := "widgets." + f.id + ".pxb.test " + target + "/gizmo"
	for _, dry := range []bool{true, false} {
		opts.DryRun = dry
		res, summary := restore(t, c, store, newStore(t), opts)
		e := summary[widget]
		if !strings.Contains(e.Reason, "CustomResourceDefinition is missing") ||
			e.Outcome != map[bool]apply.Outcome{true: apply.OutcomeWouldFail, false: apply.OutcomeFailed}[dry] {
			t.Errorf("dry run %v: widget %+v, want it to fail for the missing CRD", dry, e)
		}
		if res.Phase != collect.PhasePartiallySucceeded || res.ErrorCount != 1 || len(res.Errors) != 1 {
			t.Errorf("dry run %v: phase %s errors %v; want PartiallySucceeded with one error", dry, res.Phase, res.Errors)
		}
	}
}

// TestRestoreClusterResources restores one namespace of a backup of two, which holds every cluster-scoped
// object of the cluster, under each clusterResources policy: Auto writes only what the restored namespace
// uses, Include every cluster-scoped object of the backup but the volumes of claims it does not restore,
// Exclude none (the target namespace is still made).
func TestRestoreClusterResources(t *testing.T) {
	c := testbed.APIServer(t)
	dyn := c.Dynamic(t)
	a, b := createApp(t, dyn, c.Namespace(t), uniqueID(t)), createApp(t, dyn, c.Namespace(t), uniqueID(t)+"b")
	ctx := context.Background()
	unrelated := createWait(ctx, t, dyn, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
		"metadata": map[string]any{"name": a.id + "-unrelated"}, "rules": []any{}}})
	t.Cleanup(func() { forceDelete(t, dyn, unrelated) })
	store := newStore(t)
	res := backup(t, c, store, collect.Options{IncludeNamespaces: []string{a.ns, b.ns}, BackupName: "both",
		IncludeClusterResources: collect.ClusterResourcesAll})
	if res.Phase != collect.PhaseCompleted {
		t.Fatalf("backup phase %s: %v", res.Phase, res.Errors)
	}
	// clusterScoped are the cluster-scoped objects of f's restore; mapped into target, the binding of f's
	// ServiceAccount is restored under a name of its own, beside the original's.
	clusterScoped := func(f *fixture, target string) []string {
		binding := f.id + "-reader"
		if target != "" {
			binding += "-" + target
		}
		return []string{
			"customresourcedefinitions.apiextensions.k8s.io /widgets." + f.id + ".pxb.test",
			"storageclasses.storage.k8s.io /" + f.id + "-fast",
			"persistentvolumes /" + f.id + "-pv",
			"clusterroles.rbac.authorization.k8s.io /" + f.id + "-reader",
			"clusterrolebindings.rbac.authorization.k8s.io /" + binding,
		}
	}
	ofB := clusterScoped(b, "")
	other := "clusterroles.rbac.authorization.k8s.io /" + unrelated.GetName()
	restoreA := func(policy collect.ClusterResources, dry bool) (string, map[string]apply.SummaryEntry) {
		target := fmt.Sprintf("cr-%d", time.Now().UnixNano()%1_000_000_000)
		res, summary := restore(t, c, store, newStore(t), apply.Options{BackupName: "both", RestoreName: target, IncludeNamespaces: []string{a.ns},
			NamespaceMapping: map[string]string{a.ns: target}, ClusterResources: policy, DryRun: dry})
		if res.Phase != collect.PhaseCompleted {
			t.Errorf("%s: restore phase %s, errors %v", policy, res.Phase, res.Errors)
		}
		if _, ok := summary["configmaps "+target+"/shop-config"]; !ok {
			t.Errorf("%s: the namespace's objects were not restored: %v", policy, summary)
		}
		return target, summary
	}

	target, summary := restoreA(collect.ClusterResourcesAuto, true)
	ofA := clusterScoped(a, target)
	for _, k := range ofA {
		if _, ok := summary[k]; !ok {
			t.Errorf("auto: %s, which the restored namespace uses, was left out", k)
		}
	}
	for k := range summary {
		if strings.Contains(k, " /") && !slices.Contains(ofA, k) && !strings.HasPrefix(k, "namespaces /") {
			t.Errorf("auto: %s was restored, but the restored namespace does not use it", k)
		}
	}

	target, summary = restoreA(collect.ClusterResourcesAll, true)
	for _, k := range append(append(clusterScoped(a, target), ofB...), other) {
		_, ok := summary[k]
		if volumeOfB := k == ofB[2]; ok == volumeOfB {
			t.Errorf("include: %s restored %v, want %v", k, ok, !volumeOfB)
		}
	}

	target, summary = restoreA(collect.ClusterResourcesNone, false)
	for k, e := range summary {
		if strings.Contains(k, " /") && k != "namespaces /"+target {
			t.Errorf("exclude: %s was restored (%s)", k, e.Outcome)
		}
	}
	if e := summary["namespaces /"+target]; e.Outcome != apply.OutcomeRestored || e.Reason != "created for the restored objects" {
		t.Errorf("exclude: the target namespace %+v, want it created empty for the restored objects", e)
	}
	ns, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(ctx, target, metav1.GetOptions{})
	if err != nil || ns.GetLabels()[apply.LabelRestore] == "" {
		t.Errorf("exclude: namespace %s: %v, labels %v", target, err, ns.GetLabels())
	}
}
