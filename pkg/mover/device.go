package mover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/pxb-dev/pxb/pkg/repo"
)

// DeviceFile is the name of the one file in the snapshot of a block device: the device's bytes.
const DeviceFile = "device"

// BackupDevice stores the content of a block device (or of a file standing for one) as a new snapshot: a
// directory holding DeviceFile, whose size is the device's. All-zero chunks are recorded as holes, so an
// empty region costs nothing and is not written back on restore. The whole device is read every time; its
// unchanged chunks are deduplicated against earlier snapshots.
func BackupDevice(ctx context.Context, r *repo.Repository, device string, opts Options) (string, Stats, error) {
	start := time.Now()
	fail := func(err error) (string, Stats, error) {
		return "", Stats{}, fmt.Errorf("backup device %s: %w", device, err)
	}
	f, size, err := openDevice(device, os.O_RDONLY|unix.O_NOATIME)
	if errors.Is(err, unix.EPERM) {
		f, size, err = openDevice(device, os.O_RDONLY) // O_NOATIME is refused on files of other owners
	}
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	// The writer loads the index after taking its lease (see Backup).
	w, err := r.NewWriter(ctx)
	if err != nil {
		return fail(err)
	}
	defer w.Close(context.WithoutCancel(ctx))
	if testHookIndexLoaded != nil {
		testHookIndexLoaded()
	}
	if opts.ProgressInterval == 0 {
		opts.ProgressInterval = time.Second
	}
	var done atomic.Int64
	stopProgress := startProgress(opts.Progress, opts.ProgressInterval, func() Progress {
		return Progress{FilesTotal: 1, BytesDone: done.Load(), BytesTotal: size, TotalsFinal: true}
	})
	node := repo.Node{Name: DeviceFile, Type: repo.NodeFile, Mode: 0o600, Size: size, MTime: start.UnixNano(), Links: 1}
	err = saveDevice(ctx, r, w, f, &node, &done)
	stopProgress()
	if err != nil {
		return fail(err)
	}
	var enc repo.TreeEncoder
	blob, err := enc.Add(&node)
	if err != nil {
		return fail(err)
	}
	if blob == nil {
		blob = enc.Finish()
	}
	tree, err := w.SaveTree(blob)
	if err != nil {
		return fail(err)
	}
	ws := w.Stats()
	stats := Stats{Files: 1, Dirs: 1, Bytes: size, NewBlobs: ws.Blobs, NewBytes: ws.RawBytes, StoredBytes: ws.StoredBytes}
	host := opts.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	source := opts.Source
	if source == "" {
		source = device
	}
	root := repo.Node{Type: repo.NodeDir, Mode: 0o755, MTime: start.UnixNano(), Tree: []repo.ID{tree}}
	snap := &repo.Snapshot{Host: host, Source: source, Tags: opts.Tags, Parent: opts.Parent, Root: root,
		Stats: repo.SnapshotStats{Files: 1, Dirs: 1, Bytes: size, NewBytes: stats.NewBytes, StoredBytes: stats.StoredBytes}}
	id, err := w.SaveSnapshot(ctx, snap)
	if err != nil {
		return fail(err)
	}
	ws = w.Stats()
	stats.NewBlobs, stats.NewBytes, stats.StoredBytes = ws.Blobs, ws.RawBytes, ws.StoredBytes
	stats.Duration = time.Since(start)
	if err := w.Close(ctx); err != nil {
		return id, stats, fmt.Errorf("backup device %s: snapshot %s saved, but: %w", device, id, err)
	}
	return id, stats, nil
}

// saveDevice chunks the device in one pass and has GOMAXPROCS workers compress and encrypt the new chunks.
func saveDevice(ctx context.Context, r *repo.Repository, w *repo.Writer, f *os.File, n *repo.Node, done *atomic.Int64) error {
	g, gctx := errgroup.WithContext(ctx)
	type job struct {
		id  repo.ID
		buf *[]byte
	}
	jobs := make(chan job, runtime.GOMAXPROCS(0))
	maxChunk := r.Config().ChunkMax
	bufs := sync.Pool{New: func() any { b := make([]byte, maxChunk); return &b }}
	for range runtime.GOMAXPROCS(0) {
		g.Go(func() error {
			for j := range jobs {
				err := w.SaveBlob(repo.DataBlob, j.id, *j.buf)
				bufs.Put(j.buf)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(jobs)
		ch := r.NewChunker(io.NewSectionReader(f, 0, n.Size), nil)
		var off int64
		for {
			chunk, err := ch.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("read at %d: %w", off, err)
			}
			if isZero(chunk) {
				n.Holes = addHole(n.Holes, off, int64(len(chunk)))
			} else {
				id := r.Hash(chunk)
				n.Content = append(n.Content, id)
				if w.Reserve(repo.DataBlob, id) {
					buf := bufs.Get().(*[]byte)
					*buf = append((*buf)[:0], chunk...)
					select {
					case jobs <- job{id, buf}:
					case <-gctx.Done():
						return context.Cause(gctx)
					}
				}
			}
			off += int64(len(chunk))
			done.Store(off)
		}
		if off != n.Size {
			return fmt.Errorf("read %d bytes of %d: the device shrank while it was read", off, n.Size)
		}
		return nil
	})
	return g.Wait()
}

// addHole appends the hole [off, off+n) to holes, merging it with the last one when they touch.
func addHole(holes []repo.Extent, off, n int64) []repo.Extent {
	if k := len(holes) - 1; k >= 0 && holes[k].Off+holes[k].Len == off {
		holes[k].Len += n
		return holes
	}
	return append(holes, repo.Extent{Off: off, Len: n})
}

// RestoreDevice writes the device file of a snapshot taken by BackupDevice onto a block device (or a file
// standing for one) at least as large as the original. Every byte of the original's size is written: the
// holes are zeroed (BLKZEROOUT, which thin devices do without writing), so nothing the device held before
// shows through. Bytes past the original's size are left as they are.
func RestoreDevice(ctx context.Context, r *repo.Repository, snapshotID, device string, opts RestoreOptions) (Stats, error) {
	start := time.Now()
	fail := func(err error) (Stats, error) {
		return Stats{}, fmt.Errorf("restore snapshot %s to device %s: %w", snapshotID, device, err)
	}
	// As Restore: a shared lease for the whole restore, the index loaded once it is held.
	lease, err := r.ReadLease(ctx)
	if err != nil {
		return fail(err)
	}
	defer lease.Release(context.WithoutCancel(ctx))
	snap, err := r.LoadSnapshot(ctx, snapshotID)
	if err != nil {
		return fail(err)
	}
	n, err := findPath(ctx, r, &snap.Root, DeviceFile)
	if err != nil {
		return fail(fmt.Errorf("not a snapshot of a block device: %w", err))
	}
	if n.Type != repo.NodeFile {
		return fail(fmt.Errorf("not a snapshot of a block device: %s is a %s", DeviceFile, n.Type))
	}
	f, size, err := openDevice(device, os.O_WRONLY)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	if size < n.Size {
		return fail(fmt.Errorf("the device has %d bytes, the backed-up one had %d: restore onto a volume at least as large", size, n.Size))
	}
	for _, h := range n.Holes {
		if err := zeroRange(f, h.Off, h.Len); err != nil {
			return fail(fmt.Errorf("zero %d bytes at %d: %w", h.Len, h.Off, err))
		}
	}
	opts.defaults()
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rs := &restorer{ctx: rctx, cancel: cancel, r: r, opts: opts, reads: make(chan chunkRead, opts.Workers),
		links: map[linkKey]*restoredLink{}}
	rs.filesTotal.Store(1)
	rs.bytesTotal.Store(n.Size)
	rs.walkDone.Store(true)
	var hole int64
	for _, h := range n.Holes {
		hole += h.Len
	}
	rs.bytesDone.Store(hole)
	stopProgress := startProgress(opts.Progress, opts.ProgressInterval, rs.progress)
	var chunkWG sync.WaitGroup
	for range opts.Workers {
		chunkWG.Add(1)
		go func() { defer chunkWG.Done(); rs.chunkWorker() }()
	}
	err = rs.writeDevice(f, device, n)
	close(rs.reads)
	chunkWG.Wait()
	stopProgress()
	if err == nil {
		err = context.Cause(rctx)
	}
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("sync: %w", err)
		}
	}
	if err != nil {
		return fail(err)
	}
	return Stats{Files: 1, Bytes: n.Size, Duration: time.Since(start)}, nil
}

// writeDevice plans the reads of the device's chunks for the chunk workers, which write them in place.
func (rs *restorer) writeDevice(f *os.File, device string, n *repo.Node) error {
	data := complement(n.Holes, n.Size)
	var off, want int64
	offs := make([]int64, len(n.Content))
	for i, id := range n.Content {
		loc, _, ok := rs.r.Index().Lookup(id)
		if !ok {
			return fmt.Errorf("blob %s is not in any index (missing from the repository)", id)
		}
		offs[i] = off
		off += int64(loc.RawLength)
	}
	for _, e := range data {
		want += e.Len
	}
	if off != want {
		return fmt.Errorf("snapshot content has %d bytes, the device had %d outside its holes", off, want)
	}
	cf := &chunkedFile{path: device, node: n, f: f, data: data, device: true}
	cf.pending.Store(int64(len(n.Content)) + 1) // held until every chunk is dispatched
	targets := make([]chunkTarget, len(n.Content))
	for i := range targets {
		targets[i] = chunkTarget{cf, offs[i]}
	}
	for i := 0; i < len(n.Content); i += planChunks {
		end := min(i+planChunks, len(n.Content))
		rs.dispatch(n.Content[i:end], targets[i:end])
	}
	rs.chunkDone(cf, true)
	return nil
}

// openDevice opens a device (or a file standing for one) and returns its size.
func openDevice(path string, flag int) (*os.File, int64, error) {
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, 0, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("size: %w", err)
	}
	return f, size, nil
}

// zeroRange makes [off, off+n) of f read as zeros: BLKZEROOUT on a block device; on a file standing for one, a
// punched hole, or written zeros where the file system cannot punch.
func zeroRange(f *os.File, off, n int64) error {
	r := [2]uint64{uint64(off), uint64(n)}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r[0])))
	if errno == 0 {
		return nil
	}
	if errno != unix.ENOTTY && errno != unix.EINVAL {
		return errno
	}
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err == nil {
		return nil
	}
	zeros := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}
