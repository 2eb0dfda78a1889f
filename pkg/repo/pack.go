package repo

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
	"gocloud.dev/blob"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// A pack is: blob_0 .. blob_n-1 | sealed header | uint32 LE length of the sealed header | "pxbP".
// Each blob is sealed (nonce|ciphertext|tag) over: one flag byte (0 raw, 1 zstd) and the payload.
const (
	packMagic   = "pxbP"
	trailerLen  = 8
	packVersion = 1

	flagRaw  = 0
	flagZstd = 1
)

func encodePackHeader(blobs []blobEntry) []byte {
	buf := []byte{packVersion}
	buf = binary.AppendUvarint(buf, uint64(len(blobs)))
	for _, b := range blobs {
		buf = append(buf, byte(b.Type))
		buf = append(buf, b.ID[:]...)
		buf = binary.AppendUvarint(buf, uint64(b.Length))
		buf = binary.AppendUvarint(buf, uint64(b.RawLength))
	}
	return buf
}

// decodePackHeader parses a pack header's plaintext; headerStart is where the sealed header begins.
func decodePackHeader(raw []byte, headerStart int64) ([]blobEntry, error) {
	if len(raw) == 0 {
		return nil, errors.New("empty pack header")
	}
	if raw[0] > packVersion {
		return nil, fmt.Errorf("pack format version %d is newer than this pxb supports (%d): upgrade pxb", raw[0], packVersion)
	}
	if raw[0] != packVersion {
		return nil, fmt.Errorf("unknown pack format version %d", raw[0])
	}
	d := &decoder{buf: raw[1:]}
	n := d.uvarint(uint64(len(raw)), "blob count")
	var blobs []blobEntry
	var off int64
	for i := uint64(0); i < n && d.err == nil; i++ {
		var b blobEntry
		t := d.bytes(1, "blob type")
		copy(b.ID[:], d.bytes(32, "blob id"))
		b.Length = uint32(d.uvarint(1<<32-1, "blob length"))
		b.RawLength = uint32(d.uvarint(1<<32-1, "blob raw length"))
		if d.err != nil {
			break
		}
		if t[0] > byte(TreeBlob) {
			return nil, fmt.Errorf("blob %d: unknown type %d", i, t[0])
		}
		if b.Length < overhead+1 {
			return nil, fmt.Errorf("blob %d: length %d too small", i, b.Length)
		}
		b.Type = BlobType(t[0])
		b.Offset = uint32(off)
		off += int64(b.Length)
		if off > headerStart {
			return nil, fmt.Errorf("blob %d ends at %d, past the header at %d", i, off, headerStart)
		}
		blobs = append(blobs, b)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.buf) != 0 {
		return nil, fmt.Errorf("%d trailing bytes in pack header", len(d.buf))
	}
	if off != headerStart {
		return nil, fmt.Errorf("blobs end at %d but the header starts at %d", off, headerStart)
	}
	return blobs, nil
}

// readPackHeader reads and verifies the header of a pack of the given size.
func (r *Repository) readPackHeader(ctx context.Context, id string, size int64) ([]blobEntry, error) {
	name := layout.PackName(id)
	if size < trailerLen+overhead {
		return nil, fmt.Errorf("pack %s: %d bytes is too short to be a pack (truncated?)", name, size)
	}
	// Most headers are small: read the tail once, a second time only for large headers.
	tail := min(size, 64<<10)
	buf, err := readRange(ctx, r.bucket, name, size-tail, tail, nil)
	if err != nil {
		return nil, err
	}
	tr := buf[len(buf)-trailerLen:]
	if string(tr[4:]) != packMagic {
		return nil, fmt.Errorf("pack %s: no pack trailer at the end (truncated or not a pack)", name)
	}
	hl := int64(binary.LittleEndian.Uint32(tr))
	if hl < overhead || hl > size-trailerLen {
		return nil, fmt.Errorf("pack %s: header length %d impossible for a %d-byte pack", name, hl, size)
	}
	start := size - trailerLen - hl
	var sealed []byte
	if hl+trailerLen <= tail {
		sealed = buf[tail-trailerLen-hl : tail-trailerLen]
	} else if sealed, err = readRange(ctx, r.bucket, name, start, hl, nil); err != nil {
		return nil, err
	}
	raw, err := open(r.keys.aead, nil, sealed, adPackHeader)
	if err != nil {
		return nil, fmt.Errorf("pack %s: header: %w", name, err)
	}
	blobs, err := decodePackHeader(raw, start)
	if err != nil {
		return nil, fmt.Errorf("pack %s: header: %w", name, err)
	}
	return blobs, nil
}

var decoderPool = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(128<<20))
	if err != nil {
		panic(err)
	}
	return d
}}

// A large blob is worth compressing when any of samples spread over it looks compressible.
const (
	samples   = 8
	sampleLen = 4 << 10
)

// worthCompressing estimates the byte entropy of a blob (of samples spread over a large one): random or
// already compressed data would cost the full compression effort and gain nothing, so it is stored raw. One
// low-entropy sample is enough to try, so a chunk that is only partly text is still compressed.
// (Compressing the samples themselves does not work: zstd's fastest level leaves small inputs as they are.)
func worthCompressing(plaintext []byte) bool {
	if len(plaintext) < 4*samples*sampleLen {
		return byteEntropy(plaintext) < 7.5
	}
	step := (len(plaintext) - sampleLen) / (samples - 1)
	for i := range samples {
		if byteEntropy(plaintext[i*step:i*step+sampleLen]) < 7.5 {
			return true
		}
	}
	return false
}

// byteEntropy is the Shannon entropy of b's byte frequencies in bits per byte: log2 n - sum(h log2 h)/n over
// the counts h. Counts below sampleLen take h log2 h from a table, which halves the cost of the test on the
// small files it runs on most.
func byteEntropy(b []byte) float64 {
	var hist [256]int
	for _, c := range b {
		hist[c]++
	}
	var sum float64
	for _, h := range hist {
		if h < len(hLog2h) {
			sum += hLog2h[h]
		} else {
			sum += float64(h) * math.Log2(float64(h))
		}
	}
	n := float64(len(b))
	return math.Log2(n) - sum/n
}

var hLog2h = func() (t [sampleLen]float64) {
	for h := 1; h < len(t); h++ {
		t[h] = float64(h) * math.Log2(float64(h))
	}
	return t
}()

// sealBlob compresses (when it helps) and encrypts plaintext into buf's storage (grown when too small) and
// returns the sealed blob. The payload is built after room for the nonce and encrypted in place, so a blob
// costs one buffer, not two.
func (r *Repository) sealBlob(enc *zstd.Encoder, buf, plaintext []byte) []byte {
	if need := nonceLen + 1 + len(plaintext) + tagLen; cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	compress := enc != nil && len(plaintext) >= 64 && worthCompressing(plaintext)
	payload := append(buf[:nonceLen], flagZstd)
	if compress {
		payload = enc.EncodeAll(plaintext, payload)
	}
	if !compress || len(payload) >= nonceLen+1+len(plaintext) {
		payload = append(payload[:nonceLen], flagRaw)
		payload = append(payload, plaintext...)
	}
	nonce := payload[:nonceLen]
	_, _ = rand.Read(nonce) // never fails: it crashes the program instead (Go 1.24)
	return r.keys.aead.Seal(nonce, nonce, payload[nonceLen:], adBlob)
}

// openBlob decrypts, decompresses and verifies a stored blob, appending its plaintext to dst[:0].
func (r *Repository) openBlob(id ID, loc Loc, sealed, dst []byte) ([]byte, error) {
	out, _, err := r.decodeBlob(id, loc, sealed, dst, false)
	return out, err
}

// decodeBlob is openBlob; with inPlace it decrypts into sealed's own storage (which it then overwrites) and
// returns an uncompressed blob's plaintext as a slice of sealed (aliased) instead of copying it to dst.
func (r *Repository) decodeBlob(id ID, loc Loc, sealed, dst []byte, inPlace bool) (out []byte, aliased bool, err error) {
	var plain []byte
	if inPlace && len(sealed) >= overhead {
		plain, err = open(r.keys.aead, sealed[nonceLen:nonceLen], sealed, adBlob)
	} else {
		plain, err = open(r.keys.aead, nil, sealed, adBlob)
	}
	if err != nil {
		return nil, false, err
	}
	if len(plain) == 0 {
		return nil, false, errors.New("empty blob")
	}
	switch plain[0] {
	case flagRaw:
		if inPlace {
			out, aliased = plain[1:], true
		} else {
			out = append(dst[:0], plain[1:]...)
		}
	case flagZstd:
		dec := decoderPool.Get().(*zstd.Decoder)
		out, err = dec.DecodeAll(plain[1:], dst[:0])
		decoderPool.Put(dec)
		if err != nil {
			return nil, false, fmt.Errorf("decompress: %w", err)
		}
	default:
		return nil, false, fmt.Errorf("unknown blob encoding %d", plain[0])
	}
	if uint32(len(out)) != loc.RawLength {
		return nil, false, fmt.Errorf("plaintext is %d bytes, the index says %d", len(out), loc.RawLength)
	}
	if got := r.keys.hash(out); got != id {
		return nil, false, fmt.Errorf("content hashes to %s, not its id", got.Short())
	}
	return out, aliased, nil
}

// sealedPool holds read buffers for stored blobs, so restores do not allocate per chunk.
var sealedPool = sync.Pool{New: func() any { return new([]byte) }}

// LoadBlob reads a blob, appending its plaintext to buf[:0]. Errors name the blob and its pack.
func (r *Repository) LoadBlob(ctx context.Context, id ID, buf []byte) ([]byte, error) {
	loc, pack, ok := r.index.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("blob %s is not in any index (missing from the repository)", id)
	}
	sp := sealedPool.Get().(*[]byte)
	defer sealedPool.Put(sp)
	sealed, err := readRange(ctx, r.bucket, layout.PackName(pack), int64(loc.Offset), int64(loc.Length), *sp)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", id.Short(), err)
	}
	*sp = sealed
	out, aliased, err := r.decodeBlob(id, loc, sealed, buf, true)
	if err != nil {
		return nil, fmt.Errorf("blob %s in pack %s at offset %d: %w", id, layout.PackName(pack), loc.Offset, err)
	}
	if aliased {
		// An uncompressed blob lies in the pooled read buffer: hand the caller its own copy.
		out = append(buf[:0], out...)
	}
	return out, nil
}

// Index returns the in-memory index (loaded by LoadIndex and grown by writers).
func (r *Repository) Index() *Index { return r.index }

// LoadIndex brings the in-memory index up to date with the index objects stored: it reads those not yet
// loaded and, when an index object it had loaded is gone (garbage collection replaced it), forgets every
// pack that no remaining index names, so a blob whose pack was deleted is no longer taken as stored. Packs
// this process stored and has not indexed yet, and blobs reserved by its writers, are kept.
func (r *Repository) LoadIndex(ctx context.Context) error {
	_, err := r.loadIndex(ctx)
	return err
}

// loadIndex is LoadIndex; it also says whether an index object loaded before was gone.
func (r *Repository) loadIndex(ctx context.Context) (bool, error) {
	names, err := listNames(ctx, r.bucket, layout.IndexPrefix)
	if err != nil {
		return false, fmt.Errorf("load index: %w", err)
	}
	type result struct {
		name  string
		packs []*packRecord
		err   error
	}
	listed := make(map[string]bool, len(names))
	for _, n := range names {
		listed[n] = true
	}
	r.idxMu.Lock()
	gone := false
	for n := range r.loaded {
		if !listed[n] {
			gone = true
			break
		}
	}
	var todo []string
	for _, n := range names {
		// After a deletion every index is read again: what is still named is known only from all of them.
		if gone || !r.loaded[n] {
			todo = append(todo, n)
		}
	}
	r.idxMu.Unlock()
	if testHookLoadIndex != nil {
		testHookLoadIndex()
	}
	results := make([]result, len(todo))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, n := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			p, err := r.readIndex(ctx, n)
			results[i] = result{n, p, err}
		}()
	}
	wg.Wait()
	var errs []error
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	if gone {
		named := map[string]bool{}
		for _, res := range results {
			if res.err != nil && !isForeign(res.err) {
				// Which packs it names is unknown: forget nothing rather than too much, and report.
				return true, fmt.Errorf("load index: %w", res.err)
			}
			for _, p := range res.packs {
				named[p.ID] = true
			}
		}
		r.index.forgetPacksExcept(named)
		r.loaded = map[string]bool{}
	}
	r.skippedIdx = nil
	for _, res := range results {
		if isForeign(res.err) {
			// Sealed with a stray key slot's key: not this repository's (see StrayKeys).
			r.loaded[res.name] = true
			continue
		}
		if isDamaged(res.err) {
			// It costs the packs it alone names, not every open; read again at the next load.
			r.skippedIdx = append(r.skippedIdx, SkippedObject{Name: res.name, Problem: res.err.Error()})
			continue
		}
		if res.err != nil {
			errs = append(errs, res.err)
			continue
		}
		for _, p := range res.packs {
			r.index.addPack(p)
		}
		r.loaded[res.name] = true
	}
	return gone, errors.Join(errs...)
}

// testHookLoadIndex, when set, is called by LoadIndex after it has listed the index objects.
var testHookLoadIndex func()

// damagedError is an object that was read but cannot be opened or decoded: damage, not a failed read.
type damagedError struct{ error }

func (e damagedError) Unwrap() error { return e.error }

func isDamaged(err error) bool {
	var d damagedError
	return errors.As(err, &d)
}

func (r *Repository) readIndex(ctx context.Context, name string) ([]*packRecord, error) {
	sealed, err := readAll(ctx, r.bucket, name)
	if err != nil {
		return nil, err
	}
	raw, err := open(r.keys.aead, nil, sealed, adIndex)
	if err != nil {
		if err := r.foreign(name, sealed, adIndex, err); isForeign(err) {
			return nil, fmt.Errorf("index %s: %w", name, err)
		}
		return nil, damagedError{fmt.Errorf("index %s: %w", name, err)}
	}
	p, err := decodeIndex(raw)
	if err != nil {
		return nil, damagedError{fmt.Errorf("index %s: %w", name, err)}
	}
	return p, nil
}

// SkippedIndexes returns the index objects that the last LoadIndex skipped as damaged. The packs they alone
// name are unknown to this process: a backup stores their blobs again, a restore that needs them fails
// naming the blob, Check names the index, and GC refuses to run while it is damaged.
func (r *Repository) SkippedIndexes() []SkippedObject {
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	return slices.Clone(r.skippedIdx)
}

// writeIndex stores pack records as a new index object.
func (r *Repository) writeIndex(ctx context.Context, packs []*packRecord) (string, error) {
	name := layout.IndexName(randomHex(16))
	if err := r.writeObject(ctx, name, seal(r.keys.aead, nil, encodeIndex(packs), adIndex), true); err != nil {
		return "", err
	}
	r.idxMu.Lock()
	r.loaded[name] = true
	r.idxMu.Unlock()
	r.index.indexed(packs)
	return name, nil
}

// openPack is a pack being streamed to the bucket.
type openPack struct {
	id     string
	cancel context.CancelFunc
	up     upload
	w      io.Writer // up, throttled when uploads have a limit
	size   int64
	blobs  []blobEntry
}

// An upload is an object being written: through gocloud's writer, or on S3 by the repository itself.
type upload interface {
	io.Writer
	Close() error // completes the object
	Abort()       // discards it
}

// blobUpload is an upload through gocloud's writer.
type blobUpload struct {
	w      *blob.Writer
	bw     *bufio.Writer // small blobs would otherwise cost a write call each
	cancel context.CancelFunc
}

func (u *blobUpload) Write(p []byte) (int, error) { return u.bw.Write(p) }

func (u *blobUpload) Close() error {
	if err := u.bw.Flush(); err != nil {
		u.Abort()
		return err
	}
	return u.w.Close()
}

func (u *blobUpload) Abort() {
	// Closing a gocloud writer after cancelling its context discards the upload.
	u.cancel()
	_ = u.w.Close()
}

func (r *Repository) newPack(ctx context.Context) (*openPack, error) {
	id := randomHex(16)
	// cancel aborts an upload that is not finished (and so is cancelling the writer's context).
	ctx, cancel := context.WithCancel(ctx)
	var up upload
	if r.s3 != nil {
		up = r.s3.upload(ctx, layout.PackName(id), r.lockFor(true))
	} else {
		w, err := r.newWriter(ctx, layout.PackName(id), true)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("create pack %s: %w", layout.PackName(id), err)
		}
		up = &blobUpload{w: w, bw: bufio.NewWriterSize(w, 1<<20), cancel: cancel}
	}
	var w io.Writer = up
	if r.upload != nil {
		w = &throttledWriter{ctx: ctx, limiter: r.upload, w: up}
	}
	return &openPack{id: id, cancel: cancel, up: up, w: w}, nil
}

func (p *openPack) add(t BlobType, id ID, sealed []byte, rawLen int) error {
	if _, err := p.w.Write(sealed); err != nil {
		return fmt.Errorf("write pack %s: %w", layout.PackName(p.id), err)
	}
	p.blobs = append(p.blobs, blobEntry{Type: t, ID: id, Offset: uint32(p.size), Length: uint32(len(sealed)), RawLength: uint32(rawLen)})
	p.size += int64(len(sealed))
	return nil
}

// finish writes the header and trailer and completes the upload.
func (r *Repository) finishPack(p *openPack) (*packRecord, error) {
	hdr := seal(r.keys.aead, nil, encodePackHeader(p.blobs), adPackHeader)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(hdr)))
	hdr = append(hdr, packMagic...)
	defer p.cancel()
	if _, err := p.w.Write(hdr); err != nil {
		p.abort()
		return nil, fmt.Errorf("write pack %s: %w", layout.PackName(p.id), err)
	}
	if err := p.up.Close(); err != nil {
		return nil, fmt.Errorf("write pack %s: %w", layout.PackName(p.id), err)
	}
	if err := r.retainWritten(context.Background(), layout.PackName(p.id)); err != nil {
		return nil, err
	}
	return &packRecord{ID: p.id, Size: p.size + int64(len(hdr)), Blobs: p.blobs}, nil
}

// abort discards a pack that will not be completed.
func (p *openPack) abort() {
	p.cancel()
	p.up.Abort()
}

// Reads of blobs that lie this close together in one pack are merged, up to maxMergedRead bytes: on an object
// store a request costs far more than reading a few hundred KiB more of a pack.
const (
	mergeGap      = 256 << 10
	maxMergedRead = 16 << 20
)

// A PackRead is one ranged read of a pack that returns several blobs stored close together, in storage order.
// PlanReads makes them; LoadRead carries them out, so a caller can spread them over goroutines.
type PackRead struct {
	pack     string
	off, end int64
	blobs    []plannedBlob
}

type plannedBlob struct {
	i   int // position in the ids given to PlanReads
	id  ID
	loc Loc
}

// Indexes returns the positions, in the ids given to PlanReads, of the blobs this read returns.
func (p *PackRead) Indexes() []int {
	is := make([]int, len(p.blobs))
	for k, b := range p.blobs {
		is[k] = b.i
	}
	return is
}

// PlanReads groups the blobs into reads of their packs, merging blobs stored close together. A blob may be
// asked for more than once; it is read once.
func (r *Repository) PlanReads(ids []ID) ([]PackRead, error) {
	blobs := make([]struct {
		plannedBlob
		pack string
	}, len(ids))
	for i, id := range ids {
		loc, pack, ok := r.index.Lookup(id)
		if !ok {
			return nil, fmt.Errorf("blob %s is not in any index (missing from the repository)", id)
		}
		blobs[i].plannedBlob, blobs[i].pack = plannedBlob{i: i, id: id, loc: loc}, pack
	}
	sort.Slice(blobs, func(a, b int) bool {
		if blobs[a].pack != blobs[b].pack {
			return blobs[a].pack < blobs[b].pack
		}
		return blobs[a].loc.Offset < blobs[b].loc.Offset
	})
	var reads []PackRead
	for _, b := range blobs {
		off, end := int64(b.loc.Offset), int64(b.loc.Offset)+int64(b.loc.Length)
		if n := len(reads); n > 0 {
			last := &reads[n-1]
			if last.pack == b.pack && off <= last.end+mergeGap && end-last.off <= maxMergedRead {
				last.end = max(last.end, end)
				last.blobs = append(last.blobs, b.plannedBlob)
				continue
			}
		}
		reads = append(reads, PackRead{pack: b.pack, off: off, end: end, blobs: []plannedBlob{b.plannedBlob}})
	}
	return reads, nil
}

// LoadRead carries out one read, streaming: it holds one blob at a time, however long the read. fn receives
// each blob's position in the planned ids and its plaintext, valid only during the call.
func (r *Repository) LoadRead(ctx context.Context, p PackRead, fn func(i int, data []byte) error) error {
	name := layout.PackName(p.pack)
	rd, err := openRange(ctx, r.bucket, name, p.off, p.end-p.off)
	if err != nil {
		return err
	}
	defer rd.Close()
	sp := sealedPool.Get().(*[]byte)
	defer sealedPool.Put(sp)
	var plain, out []byte
	pos := p.off
	for k, b := range p.blobs {
		// A blob asked for twice sorts next to itself and is decoded once.
		if k == 0 || b.loc.Offset != p.blobs[k-1].loc.Offset {
			off, length := int64(b.loc.Offset), int64(b.loc.Length)
			if gap := off - pos; gap > 0 {
				if n, err := io.CopyN(io.Discard, rd, gap); err != nil {
					return rangeErr(name, rd.Size(), pos, gap, n, err)
				}
			}
			if int64(cap(*sp)) < length {
				*sp = make([]byte, length)
			}
			sealed := (*sp)[:length]
			if n, err := io.ReadFull(rd, sealed); err != nil {
				return rangeErr(name, rd.Size(), off, length, int64(n), err)
			}
			pos = off + length
			var aliased bool
			out, aliased, err = r.decodeBlob(b.id, b.loc, sealed, plain, true)
			if err != nil {
				return fmt.Errorf("blob %s in pack %s at offset %d: %w", b.id, name, b.loc.Offset, err)
			}
			if !aliased {
				plain = out
			}
		}
		if err := fn(b.i, out); err != nil {
			return err
		}
	}
	return nil
}

// LoadBlobs reads several blobs, merging reads of blobs stored close together in the same pack. fn receives
// each blob's index in ids and its plaintext, valid only during the call, in storage order.
func (r *Repository) LoadBlobs(ctx context.Context, ids []ID, fn func(i int, data []byte) error) error {
	reads, err := r.PlanReads(ids)
	if err != nil {
		return err
	}
	for _, p := range reads {
		if err := r.LoadRead(ctx, p, fn); err != nil {
			return err
		}
	}
	return nil
}
