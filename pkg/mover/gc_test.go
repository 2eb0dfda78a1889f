package mover

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pxb-dev/pxb/pkg/repo"
)

func TestDeleteSnapshotAndGC(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepo(t)
	srcA, srcB := t.TempDir(), t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	writeFile(t, filepath.Join(srcA, "a"), randomBytes(rng, 3<<20))
	writeFile(t, filepath.Join(srcB, "b"), randomBytes(rng, 3<<20))
	idA, _, err := Backup(ctx, r, srcA, Options{})
	if err != nil {
		t.Fatal(err)
	}
	idB, _, err := Backup(ctx, r, srcB, Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := len(objects(t, dir, "data"))
	if err := r.DeleteSnapshot(ctx, idA); err != nil {
		t.Fatal(err)
	}
	st, err := r.GC(ctx, repo.GCOptions{MinAge: -1}) // the packs are seconds old: no age guard here
	if err != nil {
		t.Fatal(err)
	}
	if st.DeletedPacks == 0 || st.DeletedBytes < 3<<20 || len(st.Undeletable) != 0 {
		t.Errorf("gc stats %+v: want A's ~3 MiB of packs deleted", st)
	}
	after := len(objects(t, dir, "data"))
	if after != before-st.DeletedPacks {
		t.Errorf("%d packs before, %d after, gc says %d deleted", before, after, st.DeletedPacks)
	}
	r2 := reopen(t, dir)
	mustCheck(t, r2, true)
	dst := filepath.Join(t.TempDir(), "b")
	if _, err := Restore(ctx, r2, idB, "", dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	diffTrees(t, describeTree(t, srcB), describeTree(t, dst))
	if err := r2.DeleteSnapshot(ctx, idA); err == nil {
		t.Error("deleting a deleted snapshot succeeded")
	}
}

func TestGCWaitsForWriters(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t)
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.GC(ctx, repo.GCOptions{})
	if !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("gc while a writer runs: got %v, want ErrLocked", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GC(ctx, repo.GCOptions{}); err != nil {
		t.Fatalf("gc after the writer closed: %v", err)
	}
}

func TestDeadWriterDoesNotBlock(t *testing.T) {
	ctx := context.Background()
	_, dir := newRepo(t)
	// A writer that dies keeps its lock object; with a short lease it expires and GC proceeds.
	short := repo.Options{LeaseDuration: 200 * time.Millisecond}
	r, err := repo.Open(ctx, openBucket(t, dir), testPass, short)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.NewWriter(ctx); err != nil { // never closed: the process "died"
		t.Fatal(err)
	}
	r2, err := repo.Open(ctx, openBucket(t, dir), testPass, short)
	if err != nil {
		t.Fatal(err)
	}
	// Still refreshing: the lock is live.
	if _, err := r2.GC(ctx, repo.GCOptions{}); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("gc under a live writer: %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	_, dir := newRepo(t)
	const n = 4
	srcs := make([]string, n)
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		srcs[i] = t.TempDir()
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		for j := range 20 {
			writeFile(t, filepath.Join(srcs[i], fmt.Sprintf("f%d", j)), textBytes(rng, rng.IntN(200<<10)))
		}
		// Shared content across writers exercises dedup races.
		writeFile(t, filepath.Join(srcs[i], "shared"), textBytes(rand.New(rand.NewPCG(99, 99)), 500<<10))
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := reopen(t, dir) // each writer is its own process in real life
			ids[i], _, errs[i] = Backup(ctx, r, srcs[i], Options{})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
	}
	r := reopen(t, dir)
	mustCheck(t, r, true)
	for i := range n {
		dst := filepath.Join(t.TempDir(), "r")
		if _, err := Restore(ctx, r, ids[i], "", dst, RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		diffTrees(t, describeTree(t, srcs[i]), describeTree(t, dst))
	}
}

// mostlyUnusedPack backs up a 600 KiB file and a 200 KiB one, which share a pack, then only the second,
// and deletes the first snapshot: three quarters of the pack are unused. It returns the repository, its
// directory, the source and the second snapshot.
func mostlyUnusedPack(t *testing.T, seed uint64) (*repo.Repository, string, string, string) {
	t.Helper()
	ctx := context.Background()
	r, dir := newRepo(t)
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(seed, seed+1))
	writeFile(t, filepath.Join(src, "gone"), randomBytes(rng, 600<<10))
	writeFile(t, filepath.Join(src, "kept"), randomBytes(rng, 200<<10))
	id1, _, err := Backup(ctx, r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "gone")); err != nil {
		t.Fatal(err)
	}
	id2, _, err := Backup(ctx, r, src, Options{Parent: id1})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteSnapshot(ctx, id1); err != nil {
		t.Fatal(err)
	}
	return r, dir, src, id2
}

func TestGCRepacksMostlyUnusedPacks(t *testing.T) {
	ctx := context.Background()
	r, dir, src, id2 := mostlyUnusedPack(t, 8)
	st, err := r.GC(ctx, repo.GCOptions{MinAge: -1}) // the packs are seconds old: no age guard here
	if err != nil {
		t.Fatal(err)
	}
	if st.RepackedPacks != 1 || st.DeletedBytes < 600<<10 {
		t.Errorf("gc %+v: want the shared pack repacked and ~800 KiB freed", st)
	}
	var total int64
	for _, p := range objects(t, dir, "data") {
		fi, _ := os.Stat(p)
		total += fi.Size()
	}
	if total > 300<<10 {
		t.Errorf("%d bytes of packs left, want about the 200 KiB still used", total)
	}
	r2 := reopen(t, dir)
	mustCheck(t, r2, true)
	dst := filepath.Join(t.TempDir(), "r")
	if _, err := Restore(ctx, r2, id2, "", dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	diffTrees(t, describeTree(t, src), describeTree(t, dst))
}
