package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"gocloud.dev/gcerrors"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// Snapshot is a manifest: the root of one backed-up file tree. It is written last, after every blob it
// references is in a stored pack and index.
type Snapshot struct {
	Version int               `json:"version"`
	ID      string            `json:"-"`
	Time    time.Time         `json:"time"`
	Host    string            `json:"host,omitempty"`
	Source  string            `json:"source,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	Parent  string            `json:"parent,omitempty"`
	Root    Node              `json:"root"`
	Stats   SnapshotStats     `json:"stats"`
}

// SnapshotStats summarizes a snapshot.
type SnapshotStats struct {
	Files       int64 `json:"files"`
	Dirs        int64 `json:"dirs"`
	Bytes       int64 `json:"bytes"`       // file bytes in the snapshot
	NewBytes    int64 `json:"newBytes"`    // plaintext bytes of new blobs
	StoredBytes int64 `json:"storedBytes"` // their size in the repository
}

func decodeSnapshot(raw []byte) (*Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if s.Version > FormatVersion {
		return nil, fmt.Errorf("snapshot format version %d is newer than this pxb supports (%d): upgrade pxb", s.Version, FormatVersion)
	}
	if s.Version < 1 {
		return nil, fmt.Errorf("invalid snapshot format version %d", s.Version)
	}
	if s.Root.Type != NodeDir {
		return nil, fmt.Errorf("snapshot root is a %q, not a directory", s.Root.Type)
	}
	return &s, nil
}

func (r *Repository) writeSnapshot(ctx context.Context, s *Snapshot) (string, error) {
	s.Version = FormatVersion
	if s.Time.IsZero() {
		s.Time = time.Now().UTC()
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	// Names sort by time, so listings come out oldest first.
	id := layout.SnapshotID(s.Time, randomHex(8))
	if err := r.writeObject(ctx, layout.SnapshotName(id), seal(r.keys.aead, nil, raw, adSnapshot), true); err != nil {
		return "", err
	}
	s.ID = id
	return id, nil
}

// LoadSnapshot reads one snapshot manifest.
func (r *Repository) LoadSnapshot(ctx context.Context, id string) (*Snapshot, error) {
	if id == "" || strings.Contains(id, "/") {
		return nil, fmt.Errorf("invalid snapshot id %q", id)
	}
	name := layout.SnapshotName(id)
	sealed, err := readAll(ctx, r.bucket, name)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	raw, err := open(r.keys.aead, nil, sealed, adSnapshot)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s (object %s): %w", id, name, r.foreign(name, sealed, adSnapshot, err))
	}
	s, err := decodeSnapshot(raw)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s (object %s): %w", id, name, err)
	}
	s.ID = id
	return s, nil
}

// Snapshots lists every snapshot sealed with the repository's key, oldest first.
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, error) {
	names, err := listNames(ctx, r.bucket, layout.SnapshotPrefix)
	if err != nil {
		return nil, err
	}
	var out []*Snapshot
	for _, n := range names {
		s, err := r.LoadSnapshot(ctx, n[len(layout.SnapshotPrefix):])
		if isForeign(err) {
			continue // sealed with a stray key slot's key (see StrayKeys)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// DeleteSnapshot removes a snapshot manifest; its data goes at the next garbage collection.
func (r *Repository) DeleteSnapshot(ctx context.Context, id string) error {
	if id == "" || strings.Contains(id, "/") {
		return fmt.Errorf("invalid snapshot id %q", id)
	}
	name := layout.SnapshotName(id)
	if ok, err := r.bucket.Exists(ctx, name); err != nil || !ok {
		if err == nil {
			return fmt.Errorf("delete snapshot %s: no such snapshot", id)
		}
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	if err := r.bucket.Delete(ctx, name); err != nil {
		if gcerrors.Code(err) == gcerrors.PermissionDenied {
			return fmt.Errorf("delete snapshot %s: object %s is locked (retention): %w", id, name, err)
		}
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	return nil
}
