package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/fileblob"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// shiftClock moves this package's clock by d for the rest of the test.
func shiftClock(t *testing.T, d time.Duration) {
	t.Helper()
	prev := timeNow
	timeNow = func() time.Time { return prev().Add(d) }
	t.Cleanup(func() { timeNow = prev })
}

func setHook[T any](t *testing.T, v *T, f T) {
	t.Helper()
	prev := *v
	*v = f
	t.Cleanup(func() { *v = prev })
}

// reopenRepo opens a second handle on r's bucket, as another process would.
func reopenRepo(t *testing.T, r *Repository, opts Options) *Repository {
	t.Helper()
	r2, err := Open(context.Background(), r.bucket, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return r2
}

func randomData(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// storeUnreferenced writes n data blobs through a writer and flushes them into packs and an index, without a
// snapshot: garbage for the next GC.
func storeUnreferenced(t *testing.T, r *Repository, seed uint64, n int) {
	t.Helper()
	ctx := context.Background()
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	for i := range n {
		data := randomData(seed+uint64(i), 64<<10)
		id := r.Hash(data)
		if w.Reserve(DataBlob, id) {
			if err := w.SaveBlob(DataBlob, id, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func countObjects(t *testing.T, r *Repository, prefix string) int {
	t.Helper()
	names, err := listNames(context.Background(), r.bucket, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return len(names)
}

// TestUnreadableLockBlocksEveryone: a lock that cannot be read, or that this pxb cannot decode (a newer
// format), counts as held by anyone: neither a writer nor GC proceeds, and the error names the lock. Only a
// lock that is gone when read (released between list and read) is ignored.
func TestUnreadableLockBlocksEveryone(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	holder, err := r.acquire(ctx, lockShared)
	if err != nil {
		t.Fatal(err)
	}
	held := holder.name
	setHook(t, &testHookReadLock, func(name string) error {
		if name == held {
			return errors.New("injected read failure")
		}
		return nil
	})
	other := reopenRepo(t, r, Options{})
	if w, err := other.NewWriter(ctx); err == nil || !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), held) {
		if w != nil {
			w.Close(ctx)
		}
		t.Fatalf("writer beside an unreadable lock: got %v, want ErrLocked naming %s", err, held)
	}
	if _, err := other.GC(ctx, GCOptions{}); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), held) {
		t.Fatalf("gc beside an unreadable lock: got %v, want ErrLocked naming %s", err, held)
	}
	if n := countObjects(t, r, layout.LockPrefix); n != 1 {
		t.Errorf("%d lock objects after the refusals, want only the holder's", n)
	}
	if err := holder.release(ctx); err != nil {
		t.Fatal(err)
	}

	// An exclusive lock of a newer format: this pxb cannot judge it, so it must not take a shared lease.
	li := lockInfo{Version: FormatVersion + 1, Kind: lockExclusive, Host: "newer", Created: time.Now(), Expires: time.Now().Add(time.Hour)}
	raw, _ := json.Marshal(li)
	newer := layout.LockName(randomHex(16))
	if err := r.writeObject(ctx, newer, seal(r.keys.aead, nil, raw, adLock), false); err != nil {
		t.Fatal(err)
	}
	if w, err := other.NewWriter(ctx); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), newer) ||
		!strings.Contains(err.Error(), "newer") {
		if w != nil {
			w.Close(ctx)
		}
		t.Fatalf("writer beside a newer-format exclusive lock: got %v, want ErrLocked naming %s", err, newer)
	}
	if err := r.bucket.Delete(ctx, newer); err != nil {
		t.Fatal(err)
	}

	// A lock released between list and read is verifiably gone: no conflict.
	gone, err := r.acquire(ctx, lockShared)
	if err != nil {
		t.Fatal(err)
	}
	goneName := gone.name
	setHook(t, &testHookReadLock, func(name string) error {
		if name == goneName {
			_ = gone.release(ctx)
		}
		return nil
	})
	w, err := other.NewWriter(ctx)
	if err != nil {
		t.Fatalf("writer beside a lock released while it looked: %v", err)
	}
	w.Close(ctx)
}

// TestGCClockAheadOfLiveWriter: GC's clock is 31 minutes ahead of a writer's that holds a fresh 30-minute
// lease. Within the clock-skew allowance the writer's lock is live, so GC must refuse; only once a lock is
// past Expires plus the allowance does it count as expired.
func TestGCClockAheadOfLiveWriter(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{LeaseDuration: 30 * time.Minute})
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	gc := reopenRepo(t, r, Options{LeaseDuration: 30 * time.Minute})
	shiftClock(t, 31*time.Minute)
	if _, err := gc.GC(ctx, GCOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("gc 31 minutes ahead of a live writer: got %v, want ErrLocked", err)
	}
	shiftClock(t, 5*time.Minute) // 36 minutes: past Expires plus the allowance
	if _, err := gc.GC(ctx, GCOptions{}); err != nil {
		t.Fatalf("gc past the writer's lease and the allowance: %v", err)
	}
}

// TestGCStopsWhenLeaseLapses: GC's lease cannot be refreshed (here: its clock runs past the lease without a
// refresh) after it has begun deleting; it must stop before the next deletion with an error saying so.
func TestGCStopsWhenLeaseLapses(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{LeaseDuration: 30 * time.Minute})
	storeUnreferenced(t, r, 1, 8)
	storeUnreferenced(t, r, 100, 8)
	packs := countObjects(t, r, layout.DataPrefix)
	if packs == 0 {
		t.Fatal("no packs written")
	}
	lapsed := false
	setHook(t, &testHookGC, func(step string) {
		if strings.HasPrefix(step, "deleting pack") && !lapsed {
			lapsed = true
			shiftClock(t, 30*time.Minute) // refreshes failed all along: the lease is over
		}
	})
	_, err := r.GC(ctx, GCOptions{MinAge: -1})
	if !errors.Is(err, ErrLeaseLost) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("gc whose lease lapsed: got %v, want ErrLeaseLost", err)
	}
	if n := countObjects(t, r, layout.DataPrefix); n != packs {
		t.Errorf("%d of %d packs left: gc deleted after its lease lapsed", n, packs)
	}

	// A writer likewise stops before its index and its snapshot.
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	data := randomData(7, 64<<10)
	id := r.Hash(data)
	if w.Reserve(DataBlob, id) {
		if err := w.SaveBlob(DataBlob, id, data); err != nil {
			t.Fatal(err)
		}
	}
	indexes := countObjects(t, r, layout.IndexPrefix)
	shiftClock(t, 30*time.Minute)
	if _, err := w.SaveSnapshot(ctx, &Snapshot{}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("snapshot after the writer's lease lapsed: got %v, want ErrLeaseLost", err)
	}
	if n := countObjects(t, r, layout.IndexPrefix); n != indexes {
		t.Errorf("an index was written after the lease lapsed")
	}
	if n := countObjects(t, r, layout.SnapshotPrefix); n != 0 {
		t.Errorf("a snapshot was written after the lease lapsed")
	}
}

// TestGCKeepsYoungPacks: a pack younger than the lease plus the clock-skew allowance is never deleted, even
// when nothing references it; once older, it goes.
func TestGCKeepsYoungPacks(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{LeaseDuration: 30 * time.Minute})
	storeUnreferenced(t, r, 1, 8)
	packs := countObjects(t, r, layout.DataPrefix)
	st, err := r.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := countObjects(t, r, layout.DataPrefix); n != packs || st.DeletedPacks != 0 {
		t.Fatalf("gc deleted fresh packs: %d of %d left, stats %+v", n, packs, st)
	}
	shiftClock(t, 36*time.Minute)
	if st, err = r.GC(ctx, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := countObjects(t, r, layout.DataPrefix); n != 0 || st.DeletedPacks != packs {
		t.Fatalf("gc of packs past the margin: %d left, stats %+v", n, st)
	}
}

// TestGCKeepsPacksOfNewIndexes: an index that appears while GC runs (written by a writer that did not see
// GC's lock) keeps every pack it names, though GC had found them unused.
func TestGCKeepsPacksOfNewIndexes(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	storeUnreferenced(t, r, 1, 8)
	st, err := r.readState(ctx)
	if err != nil || len(st.packs) == 0 {
		t.Fatalf("state: %v, %d packs", err, len(st.packs))
	}
	var rec *packRecord
	for _, pi := range st.packs {
		rec = pi.rec
		break
	}
	late := reopenRepo(t, r, Options{})
	setHook(t, &testHookGC, func(step string) {
		if step == "listing new indexes" {
			if _, err := late.writeIndex(ctx, []*packRecord{rec}); err != nil {
				t.Error(err)
			}
		}
	})
	if _, err := r.GC(ctx, GCOptions{MinAge: -1}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := r.bucket.Exists(ctx, layout.PackName(rec.ID)); !ok {
		t.Fatalf("gc deleted pack %s, named by an index written while it ran", rec.ID)
	}
	if _, err := reopenRepo(t, r, Options{}).Check(ctx, CheckOptions{ReadData: true}); err != nil {
		t.Fatalf("check after gc: %v", err)
	}
}

// TestLoadIndexForgetsDeletedPacks: after another process's GC has replaced the index objects and deleted
// unreferenced packs, LoadIndex on a handle that had loaded the old indexes forgets the deleted packs' blobs,
// so a writer stores them again instead of referencing missing data. Before, LoadIndex only added.
func TestLoadIndexForgetsDeletedPacks(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	storeUnreferenced(t, r, 1, 4) // blobs a killed backup left: indexed, in no snapshot
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	data := randomData(1, 64<<10)
	id := r.Hash(data)
	if !r.Index().Has(id) {
		t.Fatal("stored blob not in the index")
	}
	if _, err := reopenRepo(t, r, Options{}).GC(ctx, GCOptions{MinAge: -1}); err != nil {
		t.Fatal(err)
	}
	if n := countObjects(t, r, layout.DataPrefix); n != 0 {
		t.Fatalf("%d packs left by gc", n)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Index().Has(id) {
		t.Fatal("after a reload, the index still has a blob whose pack gc deleted")
	}
	// A writer on this handle stores it again, and the snapshot restores.
	id2, snap := saveOneFile(t, r, data)
	got, err := r.LoadBlob(ctx, id2, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob of snapshot %s: %v", snap, err)
	}
}

// saveOneFile writes a snapshot of one file holding data, as one blob, and returns the blob's ID and the
// snapshot's.
func saveOneFile(t *testing.T, r *Repository, data []byte) (ID, string) {
	t.Helper()
	ctx := context.Background()
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	id := r.Hash(data)
	if w.Reserve(DataBlob, id) {
		if err := w.SaveBlob(DataBlob, id, data); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := w.SaveSnapshot(ctx, oneFileSnapshot(t, w, id, len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return id, snap
}

func oneFileSnapshot(t *testing.T, w *Writer, id ID, size int) *Snapshot {
	t.Helper()
	var enc TreeEncoder
	n := Node{Name: "f", Type: NodeFile, Mode: 0o644, Size: int64(size), Links: 1, Content: []ID{id}}
	if b, err := enc.Add(&n); err != nil || b != nil {
		t.Fatalf("encode: %v", err)
	}
	tree, err := w.SaveTree(enc.Finish())
	if err != nil {
		t.Fatal(err)
	}
	return &Snapshot{Host: "h", Source: "/s", Root: Node{Type: NodeDir, Mode: 0o755, Tree: []ID{tree}}}
}

// TestWriterRefusesDanglingSnapshot: while a writer runs, an index it relied on and the pack it names are
// deleted (by a GC that did not see its lease). The writer finds the index gone before writing its snapshot,
// checks the snapshot's blobs against what is left, and fails with ErrDataGone instead of writing a snapshot
// that references missing data.
func TestWriterRefusesDanglingSnapshot(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	storeUnreferenced(t, r, 1, 1)
	st, err := r.readState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	data := randomData(1, 64<<10)
	id := r.Hash(data)
	if w.Reserve(DataBlob, id) {
		t.Fatal("the stored blob was not found in the index")
	}
	snap := oneFileSnapshot(t, w, id, len(data))
	// What a GC that ignored the writer's lease would do.
	for name, recs := range st.indexes {
		for _, p := range recs {
			if err := r.bucket.Delete(ctx, layout.PackName(p.ID)); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.bucket.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.SaveSnapshot(ctx, snap); !errors.Is(err, ErrDataGone) {
		t.Fatalf("snapshot over deleted data: got %v, want ErrDataGone", err)
	}
	if n := countObjects(t, r, layout.SnapshotPrefix); n != 0 {
		t.Fatalf("%d snapshots written over deleted data", n)
	}
}

// TestGCStopsWhenRefreshFails: every refresh of GC's lease fails (the store refuses the new lock object);
// once the lease is about to run out, GC stops before its next deletion with an error that says why, and
// deletes nothing after that point.
func TestGCStopsWhenRefreshFails(t *testing.T) {
	ctx := context.Background()
	const lease = 300 * time.Millisecond
	r := fileRepo(t, Options{LeaseDuration: lease})
	storeUnreferenced(t, r, 1, 8)
	packs := countObjects(t, r, layout.DataPrefix)
	setHook(t, &testHookRefresh, func() error { return errors.New("injected refresh failure") })
	waited := false
	setHook(t, &testHookGC, func(step string) {
		if strings.HasPrefix(step, "deleting pack") && !waited {
			waited = true
			time.Sleep(lease + lease/2) // refreshes run and fail meanwhile
		}
	})
	_, err := r.GC(ctx, GCOptions{MinAge: -1})
	if !errors.Is(err, ErrLeaseLost) || !strings.Contains(err.Error(), "injected refresh failure") {
		t.Fatalf("gc whose refreshes fail: got %v, want ErrLeaseLost naming the refresh error", err)
	}
	if n := countObjects(t, r, layout.DataPrefix); n != packs {
		t.Errorf("%d of %d packs left: gc deleted after its lease lapsed", n, packs)
	}
}

// TestStaleUnreadableLock: a lock no one can read (sealed with a key no one holds any more, or garbage) holds
// the repository while it could belong to a live holder, and no longer once the store's times show it older
// than a lease, which no live holder's lock object gets.
func TestStaleUnreadableLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	r, err := Init(ctx, b, []byte("pw"), InitOptions{KDF: KDFParams{Time: 1, Memory: 64, Threads: 1}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	name := layout.LockName(randomHex(16))
	if err := b.WriteAll(ctx, name, []byte("sealed with a key this repository does not have"), nil); err != nil {
		t.Fatal(err)
	}
	if w, err := r.NewWriter(ctx); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), name) {
		if w != nil {
			w.Close(ctx)
		}
		t.Fatalf("writer beside a fresh unreadable lock: %v, want ErrLocked naming %s", err, name)
	}
	// Just younger than a lease plus the skew allowance: still held.
	young := time.Now().Add(-30*time.Minute - 4*time.Minute)
	if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(name)), young, young); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GC(ctx, GCOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("gc beside an unreadable lock 34 minutes old: %v, want ErrLocked", err)
	}
	old := time.Now().Add(-30*time.Minute - 6*time.Minute)
	if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(name)), old, old); err != nil {
		t.Fatal(err)
	}
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatalf("writer beside an unreadable lock 36 minutes old: %v", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GC(ctx, GCOptions{}); err != nil {
		t.Fatalf("gc beside an unreadable lock 36 minutes old: %v", err)
	}
}
