package repo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/repo"
)

// treeRepo stores 30 one-file listings d00..d29 in one pack and, in another, a root listing of directories
// d00..d29 plus d30, which has the same listing as d00. It returns the repository, its bucket, the root
// listing and the name of the subdirectories' pack.
func treeRepo(t *testing.T) (*repo.Repository, *blob.Bucket, []repo.ID, string) {
	t.Helper()
	ctx := context.Background()
	b, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, b, []byte("pass"), repo.InitOptions{KDF: repo.KDFParams{Time: 1, Memory: 64, Threads: 1}},
		repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listing := func(nodes ...repo.Node) []repo.ID {
		var e repo.TreeEncoder
		for i := range nodes {
			if full, err := e.Add(&nodes[i]); err != nil || full != nil {
				t.Fatalf("encode listing: %v (full: %v)", err, full != nil)
			}
		}
		id, err := w.SaveTree(e.Finish())
		if err != nil {
			t.Fatal(err)
		}
		return []repo.ID{id}
	}
	var root []repo.Node
	for i := range 30 {
		tree := listing(repo.Node{Name: fmt.Sprintf("file-of-d%02d", i), Type: repo.NodeFile, Mode: 0o644})
		root = append(root, repo.Node{Name: fmt.Sprintf("d%02d", i), Type: repo.NodeDir, Mode: 0o755, Tree: tree})
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	packs := listPacks(t, b)
	if len(packs) != 1 {
		t.Fatalf("%d packs after the subdirectories' listings, want 1", len(packs))
	}
	root = append(root, repo.Node{Name: "d30", Type: repo.NodeDir, Mode: 0o755, Tree: root[0].Tree})
	rootTree := listing(root...)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return r, b, rootTree, packs[0]
}

func listPacks(t *testing.T, b *blob.Bucket) []string {
	t.Helper()
	var names []string
	it := b.List(&blob.ListOptions{Prefix: layout.DataPrefix})
	for {
		obj, err := it.Next(context.Background())
		if err != nil {
			return names
		}
		names = append(names, obj.Key)
	}
}

// TestTreeFetcherReadsAhead: walking a listing reads its subdirectories' listings ahead, in one read of their
// pack, so they still load after that pack is gone; a listing asked for a second time (d30 shares d00's) is
// read again, and then fails with the direct read's error.
func TestTreeFetcherReadsAhead(t *testing.T) {
	ctx := context.Background()
	r, b, root, pack := treeRepo(t)
	f := r.NewTreeFetcher(ctx)
	var dirs []repo.Node
	if err := f.Walk(ctx, root, func(n *repo.Node) error { dirs = append(dirs, *n); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 31 {
		t.Fatalf("root listing has %d entries, want 31", len(dirs))
	}
	// The first load waits for the read ahead, which brought every listing of the pack.
	if _, err := f.Load(ctx, dirs[0].Tree); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, pack); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs[1:30] {
		nodes, err := f.Load(ctx, d.Tree)
		if err != nil {
			t.Fatalf("%s: %v (not read ahead)", d.Name, err)
		}
		if len(nodes) != 1 || nodes[0].Name != "file-of-"+d.Name {
			t.Fatalf("%s: listing %+v", d.Name, nodes)
		}
	}
	_, err := f.Load(ctx, dirs[30].Tree)
	_, direct := r.LoadBlob(ctx, dirs[30].Tree[0], nil)
	if err == nil || direct == nil || err.Error() != direct.Error() {
		t.Fatalf("second load of a shared listing after its pack was deleted: %v, want the direct read's error %v", err, direct)
	}
}

// TestTreeFetcherFailedReadAhead: when the read ahead fails, the walk's load reads again and reports that
// read's error, naming the blob and the missing pack.
func TestTreeFetcherFailedReadAhead(t *testing.T) {
	ctx := context.Background()
	r, b, root, pack := treeRepo(t)
	if err := b.Delete(ctx, pack); err != nil {
		t.Fatal(err)
	}
	f := r.NewTreeFetcher(ctx)
	var dirs []repo.Node
	if err := f.Walk(ctx, root, func(n *repo.Node) error { dirs = append(dirs, *n); return nil }); err != nil {
		t.Fatal(err)
	}
	_, err := f.Load(ctx, dirs[5].Tree)
	if err == nil || !strings.Contains(err.Error(), dirs[5].Tree[0].Short()) || !strings.Contains(err.Error(), strings.TrimPrefix(pack, layout.DataPrefix)) {
		t.Fatalf("load after a failed read ahead: %v, want an error naming blob %s and pack %s", err, dirs[5].Tree[0].Short(), pack)
	}
	if strings.Contains(err.Error(), "read ahead") {
		t.Fatalf("load after a failed read ahead reported the read ahead's error: %v", err)
	}
}
