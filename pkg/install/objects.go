// Package install renders pxb's manifests for a version and job image, applies them to a cluster with
// server-side apply, and removes them again.
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/pxb-dev/pxb/manifests"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/version"
)

// Labels set on every installed object, so that people and tools can tell what pxb installed.
const (
	NameLabel      = "app.kubernetes.io/name"
	VersionLabel   = "app.kubernetes.io/version"
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "kubectl-pxb"
)

// Keys of the pxb-config ConfigMap that install sets.
const (
	ConfigJobImage        = "jobImage"
	ConfigVersion         = "version"
	ConfigDefaultLocation = "defaultLocation"
)

// DefaultImage is the released job image of this build's version.
func DefaultImage() string {
	return "ghcr.io/pxb-dev/pxb-job:" + version.Version
}

// TenantRole says which roles install gives teams for pxb's objects in their namespaces.
type TenantRole string

const (
	// TenantRoleAggregate installs the ClusterRoles pxb-tenant, aggregated into admin and edit, and
	// pxb-tenant-view, aggregated into view.
	TenantRoleAggregate TenantRole = "aggregate"
	// TenantRoleNone installs neither: administrators grant pxb's objects to teams with roles of their own.
	TenantRoleNone TenantRole = "none"
)

// ParseTenantRole reads a tenant role as --tenant-role gives it; empty is TenantRoleAggregate.
func ParseTenantRole(s string) (TenantRole, error) {
	switch r := TenantRole(s); r {
	case "":
		return TenantRoleAggregate, nil
	case TenantRoleAggregate, TenantRoleNone:
		return r, nil
	}
	return "", fmt.Errorf("tenant role %q: want %s or %s", s, TenantRoleAggregate, TenantRoleNone)
}

// Options choose what Objects renders.
type Options struct {
	// Image of the pxb-job runner; DefaultImage() when empty.
	Image string
	// Version recorded in the objects' labels and in pxb-config; version.Version when empty.
	Version string
	// TenantRole; TenantRoleAggregate when empty.
	TenantRole TenantRole
	// Monitoring adds pxb's alert rules (a PrometheusRule) and kube-state-metrics configuration (a
	// ConfigMap), last: applying them needs the Prometheus operator's CRDs (Client.CheckMonitoring).
	Monitoring bool
}

// Objects returns every object pxb installs, in the order they must be applied.
func Objects(o Options) ([]*unstructured.Unstructured, error) {
	if o.Image == "" {
		o.Image = DefaultImage()
	}
	if o.Version == "" {
		o.Version = version.Version
	}
	role, err := ParseTenantRole(string(o.TenantRole))
	if err != nil {
		return nil, err
	}
	files, err := manifests.Files()
	if err != nil {
		return nil, fmt.Errorf("list manifests: %w", err)
	}
	var objs []*unstructured.Unstructured
	for _, name := range files {
		if name == manifests.TenantFile && role == TenantRoleNone {
			continue
		}
		data, err := manifests.FS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read manifest %s: %w", name, err)
		}
		decoded, err := decode(data)
		if err != nil {
			return nil, fmt.Errorf("decode manifest %s: %w", name, err)
		}
		objs = append(objs, decoded...)
	}
	if o.Monitoring {
		mon, err := monitoringObjects()
		if err != nil {
			return nil, fmt.Errorf("render monitoring: %w", err)
		}
		objs = append(objs, mon...)
	}
	for _, obj := range objs {
		labels := obj.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[NameLabel] = "pxb"
		labels[VersionLabel] = o.Version
		labels[ManagedByLabel] = ManagedBy
		obj.SetLabels(labels)
		if obj.GetKind() == "ConfigMap" && obj.GetName() == v1alpha1.ConfigMapName {
			if err := unstructured.SetNestedField(obj.Object, o.Image, "data", ConfigJobImage); err != nil {
				return nil, fmt.Errorf("set job image: %w", err)
			}
			if err := unstructured.SetNestedField(obj.Object, o.Version, "data", ConfigVersion); err != nil {
				return nil, fmt.Errorf("set version: %w", err)
			}
		}
	}
	return objs, nil
}

// CRDNames returns the names of the CustomResourceDefinitions among objs.
func CRDNames(objs []*unstructured.Unstructured) []string {
	var names []string
	for _, obj := range objs {
		if obj.GetKind() == "CustomResourceDefinition" {
			names = append(names, obj.GetName())
		}
	}
	return names
}

func decode(data []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		// Empty documents (a leading "---") decode to nothing.
		if len(obj.Object) == 0 {
			continue
		}
		if obj.GetKind() == "" || obj.GetName() == "" {
			return nil, fmt.Errorf("object without kind or name: %v", obj.Object)
		}
		objs = append(objs, obj)
	}
}
