package mover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pxb-dev/pxb/pkg/repo"
)

// RestoreOptions tune a restore.
type RestoreOptions struct {
	Progress         func(Progress)
	ProgressInterval time.Duration
	// Workers is the number of pack reads fetched and written at once (default 4 x GOMAXPROCS).
	Workers int
}

// defaults fills in the options left zero.
func (o *RestoreOptions) defaults() {
	if o.Workers == 0 {
		o.Workers = 4 * runtime.GOMAXPROCS(0)
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = time.Second
	}
}

type restorer struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	r      *repo.Repository
	trees  *repo.TreeFetcher
	opts   RestoreOptions
	root   bool // running as root: restore ownership and devices

	files   chan []restoreFile // single files and batches of small files, for the file workers
	windows chan []restoreFile // files of several chunks, for the planner
	reads   chan chunkRead     // pack reads, for the chunk workers

	batch       []restoreFile // small files collected by the walker
	batchBytes  int64
	window      []restoreFile // files of several chunks collected by the walker
	windowBytes int64

	linkMu sync.Mutex
	links  map[linkKey]*restoredLink

	dirs []dirMeta // applied after all content, deepest first

	filesDone, filesTotal, bytesDone, bytesTotal atomic.Int64
	nFiles, nDirs, nOthers                       atomic.Int64
	walkDone                                     atomic.Bool
}

type restoreFile struct {
	path string
	node *repo.Node
}

// chunkedFile is a file of several chunks, open while the chunk workers write it.
type chunkedFile struct {
	path    string
	node    *repo.Node
	f       *os.File
	data    []repo.Extent
	pending atomic.Int64 // chunks not yet written
	failed  atomic.Bool
	// device is a block device written in place: zeros are written too (it is not empty beforehand), and it
	// is neither closed nor given a file's metadata here.
	device bool
}

// chunkTarget is where one chunk's plaintext goes: a position in a file's data stream.
type chunkTarget struct {
	file *chunkedFile
	off  int64
}

// chunkRead is one pack read; targets is indexed by the blob positions the read was planned with.
type chunkRead struct {
	read    repo.PackRead
	targets []chunkTarget
}

// restoredLink is an inode with several names: the first name is written, the others are linked to it
// once it is complete.
type restoredLink struct {
	path    string
	done    bool
	failed  bool
	waiters []string
}

type dirMeta struct {
	path string
	node repo.Node
}

// testHookRestoreStarted, when set, is called once a restore has loaded its snapshot, before it reads data.
var testHookRestoreStarted func()

// Restore writes the snapshot's tree, or the sub-path of it, into target, which must be empty or absent.
// A sub-path names a directory (its contents land in target) or a file (written as target/<name>).
func Restore(ctx context.Context, r *repo.Repository, snapshotID, subpath, target string, opts RestoreOptions) (Stats, error) {
	start := time.Now()
	if err := checkEmptyTarget(target); err != nil {
		return Stats{}, err
	}
	// A shared lease for the whole restore keeps garbage collection from repacking or deleting the packs it
	// reads; the index is loaded once the lease is held.
	lease, err := r.ReadLease(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("restore: %w", err)
	}
	defer lease.Release(context.WithoutCancel(ctx))
	snap, err := r.LoadSnapshot(ctx, snapshotID)
	if err != nil {
		return Stats{}, fmt.Errorf("restore: %w", err)
	}
	node, err := findPath(ctx, r, &snap.Root, subpath)
	if err != nil {
		return Stats{}, fmt.Errorf("restore %s from snapshot %s: %w", subpath, snapshotID, err)
	}
	opts.defaults()
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rs := &restorer{ctx: rctx, cancel: cancel, r: r, trees: r.NewTreeFetcher(rctx), opts: opts, root: os.Geteuid() == 0,
		files: make(chan []restoreFile, 16), windows: make(chan []restoreFile, 1), reads: make(chan chunkRead, opts.Workers),
		links: map[linkKey]*restoredLink{}}

	var fileWG, chunkWG sync.WaitGroup
	for range 2 * runtime.GOMAXPROCS(0) {
		fileWG.Add(1)
		go func() { defer fileWG.Done(); rs.fileWorker() }()
	}
	planned := make(chan struct{})
	go func() { defer close(planned); rs.planner() }()
	for range opts.Workers {
		chunkWG.Add(1)
		go func() { defer chunkWG.Done(); rs.chunkWorker() }()
	}
	stopProgress := startProgress(opts.Progress, opts.ProgressInterval, rs.progress)
	if testHookRestoreStarted != nil {
		testHookRestoreStarted()
	}

	if node.Type == repo.NodeDir {
		rs.nDirs.Add(1)
		rs.walk(target, node)
		rs.dirs = append(rs.dirs, dirMeta{path: target, node: *node})
	} else {
		rs.restoreEntry(filepath.Join(target, node.Name), node)
	}
	rs.flushBatch()
	rs.flushWindow()
	rs.walkDone.Store(true)
	close(rs.files)
	close(rs.windows)
	fileWG.Wait()
	<-planned
	chunkWG.Wait()
	if err := context.Cause(rctx); err != nil {
		stopProgress()
		return Stats{}, fmt.Errorf("restore snapshot %s to %s: %w", snapshotID, target, err)
	}
	// Directory metadata last: writing entries changes a directory's mtime and may need its write permission.
	for i := len(rs.dirs) - 1; i >= 0; i-- {
		if err := rs.applyMeta(rs.dirs[i].path, &rs.dirs[i].node); err != nil {
			stopProgress()
			return Stats{}, fmt.Errorf("restore snapshot %s to %s: %w", snapshotID, target, err)
		}
	}
	stopProgress()
	if err := lease.Release(ctx); err != nil {
		return Stats{}, fmt.Errorf("restore snapshot %s to %s: %w", snapshotID, target, err)
	}
	return Stats{Files: rs.nFiles.Load(), Dirs: rs.nDirs.Load(), Others: rs.nOthers.Load(), Bytes: rs.bytesTotal.Load(),
		Duration: time.Since(start)}, nil
}

func (rs *restorer) progress() Progress {
	return Progress{FilesDone: rs.filesDone.Load(), FilesTotal: rs.filesTotal.Load(), BytesDone: rs.bytesDone.Load(),
		BytesTotal: rs.bytesTotal.Load(), TotalsFinal: rs.walkDone.Load()}
}

func checkEmptyTarget(target string) error {
	entries, err := os.ReadDir(target)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(target, 0o700); err != nil {
			return fmt.Errorf("restore: create target %s: %w", target, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore: target %s: %w", target, err)
	}
	for _, e := range entries {
		// A new ext4 or xfs volume holds an empty lost+found.
		if e.Name() != "lost+found" {
			return fmt.Errorf("restore: target %s is not empty", target)
		}
	}
	return nil
}

// findPath resolves a slash-separated path inside a snapshot.
func findPath(ctx context.Context, r *repo.Repository, root *repo.Node, subpath string) (*repo.Node, error) {
	cur := root
	for _, name := range strings.Split(strings.Trim(filepath.ToSlash(subpath), "/"), "/") {
		if name == "" || name == "." {
			continue
		}
		if cur.Type != repo.NodeDir {
			return nil, fmt.Errorf("%s is not a directory", cur.Name)
		}
		var found *repo.Node
		errStop := errors.New("found")
		err := r.WalkTree(ctx, cur.Tree, func(n *repo.Node) error {
			if n.Name == name {
				c := *n
				found = &c
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, err
		}
		if found == nil {
			return nil, fmt.Errorf("no entry %q in the snapshot", name)
		}
		cur = found
	}
	return cur, nil
}

func (rs *restorer) fail(err error) { rs.cancel(err) }

// walk creates a directory's entries; files go to the file workers.
func (rs *restorer) walk(dir string, node *repo.Node) {
	err := rs.trees.Walk(rs.ctx, node.Tree, func(n *repo.Node) error {
		if err := rs.ctx.Err(); err != nil {
			return context.Cause(rs.ctx)
		}
		path := filepath.Join(dir, n.Name)
		if n.Type == repo.NodeDir {
			rs.nDirs.Add(1)
			if err := os.Mkdir(path, 0o700); err != nil {
				return fmt.Errorf("create directory %s: %w", path, err)
			}
			rs.walk(path, n)
			meta := *n
			meta.Tree = nil
			rs.dirs = append(rs.dirs, dirMeta{path: path, node: meta})
			return nil
		}
		rs.restoreEntry(path, n)
		return nil
	})
	if err != nil {
		rs.fail(err)
	}
}

func (rs *restorer) restoreEntry(path string, n *repo.Node) {
	var err error
	switch n.Type {
	case repo.NodeFile:
		rs.nFiles.Add(1)
		rs.filesTotal.Add(1)
		rs.bytesTotal.Add(n.Size)
		if n.Links > 1 && !rs.firstName(path, n) {
			return // linked to the first name once that is written
		}
		c := *n
		f := restoreFile{path: path, node: &c}
		if len(n.Content) > 1 {
			rs.window = append(rs.window, f)
			rs.windowBytes += n.Size
			if len(rs.window) >= windowFiles || rs.windowBytes >= windowBytes {
				rs.flushWindow()
			}
			return
		}
		if n.Links <= 1 && n.Size <= batchFileMax {
			rs.batch = append(rs.batch, f)
			rs.batchBytes += n.Size
			if len(rs.batch) >= batchFiles || rs.batchBytes >= batchBytes {
				rs.flushBatch()
			}
			return
		}
		rs.send([]restoreFile{f})
		return
	case repo.NodeSymlink:
		err = os.Symlink(n.Target, path)
	case repo.NodeFifo:
		err = unix.Mkfifo(path, 0o600)
	case repo.NodeChar, repo.NodeBlock:
		if !rs.root {
			rs.fail(fmt.Errorf("%s: restoring a device node needs root", path))
			return
		}
		mode := uint32(unix.S_IFCHR)
		if n.Type == repo.NodeBlock {
			mode = unix.S_IFBLK
		}
		err = unix.Mknod(path, mode|0o600, int(n.Rdev))
	case repo.NodeSocket:
		// A socket is recreated by the program that listens on it; an entry records that it existed.
		rs.nOthers.Add(1)
		return
	}
	if err != nil {
		rs.fail(fmt.Errorf("create %s %s: %w", n.Type, path, err))
		return
	}
	rs.nOthers.Add(1)
	if err := rs.applyMeta(path, n); err != nil {
		rs.fail(err)
	}
}

// Small files are restored in batches, so blobs stored next to each other are read together.
const (
	batchFileMax = 1 << 20
	batchFiles   = 256
	batchBytes   = 4 << 20
)

// Files of several chunks are planned together in windows, so chunks that were stored together (a backup
// writes the chunks of several files into one pack at once) are fetched with one request. A window bounds the
// files held open; planChunks bounds the plan of a very large file.
const (
	windowFiles = 128
	windowBytes = 256 << 20
	planChunks  = 8192
)

func (rs *restorer) send(job []restoreFile) {
	select {
	case rs.files <- job:
	case <-rs.ctx.Done():
	}
}

func (rs *restorer) flushBatch() {
	if len(rs.batch) > 0 {
		rs.send(rs.batch)
	}
	rs.batch, rs.batchBytes = nil, 0
}

func (rs *restorer) flushWindow() {
	if len(rs.window) > 0 {
		select {
		case rs.windows <- rs.window:
		case <-rs.ctx.Done():
		}
	}
	rs.window, rs.windowBytes = nil, 0
}

// firstName registers a name of an inode with several links. It reports whether this is the first name,
// which is written; a later name is linked now if the first is complete, or when it completes.
func (rs *restorer) firstName(path string, n *repo.Node) bool {
	key := linkKey{n.Dev, n.Inode}
	rs.linkMu.Lock()
	first, ok := rs.links[key]
	if !ok {
		rs.links[key] = &restoredLink{path: path}
		rs.linkMu.Unlock()
		return true
	}
	if !first.done {
		first.waiters = append(first.waiters, path)
		rs.linkMu.Unlock()
		return false
	}
	failed := first.failed
	rs.linkMu.Unlock()
	if !failed {
		rs.link(first.path, path, n)
	}
	return false
}

// firstDone records that the first name of a linked inode is complete, or failed, and links its other names.
func (rs *restorer) firstDone(n *repo.Node, ok bool) {
	if n.Links <= 1 {
		return
	}
	rs.linkMu.Lock()
	first := rs.links[linkKey{n.Dev, n.Inode}]
	first.done, first.failed = true, !ok
	waiters := first.waiters
	first.waiters = nil
	rs.linkMu.Unlock()
	if !ok {
		return // the restore has failed already
	}
	for _, path := range waiters {
		rs.link(first.path, path, n)
	}
}

func (rs *restorer) link(first, path string, n *repo.Node) {
	if err := os.Link(first, path); err != nil {
		rs.fail(fmt.Errorf("hard link %s to %s: %w", path, first, err))
		return
	}
	rs.bytesDone.Add(n.Size)
	rs.filesDone.Add(1)
}

func (rs *restorer) fileWorker() {
	var buf []byte
	for job := range rs.files {
		if rs.ctx.Err() != nil {
			continue
		}
		var err error
		if len(job) == 1 {
			err = rs.restoreFile(job[0].path, job[0].node, &buf)
		} else {
			err = rs.restoreBatch(job)
		}
		if err != nil {
			rs.fail(err)
			continue
		}
		rs.filesDone.Add(int64(len(job)))
	}
}

// restoreBatch writes small files of at most one chunk each, reading their blobs in storage order.
func (rs *restorer) restoreBatch(files []restoreFile) error {
	var ids []repo.ID
	var owner []int
	for i, f := range files {
		if len(f.node.Content) == 0 {
			if err := rs.writeSmall(f.path, f.node, nil); err != nil {
				return err
			}
			continue
		}
		ids = append(ids, f.node.Content[0])
		owner = append(owner, i)
	}
	return rs.r.LoadBlobs(rs.ctx, ids, func(i int, data []byte) error {
		f := files[owner[i]]
		if err := rs.writeSmall(f.path, f.node, data); err != nil {
			return err
		}
		rs.bytesDone.Add(int64(len(data)))
		return nil
	})
}

// writeSmall creates a file whose whole content is data.
func (rs *restorer) writeSmall(path string, n *repo.Node, data []byte) error {
	if len(n.Holes) > 0 {
		f, extents, want, err := createFile(path, n)
		if err != nil {
			return err
		}
		defer f.Close()
		if int64(len(data)) != want {
			return fmt.Errorf("restore %s: snapshot content has %d bytes, the file had %d", path, len(data), want)
		}
		if err := writeData(f, data, 0, extents, true); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return rs.applyMeta(path, n)
	}
	// Without holes the write alone gives the file its size: no truncate, no zero scan.
	if int64(len(data)) != n.Size {
		return fmt.Errorf("restore %s: snapshot content has %d bytes, the file had %d", path, len(data), n.Size)
	}
	// A bare descriptor: an *os.File costs more system calls than the whole small file.
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	for len(data) > 0 {
		var w int
		if w, err = unix.Write(fd, data); err != nil && !errors.Is(err, unix.EINTR) {
			break
		}
		err = nil
		data = data[max(w, 0):]
	}
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := rs.applyFileMeta(fd, path, n); err != nil {
		unix.Close(fd)
		return err
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// createFile creates an empty file of the node's size and returns its data extents and their total length.
func createFile(path string, n *repo.Node) (*os.File, []repo.Extent, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("create %s: %w", path, err)
	}
	if n.Size > 0 {
		if err := f.Truncate(n.Size); err != nil {
			f.Close()
			return nil, nil, 0, fmt.Errorf("size %s: %w", path, err)
		}
	}
	data := complement(n.Holes, n.Size)
	var want int64
	for _, e := range data {
		want += e.Len
	}
	return f, data, want, nil
}

// restoreFile writes a file of at most one chunk.
func (rs *restorer) restoreFile(path string, n *repo.Node, buf *[]byte) error {
	var data []byte
	var err error
	if len(n.Content) == 1 {
		data, err = rs.r.LoadBlob(rs.ctx, n.Content[0], *buf)
		if err != nil {
			err = fmt.Errorf("restore %s: %w", path, err)
		}
		*buf = data
	}
	if err == nil {
		err = rs.writeSmall(path, n, data)
	}
	if err == nil {
		rs.bytesDone.Add(int64(len(data)))
	}
	rs.firstDone(n, err == nil)
	return err
}

// planner opens the files of each window and turns their chunks into pack reads for the chunk workers.
func (rs *restorer) planner() {
	defer close(rs.reads)
	for win := range rs.windows {
		if rs.ctx.Err() == nil {
			rs.planWindow(win)
		}
	}
}

func (rs *restorer) planWindow(win []restoreFile) {
	var ids []repo.ID
	var targets []chunkTarget
	for k, rf := range win {
		cf, offs, err := rs.openChunked(rf)
		if err != nil {
			rs.fail(err)
			rs.drop(targets) // the files opened before this one
			return
		}
		for i, id := range rf.node.Content {
			ids = append(ids, id)
			targets = append(targets, chunkTarget{cf, offs[i]})
		}
		if len(ids) >= planChunks || k == len(win)-1 {
			rs.dispatch(ids, targets)
			ids, targets = nil, nil
		}
	}
}

// openChunked creates a file of several chunks and returns it with each chunk's position in its data stream.
func (rs *restorer) openChunked(rf restoreFile) (*chunkedFile, []int64, error) {
	// Chunk sizes are only known after loading, so the positions come from the raw lengths in the index.
	var off int64
	offs := make([]int64, len(rf.node.Content))
	for i, id := range rf.node.Content {
		loc, _, ok := rs.r.Index().Lookup(id)
		if !ok {
			return nil, nil, fmt.Errorf("restore %s: blob %s is not in any index (missing from the repository)", rf.path, id)
		}
		offs[i] = off
		off += int64(loc.RawLength)
	}
	f, data, want, err := createFile(rf.path, rf.node)
	if err != nil {
		return nil, nil, err
	}
	if off != want {
		f.Close()
		return nil, nil, fmt.Errorf("restore %s: snapshot content has %d bytes, the file had %d", rf.path, off, want)
	}
	cf := &chunkedFile{path: rf.path, node: rf.node, f: f, data: data}
	cf.pending.Store(int64(len(offs)))
	return cf, offs, nil
}

// dispatch plans the reads of the chunks and sends them to the chunk workers.
func (rs *restorer) dispatch(ids []repo.ID, targets []chunkTarget) {
	reads, err := rs.r.PlanReads(ids)
	if err != nil {
		rs.fail(err)
		rs.drop(targets)
		return
	}
	for k, p := range reads {
		select {
		case rs.reads <- chunkRead{read: p, targets: targets}:
		case <-rs.ctx.Done():
			for _, p := range reads[k:] {
				for _, i := range p.Indexes() {
					rs.chunkDone(targets[i].file, false)
				}
			}
			return
		}
	}
}

// drop gives up chunks of a failed restore, which closes their files.
func (rs *restorer) drop(targets []chunkTarget) {
	for _, t := range targets {
		rs.chunkDone(t.file, false)
	}
}

// chunkDone records one chunk of a file as written, or given up because the restore failed; the last one
// completes the file.
func (rs *restorer) chunkDone(cf *chunkedFile, written bool) {
	if !written {
		cf.failed.Store(true)
	}
	if cf.pending.Add(-1) > 0 {
		return
	}
	if cf.device {
		if !cf.failed.Load() {
			rs.filesDone.Add(1)
		}
		return
	}
	if cf.failed.Load() {
		cf.f.Close()
		rs.firstDone(cf.node, false)
		return
	}
	err := rs.applyFileMeta(int(cf.f.Fd()), cf.path, cf.node)
	if cerr := cf.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", cf.path, cerr)
	}
	if err != nil {
		rs.fail(err)
	} else {
		rs.filesDone.Add(1)
	}
	rs.firstDone(cf.node, err == nil)
}

// chunkWorker carries out pack reads, writing each chunk where its files want it.
func (rs *restorer) chunkWorker() {
	for cr := range rs.reads {
		idx := cr.read.Indexes()
		delivered := 0
		if rs.ctx.Err() == nil {
			var writeErr error
			err := rs.r.LoadRead(rs.ctx, cr.read, func(i int, out []byte) error {
				t := cr.targets[i]
				if err := writeData(t.file.f, out, t.off, t.file.data, !t.file.device); err != nil {
					writeErr = fmt.Errorf("write %s: %w", t.file.path, err)
					return writeErr
				}
				delivered++
				rs.bytesDone.Add(int64(len(out)))
				rs.chunkDone(t.file, true)
				return nil
			})
			if err != nil && err != writeErr {
				err = fmt.Errorf("restore %s: %w", cr.targets[idx[delivered]].file.path, err)
			}
			if err != nil {
				rs.fail(err)
			}
		}
		for _, i := range idx[delivered:] {
			rs.chunkDone(cr.targets[i].file, false)
		}
	}
}

// writeData writes chunk bytes found at position pos of the file's data stream into the data extents,
// skipping all-zero runs when sparse, so restored files stay sparse.
func writeData(f *os.File, chunk []byte, pos int64, data []repo.Extent, sparse bool) error {
	var streamOff int64
	for _, e := range data {
		if len(chunk) == 0 {
			return nil
		}
		if pos >= streamOff+e.Len {
			streamOff += e.Len
			continue
		}
		in := pos - streamOff
		n := min(int64(len(chunk)), e.Len-in)
		if !sparse || !isZero(chunk[:n]) {
			if _, err := f.WriteAt(chunk[:n], e.Off+in); err != nil {
				return err
			}
		}
		chunk = chunk[n:]
		pos += n
		streamOff += e.Len
	}
	if len(chunk) > 0 {
		return fmt.Errorf("%d bytes of content beyond the end of the file", len(chunk))
	}
	return nil
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// applyFileMeta is applyMeta for a regular file open as fd, without looking its path up again.
func (rs *restorer) applyFileMeta(fd int, path string, n *repo.Node) error {
	for _, x := range n.Xattrs {
		if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || (!rs.root && errors.Is(err, unix.EPERM)) {
				continue
			}
			return fmt.Errorf("set xattr %s on %s: %w", x.Name, path, err)
		}
	}
	if rs.root {
		if err := unix.Fchown(fd, int(n.UID), int(n.GID)); err != nil {
			return fmt.Errorf("chown %s: %w", path, err)
		}
	}
	if err := unix.Fchmod(fd, n.Mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	// futimens: utimensat on the descriptor itself (a NULL path).
	ts := [2]unix.Timespec{unix.NsecToTimespec(n.MTime), unix.NsecToTimespec(n.MTime)}
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); e != 0 {
		return fmt.Errorf("set times of %s: %w", path, e)
	}
	return nil
}

// applyMeta sets xattrs, ownership (as root), mode and times.
func (rs *restorer) applyMeta(path string, n *repo.Node) error {
	for _, x := range n.Xattrs {
		if err := unix.Lsetxattr(path, x.Name, x.Value, 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || (!rs.root && errors.Is(err, unix.EPERM)) {
				continue // the target file system or user cannot hold this attribute
			}
			return fmt.Errorf("set xattr %s on %s: %w", x.Name, path, err)
		}
	}
	if rs.root {
		if err := os.Lchown(path, int(n.UID), int(n.GID)); err != nil {
			return fmt.Errorf("chown %s: %w", path, err)
		}
	}
	if n.Type != repo.NodeSymlink {
		// chmod after chown: chown clears setuid/setgid.
		if err := unix.Fchmodat(unix.AT_FDCWD, path, n.Mode, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", path, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(n.MTime), unix.NsecToTimespec(n.MTime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", path, err)
	}
	return nil
}
