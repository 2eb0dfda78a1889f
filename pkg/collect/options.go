package collect

import (
	"context"
	"fmt"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ClusterResources says which cluster-scoped objects a backup takes.
type ClusterResources string

const (
	// ClusterResourcesAuto takes the cluster-scoped objects the selected namespaced objects need: their
	// Namespaces, the PersistentVolumes bound to their claims and those volumes' StorageClasses, the
	// CustomResourceDefinitions of their custom resources, and the ClusterRoleBindings (with their
	// ClusterRoles) that bind their ServiceAccounts.
	ClusterResourcesAuto ClusterResources = "auto"
	// ClusterResourcesAll takes every cluster-scoped object of the selected types as well.
	ClusterResourcesAll ClusterResources = "true"
	// ClusterResourcesNone takes no cluster-scoped object, not even Namespaces.
	ClusterResourcesNone ClusterResources = "false"
)

// Options select what a backup takes. The zero value backs up every namespace with ClusterResourcesAuto.
type Options struct {
	// BackupName is recorded in the manifest; restores label objects with it.
	BackupName string
	// IncludeNamespaces are namespace names or globs ("app-*"); empty or "*" means all.
	IncludeNamespaces []string
	// ExcludeNamespaces are names or globs removed from the included ones.
	ExcludeNamespaces []string
	// Selector is a label selector every backed-up namespaced object must match.
	Selector string
	// NamespaceSelector is a label selector the included namespaces must match.
	NamespaceSelector string
	// IncludeResources are resource types ("configmaps", "deployments.apps", "Deployment", "cm"); empty or
	// "*" means all. A type named here is taken even if pxb would skip it as derived (Events, Pods of
	// controllers, ...).
	IncludeResources []string
	// ExcludeResources are resource types never taken.
	ExcludeResources []string
	// IncludeClusterResources is auto (default), true or false.
	IncludeClusterResources ClusterResources
	// Narrow, when set, is called with the included namespaces before anything is listed. The namespaced
	// objects it returns, by type (as Type.String gives it) and "namespace/name", are then the only ones
	// backed up, even those pxb would skip as derived; the other filters still apply.
	Narrow func(ctx context.Context, namespaces []string) (map[string]map[string]bool, error)

	// Parallelism is how many types are listed at once (default 8).
	Parallelism int
	// QPS and Burst limit the client (defaults 100 and 200, sized for listing, not the client-go 5/10).
	QPS   float32
	Burst int
	// PageSize is the list page size (default 500).
	PageSize int64
	// Progress, if set, is called every ProgressInterval and at the end with the number of objects written
	// so far, always from the same goroutine.
	Progress func(done int)
}

func (o *Options) defaults() {
	if o.IncludeClusterResources == "" {
		o.IncludeClusterResources = ClusterResourcesAuto
	}
	if o.Parallelism <= 0 {
		o.Parallelism = 8
	}
	if o.QPS <= 0 {
		o.QPS = 100
	}
	if o.Burst <= 0 {
		o.Burst = 200
	}
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
}

// Validate checks the options without talking to a cluster; errors name the field.
func (o *Options) Validate() error {
	if o.BackupName != "" {
		if errs := validation.IsValidLabelValue(o.BackupName); len(errs) > 0 {
			return fmt.Errorf("BackupName %q: %s", o.BackupName, strings.Join(errs, "; "))
		}
	}
	if err := ValidateNamespacePatterns("IncludeNamespaces", o.IncludeNamespaces); err != nil {
		return err
	}
	if err := ValidateNamespacePatterns("ExcludeNamespaces", o.ExcludeNamespaces); err != nil {
		return err
	}
	if _, err := labels.Parse(o.Selector); err != nil {
		return fmt.Errorf("Selector %q: %w", o.Selector, err)
	}
	if _, err := labels.Parse(o.NamespaceSelector); err != nil {
		return fmt.Errorf("NamespaceSelector %q: %w", o.NamespaceSelector, err)
	}
	if err := ValidateResourceNames("IncludeResources", o.IncludeResources); err != nil {
		return err
	}
	if err := ValidateResourceNames("ExcludeResources", o.ExcludeResources); err != nil {
		return err
	}
	switch o.IncludeClusterResources {
	case "", ClusterResourcesAuto, ClusterResourcesAll, ClusterResourcesNone:
	default:
		return fmt.Errorf("IncludeClusterResources %q: must be auto, true or false", o.IncludeClusterResources)
	}
	return nil
}

// ValidateNamespacePatterns checks namespace names and globs given in field.
func ValidateNamespacePatterns(field string, patterns []string) error {
	for _, p := range patterns {
		if p == "" {
			return fmt.Errorf("%s: empty namespace", field)
		}
		if isGlob(p) {
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("%s %q: bad pattern: %w", field, p, err)
			}
			continue
		}
		if errs := validation.IsDNS1123Label(p); len(errs) > 0 {
			return fmt.Errorf("%s %q: not a valid namespace name: %s", field, p, strings.Join(errs, "; "))
		}
	}
	return nil
}

// ValidateResourceNames checks the syntax of resource type names given in field.
func ValidateResourceNames(field string, names []string) error {
	for _, n := range names {
		if strings.TrimSpace(n) == "" || strings.ContainsAny(n, "/ ") {
			return fmt.Errorf("%s %q: not a resource type (write \"configmaps\" or \"deployments.apps\")", field, n)
		}
	}
	return nil
}

func isGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

// NamespaceFilter decides which namespaces are included from name patterns and a label selector.
type NamespaceFilter struct {
	Include  []string
	Exclude  []string
	Selector labels.Selector
}

// All reports whether every namespace passes.
func (f NamespaceFilter) All() bool {
	return matchesAll(f.Include) && len(f.Exclude) == 0 && (f.Selector == nil || f.Selector.Empty())
}

// Explicit returns the included names when they are plain names (no globs, no selector), for clients that
// may not list namespaces.
func (f NamespaceFilter) Explicit() ([]string, bool) {
	if matchesAll(f.Include) || (f.Selector != nil && !f.Selector.Empty()) {
		return nil, false
	}
	for _, p := range f.Include {
		if isGlob(p) {
			return nil, false
		}
	}
	var out []string
	for _, p := range f.Include {
		if !MatchAny(f.Exclude, p) {
			out = append(out, p)
		}
	}
	return out, true
}

// Match reports whether a namespace with this name and labels passes.
func (f NamespaceFilter) Match(name string, nsLabels map[string]string) bool {
	if !matchesAll(f.Include) && !MatchAny(f.Include, name) {
		return false
	}
	if MatchAny(f.Exclude, name) {
		return false
	}
	return f.Selector == nil || f.Selector.Matches(labels.Set(nsLabels))
}

func matchesAll(include []string) bool {
	if len(include) == 0 {
		return true
	}
	for _, p := range include {
		if p == "*" {
			return true
		}
	}
	return false
}

// MatchAny reports whether name matches one of the names or globs.
func MatchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// ResourceFilter selects types by the names users write for them.
type ResourceFilter struct {
	Include []string
	Exclude []string
}

// Resolve checks that every name matches at least one of types; errors name the field.
func (f ResourceFilter) Resolve(types []Type) error {
	for _, field := range []struct {
		name  string
		names []string
	}{{"IncludeResources", f.Include}, {"ExcludeResources", f.Exclude}} {
		for _, n := range field.names {
			if n == "*" {
				continue
			}
			found := false
			for _, t := range types {
				if MatchesType(n, t) {
					found = true
					break
				}
			}
			if !found {
				return fmt.Errorf("%s: unknown resource type %q", field.name, n)
			}
		}
	}
	return nil
}

// Match reports whether t is selected.
func (f ResourceFilter) Match(t Type) bool {
	for _, n := range f.Exclude {
		if n == "*" || MatchesType(n, t) {
			return false
		}
	}
	if matchesAll(f.Include) {
		return true
	}
	return f.Named(t)
}

// Named reports whether t is named explicitly (not by "*") in Include.
func (f ResourceFilter) Named(t Type) bool {
	for _, n := range f.Include {
		if n != "*" && MatchesType(n, t) {
			return true
		}
	}
	return false
}

// MatchesType reports whether a user's name for a type ("deployments", "deployments.apps", "Deployment",
// "deploy", "deployment.apps") names t.
func MatchesType(name string, t Type) bool {
	name = strings.ToLower(strings.TrimSpace(name))
	base, group, qualified := strings.Cut(name, ".")
	if qualified && group != strings.ToLower(t.Group) {
		// "deployments.apps" names the apps group; "configmaps." or a dotted core name is not a thing.
		return false
	}
	if base == t.Resource || base == strings.ToLower(t.Kind) || (t.Singular != "" && base == t.Singular) {
		return true
	}
	if !qualified {
		for _, s := range t.ShortNames {
			if base == s {
				return true
			}
		}
	}
	return false
}
