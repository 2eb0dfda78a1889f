package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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

// SkippedObject is an object that a listing skipped because it could not be used, and why.
type SkippedObject struct {
	Name    string // the object's name in the repository
	Problem string
}

func (s SkippedObject) String() string { return s.Name + ": " + s.Problem }

// Snapshots lists every snapshot sealed with the repository's key, oldest first. A snapshot object that
// cannot be read, opened or decoded is skipped, so that one damaged object hides no other snapshot; the
// skipped ones are named by SkippedSnapshots (and by Check). Use ListSnapshots to get them with the list.
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, error) {
	out, skipped, err := r.ListSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	r.snapMu.Lock()
	r.skippedSnaps = skipped
	r.snapMu.Unlock()
	return out, nil
}

// SkippedSnapshots returns the snapshot objects that the last call of Snapshots skipped as damaged.
func (r *Repository) SkippedSnapshots() []SkippedObject {
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	return slices.Clone(r.skippedSnaps)
}

// ListSnapshots is Snapshots, also returning the snapshot objects it skipped: those that could not be read,
// opened (damaged, or sealed with another key than a key slot's) or decoded (including those of a newer
// format). Objects sealed with a stray key slot's key are left out of both (see StrayKeys), as are those
// deleted since the listing. It fails only when the listing fails or ctx ends.
func (r *Repository) ListSnapshots(ctx context.Context) ([]*Snapshot, []SkippedObject, error) {
	names, err := listNames(ctx, r.bucket, layout.SnapshotPrefix)
	if err != nil {
		return nil, nil, err
	}
	var (
		out     []*Snapshot
		skipped []SkippedObject
	)
	for _, n := range names {
		s, err := r.LoadSnapshot(ctx, n[len(layout.SnapshotPrefix):])
		if isForeign(err) {
			continue // sealed with a stray key slot's key (see StrayKeys)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if r.snapshotGone(ctx, n[len(layout.SnapshotPrefix):]) {
				continue // deleted since it was listed
			}
			skipped = append(skipped, SkippedObject{Name: n, Problem: err.Error()})
			continue
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, skipped, nil
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
