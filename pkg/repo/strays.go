package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// A stray key slot opens with the repository's passphrase but wraps another master key than config's: the
// mark of two initialisations of one location that both went on (before Init was made safe), each sealing
// what it wrote with its own key. Objects sealed with a stray's key are not damage, and not garbage either:
// the repository skips them where it reads everything (LoadIndex, Snapshots), so the backups sealed with
// config's key keep restoring, and Check and GC name them and keep them.
type strayKey struct {
	id     string
	master []byte
	keys   *keys
}

// ForeignKeyError says that an object was sealed with the master key of a stray key slot.
type ForeignKeyError struct {
	Object string // its name in the repository
	Slot   string // the ID of the key slot whose master key sealed it
}

func (e *ForeignKeyError) Error() string {
	return fmt.Sprintf("object %s was sealed with the master key of key slot %s, not with that of %s "+
		"(two initialisations of the location both went on): this repository cannot read it", e.Object, e.Slot, layout.Config)
}

// foreign returns a ForeignKeyError when sealed, which failed to open with the repository's key, opens with a
// stray key slot's; err otherwise.
func (r *Repository) foreign(name string, sealed, ad []byte, err error) error {
	for _, s := range r.strays {
		if _, serr := open(s.keys.aead, nil, sealed, ad); serr == nil {
			return &ForeignKeyError{Object: name, Slot: s.id}
		}
	}
	return err
}

func isForeign(err error) bool {
	var f *ForeignKeyError
	return errors.As(err, &f)
}

// StrayKey is what a stray key slot left in the repository.
type StrayKey struct {
	ID      string
	Created time.Time
	// Indexes and Snapshots are the objects sealed with its master key.
	Indexes   []string
	Snapshots []string
	// Sources are the sources of those snapshots (what was backed up): these cannot be restored.
	Sources []string
}

// Problem says what the stray slot means for the user.
func (s *StrayKey) Problem() string {
	if len(s.Indexes)+len(s.Snapshots) == 0 {
		return fmt.Sprintf("key slot %s (made %s) wraps another master key than %s and nothing was sealed with it: "+
			"left by an initialisation that lost the race to create the repository (and kept by object lock); harmless", s.ID, s.Created.UTC().Format(time.RFC3339), layout.Config)
	}
	what := "no snapshot"
	if len(s.Sources) > 0 {
		what = strings.Join(s.Sources, ", ")
	}
	return fmt.Sprintf("key slot %s (made %s) wraps another master key than %s: two initialisations of the location "+
		"both went on, and %d index and %d snapshot objects were sealed with it, which this repository cannot read. "+
		"Not restorable: %s. Every snapshot sealed with %s's key restores as before; the stray objects and their "+
		"packs are kept (maintenance deletes none of them) and the slot must stay, as it is the only way to them",
		s.ID, s.Created.UTC().Format(time.RFC3339), layout.Config, len(s.Indexes), len(s.Snapshots), what, layout.Config)
}

// StrayKeys lists the stray key slots and what was sealed with each (reading every index and snapshot
// object when there are any; nothing when there are none).
func (r *Repository) StrayKeys(ctx context.Context) ([]StrayKey, error) {
	if len(r.strays) == 0 {
		return nil, nil
	}
	out := make([]StrayKey, len(r.strays))
	slot := map[string]*StrayKey{}
	for i, s := range r.strays {
		out[i].ID = s.id
		slot[s.id] = &out[i]
		if raw, err := readAll(ctx, r.bucket, layout.KeyName(s.id)); err == nil {
			if ks, err := decodeKeySlot(raw); err == nil {
				out[i].Created = ks.Created
			}
		}
	}
	for _, kind := range []struct {
		prefix string
		ad     []byte
	}{{layout.IndexPrefix, adIndex}, {layout.SnapshotPrefix, adSnapshot}} {
		names, err := listNames(ctx, r.bucket, kind.prefix)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			sealed, err := readAll(ctx, r.bucket, n)
			if err != nil {
				return nil, err
			}
			if _, err := open(r.keys.aead, nil, sealed, kind.ad); err == nil {
				continue
			}
			var f *ForeignKeyError
			if !errors.As(r.foreign(n, sealed, kind.ad, errAuth), &f) {
				continue // damage, which Check reports
			}
			s := slot[f.Slot]
			if kind.prefix == layout.IndexPrefix {
				s.Indexes = append(s.Indexes, n)
				continue
			}
			s.Snapshots = append(s.Snapshots, n)
			if sn, err := r.strayKeyOf(f.Slot).snapshot(sealed); err == nil && sn.Source != "" && !slices.Contains(s.Sources, sn.Source) {
				s.Sources = append(s.Sources, sn.Source)
			}
		}
	}
	return out, nil
}

func (r *Repository) strayKeyOf(id string) *strayKey {
	for i := range r.strays {
		if r.strays[i].id == id {
			return &r.strays[i]
		}
	}
	return nil
}

// snapshot decodes a snapshot manifest sealed with the stray's key, to say what it held.
func (s *strayKey) snapshot(sealed []byte) (*Snapshot, error) {
	raw, err := open(s.keys.aead, nil, sealed, adSnapshot)
	if err != nil {
		return nil, err
	}
	return decodeSnapshot(raw)
}

// foreignPacks returns the packs that index object name, sealed with a stray key slot's key, names.
func (r *Repository) foreignPacks(ctx context.Context, name string) ([]string, error) {
	sealed, err := readAll(ctx, r.bucket, name)
	if err != nil {
		return nil, err
	}
	for _, s := range r.strays {
		raw, err := open(s.keys.aead, nil, sealed, adIndex)
		if err != nil {
			continue
		}
		recs, err := decodeIndex(raw)
		if err != nil {
			return nil, fmt.Errorf("index %s (sealed with key slot %s): %w", name, s.id, err)
		}
		ids := make([]string, len(recs))
		for i, p := range recs {
			ids[i] = p.ID
		}
		return ids, nil
	}
	return nil, fmt.Errorf("index %s: %w", name, errAuth)
}
