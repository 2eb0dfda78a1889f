package mover

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pxb-dev/pxb/pkg/repo"
)

// buildTree makes a tree with every kind of entry the mover handles.
func buildTree(t *testing.T, root string) {
	rng := rand.New(rand.NewPCG(1, 2))
	writeFile(t, filepath.Join(root, "small.txt"), []byte("hello pxb\n"))
	writeFile(t, filepath.Join(root, "empty"), nil)
	writeFile(t, filepath.Join(root, "dir/big-random"), randomBytes(rng, 900<<10))
	writeFile(t, filepath.Join(root, "dir/big-text"), textBytes(rng, 700<<10))
	writeFile(t, filepath.Join(root, "dir/sub/deeper/file"), textBytes(rng, 5000))
	writeFile(t, filepath.Join(root, "dup1"), textBytes(rand.New(rand.NewPCG(9, 9)), 300<<10))
	writeFile(t, filepath.Join(root, "dup2"), textBytes(rand.New(rand.NewPCG(9, 9)), 300<<10))
	if err := os.MkdirAll(filepath.Join(root, "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("dir/big-text", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/target", filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "small.txt"), filepath.Join(root, "dir/hardlink")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "dir/big-text"), 0o4751); err != nil {
		t.Fatal(err)
	}
	// A sparse file: data, a 3 MiB hole, data, and a trailing hole.
	sp, err := os.Create(filepath.Join(root, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Write(textBytes(rng, 100<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.WriteAt(randomBytes(rng, 64<<10), 3<<20); err != nil {
		t.Fatal(err)
	}
	if err := sp.Truncate(8 << 20); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	if err := unix.Setxattr(filepath.Join(root, "small.txt"), "user.pxb.test", []byte("v1"), 0); err != nil && !isNotSupported(err) {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
	for _, p := range []string{"dir/sub/deeper/file", "dir/sub/deeper", "emptydir", "empty"} {
		if err := os.Chtimes(filepath.Join(root, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Lutimes(filepath.Join(root, "link"), []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}); err != nil {
		t.Fatal(err)
	}
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepo(t)
	src := t.TempDir()
	buildTree(t, src)
	want := describeTree(t, src)

	var last Progress
	id, stats, err := Backup(ctx, r, src, Options{Progress: func(p Progress) { last = p }, ProgressInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Files != 9 || stats.Dirs != 4 || stats.Others != 3 {
		t.Errorf("stats: %d files, %d dirs, %d others; want 9 files, 4 dirs, 3 others", stats.Files, stats.Dirs, stats.Others)
	}
	if !last.TotalsFinal || last.FilesDone != last.FilesTotal || last.BytesDone != last.BytesTotal || last.BytesTotal != stats.Bytes {
		t.Errorf("final progress %+v does not match stats %+v", last, stats)
	}

	// Restore through a freshly opened repository: nothing may depend on the writer's memory.
	r2 := reopen(t, dir)
	dst := filepath.Join(t.TempDir(), "restore")
	if _, err := Restore(ctx, r2, id, "", dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	diffTrees(t, want, describeTree(t, dst))

	// The hole came back as a hole.
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dst, "sparse"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 1<<20 {
		t.Errorf("restored sparse file uses %d bytes of disk, want well under 1 MiB", st.Blocks*512)
	}
	mustCheck(t, r2, true)

	// A sub-path: a directory's contents land in the target; a file lands as target/<name>.
	sub := filepath.Join(t.TempDir(), "sub")
	if _, err := Restore(ctx, r2, id, "dir/sub", sub, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(sub, "deeper/file"))
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(filepath.Join(src, "dir/sub/deeper/file"))
	if string(got) != string(orig) {
		t.Error("sub-path restore: content differs")
	}
	one := filepath.Join(t.TempDir(), "one")
	if _, err := Restore(ctx, r2, id, "/dir/big-random", one, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(filepath.Join(one, "big-random"))
	orig, _ = os.ReadFile(filepath.Join(src, "dir/big-random"))
	if string(got) != string(orig) {
		t.Error("single-file restore: content differs")
	}

	if _, err := Restore(ctx, r2, id, "", dst, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore into a non-empty directory: got %v, want a 'not empty' error", err)
	}
	if _, err := Restore(ctx, r2, id, "dir/nope", t.TempDir(), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), `no entry "nope"`) {
		t.Errorf("restore of a missing sub-path: got %v", err)
	}
}

func TestIncrementalReusesUnchangedFiles(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t)
	src := t.TempDir()
	buildTree(t, src)
	id1, s1, err := Backup(ctx, r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id2, s2, err := Backup(ctx, r, src, Options{Parent: id1})
	if err != nil {
		t.Fatal(err)
	}
	if s2.ReusedFiles != s1.Files || s2.NewBlobs != 0 {
		t.Errorf("unchanged backup reused %d of %d files and stored %d new blobs", s2.ReusedFiles, s1.Files, s2.NewBlobs)
	}
	// Changing one file stores only that file's new chunks.
	rng := rand.New(rand.NewPCG(5, 5))
	writeFile(t, filepath.Join(src, "dir/big-text"), append(textBytes(rng, 10), mustRead(t, filepath.Join(src, "dir/big-text"))...))
	id3, s3, err := Backup(ctx, r, src, Options{Parent: id2})
	if err != nil {
		t.Fatal(err)
	}
	if s3.ReusedFiles != s1.Files-1 || s3.NewBytes == 0 || s3.NewBytes > 400<<10 {
		t.Errorf("after changing one file: reused %d files, %d new bytes", s3.ReusedFiles, s3.NewBytes)
	}
	// The unchanged backup took the parent's listings as they were; the changed one has a new root listing.
	var roots [][]repo.ID
	for _, id := range []string{id1, id2, id3} {
		snap, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, snap.Root.Tree)
	}
	if !slices.Equal(roots[0], roots[1]) || slices.Equal(roots[1], roots[2]) {
		t.Errorf("root listings of the first, unchanged and changed backups: %v", roots)
	}
	want := describeTree(t, src)
	dst := filepath.Join(t.TempDir(), "r")
	if _, err := Restore(ctx, r, id3, "", dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	diffTrees(t, want, describeTree(t, dst))
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeterministicTrees backs the same tree up twice without a parent: identical listings mean identical tree
// blobs, so the second backup stores nothing new.
func TestDeterministicTrees(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t)
	src := t.TempDir()
	buildTree(t, src)
	for i := range 20 {
		writeFile(t, filepath.Join(src, "many", string(rune('a'+i)), "f"), []byte{byte(i)})
	}
	if _, _, err := Backup(ctx, r, src, Options{}); err != nil {
		t.Fatal(err)
	}
	_, s2, err := Backup(ctx, r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s2.NewBlobs != 0 || s2.ReusedFiles != 0 {
		t.Errorf("second backup without parent: %d new blobs, %d reused files; want 0 and 0", s2.NewBlobs, s2.ReusedFiles)
	}
}

// TestRestoreSharedContent restores files that share their content: small files restored together read the
// shared blob once but each gets it.
func TestRestoreSharedContent(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepo(t)
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 9))
	same, big := textBytes(rng, 3000), randomBytes(rng, 600<<10)
	for _, name := range []string{"a", "b", "c/d"} {
		writeFile(t, filepath.Join(src, name), same)
		writeFile(t, filepath.Join(src, name+"-big"), big)
	}
	id, _, err := Backup(ctx, r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "r")
	if _, err := Restore(ctx, reopen(t, dir), id, "", dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	diffTrees(t, describeTree(t, src), describeTree(t, dst))
}

// TestRestoreHardLinkedChunkedFiles restores more files of several chunks than one restore window holds,
// each with names in several directories, some named again after a window has been written: every name
// must end up as a link to one inode holding the right bytes.
func TestRestoreHardLinkedChunkedFiles(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepo(t)
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(11, 12))
	for i := range windowFiles + 30 {
		first := filepath.Join(src, "a", fmt.Sprintf("f%03d", i))
		writeFile(t, first, randomBytes(rng, 100<<10+rng.IntN(200<<10)))
		// "b" is walked right after "a"; "z" comes last, long after its first name's window was written.
		for _, d := range []string{"b", "z"} {
			if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(first, filepath.Join(src, d, fmt.Sprintf("f%03d", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	id, _, err := Backup(ctx, r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "r")
	st, err := Restore(ctx, reopen(t, dir), id, "", dst, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(3 * (windowFiles + 30)); st.Files != want {
		t.Errorf("restored %d files, want %d", st.Files, want)
	}
	diffTrees(t, describeTree(t, src), describeTree(t, dst))
	for i := range windowFiles + 30 {
		var first unix.Stat_t
		for k, d := range []string{"a", "b", "z"} {
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(dst, d, fmt.Sprintf("f%03d", i)), &st); err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				first = st
			} else if st.Ino != first.Ino {
				t.Errorf("%s/f%03d is not a link to a/f%03d", d, i, i)
			}
		}
	}
}

// TestListingsPackedTogether: a snapshot's listings are stored apart from its files' data, next to each other,
// so a walk reads all of them with one request; between 40 directories of random files they would otherwise
// each cost a read of their own.
func TestListingsPackedTogether(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t)
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 40 {
		writeFile(t, filepath.Join(src, fmt.Sprintf("d%02d/data", i)), randomBytes(rng, 300<<10))
	}
	id, _, err := Backup(ctx, r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.LoadSnapshot(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	listings := slices.Clone(snap.Root.Tree)
	err = r.WalkTree(ctx, snap.Root.Tree, func(n *repo.Node) error {
		listings = append(listings, n.Tree...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(listings) != 41 {
		t.Fatalf("%d listings, want 41 (the root and 40 directories)", len(listings))
	}
	reads, err := r.PlanReads(listings)
	if err != nil {
		t.Fatal(err)
	}
	if len(reads) != 1 {
		t.Errorf("the snapshot's 41 listings take %d reads, want 1", len(reads))
	}
}
