package jobs

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
)

func selectorString(field string, s *metav1.LabelSelector) (string, error) {
	if s == nil {
		return "", nil
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return sel.String(), nil
}

func stringsOf[T ~string](in []T) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

// BackupOptions turns Backup namespace/name's spec into what pkg/collect runs.
func BackupOptions(namespace, name string, spec v1alpha1.BackupSpec) (collect.Options, error) {
	o := collect.Options{
		BackupName:        name,
		IncludeNamespaces: stringsOf(spec.IncludeNamespaces),
		ExcludeNamespaces: stringsOf(spec.ExcludeNamespaces),
		IncludeResources:  stringsOf(spec.IncludeResources),
		ExcludeResources:  stringsOf(spec.ExcludeResources),
	}
	// pxb's own Backups and Restores are records of this cluster's work, not part of an application.
	for _, own := range []string{"backups.pxb.dev", "restores.pxb.dev"} {
		named := false
		for _, n := range o.IncludeResources {
			named = named || n == own
		}
		if !named {
			o.ExcludeResources = append(o.ExcludeResources, own)
		}
	}
	if len(o.IncludeNamespaces) == 0 && spec.NamespaceSelector == nil {
		// The API's meaning of an empty list: the Backup's own namespace.
		o.IncludeNamespaces = []string{namespace}
	}
	var err error
	if o.Selector, err = selectorString("spec.labelSelector", spec.LabelSelector); err != nil {
		return o, err
	}
	if o.NamespaceSelector, err = selectorString("spec.namespaceSelector", spec.NamespaceSelector); err != nil {
		return o, err
	}
	if o.IncludeClusterResources, err = clusterResources(spec.ClusterResources); err != nil {
		return o, err
	}
	return o, o.Validate()
}

// clusterResources turns the API's cluster resources policy into the engines'.
func clusterResources(p v1alpha1.ClusterResourcesPolicy) (collect.ClusterResources, error) {
	switch p {
	case "", v1alpha1.ClusterResourcesAuto:
		return collect.ClusterResourcesAuto, nil
	case v1alpha1.ClusterResourcesInclude:
		return collect.ClusterResourcesAll, nil
	case v1alpha1.ClusterResourcesExclude:
		return collect.ClusterResourcesNone, nil
	}
	return "", fmt.Errorf("spec.clusterResources %q: want Auto, Include or Exclude", p)
}

// RestoreOptions turns Restore namespace/name's spec into what pkg/apply runs.
func RestoreOptions(name string, spec v1alpha1.RestoreSpec) (apply.Options, error) {
	o := apply.Options{
		BackupName:        string(spec.BackupName),
		RestoreName:       name,
		IncludeNamespaces: stringsOf(spec.IncludeNamespaces),
		ExcludeNamespaces: stringsOf(spec.ExcludeNamespaces),
		IncludeResources:  stringsOf(spec.IncludeResources),
		ExcludeResources:  stringsOf(spec.ExcludeResources),
		DryRun:            spec.DryRun,
	}
	var err error
	if o.Selector, err = selectorString("spec.labelSelector", spec.LabelSelector); err != nil {
		return o, err
	}
	if o.ClusterResources, err = clusterResources(spec.ClusterResources); err != nil {
		return o, err
	}
	if len(spec.NamespaceMapping) > 0 {
		o.NamespaceMapping = map[string]string{}
		for k, v := range spec.NamespaceMapping {
			o.NamespaceMapping[k] = string(v)
		}
	}
	if len(spec.StorageClassMapping) > 0 {
		o.StorageClassMapping = map[string]string{}
		for k, v := range spec.StorageClassMapping {
			o.StorageClassMapping[k] = string(v)
		}
	}
	switch spec.ExistingResourcePolicy {
	case "", v1alpha1.ExistingRetain:
		o.ExistingPolicy = apply.PolicyRetain
	case v1alpha1.ExistingReplace:
		o.ExistingPolicy = apply.PolicyReplace
	case v1alpha1.ExistingUpdate:
		o.ExistingPolicy = apply.PolicyUpdate
	default:
		return o, fmt.Errorf("spec.existingResourcePolicy %q: want Retain, Replace or Update", spec.ExistingResourcePolicy)
	}
	return o, o.Validate()
}
