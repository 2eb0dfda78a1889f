package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// FormatVersion is bumped when what a backup's Store holds changes incompatibly. The keys (a manifest, an
// index and the files of objects of each type) are named in pkg/layout.
const FormatVersion = 1

// Type is one served resource type.
type Type struct {
	Group      string   `json:"group,omitempty"`
	Version    string   `json:"version"`
	Resource   string   `json:"resource"`
	Kind       string   `json:"kind"`
	Namespaced bool     `json:"namespaced"`
	Singular   string   `json:"singular,omitempty"`
	ShortNames []string `json:"shortNames,omitempty"`
}

// String is the type's name as users write it: "configmaps", "deployments.apps".
func (t Type) String() string {
	if t.Group == "" {
		return t.Resource
	}
	return t.Resource + "." + t.Group
}

func (t Type) GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: t.Group, Version: t.Version, Resource: t.Resource}
}

// GroupKind is "Kind" or "Kind.group", the form owner references are compared in.
func (t Type) GroupKind() string { return GroupKind(t.Group, t.Kind) }

// GroupKind formats a kind and group as Type.GroupKind does.
func GroupKind(group, kind string) string {
	if group == "" {
		return kind
	}
	return kind + "." + group
}

// Manifest describes a finished backup; restores read it first and then stream the files it names.
type Manifest struct {
	FormatVersion int          `json:"formatVersion"`
	Backup        string       `json:"backup,omitempty"`
	Started       time.Time    `json:"started"`
	Finished      time.Time    `json:"finished"`
	Namespaces    []string     `json:"namespaces,omitempty"`
	Types         []TypeRecord `json:"types"`
	Total         int          `json:"total"`
	Bytes         int64        `json:"bytes"`
	Warnings      []string     `json:"warnings,omitempty"`
	Errors        []ItemError  `json:"errors,omitempty"`
	ErrorCount    int          `json:"errorCount,omitempty"`
}

// TypeRecord is one type in a backup and the files holding its objects.
type TypeRecord struct {
	Type
	// CustomResource is true for types served from a CustomResourceDefinition.
	CustomResource bool         `json:"customResource,omitempty"`
	Count          int          `json:"count"`
	Bytes          int64        `json:"bytes"`
	Files          []FileRecord `json:"files,omitempty"`
	// OwnerKinds are the GroupKinds named by owner references of this type's objects; restores create
	// owners first.
	OwnerKinds []string `json:"ownerKinds,omitempty"`
}

// FileRecord is one file of objects.
type FileRecord struct {
	Key       string `json:"key"`
	Namespace string `json:"namespace,omitempty"`
	Count     int    `json:"count"`
}

// IndexEntry is one object of a backup.
type IndexEntry struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Resource  string `json:"resource"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Size      int    `json:"size"`
	File      string `json:"file"`
}

// ItemError is an object or type that could not be backed up or restored.
type ItemError struct {
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Reason    string `json:"reason"`
}

func (e ItemError) String() string {
	id := e.Resource
	if e.Namespace != "" {
		id += " " + e.Namespace + "/" + e.Name
	} else if e.Name != "" {
		id += " " + e.Name
	}
	return id + ": " + e.Reason
}

// ReadManifest reads a backup's manifest from s.
func ReadManifest(ctx context.Context, s Store) (*Manifest, error) {
	r, err := s.Get(ctx, layout.ManifestKey)
	if err != nil {
		return nil, fmt.Errorf("backup manifest: %w", err)
	}
	defer r.Close()
	var m Manifest
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, fmt.Errorf("decode backup manifest: %w", err)
	}
	if m.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("backup manifest: format version %d, this pxb reads %d", m.FormatVersion, FormatVersion)
	}
	return &m, nil
}

// ReadIndex calls fn for every object of a backup, in the order they were written.
func ReadIndex(ctx context.Context, s Store, fn func(IndexEntry) error) error {
	return ReadJSONLines(ctx, s, layout.IndexKey, fn)
}

// ReadJSONLines decodes the JSON value stored under key in s one line at a time, calling fn for each.
func ReadJSONLines[T any](ctx context.Context, s Store, key string, fn func(T) error) error {
	r, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	defer r.Close()
	dec := json.NewDecoder(r)
	for {
		var v T
		if err := dec.Decode(&v); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
}

// PutJSON stores v as indented JSON under key in s.
func PutJSON(ctx context.Context, s Store, key string, v any) error {
	w := NewStreamWriter(ctx, s, key)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		w.Abort(err)
		return fmt.Errorf("write %s: %w", key, err)
	}
	return w.Close()
}
