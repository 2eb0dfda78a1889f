//go:build integration

package mover

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"

	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

// everyStore is each kind of store of the test bed.
var everyStore = []struct {
	name  string
	store func(testing.TB) *testbed.Store
}{
	{"s3", testbed.S3},
	{"minio", testbed.MinIO},
	{"azure", testbed.Azure},
	{"gcs", testbed.GCS},
	{"dir", testbed.Dir},
}

// TestStores runs the whole cycle on every backend: init, backup, incremental backup, restore, check with
// data, snapshot delete and GC.
func TestStores(t *testing.T) {
	for _, tc := range everyStore {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			st := tc.store(t)
			r, err := repo.Init(ctx, st.OpenT(t), testPass, repo.InitOptions{KDF: fastKDF, PackSize: 4 << 20}, repo.Options{})
			if err != nil {
				t.Fatal(err)
			}
			src := t.TempDir()
			buildTree(t, src)
			rng := rand.New(rand.NewPCG(8, 8))
			writeFile(t, filepath.Join(src, "large"), append(randomBytes(rng, 6<<20), textBytes(rng, 6<<20)...))
			id1, _, err := Backup(ctx, r, src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(src, "new"), textBytes(rng, 100<<10))
			id2, s2, err := Backup(ctx, r, src, Options{Parent: id1})
			if err != nil {
				t.Fatal(err)
			}
			if s2.ReusedFiles != s2.Files-1 {
				t.Errorf("incremental backup reused %d of %d files", s2.ReusedFiles, s2.Files)
			}
			r2, err := repo.Open(ctx, st.OpenT(t), testPass, repo.Options{})
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "r")
			if _, err := Restore(ctx, r2, id2, "", dst, RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			diffTrees(t, describeTree(t, src), describeTree(t, dst))
			mustCheck(t, r2, true)
			if err := r2.DeleteSnapshot(ctx, id1); err != nil {
				t.Fatal(err)
			}
			if _, err := r2.GC(ctx, repo.GCOptions{}); err != nil {
				t.Fatal(err)
			}
			mustCheck(t, r2, true)
		})
	}
}

// TestObjectLock writes with S3 retention: every data object carries the retention date, and deleting under
// it never damages the repository.
func TestObjectLock(t *testing.T) {
	for name, store := range map[string]func(testing.TB) *testbed.Store{"versitygw": testbed.S3Locked, "minio": testbed.MinIOLocked} {
		t.Run(name, func(t *testing.T) { testObjectLock(t, store(t)) })
	}
}

func testObjectLock(t *testing.T, st *testbed.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := st.OpenT(t)
	opts := repo.Options{ObjectLock: &repo.ObjectLock{Mode: "GOVERNANCE", Period: time.Hour}}
	r, err := repo.Init(ctx, b, testPass, repo.InitOptions{KDF: fastKDF}, opts)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	buildTree(t, src)
	id, client := backupOnS3(ctx, t, r, b, src)
	keys := testbed.Keys(t, b)
	for _, key := range keys {
		head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(key, layout.LockPrefix) {
			checkRetainedAnHour(t, key, head)
		}
	}
	if len(keys) < 5 {
		t.Fatalf("only %d objects listed", len(keys))
	}
	// A second snapshot keeps a little of the first one's data, so the first's packs are mostly unused once it
	// is deleted: without object lock GC would delete or repack them.
	keepOnly(t, src, "small.txt")
	id2, _, err := Backup(ctx, r, src, Options{Parent: id})
	if err != nil {
		t.Fatal(err)
	}
	// On a versioned, locked bucket a delete only hides the current version.
	if err := r.DeleteSnapshot(ctx, id); err != nil {
		t.Logf("delete snapshot under retention: %v", err)
	}
	before := testbed.Keys(t, b)
	// Everything is retained for an hour: GC deletes and repacks nothing, says until when the data stays,
	// and a second run writes nothing either (no index or pack copies piling up under retention).
	for range 2 {
		stats, err := r.GC(ctx, repo.GCOptions{UnindexedMinAge: time.Nanosecond})
		if err != nil {
			t.Fatal(err)
		}
		if stats.DeletedPacks != 0 || stats.RepackedPacks != 0 || stats.DeletedIndexes != 0 || len(stats.Undeletable) != 0 ||
			stats.RetainedPacks == 0 || stats.RetainedUntil.Before(time.Now().Add(50*time.Minute)) {
			t.Fatalf("gc under retention: %+v; want nothing deleted or repacked, unused packs retained about an hour", stats)
		}
	}
	if after := testbed.Keys(t, b); !slices.Equal(withoutLocks(before), withoutLocks(after)) {
		t.Errorf("objects before gc:\n%s\nafter two gc runs:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	mustCheck(t, r, true)
	dst := filepath.Join(t.TempDir(), "r")
	if _, err := Restore(ctx, r, id2, "", dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	diffTrees(t, describeTree(t, src), describeTree(t, dst))
}

// keepOnly removes every entry of dir but name.
func keepOnly(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != name {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func withoutLocks(keys []string) []string {
	return slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return strings.HasPrefix(k, layout.LockPrefix) })
}

// backupOnS3 backs src up into r, which lives in S3 bucket b, and returns the snapshot and b's S3 client.
func backupOnS3(ctx context.Context, t *testing.T, r *repo.Repository, b *blob.Bucket, src string) (string, *s3.Client) {
	t.Helper()
	id, _, err := Backup(ctx, r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var client *s3.Client
	if !b.As(&client) {
		t.Fatal("not an S3 bucket")
	}
	return id, client
}

// checkRetainedAnHour fails unless object key has GOVERNANCE retention about an hour ahead, as the tests ask.
func checkRetainedAnHour(t *testing.T, key string, head *s3.HeadObjectOutput) {
	t.Helper()
	if head.ObjectLockRetainUntilDate == nil || head.ObjectLockRetainUntilDate.Before(time.Now().Add(50*time.Minute)) ||
		head.ObjectLockMode != "GOVERNANCE" {
		t.Errorf("%s: retention %s until %v, want GOVERNANCE about an hour from now", key, head.ObjectLockMode, head.ObjectLockRetainUntilDate)
	}
}

// TestObjectRetentionGCS writes a repository with a retention date on fake-gcs-server, which stores an
// object's retention but (unlike GCS) does not enforce it: this checks what pxb asks for, not the refusal.
func TestObjectRetentionGCS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := testbed.GCS(t)
	b := st.OpenT(t)
	opts := repo.Options{ObjectLock: &repo.ObjectLock{Mode: "COMPLIANCE", Period: 48 * time.Hour}}
	r, err := repo.Init(ctx, b, testPass, repo.InitOptions{KDF: fastKDF}, opts)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	buildTree(t, src)
	if _, _, err := Backup(ctx, r, src, Options{}); err != nil {
		t.Fatal(err)
	}
	var client *storage.Client
	if !b.As(&client) {
		t.Fatal("not a GCS bucket")
	}
	n := 0
	for _, key := range testbed.Keys(t, b) {
		if strings.HasPrefix(key, layout.LockPrefix) {
			continue
		}
		attrs, err := client.Bucket(st.Bucket).Object(key).Attrs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ret := attrs.Retention; ret == nil || ret.Mode != "Locked" || ret.RetainUntil.Before(time.Now().Add(47*time.Hour)) {
			t.Errorf("%s: retention %+v, want Locked about 2 days ahead", key, ret)
		}
		n++
	}
	if n < 5 {
		t.Fatalf("only %d objects listed", n)
	}
}

// TestPacksOfSeveralPartsOnS3 writes packs larger than one upload part through the repository's own S3
// uploads (5 MiB parts), under a key prefix, with and without object lock, and restores them byte for
// byte. A multipart ETag ("<hash>-<parts>") shows the parts were used; every object, the multipart ones
// included, must carry the retention asked for, under the prefix.
func TestPacksOfSeveralPartsOnS3(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(testing.TB) *testbed.Store
		lock  bool
	}{{"s3", testbed.S3, false}, {"minio", testbed.MinIO, false}, {"s3-locked", testbed.S3Locked, true}, {"minio-locked", testbed.MinIOLocked, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			st := tc.store(t)
			const prefix = "team/a/"
			b := blob.PrefixedBucket(st.OpenT(t), prefix)
			var opts repo.Options
			if tc.lock {
				opts.ObjectLock = &repo.ObjectLock{Mode: "GOVERNANCE", Period: time.Hour}
			}
			r, err := repo.Init(ctx, b, testPass, repo.InitOptions{KDF: fastKDF, PackSize: 16 << 20}, opts)
			if err != nil {
				t.Fatal(err)
			}
			src := t.TempDir()
			writeFile(t, filepath.Join(src, "big"), randomBytes(rand.New(rand.NewPCG(21, 22)), 24<<20))
			writeFile(t, filepath.Join(src, "small"), []byte("a file that fits one request"))
			id, client := backupOnS3(ctx, t, r, b, src)
			whole := st.OpenT(t)
			keys := testbed.Keys(t, whole)
			multipart := 0
			for _, key := range keys {
				if !strings.HasPrefix(key, prefix) {
					t.Errorf("object %s is outside prefix %s", key, prefix)
					continue
				}
				head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(key)})
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToInt64(head.ContentLength) > 5<<20 && strings.Contains(aws.ToString(head.ETag), "-") {
					multipart++
				}
				if tc.lock && !strings.HasPrefix(key, prefix+layout.LockPrefix) {
					checkRetainedAnHour(t, key, head)
				}
			}
			if multipart == 0 {
				t.Errorf("no pack of more than 5 MiB was uploaded in parts (objects: %v)", keys)
			}
			dst := filepath.Join(t.TempDir(), "r")
			r2, err := repo.Open(ctx, blob.PrefixedBucket(st.OpenT(t), prefix), testPass, repo.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Restore(ctx, r2, id, "", dst, RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			diffTrees(t, describeTree(t, src), describeTree(t, dst))
			mustCheck(t, r2, true)
		})
	}
}
