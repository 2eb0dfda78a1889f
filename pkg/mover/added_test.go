package mover

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// TestAddedBytes: what a backup added over its parent is what it stored, and stays so when an earlier,
// interrupted attempt stored the data first (the retry then stores almost nothing itself).
func TestAddedBytes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, _ := newRepo(t)
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	for i, n := range []int{4 << 20, 64 << 10, 3 << 10} {
		writeFile(t, filepath.Join(src, "d", string(rune('a'+i))), randomBytes(rng, n))
	}
	writeFile(t, filepath.Join(src, "keep", "same"), randomBytes(rng, 2<<20))
	id1, st1, err := Backup(ctx, r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap1, err := r.LoadSnapshot(ctx, id1)
	if err != nil {
		t.Fatal(err)
	}
	if added, err := r.AddedBytes(ctx, snap1, nil); err != nil || added != st1.StoredBytes {
		t.Errorf("first backup: added %d, %v; want its stored %d", added, err, st1.StoredBytes)
	}

	writeFile(t, filepath.Join(src, "d", "b"), randomBytes(rng, 64<<10))
	// The attempt that stores the change and is lost before its snapshot counts.
	lost, _, err := Backup(ctx, r, src, Options{Parent: id1})
	if err != nil {
		t.Fatal(err)
	}
	lostSnap, err := r.LoadSnapshot(ctx, lost)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.AddedBytes(ctx, lostSnap, snap1)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteSnapshot(ctx, lost); err != nil {
		t.Fatal(err)
	}
	id2, st2, err := Backup(ctx, r, src, Options{Parent: id1})
	if err != nil {
		t.Fatal(err)
	}
	snap2, err := r.LoadSnapshot(ctx, id2)
	if err != nil {
		t.Fatal(err)
	}
	added, err := r.AddedBytes(ctx, snap2, snap1)
	if err != nil {
		t.Fatal(err)
	}
	if added != want || added < 64<<10 || added > 256<<10 {
		t.Errorf("retried backup: added %d, want %d (the 64 KiB change and its directory listings)", added, want)
	}
	if st2.StoredBytes >= added {
		t.Errorf("the retry stored %d itself: the test did not reproduce an interrupted attempt", st2.StoredBytes)
	}
}
