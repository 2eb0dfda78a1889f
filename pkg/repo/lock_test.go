package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/fileblob"

	"github.com/pxb-dev/pxb/pkg/layout"
)

func fileRepo(t *testing.T, opts Options) *Repository {
	t.Helper()
	b, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	r, err := Init(context.Background(), b, []byte("pw"), InitOptions{KDF: KDFParams{Time: 1, Memory: 64, Threads: 1}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWriterRefusedDuringGC(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	gc, err := r.acquire(ctx, lockExclusive)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.NewWriter(ctx)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "exclusive lock") {
		t.Fatalf("writer during gc: got %v, want ErrLocked naming the exclusive lock", err)
	}
	if err := gc.release(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatalf("writer after gc: %v", err)
	}
	// Several writers at once are fine.
	w2, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatalf("second writer: %v", err)
	}
	w.Close(ctx)
	w2.Close(ctx)
	if names, _ := listNames(ctx, r.bucket, layout.LockPrefix); len(names) != 0 {
		t.Errorf("locks left after close: %v", names)
	}
}

func TestLeaseRefreshAndExpiry(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{LeaseDuration: 250 * time.Millisecond})
	l, err := r.acquire(ctx, lockShared)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	first := l.name
	l.mu.Unlock()
	time.Sleep(400 * time.Millisecond) // past the first expiry: only refreshes keep it valid
	if err := l.valid(); err != nil {
		t.Fatalf("refreshed lease: %v", err)
	}
	l.mu.Lock()
	renamed := l.name != first
	l.mu.Unlock()
	if !renamed {
		t.Error("lease was not refreshed under a new name")
	}
	names, _ := listNames(ctx, r.bucket, layout.LockPrefix)
	if len(names) != 1 {
		t.Errorf("lock objects after refreshes: %v, want exactly one", names)
	}
	// A holder that stops refreshing loses its lease and must notice.
	close(l.stop)
	<-l.done
	time.Sleep(300 * time.Millisecond)
	if err := l.valid(); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("stale lease: got %v, want an expiry error", err)
	}
}

func TestObjectLockNeedsS3OrGCS(t *testing.T) {
	b, err := fileblob.OpenBucket(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = Init(context.Background(), b, []byte("pw"), InitOptions{KDF: KDFParams{Time: 1, Memory: 64, Threads: 1}},
		Options{ObjectLock: &ObjectLock{Mode: "COMPLIANCE", Period: time.Hour}})
	if err == nil || !strings.Contains(err.Error(), "object lock is supported on S3 buckets with object lock and GCS buckets with object retention, not on this store") {
		t.Fatalf("object lock on a directory: got %v", err)
	}
}

// TestTempFilesAreNotObjects: an upload killed midway on a file-system location leaves fileblob's
// "<name>.<time>.tmp" next to where the object would be; listings skip it, so the repository still opens
// and lists its snapshots.
func TestTempFilesAreNotObjects(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{Metadata: fileblob.MetadataDontWrite, NoTempDir: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kdf := KDFParams{Time: 1, Memory: 64, Threads: 1}
	if _, err := Init(ctx, b, []byte("pw"), InitOptions{KDF: kdf}, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{layout.KeysPrefix + "0123abcd.18eb1804fe3e52fa.tmp", layout.SnapshotPrefix + "20261124T000000Z-00.18eb1804fe3e52fa.tmp"} {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(ctx, b, []byte("pw"), Options{})
	if err != nil {
		t.Fatalf("open with a stranded temporary key slot file: %v", err)
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil || len(snaps) != 0 {
		t.Fatalf("snapshots with a stranded temporary file: %v, %v; want none and no error", snaps, err)
	}
}
