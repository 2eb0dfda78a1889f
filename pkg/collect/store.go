package collect

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// Store is where a backup's objects, index and manifest, and a restore's summary, are written and read.
// It is deliberately small so that the encrypted repository can sit behind it: keys are plain relative
// names, and values are streams so that no document has to fit in memory.
type Store interface {
	// Put stores everything read from r under key, replacing nothing: keys are written once.
	Put(ctx context.Context, key string, r io.Reader) error
	// Get opens the value stored under key; a missing key gives an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// ErrNotFound is wrapped by Store.Get when a key does not exist.
var ErrNotFound = errors.New("not found")

// BucketStore stores values as zstd-compressed objects in a gocloud.dev bucket. Compression lives in the
// store, not in the object layout, so that a store which compresses on its own (the repository, which also
// deduplicates) receives plain JSON lines.
type BucketStore struct {
	Bucket *blob.Bucket
}

// NewBucketStore returns a Store over b (use blob.PrefixedBucket to scope it to one backup).
func NewBucketStore(b *blob.Bucket) *BucketStore { return &BucketStore{Bucket: b} }

func (s *BucketStore) Put(ctx context.Context, key string, r io.Reader) error {
	// Cancelling the writer's context is how gocloud aborts a write: a failed stream leaves no object.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.Bucket.NewWriter(wctx, layout.CompressedKey(key), &blob.WriterOptions{ContentType: "application/zstd"})
	if err != nil {
		return fmt.Errorf("open %s: %w", key, err)
	}
	enc, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest),
		// Many values are written at once (one per type being listed); a small window keeps each cheap.
		zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
	if err == nil {
		_, err = io.Copy(enc, r)
		if cerr := enc.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		cancel()
		_ = w.Close()
		return fmt.Errorf("write %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

func (s *BucketStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	r, err := s.Bucket.NewReader(ctx, layout.CompressedKey(key), nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("read %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("decompress %s: %w", key, err)
	}
	return &decodingReader{dec: dec, src: r}, nil
}

type decodingReader struct {
	dec *zstd.Decoder
	src io.Closer
}

func (d *decodingReader) Read(p []byte) (int, error) { return d.dec.Read(p) }

func (d *decodingReader) Close() error {
	d.dec.Close()
	return d.src.Close()
}

// StreamWriter is a writer whose bytes are stored under one key by a concurrent Store.Put, so that a
// value of any size is written without holding it in memory.
type StreamWriter struct {
	pw   *io.PipeWriter
	done chan error
}

// NewStreamWriter starts storing key in s; Close waits for the Put and returns its error.
func NewStreamWriter(ctx context.Context, s Store, key string) *StreamWriter {
	pr, pw := io.Pipe()
	sw := &StreamWriter{pw: pw, done: make(chan error, 1)}
	go func() {
		err := s.Put(ctx, key, pr)
		// Unblock the writer if Put returned before reading everything.
		if err != nil {
			_ = pr.CloseWithError(err)
		} else {
			_ = pr.CloseWithError(io.ErrClosedPipe)
		}
		sw.done <- err
	}()
	return sw
}

func (sw *StreamWriter) Write(p []byte) (int, error) { return sw.pw.Write(p) }

// Close ends the value and waits until it is stored.
func (sw *StreamWriter) Close() error {
	_ = sw.pw.Close()
	return <-sw.done
}

// Abort discards the value: the Put sees err and stores nothing.
func (sw *StreamWriter) Abort(err error) {
	_ = sw.pw.CloseWithError(err)
	<-sw.done
}
