package mover

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pxb-dev/pxb/pkg/repo"
)

// backedUp returns a repository directory holding one snapshot of a small tree.
func backedUp(t *testing.T) (string, string, string) {
	t.Helper()
	r, dir := newRepo(t)
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	writeFile(t, filepath.Join(src, "a"), textBytes(rng, 600<<10))
	writeFile(t, filepath.Join(src, "b"), randomBytes(rng, 600<<10))
	writeFile(t, filepath.Join(src, "c/d"), []byte("small"))
	id, _, err := Backup(context.Background(), r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return dir, id, src
}

func objects(t *testing.T, dir, prefix string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(filepath.Join(dir, prefix), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestWrongPassphrase(t *testing.T) {
	dir, _, _ := backedUp(t)
	_, err := repo.Open(context.Background(), openBucket(t, dir), []byte("not the passphrase"), repo.Options{})
	if !errors.Is(err, repo.ErrWrongPassphrase) {
		t.Fatalf("got %v, want ErrWrongPassphrase", err)
	}
	wantErr(t, err, "wrong passphrase")
}

func TestKeySlots(t *testing.T) {
	ctx := context.Background()
	dir, id, _ := backedUp(t)
	r := reopen(t, dir)
	second, err := r.AddKey(ctx, []byte("second"), fastKDF)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ChangePassphrase(ctx, []byte("new passphrase"), fastKDF); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Open(ctx, openBucket(t, dir), testPass, repo.Options{}); !errors.Is(err, repo.ErrWrongPassphrase) {
		t.Errorf("old passphrase after change: got %v, want ErrWrongPassphrase", err)
	}
	r2, err := repo.Open(ctx, openBucket(t, dir), []byte("new passphrase"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, r2, id, "", t.TempDir(), RestoreOptions{}); err != nil {
		t.Errorf("restore after passphrase change: %v", err)
	}
	if err := r2.RemoveKey(ctx, second); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Open(ctx, openBucket(t, dir), []byte("second"), repo.Options{}); !errors.Is(err, repo.ErrWrongPassphrase) {
		t.Errorf("removed key still opens: %v", err)
	}
	keys, err := r2.Keys(ctx)
	if err != nil || len(keys) != 1 || !keys[0].Current {
		t.Fatalf("keys = %+v, %v; want the one current slot", keys, err)
	}
	wantErr(t, r2.RemoveKey(ctx, keys[0].ID), "last key slot")
	if _, err := repo.Init(ctx, openBucket(t, t.TempDir()), nil, repo.InitOptions{}, repo.Options{}); err == nil {
		t.Error("init without a passphrase succeeded")
	}
	_, err = repo.Init(ctx, openBucket(t, dir), testPass, repo.InitOptions{KDF: fastKDF}, repo.Options{})
	wantErr(t, err, "already holds a repository")
}

func TestMissingPack(t *testing.T) {
	ctx := context.Background()
	dir, id, _ := backedUp(t)
	packs := objects(t, dir, "data")
	if err := os.Remove(packs[0]); err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(packs[0], dir+"/")
	r := reopen(t, dir)
	_, err := r.Check(ctx, repo.CheckOptions{})
	wantErr(t, err, name, "is missing")
	_, err = Restore(ctx, r, id, "", t.TempDir(), RestoreOptions{})
	wantErr(t, err, name, "missing")
}

func TestTruncatedPack(t *testing.T) {
	ctx := context.Background()
	dir, id, _ := backedUp(t)
	// The largest pack holds the files' data; the listings' pack may end within its first 1000 bytes.
	packs := objects(t, dir, "data")
	p := slices.MaxFunc(packs, func(a, b string) int { return cmp.Compare(fileSize(t, a), fileSize(t, b)) })
	if err := os.Truncate(p, 1000); err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(p, dir+"/")
	r := reopen(t, dir)
	_, err := r.Check(ctx, repo.CheckOptions{})
	wantErr(t, err, name, "truncated")
	if _, err := Restore(ctx, r, id, "", t.TempDir(), RestoreOptions{}); err == nil {
		t.Error("restore from a truncated pack succeeded")
	}
}

func TestFlippedByte(t *testing.T) {
	ctx := context.Background()
	dir, id, _ := backedUp(t)
	var p string
	var data []byte
	for _, o := range objects(t, dir, "data") {
		if d, _ := os.ReadFile(o); len(d) > len(data) {
			p, data = o, d
		}
	}
	data[len(data)/2] ^= 0x01 // inside a data blob
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(p, dir+"/")
	r := reopen(t, dir)
	// Structure is intact; only reading data finds it.
	if _, err := r.Check(ctx, repo.CheckOptions{}); err != nil {
		t.Errorf("structure check: %v", err)
	}
	_, err := r.Check(ctx, repo.CheckOptions{ReadData: true})
	wantErr(t, err, name, "authentication failed")
	fds := openFiles(t)
	_, err = Restore(ctx, r, id, "", t.TempDir(), RestoreOptions{})
	wantErr(t, err, name, "authentication failed")
	if left := openFiles(t); left > fds {
		t.Errorf("the failed restore left %d files open", left-fds)
	}
}

// openFiles counts this process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

func TestIndexDisagreesWithPack(t *testing.T) {
	ctx := context.Background()
	dir, _, src := backedUp(t)
	// A second repository's pack copied over one of ours keeps the name the index expects but not its content.
	r2, dir2 := newRepo(t)
	if _, _, err := Backup(ctx, r2, src, Options{}); err != nil {
		t.Fatal(err)
	}
	ours := objects(t, dir, "data")[0]
	theirs := objects(t, dir2, "data")[0]
	data, _ := os.ReadFile(theirs)
	if err := os.WriteFile(ours, data, 0o644); err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(ours, dir+"/")
	_, err := reopen(t, dir).Check(ctx, repo.CheckOptions{})
	wantErr(t, err, name)
}

func TestMissingIndexBlob(t *testing.T) {
	ctx := context.Background()
	dir, id, _ := backedUp(t)
	for _, p := range objects(t, dir, "index") {
		os.Remove(p)
	}
	r := reopen(t, dir)
	_, err := r.Check(ctx, repo.CheckOptions{})
	wantErr(t, err, "snapshot "+id, "not in any index")
}

func TestChangedAndVanishedSource(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t)
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 1))
	writeFile(t, filepath.Join(src, "grows"), textBytes(rng, 2<<20))
	f := filepath.Join(src, "grows")
	b := &backup{r: r, w: w}
	dirfd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	n := repo.Node{Name: "grows", Type: repo.NodeFile, Size: 10}
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	err = b.saveFile(dirfd, f, &n, new([]byte))
	wantErr(t, err, f, "vanished")

	writeFile(t, f, []byte("0123456789"))
	st, _ := os.Stat(f)
	n = repo.Node{Name: "grows", Type: repo.NodeFile, Size: 5, MTime: st.ModTime().UnixNano()}
	err = b.saveFile(dirfd, f, &n, new([]byte))
	wantErr(t, err, f, "changed")
}

func TestNewerFormatVersion(t *testing.T) {
	dir, _, _ := backedUp(t)
	k := objects(t, dir, "keys")[0]
	data, _ := os.ReadFile(k)
	data = []byte(strings.Replace(string(data), `"version":1`, `"version":7`, 1))
	if err := os.WriteFile(k, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := repo.Open(context.Background(), openBucket(t, dir), testPass, repo.Options{})
	wantErr(t, err, "version 7 is newer than this pxb supports")
}
