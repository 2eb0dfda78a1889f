package mover

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/pxb-dev/pxb/pkg/repo"
)

// TestGCBetweenIndexLoadAndLease: a garbage collection (without its age guard) runs in another process just
// after a backup has read the index and its parent snapshot, while the only snapshot that used the data is
// forgotten. It must not remove what the backup then takes as stored: either GC is refused, or the backup
// fails; the snapshot it writes, if any, restores byte for byte. Before writers took their lease first, GC
// went ahead and the new snapshot pointed at deleted packs.
func TestGCBetweenIndexLoadAndLease(t *testing.T) {
	for _, withParent := range []bool{true, false} {
		name := "dedup"
		if withParent {
			name = "parent"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r, dir := newRepo(t)
			src := t.TempDir()
			rng := rand.New(rand.NewPCG(21, 22))
			writeFile(t, filepath.Join(src, "a"), randomBytes(rng, 700<<10))
			writeFile(t, filepath.Join(src, "b"), textBytes(rng, 300<<10))
			id1, _, err := Backup(ctx, r, src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			opts := Options{}
			if withParent {
				opts.Parent = id1
			} else if err := r.DeleteSnapshot(ctx, id1); err != nil {
				t.Fatal(err)
			}
			var gcErr error
			gcRan := false
			testHookIndexLoaded = func() {
				testHookIndexLoaded = nil
				other := reopen(t, dir)
				if withParent {
					if err := other.DeleteSnapshot(ctx, id1); err != nil {
						t.Error(err)
					}
				}
				_, gcErr = other.GC(ctx, repo.GCOptions{MinAge: -1})
				gcRan = true
			}
			t.Cleanup(func() { testHookIndexLoaded = nil })
			id2, _, err := Backup(ctx, r, src, opts)
			if !gcRan {
				t.Fatal("the hook did not run")
			}
			if gcErr == nil {
				t.Log("gc ran beside the backup")
			} else if !errors.Is(gcErr, repo.ErrLocked) {
				t.Fatalf("gc beside a backup: %v", gcErr)
			}
			if err != nil {
				t.Logf("backup failed cleanly: %v", err)
				if n := len(objects(t, dir, "snapshots")); n != 0 {
					t.Fatalf("a failed backup left %d snapshots", n)
				}
				return
			}
			r2 := reopen(t, dir)
			mustCheck(t, r2, true)
			dst := filepath.Join(t.TempDir(), "r")
			if _, err := Restore(ctx, r2, id2, "", dst, RestoreOptions{}); err != nil {
				t.Fatalf("restore of the snapshot written beside gc: %v", err)
			}
			diffTrees(t, describeTree(t, src), describeTree(t, dst))
		})
	}
}

// TestGCDuringRestore: a garbage collection that would repack the pack a restore is reading (and delete the
// old copy) starts after the restore has loaded its index and snapshot. The restore's shared lease makes GC
// refuse; the restore completes byte for byte, and once it is done GC runs. Without the lease, GC deleted
// the pack and the restore failed.
func TestGCDuringRestore(t *testing.T) {
	ctx := context.Background()
	r, dir, src, id2 := mostlyUnusedPack(t, 31)
	var gcErr error
	gcRan := false
	testHookRestoreStarted = func() {
		testHookRestoreStarted = nil
		_, gcErr = reopen(t, dir).GC(ctx, repo.GCOptions{MinAge: -1})
		gcRan = true
	}
	t.Cleanup(func() { testHookRestoreStarted = nil })
	dst := filepath.Join(t.TempDir(), "r")
	if _, err := Restore(ctx, r, id2, "", dst, RestoreOptions{}); err != nil {
		t.Fatalf("restore beside gc: %v", err)
	}
	if !gcRan {
		t.Fatal("the hook did not run")
	}
	if !errors.Is(gcErr, repo.ErrLocked) {
		t.Errorf("gc during a restore: got %v, want ErrLocked", gcErr)
	}
	diffTrees(t, describeTree(t, src), describeTree(t, dst))
	if n := len(objects(t, dir, "locks")); n != 0 {
		t.Errorf("%d locks left after the restore", n)
	}
	st, err := reopen(t, dir).GC(ctx, repo.GCOptions{MinAge: -1})
	if err != nil || st.RepackedPacks == 0 {
		t.Fatalf("gc after the restore: %+v, %v; want the pack repacked", st, err)
	}
}
