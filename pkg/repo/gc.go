package repo

import (
	"context"
	"fmt"
	"sort"
	"time"

	"gocloud.dev/gcerrors"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// GCOptions tune garbage collection.
type GCOptions struct {
	// MinAge keeps every pack, indexed or not, until it is this old by the store's clock (default: the lease
	// duration plus the clock-skew allowance; negative: no minimum), as a second guard besides the exclusive
	// lock for a writer that stalled past its lease or whose clock is off.
	MinAge time.Duration
	// UnindexedMinAge, if set, replaces MinAge for packs that are in no index.
	UnindexedMinAge time.Duration
	// RepackUnused is the share of unused bytes (0..1) at which a pack that still holds used blobs is
	// rewritten without the unused ones (default 0.5; negative: never).
	RepackUnused float64
	DryRun       bool
}

// GCStats reports what garbage collection did.
type GCStats struct {
	UsedBlobs      int
	KeptPacks      int
	RepackedPacks  int // packs rewritten without their unused blobs (then deleted)
	DeletedPacks   int
	DeletedBytes   int64
	DeletedIndexes int
	DeletedLocks   int
	// AbortedUploads counts incomplete S3 multipart uploads of packs, left by writers that were killed.
	AbortedUploads int
	// RetainedPacks are the packs that GC would delete or repack but leaves, because object-lock retention
	// still protects them (or an index naming them); RetainedBytes is the unused data in them and
	// RetainedUntil when the last of it can go.
	RetainedPacks int
	RetainedBytes int64
	RetainedUntil time.Time
	// YoungPacks are the packs that GC would delete or repack but leaves because they are younger than
	// GCOptions.MinAge (MinAge says what it was); YoungBytes is the unused data in them. A later GC frees it.
	YoungPacks int
	YoungBytes int64
	MinAge     time.Duration
	// Undeletable lists objects whose deletion failed (for example under object-lock retention); they are
	// reported, not treated as damage, and a later GC tries again.
	Undeletable []string
}

// testHookGC, when set, is called with the name of each destructive step of GC before it is taken.
var testHookGC func(step string)

// GC removes packs no snapshot references and rewrites mostly unused ones. It holds the exclusive lock, so it
// never runs while a writer or reader holds its lease, and it checks that its own lease is still valid
// before every deletion, stopping with ErrLeaseLost if not.
func (r *Repository) GC(ctx context.Context, opts GCOptions) (*GCStats, error) {
	l, err := r.acquire(ctx, lockExclusive)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	defer l.release(context.WithoutCancel(ctx))
	if opts.MinAge == 0 {
		opts.MinAge = r.opts.LeaseDuration + skewFor(r.opts.LeaseDuration)
	}
	if opts.UnindexedMinAge == 0 {
		opts.UnindexedMinAge = opts.MinAge
	}
	step := func(name string) error {
		if testHookGC != nil {
			testHookGC(name)
		}
		if err := l.valid(); err != nil {
			return fmt.Errorf("gc: before %s: %w", name, err)
		}
		return nil
	}
	if opts.RepackUnused == 0 {
		opts.RepackUnused = 0.5
	}
	st, err := r.readState(ctx)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	if len(st.errs) > 0 {
		return nil, fmt.Errorf("gc: repository has damaged indexes, run check and repair first: %s", st.errs[0])
	}
	r.installIndex(st)

	used := map[ID]bool{}
	snaps, err := r.snapshotNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	seen := map[ID]bool{}
	for _, sid := range snaps {
		s, err := r.LoadSnapshot(ctx, sid)
		if isForeign(err) {
			continue // its packs are named by foreign indexes, which keep them
		}
		if err != nil && r.snapshotGone(ctx, sid) {
			continue // deleted since it was listed: its data is garbage too
		}
		if err != nil {
			return nil, fmt.Errorf("gc: %w", err)
		}
		if err := r.checkTree(ctx, s.Root.Tree, "/", seen, func(id ID) { used[id] = true }); err != nil {
			return nil, fmt.Errorf("gc: snapshot %s is damaged, nothing deleted: %w", sid, err)
		}
	}
	stats := &GCStats{UsedBlobs: len(used), MinAge: max(opts.MinAge, 0)}
	now := timeNow()
	// young says whether a pack is too recent to delete or rewrite, by the store's time of writing it.
	young := func(id string, minAge time.Duration) bool {
		o := st.stored[id]
		return o != nil && minAge > 0 && o.ModTime.After(now.Add(-minAge))
	}
	// Under object lock, objects still retained are not deleted (the store would refuse), and an index still
	// retained keeps every pack it names; packs are not repacked while the old copy cannot go.
	lockedIndexes := map[string]bool{}
	namedByLocked := map[string]time.Time{}
	for name, recs := range st.indexes {
		if until, ok := r.retainedUntil(st.written[name], now); ok {
			lockedIndexes[name] = true
			for _, p := range recs {
				namedByLocked[p.ID] = later(namedByLocked[p.ID], until)
			}
		}
	}
	// heldUntil says until when pack id cannot be deleted, if it cannot be now.
	heldUntil := func(id string) (time.Time, bool) {
		until, named := namedByLocked[id]
		if o := st.stored[id]; o != nil {
			if u, ok := r.retainedUntil(o.ModTime, now); ok {
				until, named = later(until, u), true
			}
		}
		return until, named
	}
	retain := func(size int64, until time.Time) {
		stats.RetainedPacks++
		stats.RetainedBytes += size
		stats.RetainedUntil = later(stats.RetainedUntil, until)
	}

	var keep, repack []*packRecord
	dead := map[string]int64{}
	for id, pi := range st.packs {
		var usedBytes, allBytes int64
		for _, b := range pi.rec.Blobs {
			allBytes += int64(b.Length)
			if used[b.ID] {
				usedBytes += int64(b.Length)
			}
		}
		until, held := heldUntil(id)
		mostlyUnused := opts.RepackUnused > 0 && float64(allBytes-usedBytes) >= opts.RepackUnused*float64(allBytes)
		switch {
		case held && (usedBytes == 0 || mostlyUnused):
			// Indexed still, so that check finds it in order until it can go.
			keep = append(keep, pi.rec)
			if usedBytes == 0 {
				retain(pi.rec.Size, until)
			} else {
				retain(allBytes-usedBytes, until)
			}
		case (usedBytes == 0 || mostlyUnused) && young(id, opts.MinAge):
			keep = append(keep, pi.rec) // indexed still; a later GC deletes or repacks it
			stats.YoungPacks++
			stats.YoungBytes += allBytes - usedBytes
		case usedBytes == 0:
			dead[id] = pi.rec.Size
		case mostlyUnused:
			repack = append(repack, pi.rec)
		default:
			keep = append(keep, pi.rec)
		}
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i].ID < keep[j].ID })
	stats.KeptPacks = len(keep) - stats.RetainedPacks
	cutoff := now.Add(-opts.UnindexedMinAge)
	for id, o := range st.stored {
		if _, indexed := st.packs[id]; !indexed && !st.foreignPacks[id] && o.ModTime.Before(cutoff) {
			if until, held := heldUntil(id); held {
				retain(o.Size, until)
				continue
			}
			dead[id] = o.Size
		}
	}
	// Incomplete uploads of packs: as for unindexed packs, their age is a second guard besides the lock.
	abortUploads := func(dryRun bool) {
		if r.s3 == nil {
			return
		}
		n, err := r.s3.abortStaleUploads(ctx, cutoff, dryRun)
		stats.AbortedUploads = n
		if err != nil {
			stats.Undeletable = append(stats.Undeletable, err.Error())
		}
	}
	if opts.DryRun {
		abortUploads(true)
		stats.RepackedPacks = len(repack)
		stats.DeletedPacks = len(dead) + len(repack)
		for _, sz := range dead {
			stats.DeletedBytes += sz
		}
		return stats, nil
	}
	if err := step("aborting stale uploads"); err != nil {
		return nil, err
	}
	abortUploads(false)

	// Used blobs of mostly unused packs are copied (still sealed) into new packs; the old packs then die.
	if len(repack) > 0 {
		if err := step("repacking"); err != nil {
			return nil, err
		}
		fresh, err := r.repack(ctx, keep, repack, used)
		if err != nil {
			return nil, fmt.Errorf("gc: %w", err)
		}
		keep = append(keep, fresh...)
		for _, p := range repack {
			dead[p.ID] = p.Size
		}
		stats.RepackedPacks = len(repack)
	}
	// The new index goes first: from then on every kept pack is reachable whatever else fails. It replaces
	// the old indexes that can be deleted; while every one is retained, writing it would only add another.
	written := ""
	if (len(dead) > 0 || len(st.indexes) > 32) && len(lockedIndexes) < len(st.indexes) {
		if len(keep) > 0 {
			if err := step("writing the new index"); err != nil {
				return nil, err
			}
			if written, err = r.writeIndex(ctx, keep); err != nil {
				return nil, fmt.Errorf("gc: %w", err)
			}
		}
		// Packs an old index still names (because that index could not be deleted) must stay, or the index
		// would point at missing data.
		for name, recs := range st.indexes {
			if lockedIndexes[name] {
				continue
			}
			if err := step("deleting index " + name); err != nil {
				return stats, err
			}
			if err := r.bucket.Delete(ctx, name); err != nil {
				stats.Undeletable = append(stats.Undeletable, describeDeleteError(name, err))
				for _, p := range recs {
					delete(dead, p.ID)
				}
				continue
			}
			stats.DeletedIndexes++
		}
	}
	// An index written since GC read the repository (by a writer that did not see the exclusive lock) keeps
	// every pack it names.
	if len(dead) > 0 {
		if err := step("listing new indexes"); err != nil {
			return stats, err
		}
		if err := r.keepNewlyIndexed(ctx, st, written, dead); err != nil {
			return stats, fmt.Errorf("gc: nothing more deleted: %w", err)
		}
	}
	ids := make([]string, 0, len(dead))
	for id := range dead {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := step("deleting pack " + layout.PackName(id)); err != nil {
			return stats, err
		}
		if err := r.bucket.Delete(ctx, layout.PackName(id)); err != nil {
			if gcerrors.Code(err) == gcerrors.NotFound {
				continue
			}
			stats.Undeletable = append(stats.Undeletable, describeDeleteError(layout.PackName(id), err))
			continue
		}
		stats.DeletedPacks++
		stats.DeletedBytes += dead[id]
	}
	held, err := r.locks(ctx)
	if err == nil {
		for _, h := range held {
			if h.info != nil && !h.info.live(timeNow().Add(-r.opts.LeaseDuration)) {
				if r.bucket.Delete(ctx, h.name) == nil {
					stats.DeletedLocks++
				}
			}
		}
	}
	sort.Strings(stats.Undeletable)
	r.idxMu.Lock()
	r.index, r.loaded = newIndex(), map[string]bool{}
	r.idxMu.Unlock()
	if err := r.LoadIndex(ctx); err != nil {
		return stats, fmt.Errorf("gc: reload index: %w", err)
	}
	return stats, nil
}

// keepNewlyIndexed removes from dead every pack named by an index that GC did not read at its start (st) and
// did not write itself. An index it cannot read stops the deletion: it might name any pack.
func (r *Repository) keepNewlyIndexed(ctx context.Context, st *repoState, written string, dead map[string]int64) error {
	names, err := listNames(ctx, r.bucket, layout.IndexPrefix)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, old := st.written[n]; old || n == written {
			continue
		}
		recs, err := r.readIndex(ctx, n)
		if err != nil {
			return fmt.Errorf("new index %s: %w", n, err)
		}
		for _, p := range recs {
			delete(dead, p.ID)
		}
	}
	return nil
}

// retainedUntil says whether an object written at written is still under the repository's object-lock
// retention, and until when. A minute of slack covers the clocks of the writer and the store.
func (r *Repository) retainedUntil(written, now time.Time) (time.Time, bool) {
	l := r.opts.ObjectLock
	if l == nil {
		return time.Time{}, false
	}
	until := written.Add(l.Period + time.Minute)
	return until, now.Before(until)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func describeDeleteError(name string, err error) string {
	if gcerrors.Code(err) == gcerrors.PermissionDenied {
		return fmt.Sprintf("%s: locked (object-lock retention), kept: %v", name, err)
	}
	return fmt.Sprintf("%s: %v", name, err)
}

// repack copies the used blobs of the given packs that no kept pack holds into new packs.
func (r *Repository) repack(ctx context.Context, keep, repack []*packRecord, used map[ID]bool) ([]*packRecord, error) {
	have := map[ID]bool{}
	for _, p := range keep {
		for _, b := range p.Blobs {
			have[b.ID] = true
		}
	}
	var out []*packRecord
	var cur *openPack
	defer func() {
		if cur != nil {
			cur.abort()
		}
	}()
	finish := func() error {
		if cur == nil {
			return nil
		}
		rec, err := r.finishPack(cur)
		cur = nil
		if err != nil {
			return err
		}
		out = append(out, rec)
		return nil
	}
	for _, p := range repack {
		data, err := readRange(ctx, r.bucket, layout.PackName(p.ID), 0, p.Size, nil)
		if err != nil {
			return nil, fmt.Errorf("repack %s: %w", layout.PackName(p.ID), err)
		}
		for _, b := range p.Blobs {
			if !used[b.ID] || have[b.ID] {
				continue
			}
			sealed := data[b.Offset : b.Offset+b.Length]
			// Verify before copying: repacking must never spread a damaged blob.
			loc := Loc{Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Type: b.Type}
			if _, err := r.openBlob(b.ID, loc, sealed, nil); err != nil {
				return nil, fmt.Errorf("repack %s: blob %s: %w", layout.PackName(p.ID), b.ID, err)
			}
			if cur == nil {
				if cur, err = r.newPack(ctx); err != nil {
					return nil, err
				}
			}
			if err := cur.add(b.Type, b.ID, sealed, int(b.RawLength)); err != nil {
				return nil, err
			}
			have[b.ID] = true
			if cur.size >= int64(r.cfg.PackSize) {
				if err := finish(); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return out, nil
}
