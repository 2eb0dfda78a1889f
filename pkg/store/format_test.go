package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/mover"
	"github.com/pxb-dev/pxb/pkg/repo"
)

// A location written by each earlier format lives in testdata/format/NAME/bucket, with what it holds in
// NAME/want.json. Every one must read with this version's code. When a stored format changes, keep the
// directories and add one written by the new version:
//
//	go test ./pkg/store -run TestEveryStoredFormatReads -write-format NAME
var writeFormat = flag.String("write-format", "", "write a location of this version's formats into testdata/format/NAME")

// formatPassphrase opens the fixture locations; it protects nothing.
var formatPassphrase = []byte("pxb format fixture")

// formatWant is what a fixture location holds.
type formatWant struct {
	// Volume is the ID of the volume snapshot, a tree of formatTree.
	Volume string `json:"volume"`
	// Objects are the backup's objects, as its manifest's files hold them.
	Objects []map[string]any `json:"objects"`
	// Record is the backup's record as written.
	Record BackupRecord `json:"record"`
}

const (
	formatNamespace = "shop"
	formatBackup    = "nightly-20261208"
)

func TestEveryStoredFormatReads(t *testing.T) {
	if *writeFormat != "" {
		writeFormatFixture(t, filepath.Join("testdata", "format", *writeFormat))
	}
	dirs, err := filepath.Glob(filepath.Join("testdata", "format", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixture locations in testdata/format: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { readFormatFixture(t, dir) })
	}
}

func readFormatFixture(t *testing.T, dir string) {
	ctx := context.Background()
	var want formatWant
	data, err := os.ReadFile(filepath.Join(dir, "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	// Opening takes a lease and may write: read a copy.
	bucketDir := t.TempDir()
	if err := os.CopyFS(bucketDir, os.DirFS(filepath.Join(dir, "bucket"))); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, fixtureBucket(t, bucketDir), formatPassphrase, repo.Options{})
	if err != nil {
		t.Fatalf("open the repository: %v", err)
	}
	res, err := r.Check(ctx, repo.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if len(res.Errors) > 0 || res.Snapshots != 2 {
		t.Errorf("check found %d snapshots and errors %q, want 2 snapshots and no error", res.Snapshots, res.Errors)
	}

	s, err := newRepoStore(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	backup := Prefixed(s, layout.BackupPrefix(formatNamespace, formatBackup))
	rec, err := ReadBackupRecord(ctx, backup)
	if err != nil {
		t.Fatalf("read the record: %v", err)
	}
	if got, w := mustJSON(t, rec), mustJSON(t, want.Record); got != w {
		t.Errorf("record = %s, want %s", got, w)
	}
	// As a restore reads them: the manifest, then the files it names.
	m, err := collect.ReadManifest(ctx, backup)
	if err != nil {
		t.Fatalf("read the manifest: %v", err)
	}
	var objs []map[string]any
	for _, tr := range m.Types {
		for _, f := range tr.Files {
			err := collect.ReadJSONLines(ctx, backup, f.Key, func(obj map[string]any) error {
				objs = append(objs, obj)
				return nil
			})
			if err != nil {
				t.Errorf("read %s: %v", f.Key, err)
			}
		}
	}
	if got, w := mustJSON(t, objs), mustJSON(t, want.Objects); got != w {
		t.Errorf("objects = %s, want %s", got, w)
	}
	var index []collect.IndexEntry
	if err := collect.ReadIndex(ctx, backup, func(e collect.IndexEntry) error { index = append(index, e); return nil }); err != nil || len(index) != len(want.Objects) {
		t.Errorf("index = %+v (%v), want %d entries", index, err, len(want.Objects))
	}

	target := t.TempDir()
	if _, err := mover.Restore(ctx, r, want.Volume, "", target, mover.RestoreOptions{}); err != nil {
		t.Fatalf("restore the volume: %v", err)
	}
	wantTree := t.TempDir()
	formatTree(t, wantTree)
	if got, w := describeTree(t, target), describeTree(t, wantTree); got != w {
		t.Errorf("restored volume:\n%s\nwant:\n%s", got, w)
	}
}

// writeFormatFixture writes a location as this version's backup and upload Jobs would: a backup's objects,
// manifest and record sealed into one snapshot, and a volume's files in another.
func writeFormatFixture(t *testing.T, dir string) {
	ctx := context.Background()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	bucketDir := filepath.Join(dir, "bucket")
	if err := os.MkdirAll(bucketDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A light key derivation keeps the test quick; everything else is as a location's repository has it.
	r, err := repo.Init(ctx, fixtureBucket(t, bucketDir), formatPassphrase, repo.InitOptions{KDF: repo.KDFParams{Time: 1, Memory: 64, Threads: 1}}, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newRepoStore(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	prefix := layout.BackupPrefix(formatNamespace, formatBackup)
	backup := Prefixed(s, prefix)
	// The objects of a backup as collect writes them: JSON lines per file, an index, and the manifest.
	configMap := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "web", "namespace": formatNamespace}, "data": map[string]any{"greeting": "hello"}}
	want := formatWant{Objects: []map[string]any{configMap}}
	typ := collect.Type{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespaced: true}
	key := layout.ObjectsKey(typ.String(), formatNamespace, 0)
	line, err := json.Marshal(configMap)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := json.Marshal(collect.IndexEntry{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: formatNamespace, Name: "web", Size: len(line) + 1, File: key})
	if err != nil {
		t.Fatal(err)
	}
	for k, data := range map[string][]byte{key: line, layout.IndexKey: entry} {
		w := collect.NewStreamWriter(ctx, backup, k)
		if _, err := w.Write(append(data, '\n')); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	started := time.Date(2026, 12, 8, 1, 30, 0, 0, time.UTC)
	manifest := collect.Manifest{FormatVersion: collect.FormatVersion, Backup: formatBackup, Started: started, Finished: started.Add(time.Minute),
		Namespaces: []string{formatNamespace}, Total: 1, Bytes: int64(len(line) + 1),
		Types: []collect.TypeRecord{{Type: typ, Count: 1, Bytes: int64(len(line) + 1), Files: []collect.FileRecord{{Key: key, Namespace: formatNamespace, Count: 1}}}}}
	if err := collect.PutJSON(ctx, backup, layout.ManifestKey, manifest); err != nil {
		t.Fatal(err)
	}

	at := metav1.NewTime(time.Date(2026, 12, 8, 1, 30, 0, 0, time.UTC))
	b := &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: formatBackup, Namespace: formatNamespace, CreationTimestamp: at},
		Spec:       v1alpha1.BackupSpec{Location: "prod", Selection: v1alpha1.Selection{IncludeNamespaces: []v1alpha1.NamespacePattern{formatNamespace}}},
		Status: v1alpha1.BackupStatus{Phase: v1alpha1.BackupCompleted, OperationStatus: v1alpha1.OperationStatus{
			StartTimestamp: &at, CompletionTimestamp: &at,
			Volumes: []v1alpha1.VolumeStatus{{Namespace: formatNamespace, PVC: "data", Method: v1alpha1.VolumeFileSystem, Phase: v1alpha1.VolumeCompleted}},
		}},
	}
	if err := SaveBackupRecord(ctx, backup, b, "cluster-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, prefix); err != nil {
		t.Fatal(err)
	}
	rec, err := ReadBackupRecord(ctx, backup)
	if err != nil {
		t.Fatal(err)
	}
	want.Record = *rec
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	tree := t.TempDir()
	formatTree(t, tree)
	id, _, err := mover.Backup(ctx, r, tree, mover.Options{Source: layout.VolumeSource(formatNamespace, formatBackup, "data")})
	if err != nil {
		t.Fatal(err)
	}
	want.Volume = id
	data, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "want.json"), append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// formatTree makes the volume every fixture holds: text, random bytes, a log over several chunks, an empty
// file, a symlink, and modes and times to keep.
func formatTree(t *testing.T, dir string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	// Little random data keeps the fixtures small; a long compressible log spans several chunks.
	random := make([]byte, 128<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var log []byte
	for i := 0; len(log) < 6<<20; i++ {
		log = fmt.Appendf(log, "%07d GET /api/items 200\n", i)
	}
	files := []struct {
		path string
		data []byte
		mode fs.FileMode
	}{
		{"conf/app.yaml", []byte("replicas: 3\nimage: web:1.2\n"), 0o644},
		{"data/blob.bin", random, 0o600},
		{"data/empty", nil, 0o640},
		{"logs/access.log", log, 0o644},
		{"run.sh", []byte("#!/bin/sh\nexec web\n"), 0o755},
	}
	mtime := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("conf/app.yaml", filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
}

// describeTree lists each entry of dir with its type, mode, size, mtime and the sha256 of its content (or
// its target).
func describeTree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := rel + " " + info.Mode().String()
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			line += " " + hex.EncodeToString(sum[:8]) + " " + info.ModTime().UTC().Format(time.RFC3339)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func fixtureBucket(t *testing.T, dir string) *blob.Bucket {
	t.Helper()
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
