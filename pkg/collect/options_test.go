package collect

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

func TestValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Selector: "app in (a"}, "Selector"},
		{Options{NamespaceSelector: "=x"}, "NamespaceSelector"},
		{Options{IncludeNamespaces: []string{"Bad_NS"}}, `IncludeNamespaces "Bad_NS": not a valid namespace name`},
		{Options{ExcludeNamespaces: []string{"a["}}, `ExcludeNamespaces "a[": bad pattern`},
		{Options{IncludeResources: []string{"apps/deployments"}}, `IncludeResources "apps/deployments"`},
		{Options{IncludeClusterResources: "maybe"}, `IncludeClusterResources "maybe": must be auto, true or false`},
		{Options{BackupName: strings.Repeat("x", 64)}, "BackupName"},
	} {
		err := tc.opts.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tc.opts, err, tc.want)
		}
	}
	ok := Options{IncludeNamespaces: []string{"app-*", "db"}, Selector: "tier=web", IncludeClusterResources: ClusterResourcesAll}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(valid options) = %v", err)
	}
}

var (
	deployments = Type{Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment", Namespaced: true, Singular: "deployment", ShortNames: []string{"deploy"}}
	configmaps  = Type{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true, Singular: "configmap", ShortNames: []string{"cm"}}
	ingresses   = Type{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses", Kind: "Ingress", Namespaced: true, Singular: "ingress", ShortNames: []string{"ing"}}
)

func TestMatchesType(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    Type
		want bool
	}{
		{"deployments", deployments, true},
		{"deployments.apps", deployments, true},
		{"Deployment", deployments, true},
		{"deployment.apps", deployments, true},
		{"deploy", deployments, true},
		{"deployments.extensions", deployments, false},
		{"cm", configmaps, true},
		{"configmaps", deployments, false},
		{"ingresses.networking.k8s.io", ingresses, true},
		{"ing.networking.k8s.io", ingresses, false},
	} {
		if got := MatchesType(tc.name, tc.t); got != tc.want {
			t.Errorf("MatchesType(%q, %s) = %v, want %v", tc.name, tc.t, got, tc.want)
		}
	}
}

func TestResourceFilter(t *testing.T) {
	types := []Type{deployments, configmaps, ingresses}
	f := ResourceFilter{Include: []string{"cm", "widgets"}}
	if err := f.Resolve(types); err == nil || err.Error() != `IncludeResources: unknown resource type "widgets"` {
		t.Errorf("Resolve = %v, want the unknown type named", err)
	}
	f = ResourceFilter{Include: []string{"*"}, Exclude: []string{"ingresses"}}
	if !f.Match(deployments) || f.Match(ingresses) || f.Named(deployments) {
		t.Errorf("include * exclude ingresses: Match(deployments)=%v Match(ingresses)=%v Named(deployments)=%v",
			f.Match(deployments), f.Match(ingresses), f.Named(deployments))
	}
	f = ResourceFilter{Include: []string{"deployments.apps"}}
	if !f.Match(deployments) || f.Match(configmaps) || !f.Named(deployments) {
		t.Error("include deployments.apps selects exactly Deployments")
	}
}

func TestNamespaceFilter(t *testing.T) {
	sel, _ := labels.Parse("team=a")
	f := NamespaceFilter{Include: []string{"app-*", "db"}, Exclude: []string{"app-old"}, Selector: sel}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"app-web", map[string]string{"team": "a"}, true},
		{"db", map[string]string{"team": "a"}, true},
		{"app-old", map[string]string{"team": "a"}, false},
		{"app-web", map[string]string{"team": "b"}, false},
		{"other", map[string]string{"team": "a"}, false},
	} {
		if got := f.Match(tc.name, tc.labels); got != tc.want {
			t.Errorf("Match(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if f.All() {
		t.Error("a filter with includes is not All")
	}
	if !(NamespaceFilter{Include: []string{"*"}}).All() || !(NamespaceFilter{}).All() {
		t.Error("empty and * filters are All")
	}
	names, ok := NamespaceFilter{Include: []string{"a", "b"}, Exclude: []string{"b"}}.Explicit()
	if !ok || len(names) != 1 || names[0] != "a" {
		t.Errorf("Explicit = %v, %v; want [a], true", names, ok)
	}
	if _, ok := f.Explicit(); ok {
		t.Error("globs are not explicit")
	}
}

func obj(kind, ns, name string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"kind": kind, "metadata": map[string]any{"name": name, "namespace": ns}}}
	for k, v := range fields {
		u.Object[k] = v
	}
	return u
}

func TestDerivedObject(t *testing.T) {
	pods := Type{Version: "v1", Resource: "pods", Kind: "Pod", Namespaced: true}
	jobs := Type{Group: "batch", Version: "v1", Resource: "jobs", Kind: "Job", Namespaced: true}
	secrets := Type{Version: "v1", Resource: "secrets", Kind: "Secret", Namespaced: true}
	owned := func(kind string, controller bool) map[string]any {
		return map[string]any{"metadata": map[string]any{"name": "x", "namespace": "n",
			"ownerReferences": []any{map[string]any{"apiVersion": "apps/v1", "kind": kind, "name": "o", "uid": "1", "controller": controller}}}}
	}
	for _, tc := range []struct {
		t    Type
		u    *unstructured.Unstructured
		want bool
	}{
		{pods, obj("Pod", "n", "x", owned("ReplicaSet", true)), true},
		{pods, obj("Pod", "n", "x", owned("ReplicaSet", false)), false},
		{pods, obj("Pod", "n", "x", nil), false},
		{jobs, obj("Job", "n", "x", owned("CronJob", true)), true},
		{jobs, obj("Job", "n", "x", owned("Workflow", true)), false},
		{secrets, obj("Secret", "n", "x", map[string]any{"type": "kubernetes.io/service-account-token"}), true},
		{secrets, obj("Secret", "n", "x", map[string]any{"type": "Opaque"}), false},
		{configmaps, obj("ConfigMap", "n", "kube-root-ca.crt", nil), true},
		{configmaps, obj("ConfigMap", "n", "settings", nil), false},
		{deployments, obj("Deployment", "n", "x", owned("Operator", true)), false},
	} {
		if _, got := DerivedObject(tc.t, tc.u); got != tc.want {
			t.Errorf("DerivedObject(%s %v) = %v, want %v", tc.t, tc.u.Object, got, tc.want)
		}
	}
	if _, ok := DerivedType(Type{Group: "discovery.k8s.io", Resource: "endpointslices"}); !ok {
		t.Error("EndpointSlices are derived")
	}
	if _, ok := DerivedType(configmaps); ok {
		t.Error("ConfigMaps are not derived")
	}
}
