//go:build integration

package repo

import (
	"context"
	"errors"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestLeasesOnS3 runs the lease protocol against real S3 servers: GC with a clock 31 minutes ahead of a live
// writer is refused; GC is refused while a reader's lease lives and runs once it is released; and a writer
// whose index was deleted under it (by a GC that ignored its lease) fails instead of writing a snapshot over
// missing data.
func TestLeasesOnS3(t *testing.T) {
	onS3(t, func(t *testing.T, ctx context.Context, st *testbed.Store, b *blob.Bucket, r *Repository) {
		other := reopenRepo(t, r, Options{})

		w, err := r.NewWriter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		prev := timeNow
		timeNow = func() time.Time { return prev().Add(31 * time.Minute) }
		_, err = other.GC(ctx, GCOptions{})
		timeNow = prev
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("gc 31 minutes ahead of a live writer: got %v, want ErrLocked", err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}

		storeUnreferenced(t, r, 1, 1)
		lease, err := other.ReadLease(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.GC(ctx, GCOptions{MinAge: -1}); !errors.Is(err, ErrLocked) {
			t.Fatalf("gc beside a reader: got %v, want ErrLocked", err)
		}
		if n := countObjects(t, r, layout.DataPrefix); n == 0 {
			t.Fatal("no packs")
		}
		if err := lease.Release(ctx); err != nil {
			t.Fatal(err)
		}

		storeUnreferenced(t, r, 50, 1)
		st0, err := r.readState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w, err = r.NewWriter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close(ctx)
		data := randomData(50, 64<<10)
		id := r.Hash(data)
		if w.Reserve(DataBlob, id) {
			t.Fatal("the stored blob was not found in the index")
		}
		snap := oneFileSnapshot(t, w, id, len(data))
		for name, recs := range st0.indexes {
			for _, p := range recs {
				if err := b.Delete(ctx, layout.PackName(p.ID)); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Delete(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.SaveSnapshot(ctx, snap); !errors.Is(err, ErrDataGone) {
			t.Fatalf("snapshot over deleted data: got %v, want ErrDataGone", err)
		}
		if n := countObjects(t, r, layout.SnapshotPrefix); n != 0 {
			t.Fatalf("%d snapshots written over deleted data", n)
		}
	})
}
