package repo_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gocloud.dev/blob/fileblob"

	"github.com/pxb-dev/pxb/pkg/repo"
)

// TestPlanReadsMergesNeighbours stores blobs in two packs and checks that blobs lying close together in a
// pack are fetched with one read, in storage order, that a blob asked for twice is delivered twice, and
// that every blob comes back whole.
func TestPlanReadsMergesNeighbours(t *testing.T) {
	ctx := context.Background()
	b, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, b, []byte("pass"), repo.InitOptions{KDF: repo.KDFParams{Time: 1, Memory: 64, Threads: 1},
		PackSize: 1 << 20}, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var ids []repo.ID
	content := map[repo.ID][]byte{}
	save := func(n int) {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		id := r.Hash(data)
		if !w.Reserve(repo.DataBlob, id) {
			t.Fatal("random blob already stored")
		}
		if err := w.SaveBlob(repo.DataBlob, id, data); err != nil {
			t.Fatal(err)
		}
		ids, content[id] = append(ids, id), data
	}
	// Pack 1: ten blobs of 50 KiB, then one of 1 MiB that closes it. Pack 2: one more small blob.
	for range 10 {
		save(50 << 10)
	}
	save(1 << 20)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	save(10 << 10)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Blobs 3, 1, 2 and 8 lie within 256 KiB of each other; blob 11 is in the other pack; blob 2 is asked twice.
	want := []repo.ID{ids[3], ids[1], ids[11], ids[2], ids[8], ids[2]}
	reads, err := r.PlanReads(want)
	if err != nil {
		t.Fatal(err)
	}
	if len(reads) != 2 {
		t.Fatalf("planned %d reads, want 2 (one per pack)", len(reads))
	}
	var order []int
	for _, p := range reads {
		got := p.Indexes()
		err := r.LoadRead(ctx, p, func(i int, data []byte) error {
			if !bytes.Equal(data, content[want[i]]) {
				t.Errorf("blob %d: wrong content", i)
			}
			order = append(order, i)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, order[len(order)-len(got):]) {
			t.Errorf("read delivered %v, Indexes says %v", order[len(order)-len(got):], got)
		}
	}
	slices.Sort(order)
	if !slices.Equal(order, []int{0, 1, 2, 3, 4, 5}) {
		t.Errorf("delivered %v, want every position once", order)
	}

	// Blob 10 starts 450 KiB after blob 0 ends: reading the gap would cost more than a second request.
	reads, err = r.PlanReads([]repo.ID{ids[0], ids[10]})
	if err != nil {
		t.Fatal(err)
	}
	if len(reads) != 2 {
		t.Errorf("blobs 450 KiB apart: planned %d reads, want 2", len(reads))
	}
	if _, err := r.PlanReads([]repo.ID{{1, 2, 3}}); err == nil || !strings.Contains(err.Error(), "not in any index") {
		t.Errorf("planning an unknown blob: got %v, want an error saying it is not in any index", err)
	}
}
