package repo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"gocloud.dev/blob"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// CheckOptions select how deep Check goes.
type CheckOptions struct {
	// ReadData decrypts, decompresses and hashes every blob of the selected packs.
	ReadData bool
	// SubsetPercent limits ReadData to a random share of packs (0 or 100: all).
	SubsetPercent float64
	// ReadPack, when set, chooses the packs ReadData reads instead of SubsetPercent (see PackSlice).
	ReadPack func(packID string) bool
}

// CheckResult lists problems. Errors are damage; Warnings are leftovers that garbage collection removes.
type CheckResult struct {
	Errors    []string
	Warnings  []string
	Snapshots int
	Packs     int
	Blobs     int
	ReadPacks int
	// ReadBytes is the size of the packs ReadData read.
	ReadBytes int64
	// DamagedPacks are the IDs of the packs found missing, truncated, disagreeing with their index or, with
	// ReadData, holding a blob that does not decrypt or hash to its ID; sorted. SnapshotsUsingPacks names the
	// snapshots they break.
	DamagedPacks []string
}

// ErrCheckFailed is returned (wrapped) when Check finds damage.
var ErrCheckFailed = errors.New("repository check found errors")

type packInfo struct {
	rec   *packRecord
	index string
}

// repoState is the stored index, read object by object so problems can be attributed.
type repoState struct {
	indexes map[string][]*packRecord
	written map[string]time.Time // index name -> when it was written
	packs   map[string]packInfo  // pack id -> its record and the first index naming it
	stored  map[string]*blob.ListObject
	// foreignPacks are named by index objects sealed with a stray key slot's key (see StrayKeys): not
	// this repository's to read, and never garbage.
	foreignPacks map[string]bool
	errs         []string
	warns        []string
}

func (r *Repository) readState(ctx context.Context) (*repoState, error) {
	st := &repoState{indexes: map[string][]*packRecord{}, written: map[string]time.Time{}, packs: map[string]packInfo{},
		stored: map[string]*blob.ListObject{}, foreignPacks: map[string]bool{}}
	var names []string
	err := listObjects(ctx, r.bucket, layout.IndexPrefix, func(o *blob.ListObject) {
		names = append(names, o.Key)
		st.written[o.Key] = o.ModTime
	})
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		recs, err := r.readIndex(ctx, n)
		if isForeign(err) {
			ids, ferr := r.foreignPacks(ctx, n)
			if ferr != nil {
				return nil, ferr
			}
			for _, id := range ids {
				st.foreignPacks[id] = true
			}
			continue
		}
		if isReadFailure(err) {
			return nil, err
		}
		if err != nil {
			st.errs = append(st.errs, err.Error())
			continue
		}
		st.indexes[n] = recs
		for _, p := range recs {
			if prev, ok := st.packs[p.ID]; ok {
				if !samePack(prev.rec, p) {
					st.errs = append(st.errs, fmt.Sprintf("indexes %s and %s disagree about pack %s", prev.index, n, layout.PackName(p.ID)))
				}
				continue
			}
			st.packs[p.ID] = packInfo{rec: p, index: n}
		}
	}
	err = listObjects(ctx, r.bucket, layout.DataPrefix, func(o *blob.ListObject) {
		if id := layout.PackIDFromName(o.Key); id != "" {
			st.stored[id] = o
		}
	})
	return st, err
}

func samePack(a, b *packRecord) bool {
	if a.Size != b.Size || len(a.Blobs) != len(b.Blobs) {
		return false
	}
	for i := range a.Blobs {
		if a.Blobs[i] != b.Blobs[i] {
			return false
		}
	}
	return true
}

// Check verifies the repository's structure: every index readable, every indexed pack present with the size and
// header its index states, every snapshot's trees readable and every referenced blob indexed. With ReadData it
// also verifies blob contents. A read that the store or the connection fails judges nothing: the check then
// ends incomplete, with an error that is not ErrCheckFailed, and no pack named damaged for it.
func (r *Repository) Check(ctx context.Context, opts CheckOptions) (*CheckResult, error) {
	// Snapshots are listed before the indexes are read: a writer stores its index before its snapshot, so the
	// indexes read next name every blob of every snapshot listed, though backups finish beside the check.
	snaps, err := r.snapshotNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	st, err := r.readState(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if testHookCheckRead != nil {
		testHookCheckRead()
	}
	res := &CheckResult{Errors: st.errs, Packs: len(st.packs)}
	r.installIndex(st)
	strays, err := r.StrayKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	for _, s := range strays {
		if len(s.Indexes)+len(s.Snapshots) > 0 {
			res.Errors = append(res.Errors, s.Problem())
		} else {
			res.Warnings = append(res.Warnings, s.Problem())
		}
	}

	for _, k := range r.SkippedKeySlots() {
		res.Warnings = append(res.Warnings, fmt.Sprintf("key slot %s was skipped when the repository was opened: %s; "+
			"it opens through another slot (unless someone made that slot on purpose, delete it)", k.Name, k.Problem))
	}

	ids := make([]string, 0, len(st.packs))
	for id := range st.packs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for id, o := range st.stored {
		if _, ok := st.packs[id]; !ok && !st.foreignPacks[id] {
			res.Warnings = append(res.Warnings, fmt.Sprintf("pack %s (%d bytes) is in no index: left by an interrupted writer; gc removes it", o.Key, o.Size))
		}
	}
	var mu sync.Mutex
	report := func(format string, a ...any) {
		mu.Lock()
		res.Errors = append(res.Errors, fmt.Sprintf(format, a...))
		mu.Unlock()
	}
	damaged := map[string]bool{}
	damage := func(id string) {
		mu.Lock()
		damaged[id] = true
		mu.Unlock()
	}
	// unread are the reads the store or the connection failed: they judge nothing, and make the check
	// incomplete instead of reporting damage.
	var unread []error
	notRead := func(err error) bool {
		if !isReadFailure(err) {
			return false
		}
		mu.Lock()
		unread = append(unread, err)
		mu.Unlock()
		return true
	}
	var good []string
	for _, id := range ids {
		pi := st.packs[id]
		res.Blobs += len(pi.rec.Blobs)
		o, ok := st.stored[id]
		switch {
		case !ok:
			damage(id)
			report("pack %s (listed in %s) is missing", layout.PackName(id), pi.index)
		case o.Size != pi.rec.Size:
			damage(id)
			report("pack %s is %d bytes but %s says %d (truncated or replaced)", layout.PackName(id), o.Size, pi.index, pi.rec.Size)
		default:
			good = append(good, id)
		}
	}
	parallel(ctx, 8, good, func(id string) {
		pi := st.packs[id]
		hdr, err := r.readPackHeader(ctx, id, pi.rec.Size)
		if notRead(err) {
			return
		}
		if err != nil {
			damage(id)
			report("%v", err)
			return
		}
		if err := compareHeader(hdr, pi.rec.Blobs); err != nil {
			damage(id)
			report("index %s disagrees with pack %s: %v", pi.index, layout.PackName(id), err)
		}
	})

	res.Snapshots = len(snaps)
	seenTrees := map[ID]bool{}
	for _, sid := range snaps {
		s, err := r.LoadSnapshot(ctx, sid)
		if isForeign(err) {
			res.Snapshots-- // named with its stray key slot above
			continue
		}
		if err != nil && r.snapshotGone(ctx, sid) {
			res.Snapshots-- // deleted since it was listed: a backup deleted beside the check
			continue
		}
		if err != nil {
			report("%v", err)
			continue
		}
		if err := r.checkTree(ctx, s.Root.Tree, "/", seenTrees, func(id ID) {}); err != nil && !notRead(err) {
			report("snapshot %s: %v", sid, err)
		}
	}

	if opts.ReadData {
		var sel []string
		if opts.ReadPack != nil {
			sel = slices.DeleteFunc(slices.Clone(good), func(id string) bool { return !opts.ReadPack(id) })
		} else {
			sel = selectPacks(good, opts.SubsetPercent)
		}
		res.ReadPacks = len(sel)
		for _, id := range sel {
			res.ReadBytes += st.packs[id].rec.Size
		}
		// Whole packs are read into memory: few at once.
		parallel(ctx, 2, sel, func(id string) {
			errs := r.verifyPackData(ctx, st.packs[id].rec)
			if len(errs) == 1 && notRead(errs[0]) {
				return
			}
			if len(errs) > 0 {
				damage(id)
			}
			for _, e := range errs {
				report("%v", e)
			}
		})
	}
	for id := range damaged {
		res.DamagedPacks = append(res.DamagedPacks, id)
	}
	sort.Strings(res.DamagedPacks)
	sort.Strings(res.Errors)
	sort.Strings(res.Warnings)
	var out error
	if len(res.Errors) > 0 {
		out = fmt.Errorf("%w: %d problems, first: %s", ErrCheckFailed, len(res.Errors), res.Errors[0])
	}
	if len(unread) > 0 {
		out = errors.Join(out, fmt.Errorf("check incomplete: %d reads failed, judging nothing of what they were to read (run the check again): %w",
			len(unread), unread[0]))
	}
	return res, out
}

// SnapshotsUsingPacks names, for each of packIDs that a snapshot needs, the snapshots whose trees reference a
// blob in it (a tree or file content), oldest first: what damage to those packs breaks. Packs no snapshot
// needs are left out. A tree that cannot be read is skipped with what it references (its own blob still
// counts), so that damage elsewhere hides no other snapshot; Check names such trees.
func (r *Repository) SnapshotsUsingPacks(ctx context.Context, packIDs []string) (map[string][]*Snapshot, error) {
	out := map[string][]*Snapshot{}
	if len(packIDs) == 0 {
		return out, nil
	}
	if err := r.LoadIndex(ctx); err != nil {
		return nil, err
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	wanted := map[string]bool{}
	for _, id := range packIDs {
		wanted[id] = true
	}
	x := r.Index()
	// packsOf memoizes the wanted packs a tree reaches, so that trees that snapshots share are read once.
	packsOf := map[ID]map[string]bool{}
	var walk func(tree ID) map[string]bool
	walk = func(tree ID) map[string]bool {
		if p, ok := packsOf[tree]; ok {
			return p
		}
		found := map[string]bool{}
		packsOf[tree] = found
		add := func(id ID) {
			if _, pack, ok := x.Lookup(id); ok && wanted[pack] {
				found[pack] = true
			}
		}
		add(tree)
		raw, err := r.LoadBlob(ctx, tree, nil)
		if err != nil {
			return found
		}
		nodes, err := DecodeTree(raw)
		if err != nil {
			return found
		}
		for i := range nodes {
			for _, c := range nodes[i].Content {
				add(c)
			}
			if nodes[i].Type == NodeDir {
				for _, t := range nodes[i].Tree {
					for p := range walk(t) {
						found[p] = true
					}
				}
			}
		}
		return found
	}
	for _, s := range snaps {
		used := map[string]bool{}
		for _, t := range s.Root.Tree {
			for p := range walk(t) {
				used[p] = true
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for p := range used {
			out[p] = append(out[p], s)
		}
	}
	return out, nil
}

func (r *Repository) installIndex(st *repoState) {
	x := newIndex()
	for _, pi := range st.packs {
		x.addPack(pi.rec)
	}
	r.idxMu.Lock()
	r.index = x
	r.loaded = map[string]bool{}
	for n := range st.indexes {
		r.loaded[n] = true
	}
	r.idxMu.Unlock()
}

// testHookCheckRead, when set, is called by Check once it has listed the snapshots and read the indexes.
var testHookCheckRead func()

// snapshotGone reports whether snapshot id is verifiably gone (deleted since it was listed).
func (r *Repository) snapshotGone(ctx context.Context, id string) bool {
	ok, err := r.bucket.Exists(ctx, layout.SnapshotName(id))
	return err == nil && !ok
}

func (r *Repository) snapshotNames(ctx context.Context) ([]string, error) {
	names, err := listNames(ctx, r.bucket, layout.SnapshotPrefix)
	for i := range names {
		names[i] = names[i][len(layout.SnapshotPrefix):]
	}
	return names, err
}

// checkTree walks a directory listing, verifying that every blob it references is indexed; used receives every
// referenced blob ID.
func (r *Repository) checkTree(ctx context.Context, tree []ID, path string, seen map[ID]bool, used func(ID)) error {
	var errs []error
	for _, id := range tree {
		used(id)
		if seen[id] {
			continue
		}
		seen[id] = true
		raw, err := r.LoadBlob(ctx, id, nil)
		if err != nil {
			return fmt.Errorf("directory %s: %w", path, err)
		}
		nodes, err := DecodeTree(raw)
		if err != nil {
			return fmt.Errorf("directory %s: tree blob %s: %w", path, id, err)
		}
		for i := range nodes {
			n := &nodes[i]
			p := path + n.Name
			for _, c := range n.Content {
				used(c)
				if _, _, ok := r.index.Lookup(c); !ok {
					errs = append(errs, fmt.Errorf("file %s: blob %s is not in any index", p, c))
				}
			}
			if n.Type == NodeDir {
				if err := r.checkTree(ctx, n.Tree, p+"/", seen, used); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func compareHeader(hdr, idx []blobEntry) error {
	if len(hdr) != len(idx) {
		return fmt.Errorf("pack holds %d blobs, index lists %d", len(hdr), len(idx))
	}
	for i := range hdr {
		if hdr[i] != idx[i] {
			return fmt.Errorf("blob %d: pack has %s %s at %d+%d, index has %s %s at %d+%d", i,
				hdr[i].Type, hdr[i].ID.Short(), hdr[i].Offset, hdr[i].Length,
				idx[i].Type, idx[i].ID.Short(), idx[i].Offset, idx[i].Length)
		}
	}
	return nil
}

func (r *Repository) verifyPackData(ctx context.Context, p *packRecord) []error {
	data, err := readRange(ctx, r.bucket, layout.PackName(p.ID), 0, p.Size, nil)
	if err != nil {
		return []error{fmt.Errorf("pack %s: %w", layout.PackName(p.ID), err)}
	}
	var errs []error
	var buf []byte
	for _, b := range p.Blobs {
		loc := Loc{Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Type: b.Type}
		out, err := r.openBlob(b.ID, loc, data[b.Offset:b.Offset+b.Length], buf)
		if err != nil {
			errs = append(errs, fmt.Errorf("pack %s: %s blob %s at offset %d: %w", layout.PackName(p.ID), b.Type, b.ID, b.Offset, err))
			continue
		}
		buf = out
	}
	return errs
}

// selectPacks picks a random subset of about percent of the packs (all for 0 or >= 100).
func selectPacks(ids []string, percent float64) []string {
	if percent <= 0 || percent >= 100 {
		return ids
	}
	var out []string
	for _, id := range ids {
		if rand.Float64()*100 < percent {
			out = append(out, id)
		}
	}
	if len(out) == 0 && len(ids) > 0 {
		out = ids[rand.IntN(len(ids)):][:1]
	}
	return out
}

// PackSlice is which of n slices pack packID falls in: a pack's slice never changes, and pack IDs are random,
// so slices hold nearly equal shares of the packs. Reading one slice per check, in turn, reads every pack
// once per n checks.
func PackSlice(packID string, n int) int {
	if n <= 1 {
		return 0
	}
	// The first 8 hex digits are 32 random bits.
	v, err := strconv.ParseUint(packID[:min(8, len(packID))], 16, 32)
	if err != nil {
		return 0
	}
	return int(v % uint64(n))
}

// parallel runs fn over items, at most n at once.
func parallel(ctx context.Context, n int, items []string, fn func(string)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, n)
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(it)
		}()
	}
	wg.Wait()
}
