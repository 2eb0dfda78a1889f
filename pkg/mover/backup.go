package mover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pxb-dev/pxb/pkg/repo"
)

// Progress is reported to Options.Progress. Totals grow while the tree is walked; TotalsFinal says the walk ended.
type Progress struct {
	FilesDone, FilesTotal int64
	BytesDone, BytesTotal int64
	TotalsFinal           bool
}

// Options tune a backup.
type Options struct {
	// Parent is a snapshot of the same tree: files whose size, mtime, ctime and inode are unchanged reuse
	// its chunk lists without being read.
	Parent string
	// MTimeOnly compares files with the parent by size, mtime, mode and owner only: for a tree mounted from
	// a new volume made from a snapshot, where every file's inode, device and ctime differ from the last
	// backup's although its content does not.
	MTimeOnly bool
	// Progress, if set, is called about every ProgressInterval (default 1 s) and once at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
	Host             string
	// Source names what the snapshot holds (default: dir).
	Source string
	Tags   map[string]string
	// Readers is the number of files read at once (default 2 x GOMAXPROCS).
	Readers int
}

// Stats summarize a backup or restore.
type Stats struct {
	Files, Dirs, Others int64 // regular files, directories, everything else
	Bytes               int64 // file bytes in the tree
	ReusedFiles         int64 // files taken from the parent snapshot unread
	NewBlobs            int64
	NewBytes            int64 // plaintext bytes of new blobs
	StoredBytes         int64 // their size in the repository
	Duration            time.Duration
}

type dirState struct {
	path    string
	node    *repo.Node // where the finished listing goes
	entries []repo.Node
	pending atomic.Int64
	parent  *dirState
}

type fileJob struct {
	dir  *dirState
	i    int
	path string
}

type blobJob struct {
	id  repo.ID
	buf *[]byte
	wg  *sync.WaitGroup
	err *atomic.Pointer[error]
}

type linkKey struct{ dev, ino uint64 }

type linkFuture struct {
	done chan struct{}
	node *repo.Node
}

type backup struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	r      *repo.Repository
	w      *repo.Writer
	opts   Options

	files chan fileJob
	blobs chan blobJob

	linkMu sync.Mutex
	links  map[linkKey]*linkFuture

	rootDone chan struct{}
	walkSem  chan struct{} // bounds the goroutines listing directories
	walkers  sync.WaitGroup

	filesDone, filesTotal, bytesDone, bytesTotal atomic.Int64
	nFiles, nDirs, nOthers, reused               atomic.Int64
	walkDone                                     atomic.Bool

	largeBufs sync.Pool
}

// Backup stores the tree at dir as a new snapshot and returns its ID.
func Backup(ctx context.Context, r *repo.Repository, dir string, opts Options) (string, Stats, error) {
	start := time.Now()
	if err := r.LoadIndex(ctx); err != nil {
		return "", Stats{}, fmt.Errorf("backup %s: %w", dir, err)
	}
	var parentTree []repo.ID
	if opts.Parent != "" {
		p, err := r.LoadSnapshot(ctx, opts.Parent)
		if err != nil {
			return "", Stats{}, fmt.Errorf("backup %s: parent: %w", dir, err)
		}
		parentTree = p.Root.Tree
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return "", Stats{}, fmt.Errorf("backup %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", Stats{}, fmt.Errorf("backup %s: not a directory", dir)
	}
	w, err := r.NewWriter(ctx)
	if err != nil {
		return "", Stats{}, fmt.Errorf("backup %s: %w", dir, err)
	}
	defer w.Close(context.WithoutCancel(ctx))

	if opts.Readers == 0 {
		opts.Readers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.ProgressInterval == 0 {
		opts.ProgressInterval = time.Second
	}
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b := &backup{ctx: bctx, cancel: cancel, r: r, w: w, opts: opts,
		files: make(chan fileJob, 64), blobs: make(chan blobJob, runtime.GOMAXPROCS(0)),
		links: map[linkKey]*linkFuture{}, rootDone: make(chan struct{}), walkSem: make(chan struct{}, runtime.GOMAXPROCS(0))}
	maxChunk := r.Config().ChunkMax
	b.largeBufs.New = func() any { s := make([]byte, maxChunk); return &s }

	var workers sync.WaitGroup
	for range opts.Readers {
		workers.Add(1)
		go func() { defer workers.Done(); b.fileWorker() }()
	}
	var savers sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		savers.Add(1)
		go func() { defer savers.Done(); b.blobWorker() }()
	}
	stopProgress := startProgress(opts.Progress, opts.ProgressInterval, b.progress)

	root := nodeFromStat("", &st)
	if root.Xattrs, err = readXattrs(dir); err != nil {
		b.fail(err)
	}
	rootDir := &dirState{path: dir, node: &root}
	b.walkDir(rootDir, parentTree)
	b.walkers.Wait()
	b.walkDone.Store(true)
	close(b.files)
	workers.Wait()
	close(b.blobs)
	savers.Wait()
	select {
	case <-b.rootDone:
	default:
		// Only reachable after a failure: the tree was not completed.
		if context.Cause(bctx) == nil {
			b.fail(errors.New("backup ended with an incomplete tree"))
		}
	}
	stopProgress()
	if err := context.Cause(bctx); err != nil {
		return "", Stats{}, fmt.Errorf("backup %s: %w", dir, err)
	}
	ws := w.Stats()
	stats := Stats{Files: b.nFiles.Load(), Dirs: b.nDirs.Load(), Others: b.nOthers.Load(), Bytes: b.bytesTotal.Load(),
		ReusedFiles: b.reused.Load(), NewBlobs: ws.Blobs, NewBytes: ws.RawBytes, StoredBytes: ws.StoredBytes}
	host := opts.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	source := opts.Source
	if source == "" {
		source = dir
	}
	snap := &repo.Snapshot{Host: host, Source: source, Tags: opts.Tags, Parent: opts.Parent, Root: root,
		Stats: repo.SnapshotStats{Files: stats.Files, Dirs: stats.Dirs, Bytes: stats.Bytes, NewBytes: stats.NewBytes, StoredBytes: stats.StoredBytes}}
	id, err := w.SaveSnapshot(ctx, snap)
	if err != nil {
		return "", stats, fmt.Errorf("backup %s: %w", dir, err)
	}
	ws = w.Stats()
	stats.NewBlobs, stats.NewBytes, stats.StoredBytes = ws.Blobs, ws.RawBytes, ws.StoredBytes
	stats.Duration = time.Since(start)
	if err := w.Close(ctx); err != nil {
		return id, stats, fmt.Errorf("backup %s: snapshot %s saved, but: %w", dir, id, err)
	}
	return id, stats, nil
}

func (b *backup) fail(err error) { b.cancel(err) }

// startProgress calls report with get's value every interval and once more when the returned stop is called.
func startProgress(report func(Progress), interval time.Duration, get func() Progress) func() {
	if report == nil {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				report(get())
				return
			case <-t.C:
				report(get())
			}
		}
	}()
	return func() { close(stop); <-done }
}

func (b *backup) progress() Progress {
	return Progress{FilesDone: b.filesDone.Load(), FilesTotal: b.filesTotal.Load(), BytesDone: b.bytesDone.Load(),
		BytesTotal: b.bytesTotal.Load(), TotalsFinal: b.walkDone.Load()}
}

// walkDir lists one directory, dispatches its files and recurses into subdirectories. The directory's tree
// blobs are written by whichever goroutine finishes its last entry, so the walk order does not change them.
func (b *backup) walkDir(d *dirState, parentTree []repo.ID) {
	d.pending.Store(1) // held by the walker until the listing is dispatched
	defer b.entryDone(d)
	if b.ctx.Err() != nil {
		return
	}
	f, err := os.Open(d.path)
	if err != nil {
		b.fail(fmt.Errorf("open directory %s: %w", d.path, err))
		return
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		b.fail(fmt.Errorf("list directory %s: %w", d.path, err))
		return
	}
	slices.Sort(names)
	parent := map[string]*repo.Node{}
	if len(parentTree) > 0 {
		err := b.r.WalkTree(b.ctx, parentTree, func(n *repo.Node) error {
			c := *n
			parent[n.Name] = &c
			return nil
		})
		if err != nil {
			b.fail(fmt.Errorf("parent snapshot, directory %s: %w", d.path, err))
			return
		}
	}
	d.entries = make([]repo.Node, len(names))
	for i, name := range names {
		if b.ctx.Err() != nil {
			return
		}
		path := filepath.Join(d.path, name)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				b.fail(fmt.Errorf("%s vanished while the directory was read", path))
			} else {
				b.fail(fmt.Errorf("stat %s: %w", path, err))
			}
			return
		}
		n := &d.entries[i]
		*n = nodeFromStat(name, &st)
		prev := parent[name]
		if n.Type == repo.NodeFile && prev != nil && b.unchanged(prev, n) && b.allStored(prev.Content) {
			// ctime covers xattr changes too, so the parent's xattrs are still right; without ctime they
			// are read again.
			n.Content, n.Holes, n.Xattrs = prev.Content, prev.Holes, prev.Xattrs
			if b.opts.MTimeOnly {
				x, err := readXattrs(path)
				if err != nil {
					b.fail(err)
					return
				}
				n.Xattrs = x
			}
			b.nFiles.Add(1)
			b.reused.Add(1)
			b.filesTotal.Add(1)
			b.filesDone.Add(1)
			b.bytesTotal.Add(n.Size)
			b.bytesDone.Add(n.Size)
			continue
		}
		if n.Xattrs, err = readXattrs(path); err != nil {
			b.fail(err)
			return
		}
		switch n.Type {
		case repo.NodeDir:
			b.nDirs.Add(1)
			d.pending.Add(1)
			var sub []repo.ID
			if prev != nil && prev.Type == repo.NodeDir {
				sub = prev.Tree
			}
			child := &dirState{path: path, node: n, parent: d}
			// Subdirectories are listed in parallel while walkers are free; otherwise in this goroutine.
			select {
			case b.walkSem <- struct{}{}:
				b.walkers.Add(1)
				go func() {
					defer func() { <-b.walkSem; b.walkers.Done() }()
					b.walkDir(child, sub)
				}()
			default:
				b.walkDir(child, sub)
			}
		case repo.NodeFile:
			b.nFiles.Add(1)
			b.filesTotal.Add(1)
			b.bytesTotal.Add(n.Size)
			d.pending.Add(1)
			if n.Links > 1 && b.linkedCopy(d, i) {
				continue
			}
			select {
			case b.files <- fileJob{dir: d, i: i, path: path}:
			case <-b.ctx.Done():
				d.pending.Add(-1)
				return
			}
		case repo.NodeSymlink:
			b.nOthers.Add(1)
			if n.Target, err = os.Readlink(path); err != nil {
				b.fail(fmt.Errorf("read symlink %s: %w", path, err))
				return
			}
		default:
			b.nOthers.Add(1) // fifos, sockets and devices: metadata only
		}
	}
}

func (b *backup) unchanged(prev, n *repo.Node) bool {
	if prev.Type != repo.NodeFile || prev.Size != n.Size || prev.MTime != n.MTime {
		return false
	}
	if b.opts.MTimeOnly {
		return prev.Mode == n.Mode && prev.UID == n.UID && prev.GID == n.GID
	}
	return prev.CTime == n.CTime && prev.Inode == n.Inode && prev.Dev == n.Dev
}

func (b *backup) allStored(ids []repo.ID) bool {
	for _, id := range ids {
		if _, _, ok := b.r.Index().Lookup(id); !ok {
			return false
		}
	}
	return true
}

// linkedCopy handles a further name of a hard-linked file: it takes the content of the first name once that
// is stored. It returns false for the first name, which is then read normally.
func (b *backup) linkedCopy(d *dirState, i int) bool {
	n := &d.entries[i]
	key := linkKey{n.Dev, n.Inode}
	b.linkMu.Lock()
	fut, ok := b.links[key]
	if !ok {
		b.links[key] = &linkFuture{done: make(chan struct{}), node: n}
		b.linkMu.Unlock()
		return false
	}
	b.linkMu.Unlock()
	go func() {
		select {
		case <-fut.done:
			n.Content, n.Holes = fut.node.Content, fut.node.Holes
			b.filesDone.Add(1)
			b.bytesDone.Add(n.Size)
			b.entryDone(d)
		case <-b.ctx.Done():
		}
	}()
	return true
}

// entryDone counts down a directory; the last entry writes the directory's listing.
func (b *backup) entryDone(d *dirState) {
	for d != nil {
		if d.pending.Add(-1) != 0 || b.ctx.Err() != nil {
			return
		}
		var enc repo.TreeEncoder
		var tree []repo.ID
		for i := range d.entries {
			blob, err := enc.Add(&d.entries[i])
			if err == nil && blob != nil {
				var id repo.ID
				id, err = b.w.SaveTree(blob)
				tree = append(tree, id)
			}
			if err != nil {
				b.fail(fmt.Errorf("directory %s: %w", d.path, err))
				return
			}
		}
		if blob := enc.Finish(); blob != nil {
			id, err := b.w.SaveTree(blob)
			if err != nil {
				b.fail(fmt.Errorf("directory %s: %w", d.path, err))
				return
			}
			tree = append(tree, id)
		}
		d.node.Tree = tree
		d.entries = nil
		if d.parent == nil {
			close(b.rootDone)
			return
		}
		d = d.parent
	}
}

func (b *backup) fileWorker() {
	var small []byte
	var ch *repo.Chunker
	for job := range b.files {
		if b.ctx.Err() != nil {
			continue
		}
		n := &job.dir.entries[job.i]
		if err := b.saveFile(job.path, n, &small, &ch); err != nil {
			b.fail(err)
			continue
		}
		b.filesDone.Add(1)
		b.linkMu.Lock()
		if fut, ok := b.links[linkKey{n.Dev, n.Inode}]; ok && fut.node == n {
			close(fut.done)
		}
		b.linkMu.Unlock()
		b.entryDone(job.dir)
	}
}

func (b *backup) blobWorker() {
	for j := range b.blobs {
		if err := b.w.SaveBlob(repo.DataBlob, j.id, *j.buf); err != nil {
			j.err.CompareAndSwap(nil, &err)
		}
		b.largeBufs.Put(j.buf)
		j.wg.Done()
	}
}

// saveFile reads one file into the repository and fills n.Content and n.Holes.
func (b *backup) saveFile(path string, n *repo.Node, small *[]byte, ch **repo.Chunker) error {
	f, err := openNoatime(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s vanished before it was read", path)
		}
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	var before unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &before); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if before.Ino != n.Inode || before.Size != n.Size || before.Mtim.Nano() != n.MTime {
		return fmt.Errorf("%s changed between listing and reading (size %d -> %d)", path, n.Size, before.Size)
	}
	n.Content = nil
	cfg := b.r.Config()
	if n.Size <= int64(cfg.ChunkMin) {
		if err := b.saveSmall(f, path, n, small); err != nil {
			return err
		}
	} else if err := b.saveLarge(f, path, n, ch); err != nil {
		return err
	}
	var after unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &after); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if after.Size != n.Size || after.Mtim.Nano() != n.MTime || after.Ctim.Nano() != n.CTime {
		return fmt.Errorf("%s changed while being read (size %d -> %d, mtime %s -> %s)", path, n.Size, after.Size,
			time.Unix(0, n.MTime).UTC().Format(time.RFC3339Nano), time.Unix(0, after.Mtim.Nano()).UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// saveSmall stores a file no larger than the minimum chunk as one blob, compressed in this goroutine.
func (b *backup) saveSmall(f *os.File, path string, n *repo.Node, small *[]byte) error {
	if n.Size == 0 {
		return nil
	}
	if int64(cap(*small)) < n.Size+1 {
		*small = make([]byte, max(n.Size+1, 64<<10))
	}
	buf := (*small)[:n.Size+1]
	got, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if int64(got) != n.Size {
		return fmt.Errorf("%s changed while being read: read %d bytes, expected %d", path, got, n.Size)
	}
	data := buf[:got]
	id := b.r.Hash(data)
	if b.w.Reserve(repo.DataBlob, id) {
		if err := b.w.SaveBlob(repo.DataBlob, id, data); err != nil {
			return err
		}
	}
	n.Content = []repo.ID{id}
	b.bytesDone.Add(n.Size)
	return nil
}

// saveLarge chunks a file's data regions; new chunks are compressed and encrypted by the blob workers.
func (b *backup) saveLarge(f *os.File, path string, n *repo.Node, ch **repo.Chunker) error {
	extents := []repo.Extent{{Off: 0, Len: n.Size}}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err == nil && st.Blocks*512 < n.Size {
		var err error
		if extents, err = dataExtents(f, n.Size); err != nil {
			return err
		}
		n.Holes = complement(extents, n.Size)
		for _, h := range n.Holes {
			b.bytesDone.Add(h.Len)
		}
	}
	var wg sync.WaitGroup
	var saveErr atomic.Pointer[error]
	defer wg.Wait()
	for _, e := range extents {
		rd := io.NewSectionReader(f, e.Off, e.Len)
		if *ch == nil {
			*ch = b.r.NewChunker(rd, nil)
		} else {
			(*ch).Reset(rd)
		}
		var got int64
		for {
			chunk, err := (*ch).Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", path, err)
			}
			got += int64(len(chunk))
			id := b.r.Hash(chunk)
			n.Content = append(n.Content, id)
			if b.w.Reserve(repo.DataBlob, id) {
				buf := b.largeBufs.Get().(*[]byte)
				*buf = append((*buf)[:0], chunk...)
				wg.Add(1)
				select {
				case b.blobs <- blobJob{id: id, buf: buf, wg: &wg, err: &saveErr}:
				case <-b.ctx.Done():
					wg.Done()
					return context.Cause(b.ctx)
				}
			}
			b.bytesDone.Add(int64(len(chunk)))
		}
		if got != e.Len {
			return fmt.Errorf("%s changed while being read: region at %d has %d bytes, expected %d", path, e.Off, got, e.Len)
		}
	}
	wg.Wait()
	if p := saveErr.Load(); p != nil {
		return *p
	}
	return nil
}

func openNoatime(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOATIME|unix.O_NOFOLLOW, 0)
	if errors.Is(err, unix.EPERM) {
		// O_NOATIME needs ownership or CAP_FOWNER.
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
