package repo

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
)

// BlobType separates file content from directory listings.
type BlobType uint8

const (
	DataBlob BlobType = 0
	TreeBlob BlobType = 1
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// MarshalText encodes the ID as hex (for JSON).
func (id ID) MarshalText() ([]byte, error) {
	out := make([]byte, 64)
	hex.Encode(out, id[:])
	return out, nil
}

// UnmarshalText decodes a hex ID.
func (id *ID) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("blob id %q: want 64 hex digits", b)
	}
	if _, err := hex.Decode(id[:], b); err != nil {
		return fmt.Errorf("blob id %q: %w", b, err)
	}
	return nil
}

// blobEntry is one blob inside a pack.
type blobEntry struct {
	Type      BlobType
	ID        ID
	Offset    uint32 // within the pack
	Length    uint32 // stored (sealed) length
	RawLength uint32 // plaintext length after decompression
}

// packRecord is what an index object says about one pack.
type packRecord struct {
	ID    string // 32 hex digits
	Size  int64
	Blobs []blobEntry
}

// Loc is where a blob is stored.
type Loc struct {
	Pack      uint32
	Offset    uint32
	Length    uint32
	RawLength uint32
	Type      BlobType
}

const pendingPack = ^uint32(0)

// Index maps blob IDs to their locations; safe for concurrent use.
type Index struct {
	shards [256]struct {
		sync.RWMutex
		m map[ID]Loc
	}
	pmu     sync.RWMutex
	packs   []string
	packNum map[string]uint32
	local   map[string]bool // packs this process stored that no index object names yet
}

func newIndex() *Index {
	x := &Index{packNum: map[string]uint32{}}
	for i := range x.shards {
		x.shards[i].m = map[ID]Loc{}
	}
	return x
}

func (x *Index) packIndex(id string) uint32 {
	x.pmu.Lock()
	defer x.pmu.Unlock()
	n, ok := x.packNum[id]
	if !ok {
		n = uint32(len(x.packs))
		x.packs = append(x.packs, id)
		x.packNum[id] = n
	}
	return n
}

func (x *Index) packID(n uint32) string {
	x.pmu.RLock()
	defer x.pmu.RUnlock()
	return x.packs[n]
}

// addPack records the blobs of a stored pack; they replace pending reservations.
func (x *Index) addPack(p *packRecord) {
	n := x.packIndex(p.ID)
	for _, b := range p.Blobs {
		s := &x.shards[b.ID[0]]
		s.Lock()
		s.m[b.ID] = Loc{Pack: n, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Type: b.Type}
		s.Unlock()
	}
}

// addLocalPack records a pack this process just stored, before any index object names it.
func (x *Index) addLocalPack(p *packRecord) {
	x.pmu.Lock()
	if x.local == nil {
		x.local = map[string]bool{}
	}
	x.local[p.ID] = true
	x.pmu.Unlock()
	x.addPack(p)
}

// indexed notes that an index object now names these packs.
func (x *Index) indexed(packs []*packRecord) {
	x.pmu.Lock()
	defer x.pmu.Unlock()
	for _, p := range packs {
		delete(x.local, p.ID)
	}
}

// forgetPacksExcept drops every blob whose pack is neither in keep nor stored by this process and not yet
// indexed. Reservations stay.
func (x *Index) forgetPacksExcept(keep map[string]bool) {
	x.pmu.RLock()
	drop := make([]bool, len(x.packs))
	for n, id := range x.packs {
		drop[n] = !keep[id] && !x.local[id]
	}
	x.pmu.RUnlock()
	for i := range x.shards {
		s := &x.shards[i]
		s.Lock()
		for id, l := range s.m {
			if l.Pack != pendingPack && int(l.Pack) < len(drop) && drop[l.Pack] {
				delete(s.m, id)
			}
		}
		s.Unlock()
	}
}

// Lookup returns where a stored blob is. Reserved but not yet stored blobs are not found.
func (x *Index) Lookup(id ID) (Loc, string, bool) {
	s := &x.shards[id[0]]
	s.RLock()
	l, ok := s.m[id]
	s.RUnlock()
	if !ok || l.Pack == pendingPack {
		return Loc{}, "", false
	}
	return l, x.packID(l.Pack), true
}

// Has reports whether a blob is stored or reserved by this process.
func (x *Index) Has(id ID) bool {
	s := &x.shards[id[0]]
	s.RLock()
	_, ok := s.m[id]
	s.RUnlock()
	return ok
}

// reserve marks id as being stored; it returns false when the blob is already stored or reserved.
func (x *Index) reserve(id ID, t BlobType) bool {
	s := &x.shards[id[0]]
	s.Lock()
	defer s.Unlock()
	if _, ok := s.m[id]; ok {
		return false
	}
	s.m[id] = Loc{Pack: pendingPack, Type: t}
	return true
}

// Len is the number of blobs known.
func (x *Index) Len() int {
	n := 0
	for i := range x.shards {
		x.shards[i].RLock()
		n += len(x.shards[i].m)
		x.shards[i].RUnlock()
	}
	return n
}

const indexVersion = 1

// encodeIndex serializes pack records (the plaintext of an index object).
func encodeIndex(packs []*packRecord) []byte {
	buf := []byte{indexVersion}
	buf = binary.AppendUvarint(buf, uint64(len(packs)))
	for _, p := range packs {
		raw, _ := hex.DecodeString(p.ID)
		buf = append(buf, raw...)
		buf = binary.AppendUvarint(buf, uint64(p.Size))
		buf = binary.AppendUvarint(buf, uint64(len(p.Blobs)))
		for _, b := range p.Blobs {
			buf = append(buf, byte(b.Type))
			buf = append(buf, b.ID[:]...)
			buf = binary.AppendUvarint(buf, uint64(b.Offset))
			buf = binary.AppendUvarint(buf, uint64(b.Length))
			buf = binary.AppendUvarint(buf, uint64(b.RawLength))
		}
	}
	return buf
}

type decoder struct {
	buf []byte
	err error
}

func (d *decoder) uvarint(limit uint64, what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	// Only the shortest encoding is accepted, so every stored structure has exactly one encoding.
	if n <= 0 || n != uvarintLen(v) {
		d.err = fmt.Errorf("truncated or malformed %s", what)
		return 0
	}
	if v > limit {
		d.err = fmt.Errorf("%s %d out of range", what, v)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) bytes(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.buf) < n {
		d.err = fmt.Errorf("truncated %s", what)
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) blobEntry(what string) blobEntry {
	var b blobEntry
	t := d.bytes(1, what)
	if d.err == nil && t[0] > byte(TreeBlob) {
		d.err = fmt.Errorf("%s: unknown blob type %d", what, t[0])
	}
	copy(b.ID[:], d.bytes(32, what))
	b.Offset = uint32(d.uvarint(1<<32-1, what+" offset"))
	b.Length = uint32(d.uvarint(1<<32-1, what+" length"))
	b.RawLength = uint32(d.uvarint(1<<32-1, what+" raw length"))
	if d.err == nil {
		b.Type = BlobType(t[0])
		if b.Length < overhead+1 {
			d.err = fmt.Errorf("%s: length %d too small", what, b.Length)
		}
	}
	return b
}

// decodeIndex parses the plaintext of an index object.
func decodeIndex(raw []byte) ([]*packRecord, error) {
	if len(raw) == 0 {
		return nil, errors.New("empty index")
	}
	if raw[0] > indexVersion {
		return nil, fmt.Errorf("index format version %d is newer than this pxb supports (%d): upgrade pxb", raw[0], indexVersion)
	}
	if raw[0] != indexVersion {
		return nil, fmt.Errorf("unknown index format version %d", raw[0])
	}
	d := &decoder{buf: raw[1:]}
	n := d.uvarint(uint64(len(raw)), "pack count")
	var packs []*packRecord
	for i := uint64(0); i < n && d.err == nil; i++ {
		p := &packRecord{ID: hex.EncodeToString(d.bytes(16, "pack id"))}
		p.Size = int64(d.uvarint(1<<40, "pack size"))
		nb := d.uvarint(uint64(len(d.buf)), "blob count")
		for j := uint64(0); j < nb && d.err == nil; j++ {
			b := d.blobEntry("blob entry")
			if d.err == nil && int64(b.Offset)+int64(b.Length) > p.Size {
				d.err = fmt.Errorf("blob %s at %d+%d lies beyond the end of pack %s (%d bytes)", b.ID.Short(), b.Offset, b.Length, p.ID, p.Size)
			}
			p.Blobs = append(p.Blobs, b)
		}
		packs = append(packs, p)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.buf) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(d.buf))
	}
	return packs, nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
