package mover

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"golang.org/x/sys/unix"

	"github.com/pxb-dev/pxb/pkg/repo"
)

var testPass = []byte("correct horse battery staple")

// fastKDF keeps tests quick; real repositories use repo.DefaultKDF.
var fastKDF = repo.KDFParams{Time: 1, Memory: 64, Threads: 1}

func openBucket(t testing.TB, dir string) *blob.Bucket {
	t.Helper()
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newRepo(t testing.TB) (*repo.Repository, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := repo.Init(context.Background(), openBucket(t, dir), testPass,
		repo.InitOptions{KDF: fastKDF, ChunkMin: 16 << 10, ChunkAvg: 64 << 10, ChunkMax: 256 << 10, PackSize: 1 << 20}, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

func reopen(t testing.TB, dir string) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), openBucket(t, dir), testPass, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func textBytes(rng *rand.Rand, n int) []byte {
	words := []string{"backup", "restore", "volume", "kubernetes", "snapshot", "chunk", "pack", "index", "\n"}
	var buf bytes.Buffer
	for buf.Len() < n {
		buf.WriteString(words[rng.IntN(len(words))])
		buf.WriteByte(' ')
	}
	return buf.Bytes()[:n]
}

// describeTree lists every entry under root with the metadata a user would compare after a restore.
func describeTree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s type=%v mode=%o uid=%d gid=%d", rel, fi.Mode().Type(), fi.Mode().Perm()|fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky), st.Uid, st.Gid)
		if !fi.IsDir() {
			line += fmt.Sprintf(" mtime=%d", fi.ModTime().UnixNano())
		} else if rel != "." {
			line += fmt.Sprintf(" mtime=%d", fi.ModTime().UnixNano())
		}
		switch {
		case fi.Mode().IsRegular():
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" size=%d sha=%x nlink=%d", fi.Size(), h.Sum(nil)[:8], st.Nlink)
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			line += " target=" + target
		}
		if xs := listXattrs(path); len(xs) > 0 {
			line += " xattrs=" + strings.Join(xs, ",")
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func listXattrs(path string) []string {
	xs, err := readXattrs(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, x := range xs {
		out = append(out, x.Name+"="+string(x.Value))
	}
	return out
}

func diffTrees(t testing.TB, want, got []string) {
	t.Helper()
	if strings.Join(want, "\n") == strings.Join(got, "\n") {
		return
	}
	wm := map[string]bool{}
	for _, w := range want {
		wm[w] = true
	}
	gm := map[string]bool{}
	for _, g := range got {
		gm[g] = true
	}
	for _, w := range want {
		if !gm[w] {
			t.Errorf("missing or different after restore: %s", w)
		}
	}
	for _, g := range got {
		if !wm[g] {
			t.Errorf("unexpected after restore: %s", g)
		}
	}
}

func mustCheck(t testing.TB, r *repo.Repository, readData bool) *repo.CheckResult {
	t.Helper()
	res, err := r.Check(context.Background(), repo.CheckOptions{ReadData: readData})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	return res
}

func isNotSupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM)
}
