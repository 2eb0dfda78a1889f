package mover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	f       *os.File // open while its files are read, which are opened relative to it (fd)
	fd      int
	node    *repo.Node // where the finished listing goes
	entries []repo.Node
	pending atomic.Int64
	parent  *dirState
	// prevTree is the directory's listing in the parent snapshot, if it had the directory (hasPrev). While
	// every entry equals the parent's (changed stays false), the listing is prevTree: it is not encoded again.
	prevTree []repo.ID
	hasPrev  bool
	changed  atomic.Bool
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
	trees  *repo.TreeFetcher // the parent snapshot's listings
	opts   Options

	files chan fileJob
	blobs chan blobJob

	linkMu  sync.Mutex
	links   map[linkKey]*linkFuture
	linkers sync.WaitGroup // further names of hard-linked files waiting for the first

	rootDone chan struct{}
	walkSem  chan struct{} // bounds the goroutines listing directories
	walkers  sync.WaitGroup

	filesDone, filesTotal, bytesDone, bytesTotal atomic.Int64
	nFiles, nDirs, nOthers, reused               atomic.Int64
	walkDone                                     atomic.Bool

	largeBufs sync.Pool
	// chunkers are the chunkers of large files, nil until first used: their number bounds the large files
	// read at once, and so the memory of their buffers, while small files are read by every reader.
	chunkers chan *repo.Chunker
}

// testHookIndexLoaded, when set, is called by writers once the repository's index (and a backup's parent
// snapshot) is loaded, before they look at what it holds.
var testHookIndexLoaded func()

// Backup stores the tree at dir as a new snapshot and returns its ID.
func Backup(ctx context.Context, r *repo.Repository, dir string, opts Options) (string, Stats, error) {
	start := time.Now()
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return "", Stats{}, fmt.Errorf("backup %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", Stats{}, fmt.Errorf("backup %s: not a directory", dir)
	}
	// The writer takes its shared lease and only then loads the index: what it finds stored (and what the
	// parent snapshot references) cannot be removed by garbage collection until the lease ends.
	w, err := r.NewWriter(ctx)
	if err != nil {
		return "", Stats{}, fmt.Errorf("backup %s: %w", dir, err)
	}
	defer w.Close(context.WithoutCancel(ctx))
	var parentTree []repo.ID
	if opts.Parent != "" {
		p, err := r.LoadSnapshot(ctx, opts.Parent)
		if err != nil {
			return "", Stats{}, fmt.Errorf("backup %s: parent: %w", dir, err)
		}
		parentTree = p.Root.Tree
	}
	if testHookIndexLoaded != nil {
		testHookIndexLoaded()
	}

	if opts.Readers == 0 {
		opts.Readers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.ProgressInterval == 0 {
		opts.ProgressInterval = time.Second
	}
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b := &backup{ctx: bctx, cancel: cancel, r: r, w: w, trees: r.NewTreeFetcher(bctx), opts: opts,
		files: make(chan fileJob, 64), blobs: make(chan blobJob, runtime.GOMAXPROCS(0)),
		links: map[linkKey]*linkFuture{}, rootDone: make(chan struct{}), walkSem: make(chan struct{}, runtime.GOMAXPROCS(0))}
	maxChunk := r.Config().ChunkMax
	b.largeBufs.New = func() any { s := make([]byte, maxChunk); return &s }
	b.chunkers = make(chan *repo.Chunker, runtime.GOMAXPROCS(0))
	for range cap(b.chunkers) {
		b.chunkers <- nil
	}

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
	rootDir := &dirState{path: dir, node: &root, prevTree: parentTree, hasPrev: opts.Parent != ""}
	b.walkDir(rootDir)
	b.walkers.Wait()
	b.walkDone.Store(true)
	close(b.files)
	workers.Wait()
	close(b.blobs)
	savers.Wait()
	// The first names are all stored (or the backup failed); their further names may still be finishing
	// the directories that hold them.
	b.linkers.Wait()
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
func (b *backup) walkDir(d *dirState) {
	d.pending.Store(1) // held by the walker until the listing is dispatched
	defer b.entryDone(d)
	if !d.hasPrev {
		d.changed.Store(true)
	}
	if b.ctx.Err() != nil {
		return
	}
	f, err := os.Open(d.path)
	if err != nil {
		b.fail(fmt.Errorf("open directory %s: %w", d.path, err))
		return
	}
	d.f, d.fd = f, int(f.Fd()) // closed when the directory is done
	names, err := f.Readdirnames(-1)
	if err != nil {
		b.fail(fmt.Errorf("list directory %s: %w", d.path, err))
		return
	}
	slices.Sort(names)
	// The parent snapshot's entries, in name order like names.
	prev, err := b.trees.Load(b.ctx, d.prevTree)
	if err != nil {
		b.fail(fmt.Errorf("parent snapshot, directory %s: %w", d.path, err))
		return
	}
	b.prefetchSubdirs(prev, names)
	if len(prev) != len(names) {
		d.changed.Store(true)
	}
	dirfd := d.fd
	d.entries = make([]repo.Node, len(names))
	for i, name := range names {
		if b.ctx.Err() != nil {
			return
		}
		// Both lists are sorted: advance through the parent's to this name.
		for len(prev) > 0 && prev[0].Name < name {
			prev = prev[1:]
		}
		var p *repo.Node
		if len(prev) > 0 && prev[0].Name == name {
			p = &prev[0]
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			path := filepath.Join(d.path, name)
			if errors.Is(err, unix.ENOENT) {
				b.fail(fmt.Errorf("%s vanished while the directory was read", path))
			} else {
				b.fail(fmt.Errorf("stat %s: %w", path, err))
			}
			return
		}
		n := &d.entries[i]
		*n = nodeFromStat(name, &st)
		if n.Type == repo.NodeFile && p != nil && b.unchanged(p, n) && b.allStored(p.Content) {
			// ctime covers xattr changes too, so the parent's xattrs are still right; without ctime they
			// are read again.
			n.Content, n.Holes, n.Xattrs = p.Content, p.Holes, p.Xattrs
			if b.opts.MTimeOnly {
				x, err := readXattrs(filepath.Join(d.path, name))
				if err != nil {
					b.fail(err)
					return
				}
				n.Xattrs = x
			}
			if !sameNode(n, p) {
				d.changed.Store(true)
			}
			b.nFiles.Add(1)
			b.reused.Add(1)
			b.filesTotal.Add(1)
			b.filesDone.Add(1)
			b.bytesTotal.Add(n.Size)
			b.bytesDone.Add(n.Size)
			continue
		}
		path := filepath.Join(d.path, name)
		// A file's are read from the open file by its reader.
		if n.Type != repo.NodeFile {
			if n.Xattrs, err = readXattrs(path); err != nil {
				b.fail(err)
				return
			}
		}
		switch n.Type {
		case repo.NodeDir:
			b.nDirs.Add(1)
			d.pending.Add(1)
			child := &dirState{path: path, node: n, parent: d}
			if p != nil && p.Type == repo.NodeDir {
				child.prevTree, child.hasPrev = p.Tree, true
			}
			// The directory's own metadata is compared here; its listing when it is done.
			if p == nil || !sameNode(n, &repo.Node{Name: p.Name, Type: p.Type, Mode: p.Mode, UID: p.UID, GID: p.GID,
				MTime: p.MTime, Dev: p.Dev, Inode: p.Inode, Links: p.Links, CTime: p.CTime, Size: p.Size, Xattrs: p.Xattrs}) {
				d.changed.Store(true)
			}
			// Subdirectories are listed in parallel while walkers are free; otherwise in this goroutine.
			select {
			case b.walkSem <- struct{}{}:
				b.walkers.Add(1)
				go func() {
					defer func() { <-b.walkSem; b.walkers.Done() }()
					b.walkDir(child)
				}()
			default:
				b.walkDir(child)
			}
		case repo.NodeFile:
			d.changed.Store(true)
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
			if p == nil || !sameNode(n, p) {
				d.changed.Store(true)
			}
		default:
			b.nOthers.Add(1) // fifos, sockets and devices: metadata only
			if p == nil || !sameNode(n, p) {
				d.changed.Store(true)
			}
		}
	}
}

// prefetchSubdirs reads ahead the parent snapshot's listings of the subdirectories that are still there,
// both lists being in name order.
func (b *backup) prefetchSubdirs(prev []repo.Node, names []string) {
	var trees [][]repo.ID
	for i := range prev {
		if prev[i].Type != repo.NodeDir {
			continue
		}
		if _, found := slices.BinarySearch(names, prev[i].Name); found {
			trees = append(trees, prev[i].Tree)
		}
	}
	b.trees.Prefetch(trees)
}

// sameNode reports whether two nodes would be stored identically.
func sameNode(a, b *repo.Node) bool {
	return a.Name == b.Name && a.Type == b.Type && a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID &&
		a.MTime == b.MTime && a.Dev == b.Dev && a.Inode == b.Inode && a.Links == b.Links && a.CTime == b.CTime &&
		a.Size == b.Size && a.Target == b.Target && a.Rdev == b.Rdev && slices.Equal(a.Content, b.Content) &&
		slices.Equal(a.Holes, b.Holes) && slices.Equal(a.Tree, b.Tree) &&
		slices.EqualFunc(a.Xattrs, b.Xattrs, func(x, y repo.Xattr) bool { return x.Name == y.Name && bytes.Equal(x.Value, y.Value) })
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

// allStored reports whether the repository has every blob (stored, or being stored by this writer).
func (b *backup) allStored(ids []repo.ID) bool {
	for _, id := range ids {
		if !b.r.Index().Has(id) {
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
	b.linkers.Add(1)
	go func() {
		defer b.linkers.Done()
		select {
		case <-fut.done:
			n.Content, n.Holes, n.Xattrs = fut.node.Content, fut.node.Holes, fut.node.Xattrs
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
		if d.f != nil {
			d.f.Close()
		}
		tree, err := b.saveListing(d)
		if err != nil {
			b.fail(fmt.Errorf("directory %s: %w", d.path, err))
			return
		}
		if d.parent != nil && !slices.Equal(tree, d.prevTree) {
			d.parent.changed.Store(true)
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

// saveListing stores a finished directory's tree blobs, or returns the parent snapshot's when nothing changed.
func (b *backup) saveListing(d *dirState) ([]repo.ID, error) {
	if !d.changed.Load() && b.allStored(d.prevTree) {
		return d.prevTree, nil
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
			return nil, err
		}
	}
	if blob := enc.Finish(); blob != nil {
		id, err := b.w.SaveTree(blob)
		if err != nil {
			return nil, err
		}
		tree = append(tree, id)
	}
	return tree, nil
}

func (b *backup) fileWorker() {
	var small []byte
	for job := range b.files {
		if b.ctx.Err() != nil {
			continue
		}
		n := &job.dir.entries[job.i]
		if err := b.saveFile(job.dir.fd, job.path, n, &small); err != nil {
			b.fail(err)
			continue
		}
		b.filesDone.Add(1)
		if n.Links > 1 {
			b.linkMu.Lock()
			if fut, ok := b.links[linkKey{n.Dev, n.Inode}]; ok && fut.node == n {
				close(fut.done)
			}
			b.linkMu.Unlock()
		}
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

// saveFile reads one file, opened relative to its directory's descriptor, into the repository and fills
// n.Content, n.Holes and n.Xattrs.
func (b *backup) saveFile(dirfd int, path string, n *repo.Node, small *[]byte) error {
	// A bare descriptor: for a small file an *os.File costs more than the reading.
	fd, err := openNoatime(dirfd, n.Name)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s vanished before it was read", path)
		}
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	if n.Xattrs, err = readXattrsFd(fd, path); err != nil {
		return err
	}
	n.Content = nil
	if n.Size <= int64(b.r.Config().ChunkMin) {
		// A small file is read in one call: the stat after it alone shows whether it is the listed file, unchanged.
		if err := b.saveSmall(fd, path, n, small); err != nil {
			return err
		}
	} else {
		var before unix.Stat_t
		if err := unix.Fstat(fd, &before); err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
		if before.Ino != n.Inode || before.Size != n.Size || before.Mtim.Nano() != n.MTime {
			return fmt.Errorf("%s changed between listing and reading (size %d -> %d)", path, n.Size, before.Size)
		}
		if err := b.saveLarge(fd, path, n, &before); err != nil {
			return err
		}
	}
	var after unix.Stat_t
	if err := unix.Fstat(fd, &after); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if after.Ino != n.Inode {
		return fmt.Errorf("%s changed between listing and reading (replaced by another file)", path)
	}
	if after.Size != n.Size || after.Mtim.Nano() != n.MTime || after.Ctim.Nano() != n.CTime {
		return fmt.Errorf("%s changed while being read (size %d -> %d, mtime %s -> %s)", path, n.Size, after.Size,
			time.Unix(0, n.MTime).UTC().Format(time.RFC3339Nano), time.Unix(0, after.Mtim.Nano()).UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// saveSmall stores a file no larger than the minimum chunk as one blob, compressed in this goroutine.
func (b *backup) saveSmall(fd int, path string, n *repo.Node, small *[]byte) error {
	if n.Size == 0 {
		return nil
	}
	if int64(cap(*small)) < n.Size+1 {
		*small = make([]byte, max(n.Size+1, 64<<10))
	}
	// One byte more than the size shows a file that grew.
	buf := (*small)[:n.Size+1]
	got := 0
	for got < len(buf) {
		m, err := unix.Read(fd, buf[got:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if m == 0 {
			break
		}
		got += m
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
func (b *backup) saveLarge(fd int, path string, n *repo.Node, st *unix.Stat_t) error {
	var ch *repo.Chunker
	select {
	case ch = <-b.chunkers:
	case <-b.ctx.Done():
		return context.Cause(b.ctx)
	}
	defer func() { b.chunkers <- ch }()
	extents := []repo.Extent{{Off: 0, Len: n.Size}}
	if st.Blocks*512 < n.Size {
		var err error
		if extents, err = dataExtents(fd, path, n.Size); err != nil {
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
		rd := io.NewSectionReader(fileAt(fd), e.Off, e.Len)
		if ch == nil {
			ch = b.r.NewChunker(rd, nil)
		} else {
			ch.Reset(rd)
		}
		var got int64
		for {
			chunk, err := ch.Next()
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

func openNoatime(dirfd int, name string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		// O_NOATIME needs ownership or CAP_FOWNER.
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	return fd, err
}
