package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/repo"
)

// repoStore keeps backups and restores in the location's repository, so that objects are chunked,
// deduplicated, compressed and encrypted like volume data. Each Put is a file; Commit seals the files
// written under a unit prefix (a backup's or a restore's, see layout.BackupPrefix) into a snapshot whose
// Source is that prefix. Get reads a key from the latest snapshot of the unit that holds it, so a key can be
// read only after its unit was committed.
type repoStore struct {
	r *repo.Repository

	mu      sync.Mutex
	w       *repo.Writer
	lease   *repo.Lease          // a reader's shared lease, from the first read until Close
	pending map[string]repo.Node // key -> file, written but not yet in a snapshot
	snaps   []*repo.Snapshot     // as last listed, oldest first
}

// openRepo opens the location's repository, creating it when create is set and the location holds none.
// Of Jobs that find an empty location at once, one creates the repository and the others open it.
func openRepo(ctx context.Context, b *blob.Bucket, passphrase []byte, opts repo.Options, create bool) (*repo.Repository, error) {
	r, err := repo.Open(ctx, b, passphrase, opts)
	if !create || !errors.Is(err, repo.ErrNoRepository) {
		return r, err
	}
	r, err = repo.Init(ctx, b, passphrase, repo.InitOptions{}, opts)
	if errors.Is(err, repo.ErrRepositoryExists) {
		return repo.Open(ctx, b, passphrase, opts)
	}
	return r, err
}

// RepoOptions are how the repository in a location's bucket b is written: with spec.objectLockDays, every
// object gets a retention date that far ahead, in compliance mode (S3 object lock, GCS Locked retention,
// Azure locked immutability policy), so that nobody (an attacker with the credential included) can delete
// or overwrite a backup before then.
func RepoOptions(spec v1alpha1.BackupLocationSpec, b *blob.Bucket) repo.Options {
	var o repo.Options
	if spec.ObjectLockDays > 0 {
		o.ObjectLock = &repo.ObjectLock{Mode: "COMPLIANCE", Period: time.Duration(spec.ObjectLockDays) * 24 * time.Hour}
		o.Retain = location.Retainer(spec, b)
	}
	return o
}

func newRepoStore(ctx context.Context, r *repo.Repository) (*repoStore, error) {
	if err := r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("load repository index: %w", err)
	}
	return &repoStore{r: r, pending: map[string]repo.Node{}}, nil
}

func (s *repoStore) writer(ctx context.Context) (*repo.Writer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		w, err := s.r.NewWriter(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		s.w = w
	}
	return s.w, nil
}

// Put stores everything read from rd as the file key, to be sealed by Commit.
func (s *repoStore) Put(ctx context.Context, key string, rd io.Reader) error {
	w, err := s.writer(ctx)
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	node := repo.Node{Name: key[strings.LastIndex(key, "/")+1:], Type: repo.NodeFile, Mode: 0o600, MTime: time.Now().UnixNano()}
	buf := chunkBufs.Get().(*[]byte)
	defer chunkBufs.Put(buf)
	ch := s.r.NewChunker(rd, *buf)
	defer func() { *buf = ch.Buffer() }()
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		chunk, err := ch.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		id := s.r.Hash(chunk)
		if w.Reserve(repo.DataBlob, id) {
			if err := w.SaveBlob(repo.DataBlob, id, chunk); err != nil {
				return fmt.Errorf("write %s: %w", key, err)
			}
		}
		node.Content = append(node.Content, id)
		node.Size += int64(len(chunk))
	}
	s.mu.Lock()
	s.pending[key] = node
	s.mu.Unlock()
	return nil
}

// chunkBufs reuses the chunkers' buffers (twice the largest chunk) across the many small files of a backup.
var chunkBufs = sync.Pool{New: func() any { return new([]byte) }}

// dir is a directory being built from keys.
type dir struct {
	files map[string]repo.Node
	dirs  map[string]*dir
}

// Commit seals the files written under unit into a snapshot; it returns its ID.
func (s *repoStore) Commit(ctx context.Context, unit string) (string, error) {
	s.mu.Lock()
	root := &dir{files: map[string]repo.Node{}, dirs: map[string]*dir{}}
	for key, n := range s.pending {
		rel, ok := strings.CutPrefix(key, unit)
		if !ok {
			continue
		}
		delete(s.pending, key)
		d := root
		parts := strings.Split(rel, "/")
		for _, p := range parts[:len(parts)-1] {
			if d.dirs[p] == nil {
				d.dirs[p] = &dir{files: map[string]repo.Node{}, dirs: map[string]*dir{}}
			}
			d = d.dirs[p]
		}
		d.files[parts[len(parts)-1]] = n
	}
	s.mu.Unlock()
	w, err := s.writer(ctx)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", unit, err)
	}
	tree, err := s.saveDir(w, root)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", unit, err)
	}
	snap := &repo.Snapshot{Source: unit, Tags: map[string]string{"pxb.dev/unit": unit},
		Root: repo.Node{Name: "root", Type: repo.NodeDir, Mode: 0o700, Tree: tree}}
	id, err := w.SaveSnapshot(ctx, snap)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", unit, err)
	}
	s.mu.Lock()
	s.snaps = nil
	s.mu.Unlock()
	return id, nil
}

// saveDir stores the tree blobs of d, children first, and returns them.
func (s *repoStore) saveDir(w *repo.Writer, d *dir) ([]repo.ID, error) {
	names := slices.Sorted(maps.Keys(d.files))
	for n := range d.dirs {
		names = append(names, n)
	}
	slices.Sort(names)
	var enc repo.TreeEncoder
	var ids []repo.ID
	add := func(n *repo.Node) error {
		full, err := enc.Add(n)
		if err != nil || full == nil {
			return err
		}
		id, err := w.SaveTree(full)
		ids = append(ids, id)
		return err
	}
	for _, name := range slices.Compact(names) {
		if sub, ok := d.dirs[name]; ok {
			tree, err := s.saveDir(w, sub)
			if err != nil {
				return nil, err
			}
			if err := add(&repo.Node{Name: name, Type: repo.NodeDir, Mode: 0o700, Tree: tree}); err != nil {
				return nil, err
			}
			continue
		}
		n := d.files[name]
		if err := add(&n); err != nil {
			return nil, err
		}
	}
	if last := enc.Finish(); last != nil {
		id, err := w.SaveTree(last)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// snapshotFor returns the latest snapshot of the unit that key is under. The listing is cached; a key not
// found in it lists again, for units committed since by another process.
func (s *repoStore) snapshotFor(ctx context.Context, key string) (*repo.Snapshot, error) {
	if err := s.readLease(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	snaps := s.snaps
	s.mu.Unlock()
	if sn := latestFor(snaps, key); sn != nil {
		return sn, nil
	}
	snaps, err := s.r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	// The new snapshots' blobs are in index objects written since the index was loaded.
	if err := s.r.LoadIndex(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.snaps = snaps
	s.mu.Unlock()
	return latestFor(snaps, key), nil
}

// readLease takes the shared lease that keeps garbage collection from deleting what reads (a restore's)
// need, once, and holds it until Close. Taking it reloads the index.
func (s *repoStore) readLease(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease != nil {
		return nil
	}
	l, err := s.r.ReadLease(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	s.lease = l
	return nil
}

func latestFor(snaps []*repo.Snapshot, key string) *repo.Snapshot {
	for i := len(snaps) - 1; i >= 0; i-- {
		if src := snaps[i].Source; src != "" && strings.HasPrefix(key, src) {
			return snaps[i]
		}
	}
	return nil
}

// Get opens the file key of the latest snapshot of its unit.
func (s *repoStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	snap, err := s.snapshotFor(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if snap == nil {
		return nil, fmt.Errorf("read %s: %w", key, collect.ErrNotFound)
	}
	node, err := s.find(ctx, snap.Root.Tree, strings.Split(strings.TrimPrefix(key, snap.Source), "/"))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if node == nil || node.Type != repo.NodeFile {
		return nil, fmt.Errorf("read %s: %w", key, collect.ErrNotFound)
	}
	return &blobReader{ctx: ctx, r: s.r, ids: node.Content}, nil
}

func (s *repoStore) find(ctx context.Context, tree []repo.ID, path []string) (*repo.Node, error) {
	var found *repo.Node
	err := s.r.WalkTree(ctx, tree, func(n *repo.Node) error {
		if n.Name == path[0] {
			c := *n
			found = &c
		}
		return nil
	})
	if err != nil || found == nil || len(path) == 1 {
		return found, err
	}
	if found.Type != repo.NodeDir {
		return nil, nil
	}
	return s.find(ctx, found.Tree, path[1:])
}

// Delete removes the snapshots of unit, and those whose source lies under any of under; their data goes at
// the repository's next garbage collection.
func (s *repoStore) Delete(ctx context.Context, unit string, under ...string) (int, error) {
	snaps, err := s.r.Snapshots(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sn := range snaps {
		match := sn.Source == unit
		for _, p := range under {
			match = match || strings.HasPrefix(sn.Source, p)
		}
		if !match {
			continue
		}
		if err := s.r.DeleteSnapshot(ctx, sn.ID); err != nil {
			return n, err
		}
		n++
	}
	s.mu.Lock()
	s.snaps = nil
	s.mu.Unlock()
	return n, nil
}

// Close releases the writer's and the reader's leases; files not committed are dropped.
func (s *repoStore) Close(ctx context.Context) error {
	s.mu.Lock()
	w, l := s.w, s.lease
	s.w, s.lease = nil, nil
	s.mu.Unlock()
	var errs []error
	if w != nil {
		errs = append(errs, w.Close(ctx))
	}
	if l != nil {
		errs = append(errs, l.Release(ctx))
	}
	return errors.Join(errs...)
}

// blobReader streams a file's chunks in order.
type blobReader struct {
	ctx context.Context
	r   *repo.Repository
	ids []repo.ID
	buf []byte
	cur []byte
}

func (b *blobReader) Read(p []byte) (int, error) {
	for len(b.cur) == 0 {
		if len(b.ids) == 0 {
			return 0, io.EOF
		}
		data, err := b.r.LoadBlob(b.ctx, b.ids[0], b.buf)
		if err != nil {
			return 0, err
		}
		b.buf, b.cur, b.ids = data, data, b.ids[1:]
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}

func (b *blobReader) Close() error { return nil }
