package mover

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pxb-dev/pxb/pkg/repo"
)

// TestCrashWriterProcess is the child of TestCrashSafety: it backs up forever until killed.
func TestCrashWriterProcess(t *testing.T) {
	dir, src := os.Getenv("PXB_CRASH_REPO"), os.Getenv("PXB_CRASH_SRC")
	if dir == "" {
		t.Skip("only run as the child of TestCrashSafety")
	}
	ctx := context.Background()
	r, err := repo.Open(ctx, openBucket(t, dir), testPass, repo.Options{LeaseDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		// Touch a file so every round has new data to store.
		writeFile(t, filepath.Join(src, "round"), randomBytes(rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0)), 2<<20))
		if _, _, err := Backup(ctx, r, src, Options{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashSafety kills a writer with SIGKILL at random points; each time the repository must pass check, the
// next backup must work, and garbage collection must clean up what the dead writers left.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	ctx := context.Background()
	_, dir := newRepo(t)
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(11, 12))
	for i := range 12 {
		writeFile(t, filepath.Join(src, fmt.Sprintf("f%02d", i)), randomBytes(rng, 1<<20+rng.IntN(1<<20)))
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	kills := rand.New(rand.NewPCG(seed, 0))
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriterProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PXB_CRASH_REPO="+dir, "PXB_CRASH_SRC="+src)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(20+kills.IntN(600)) * time.Millisecond
		time.Sleep(delay)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()

		r := reopen(t, dir)
		res, err := r.Check(ctx, repo.CheckOptions{ReadData: true})
		if err != nil {
			t.Fatalf("round %d (killed after %s): check: %v", round, delay, err)
		}
		t.Logf("round %d: killed after %s; %d snapshots, %d packs, %d leftovers", round, delay, res.Snapshots, res.Packs, len(res.Warnings))
		snaps, err := r.Snapshots(ctx)
		if err != nil {
			t.Fatal(err)
		}
		parent := ""
		if len(snaps) > 0 {
			parent = snaps[len(snaps)-1].ID
		}
		if _, _, err := Backup(ctx, r, src, Options{Parent: parent}); err != nil {
			t.Fatalf("round %d (killed after %s): backup after the crash: %v", round, delay, err)
		}
	}
	// The dead writers' leases (1 s) have expired; GC removes their unindexed packs.
	time.Sleep(1500 * time.Millisecond)
	r, err := repo.Open(ctx, openBucket(t, dir), testPass, repo.Options{LeaseDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.GC(ctx, repo.GCOptions{}); err != nil {
		t.Fatalf("gc after crashes: %v", err)
	}
	res := mustCheck(t, r, true)
	if len(res.Warnings) != 0 {
		t.Errorf("after gc: %v", res.Warnings)
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "r")
	if _, err := Restore(ctx, r, snaps[len(snaps)-1].ID, "", dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	diffTrees(t, describeTree(t, src), describeTree(t, dst))
}
