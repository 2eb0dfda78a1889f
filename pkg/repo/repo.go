package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/crypto/argon2"
	"golang.org/x/time/rate"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// FormatVersion is the repository format this package writes and the newest it reads.
const FormatVersion = 1

// Config is the repository-wide settings, stored encrypted in the "config" object at Init and never changed.
type Config struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	// Chunker bounds in bytes (FastCDC with normalized chunking).
	ChunkMin int `json:"chunkMin"`
	ChunkAvg int `json:"chunkAvg"`
	ChunkMax int `json:"chunkMax"`
	// Compression is "zstd" or "none"; CompressionLevel is a zstd encoder level (1 fastest .. 4 best).
	Compression      string    `json:"compression"`
	CompressionLevel int       `json:"compressionLevel"`
	PackSize         int       `json:"packSize"`
	Created          time.Time `json:"created"`
}

// KDFParams are the argon2id parameters of a key slot.
type KDFParams struct {
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory"` // KiB
	Threads uint8  `json:"threads"`
}

// DefaultKDF costs about 0.1 s and 32 MiB, small enough for a Job's memory budget.
var DefaultKDF = KDFParams{Time: 3, Memory: 32 * 1024, Threads: 2}

// The bounds of a key slot's argon2id parameters. Jobs run with memory limits of 1 GiB (backup, restore)
// and 2 GiB (volume movers), beside what the job itself holds, so a slot may ask for at most 256 MiB (eight
// times DefaultKDF's); its time cost is bounded so that a slot costs a few seconds at most. Open skips a
// slot beyond a bound without running argon2id on it (anyone who can write to the bucket can plant one),
// and AddKey, ChangePassphrase and Init refuse to write one.
const (
	MaxKDFMemory  = 256 * 1024 // KiB
	MaxKDFTime    = 10
	MaxKDFThreads = 16
)

// validate says whether p lies within the bounds of a key slot.
func (p KDFParams) validate() error {
	switch {
	case p.Memory > MaxKDFMemory:
		return fmt.Errorf("argon2id memory %d KiB exceeds the bound of %d KiB (%d MiB)", p.Memory, MaxKDFMemory, MaxKDFMemory/1024)
	case p.Time > MaxKDFTime:
		return fmt.Errorf("argon2id time cost %d exceeds the bound of %d", p.Time, MaxKDFTime)
	case p.Threads > MaxKDFThreads:
		return fmt.Errorf("argon2id threads %d exceed the bound of %d", p.Threads, MaxKDFThreads)
	case p.Time < 1 || p.Threads < 1 || p.Memory < 8*uint32(p.Threads):
		return fmt.Errorf("invalid argon2id parameters (time %d, memory %d KiB, threads %d)", p.Time, p.Memory, p.Threads)
	}
	return nil
}

// InitOptions configure a new repository. Zero values take defaults.
type InitOptions struct {
	ChunkMin, ChunkAvg, ChunkMax int
	Compression                  string // "zstd" (default) or "none"
	CompressionLevel             int    // 1 (fastest, default) .. 4
	PackSize                     int    // default 32 MiB
	KDF                          KDFParams
}

// ObjectLock applies a retention date to every object written except lock leases: S3 object lock, or GCS
// object retention (COMPLIANCE is GCS's Locked mode, GOVERNANCE its Unlocked mode).
type ObjectLock struct {
	Mode   string // "GOVERNANCE" or "COMPLIANCE"
	Period time.Duration
}

// Options tune an opened repository.
type Options struct {
	ObjectLock *ObjectLock
	// Retain, with ObjectLock, gives an object just written its retention, on stores whose uploads cannot
	// carry one (Azure Blob's immutability policy is set on the blob after it is written).
	Retain func(ctx context.Context, name string, until time.Time) error
	// LeaseDuration is how long a writer's or GC's lock stays valid without a refresh (default 30 min).
	LeaseDuration time.Duration
	// Uploads is the number of packs uploaded at once (default 2).
	Uploads int
	// UploadLimit bounds the bytes per second written in packs, summed over all uploads (0: no limit), so
	// that a backup leaves bandwidth to the applications that share the network.
	UploadLimit int64
}

// Repository is an opened repository on a bucket.
type Repository struct {
	bucket *blob.Bucket
	cfg    Config
	keys   *keys
	master []byte
	keyID  string // the slot that opened it
	strays []strayKey
	opts   Options
	gear   *[256]uint64
	upload *rate.Limiter // nil: no limit
	s3     *s3Store      // nil unless the bucket is on S3

	snapMu       sync.Mutex
	skippedSnaps []SkippedObject // by the last Snapshots
	skippedKeys  []SkippedObject // by Open

	idxMu  sync.Mutex
	index  *Index
	loaded map[string]bool // index objects loaded
	// skippedIdx are the index objects the last LoadIndex skipped as damaged.
	skippedIdx []SkippedObject
}

func (c *Config) validate() error {
	if c.Version > FormatVersion {
		return fmt.Errorf("%w: repository format version %d is newer than this pxb supports (%d): upgrade pxb", ErrNewerFormat, c.Version, FormatVersion)
	}
	if c.Version < 1 {
		return fmt.Errorf("invalid repository format version %d", c.Version)
	}
	if c.ChunkMin < 64 || c.ChunkMin > c.ChunkAvg || c.ChunkAvg > c.ChunkMax || c.ChunkMax > 64<<20 ||
		c.ChunkAvg&(c.ChunkAvg-1) != 0 {
		return fmt.Errorf("invalid chunker bounds min %d avg %d max %d (avg must be a power of two)", c.ChunkMin, c.ChunkAvg, c.ChunkMax)
	}
	if c.Compression != "zstd" && c.Compression != "none" {
		return fmt.Errorf("unknown compression %q", c.Compression)
	}
	if c.CompressionLevel < 1 || c.CompressionLevel > 4 {
		return fmt.Errorf("invalid compression level %d (1..4)", c.CompressionLevel)
	}
	if c.PackSize < 1<<20 || c.PackSize > 1<<30 {
		return fmt.Errorf("invalid pack size %d", c.PackSize)
	}
	return nil
}

func newRepository(b *blob.Bucket, cfg Config, master []byte, opts Options) (*Repository, error) {
	k, err := deriveKeys(master)
	if err != nil {
		return nil, err
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = 30 * time.Minute
	}
	if opts.Uploads == 0 {
		opts.Uploads = 2
	}
	// Uploads+1 parts in flight while the next fills: on set B to S3, six parts were no faster than four
	// and cost ~18 MiB more peak memory.
	s3, err := newS3Store(b, opts.Uploads+2)
	if err != nil {
		return nil, err
	}
	return &Repository{bucket: b, cfg: cfg, keys: k, master: master, opts: opts, gear: gearTable(k.gearKey),
		upload: newLimiter(opts.UploadLimit), s3: s3, index: newIndex(), loaded: map[string]bool{}}, nil
}

// Open opens the repository with passphrase. It fails with ErrWrongPassphrase when no key slot opens.
//
// The slot it opens with is one whose master key also opens config. Slots that passphrase opens but whose
// master key does not are strays: left by an initialisation that lost the race to create config (object lock
// kept them), or, before initialisation was made safe, by two that both went on. Objects sealed with a
// stray's key are skipped by LoadIndex and Snapshots and named by Check and StrayKeys.
func Open(ctx context.Context, b *blob.Bucket, passphrase []byte, opts Options) (*Repository, error) {
	sealed, err := b.ReadAll(ctx, layout.Config)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("open repository: %w", ErrNoRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository: read %s: %w", layout.Config, err)
	}
	slots, err := listNames(ctx, b, layout.KeysPrefix)
	if err != nil {
		return nil, fmt.Errorf("open repository: list key slots: %w", err)
	}
	if len(slots) == 0 {
		return nil, fmt.Errorf("open repository: %w: %s exists but there are no key slots under %s", ErrNotRepository, layout.Config, layout.KeysPrefix)
	}
	var (
		master, cfgRaw []byte
		keyID          string
		strays         []strayKey
		skipped        []SkippedObject
	)
	for _, name := range slots {
		raw, err := readAll(ctx, b, name)
		if err == nil {
			var m []byte
			if m, err = openKeySlot(raw, passphrase); err == nil {
				master, cfgRaw, keyID, strays, err = useKeySlot(name, m, sealed, master, cfgRaw, keyID, strays)
			}
		}
		if errors.Is(err, ErrWrongPassphrase) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("open repository: %w", ctx.Err())
			}
			// An unreadable slot, or one beyond the bounds (which could be planted to exhaust memory), is
			// skipped and named: another slot may open the repository.
			skipped = append(skipped, SkippedObject{Name: name, Problem: err.Error()})
		}
	}
	if master == nil {
		var named []string
		for _, s := range skipped {
			named = append(named, "key slot "+s.String())
		}
		switch {
		case len(strays) > 0:
			return nil, fmt.Errorf("open repository: object %s: %w: the passphrase opens key slot %s, but its master key "+
				"does not open %s: %s was replaced, or written by another initialisation", layout.Config, errAuth, strays[0].id, layout.Config, layout.Config)
		case len(skipped) == len(slots):
			return nil, fmt.Errorf("open repository: no usable key slot, all %d skipped: %s", len(slots), strings.Join(named, "; "))
		case len(skipped) > 0:
			return nil, fmt.Errorf("open repository: %w (tried %d key slots; skipped %s)", ErrWrongPassphrase, len(slots)-len(skipped), strings.Join(named, "; "))
		}
		return nil, fmt.Errorf("open repository: %w (tried %d key slots)", ErrWrongPassphrase, len(slots))
	}
	cfg, err := decodeConfig(cfgRaw)
	if err != nil {
		return nil, fmt.Errorf("open repository: object %s: %w", layout.Config, err)
	}
	r, err := newRepository(b, cfg, master, opts)
	if err != nil {
		return nil, err
	}
	r.keyID, r.strays, r.skippedKeys = keyID, strays, skipped
	return r, nil
}

// useKeySlot takes master key m, which the passphrase opened from slot name: as the repository's when it
// opens config (sealed) and none was found yet, as a stray's when it does not.
func useKeySlot(name string, m, sealed, master, cfgRaw []byte, keyID string, strays []strayKey) ([]byte, []byte, string, []strayKey, error) {
	k, err := deriveKeys(m)
	if err != nil {
		return master, cfgRaw, keyID, strays, err
	}
	id := name[len(layout.KeysPrefix):]
	if master != nil && bytes.Equal(m, master) {
		return master, cfgRaw, keyID, strays, nil
	}
	if plain, err := open(k.aead, nil, sealed, adConfig); err == nil && master == nil {
		return m, plain, id, strays, nil
	}
	if !slices.ContainsFunc(strays, func(s strayKey) bool { return bytes.Equal(s.master, m) }) {
		strays = append(strays, strayKey{id: id, master: m, keys: k})
	}
	return master, cfgRaw, keyID, strays, nil
}

// SkippedKeySlots names the key slots that Open skipped: unreadable, undecodable, or with argon2id
// parameters beyond the bounds (MaxKDFMemory, MaxKDFTime, MaxKDFThreads).
func (r *Repository) SkippedKeySlots() []SkippedObject { return slices.Clone(r.skippedKeys) }

// ErrNoRepository is returned by Open when the bucket holds no repository (no config object).
var ErrNoRepository = errors.New("no repository here (no config object)")

// ErrNewerFormat is returned (wrapped) by Open when the repository's format is newer than this package reads.
var ErrNewerFormat = errors.New("newer repository format")

// ErrNotRepository is returned (wrapped) by Open when the bucket holds a config object but not the rest of a
// repository (no key slots): something other than pxb wrote there, or the repository was partly deleted.
var ErrNotRepository = errors.New("not a pxb repository")

// Exists says whether the bucket holds a repository.
func Exists(ctx context.Context, b *blob.Bucket) (bool, error) {
	ok, err := b.Exists(ctx, layout.Config)
	if err != nil {
		return false, fmt.Errorf("look for %s: %w", layout.Config, err)
	}
	return ok, nil
}

func decodeConfig(raw []byte) (Config, error) {
	var cfg Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("decode: %w", err)
	}
	return cfg, cfg.validate()
}

// Config returns the repository settings.
func (r *Repository) Config() Config { return r.cfg }

// Bucket returns the bucket the repository lives in.
func (r *Repository) Bucket() *blob.Bucket { return r.bucket }

// Hash returns the blob ID of data.
func (r *Repository) Hash(data []byte) ID { return r.keys.hash(data) }

// writeObject writes a whole object once. retain applies the object-lock retention, if configured.
func (r *Repository) writeObject(ctx context.Context, name string, data []byte, retain bool) error {
	var err error
	if r.s3 != nil {
		err = r.s3.put(ctx, name, data, r.lockFor(retain))
	} else {
		err = r.writeWith(ctx, name, data, retain, writerOptions())
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// writeWith writes a whole object through gocloud with wo, and gives it its retention. It is sent as one
// upload: gocloud's Azure writer can crash when a streamed write is refused (as a create-only one is).
func (r *Repository) writeWith(ctx context.Context, name string, data []byte, retain bool, wo *blob.WriterOptions) error {
	if err := r.bucket.Upload(ctx, name, bytes.NewReader(data), r.withLock(retain, wo)); err != nil {
		return err
	}
	if retain {
		return r.retainWritten(ctx, name)
	}
	return nil
}

// retainWritten gives object name, just written, its retention through Options.Retain, when the store
// needs that.
func (r *Repository) retainWritten(ctx context.Context, name string) error {
	lock := r.opts.ObjectLock
	if lock == nil || r.opts.Retain == nil {
		return nil
	}
	if err := r.opts.Retain(ctx, name, time.Now().Add(lock.Period)); err != nil {
		return fmt.Errorf("retain %s: %w", name, err)
	}
	return nil
}

// lockFor is the retention of an object written now, nil when none applies.
func (r *Repository) lockFor(retain bool) *retention {
	l := r.opts.ObjectLock
	if !retain || l == nil {
		return nil
	}
	return &retention{mode: l.Mode, until: time.Now().Add(l.Period)}
}

// writerOptions are those of the repository's gocloud writers.
func writerOptions() *blob.WriterOptions {
	return &blob.WriterOptions{ContentType: contentType, BufferSize: 5 << 20, MaxConcurrency: 2}
}

// newWriter opens a gocloud writer, for stores other than S3.
func (r *Repository) newWriter(ctx context.Context, name string, retain bool) (*blob.Writer, error) {
	return r.bucket.NewWriter(ctx, name, r.withLock(retain, writerOptions()))
}

// withLock adds to wo what object lock needs.
func (r *Repository) withLock(retain bool, wo *blob.WriterOptions) *blob.WriterOptions {
	if lock := r.lockFor(retain); lock != nil {
		wo.BeforeWrite = func(as func(any) bool) error {
			// GCS object retention: Locked cannot be shortened or removed by anyone, as S3's compliance mode.
			var gw *storage.Writer
			if as(&gw) {
				mode := "Unlocked"
				if lock.mode == "COMPLIANCE" {
					mode = "Locked"
				}
				gw.Retention = &storage.ObjectRetention{Mode: mode, RetainUntil: lock.until}
				return nil
			}
			if r.opts.Retain != nil {
				return nil // set once written
			}
			return fmt.Errorf("object lock is supported on S3 buckets with object lock and GCS buckets with object retention, not on this store")
		}
	}
	return wo
}

const contentType = "application/octet-stream"

// readAll reads a whole object; errors name the object and say when it is missing.
func readAll(ctx context.Context, b *blob.Bucket, name string) ([]byte, error) {
	data, err := b.ReadAll(ctx, name)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("object %s is missing", name)
		}
		return nil, readFailed{fmt.Errorf("read %s: %w", name, err)}
	}
	return data, nil
}

// readFailed is a read that the store or the connection to it failed: it says nothing of the object's
// content, unlike one found missing, truncated or not opening.
type readFailed struct{ error }

func (e readFailed) Unwrap() error { return e.error }

func isReadFailure(err error) bool {
	var f readFailed
	return errors.As(err, &f)
}

func readRange(ctx context.Context, b *blob.Bucket, name string, off, length int64, buf []byte) ([]byte, error) {
	rd, err := openRange(ctx, b, name, off, length)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	if int64(cap(buf)) < length {
		buf = make([]byte, length)
	}
	buf = buf[:length]
	if n, err := io.ReadFull(rd, buf); err != nil {
		return nil, rangeErr(name, rd.Size(), off, length, int64(n), err)
	}
	return buf, nil
}

// openRange starts reading length bytes of an object at off; errors name the object and say when it is missing.
func openRange(ctx context.Context, b *blob.Bucket, name string, off, length int64) (*blob.Reader, error) {
	rd, err := b.NewRangeReader(ctx, name, off, length, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("object %s is missing", name)
		}
		return nil, readFailed{fmt.Errorf("read %s at %d+%d: %w", name, off, length, err)}
	}
	return rd, nil
}

// rangeErr describes a read of length bytes at off that stopped after n bytes with err; size is the object's
// size as the store reported it when the read began. A read that ends early from an object that holds the
// bytes was cut off in transfer (a broken connection ends a response body with io.ErrUnexpectedEOF too): that
// is not damage, and the error says so.
func rangeErr(name string, size, off, length, n int64, err error) error {
	if (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) && size < off+length {
		return fmt.Errorf("object %s is truncated: wanted bytes %d..%d, got %d", name, off, off+length, n)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return readFailed{fmt.Errorf("read %s at %d+%d: the transfer from the store broke off after %d bytes (the object holds them: the connection failed): %w",
			name, off, length, n, err)}
	}
	return readFailed{fmt.Errorf("read %s at %d+%d: %w", name, off, length, err)}
}

// listNames lists object names under prefix, skipping fileblob's temporary and attribute files.
func listNames(ctx context.Context, b *blob.Bucket, prefix string) ([]string, error) {
	var names []string
	err := listObjects(ctx, b, prefix, func(o *blob.ListObject) { names = append(names, o.Key) })
	return names, err
}

func listObjects(ctx context.Context, b *blob.Bucket, prefix string, fn func(*blob.ListObject)) error {
	var fi os.FileInfo
	directory := b.As(&fi)
	for attempt := 1; ; attempt++ {
		objs, err := listOnce(ctx, b, prefix)
		// A directory's listing fails when a file it read is gone before it is looked at: another process's
		// temporary file, renamed at that moment (as every write and lock refresh does). It is listed again.
		if err != nil && directory && attempt < 5 && gcerrors.Code(err) == gcerrors.NotFound {
			continue
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range objs {
			fn(o)
		}
		return nil
	}
}

func listOnce(ctx context.Context, b *blob.Bucket, prefix string) ([]*blob.ListObject, error) {
	var objs []*blob.ListObject
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		// A file-system location leaves "<name>.<time>.tmp" behind an upload killed midway; it is not an object.
		if o.IsDir || layout.IsTemp(o.Key) {
			continue
		}
		objs = append(objs, o)
	}
}

// ErrWrongPassphrase means no key slot could be opened with the given passphrase.
var ErrWrongPassphrase = errors.New("wrong passphrase")

type keySlot struct {
	Version int       `json:"version"`
	KDF     string    `json:"kdf"`
	Params  KDFParams `json:"params"`
	Salt    []byte    `json:"salt"`
	Data    []byte    `json:"data"`
	Created time.Time `json:"created"`
}

func decodeKeySlot(raw []byte) (*keySlot, error) {
	var s keySlot
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if s.Version > FormatVersion {
		return nil, fmt.Errorf("key slot format version %d is newer than this pxb supports (%d): upgrade pxb", s.Version, FormatVersion)
	}
	if s.Version < 1 || s.KDF != "argon2id" {
		return nil, fmt.Errorf("unsupported key slot (version %d, kdf %q)", s.Version, s.KDF)
	}
	if err := s.Params.validate(); err != nil {
		return nil, fmt.Errorf("skipped without running argon2id: %w", err)
	}
	if len(s.Salt) < 16 || len(s.Data) != masterKeyLen+overhead {
		return nil, errors.New("invalid key slot (salt or sealed key of the wrong length)")
	}
	return &s, nil
}

func openKeySlot(raw, passphrase []byte) ([]byte, error) {
	s, err := decodeKeySlot(raw)
	if err != nil {
		return nil, err
	}
	kek := argon2.IDKey(passphrase, s.Salt, s.Params.Time, s.Params.Memory, s.Params.Threads, 32)
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	master, err := open(aead, nil, s.Data, adKey)
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return master, nil
}

func (r *Repository) writeKeySlot(ctx context.Context, passphrase []byte, p KDFParams) (string, error) {
	if len(passphrase) == 0 {
		return "", errors.New("a passphrase is required")
	}
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("key slot parameters refused: %w", err)
	}
	s := keySlot{Version: FormatVersion, KDF: "argon2id", Params: p, Salt: make([]byte, 32), Created: time.Now().UTC()}
	if _, err := rand.Read(s.Salt); err != nil {
		return "", err
	}
	kek := argon2.IDKey(passphrase, s.Salt, p.Time, p.Memory, p.Threads, 32)
	aead, err := newAEAD(kek)
	if err != nil {
		return "", err
	}
	s.Data = seal(aead, nil, r.master, adKey)
	raw, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	id := randomHex(16)
	if err := r.writeObject(ctx, layout.KeyName(id), raw, true); err != nil {
		return "", err
	}
	return id, nil
}

// KeyInfo describes a key slot.
type KeyInfo struct {
	ID      string
	Created time.Time
	Current bool // the slot this repository was opened with
	// Problem says why the slot cannot be used (unreadable, undecodable, or parameters beyond the
	// bounds); "" for a usable slot.
	Problem string
}

// Keys lists the key slots, those that cannot be used with their Problem.
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) {
	names, err := listNames(ctx, r.bucket, layout.KeysPrefix)
	if err != nil {
		return nil, err
	}
	var out []KeyInfo
	for _, n := range names {
		id := n[len(layout.KeysPrefix):]
		raw, err := readAll(ctx, r.bucket, n)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			out = append(out, KeyInfo{ID: id, Problem: err.Error()})
			continue
		}
		s, err := decodeKeySlot(raw)
		if err != nil {
			out = append(out, KeyInfo{ID: id, Problem: err.Error()})
			continue
		}
		out = append(out, KeyInfo{ID: id, Created: s.Created, Current: id == r.keyID})
	}
	return out, nil
}

// AddKey adds a key slot that opens the repository with passphrase and returns its ID.
func (r *Repository) AddKey(ctx context.Context, passphrase []byte, p KDFParams) (string, error) {
	if p.Time == 0 {
		p = DefaultKDF
	}
	id, err := r.writeKeySlot(ctx, passphrase, p)
	if err != nil {
		return "", fmt.Errorf("add key: %w", err)
	}
	return id, nil
}

// RemoveKey deletes a key slot. It refuses to remove the last one.
func (r *Repository) RemoveKey(ctx context.Context, id string) error {
	names, err := listNames(ctx, r.bucket, layout.KeysPrefix)
	if err != nil {
		return fmt.Errorf("remove key %s: %w", id, err)
	}
	found := false
	for _, n := range names {
		found = found || n == layout.KeyName(id)
	}
	if !found {
		return fmt.Errorf("remove key %s: no such key slot", id)
	}
	if len(names) == 1 {
		return fmt.Errorf("remove key %s: it is the last key slot; add another first", id)
	}
	if err := r.bucket.Delete(ctx, layout.KeyName(id)); err != nil {
		return fmt.Errorf("remove key %s: %w", id, err)
	}
	return nil
}

// ChangePassphrase adds a slot for the new passphrase, then removes the slot the repository was opened with.
// Data is not rewritten: only the wrapping of the master key changes.
func (r *Repository) ChangePassphrase(ctx context.Context, passphrase []byte, p KDFParams) error {
	id, err := r.AddKey(ctx, passphrase, p)
	if err != nil {
		return err
	}
	old := r.keyID
	r.keyID = id
	if err := r.bucket.Delete(ctx, layout.KeyName(old)); err != nil {
		return fmt.Errorf("change passphrase: new key slot %s added, but removing the old slot %s failed: %w", id, old, err)
	}
	return nil
}

// workers is the parallelism for CPU-bound repository work.
func workers() int { return max(2, runtime.GOMAXPROCS(0)) }
