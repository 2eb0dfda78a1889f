package store

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"gocloud.dev/blob/fileblob"

	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/repo"
)

// TestStoreReadsHoldALease: once a store has read from the repository (as a restore does), it holds a shared
// lease until Close, so garbage collection cannot delete what the restore goes on to read.
func TestStoreReadsHoldALease(t *testing.T) {
	ctx := context.Background()
	b, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pw := []byte("pw")
	r, err := repo.Init(ctx, b, pw, repo.InitOptions{KDF: repo.KDFParams{Time: 1, Memory: 64, Threads: 1}}, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := newRepoStore(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	unit := layout.BackupPrefix("ns", "b")
	if err := w.Put(ctx, unit+"objects.json", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	open := func() *repo.Repository {
		r, err := repo.Open(ctx, b, pw, repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rd, err := newRepoStore(ctx, open())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rd.Get(ctx, unit+"objects.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open().GC(ctx, repo.GCOptions{MinAge: -1}); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("gc while a store reads: got %v, want ErrLocked", err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := rd.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := open().GC(ctx, repo.GCOptions{MinAge: -1}); err != nil {
		t.Fatalf("gc after the store closed: %v", err)
	}
}
