package repo

import (
	"encoding/binary"
	"errors"
	"io"
	"math/bits"

	"github.com/zeebo/blake3"
)

// gearTable derives the FastCDC gear table from the repository key, so chunk boundaries (and therefore chunk
// sizes) do not reveal content to someone without the key.
func gearTable(key [32]byte) *[256]uint64 {
	h, err := blake3.NewKeyed(key[:])
	if err != nil {
		panic(err)
	}
	_, _ = h.Write([]byte("gear"))
	var raw [256 * 8]byte
	_, _ = h.Digest().Read(raw[:])
	var t [256]uint64
	for i := range t {
		t[i] = binary.LittleEndian.Uint64(raw[i*8:])
	}
	return &t
}

// Chunker splits a stream into content-defined chunks with FastCDC (normalized chunking, level 2).
type Chunker struct {
	rd            io.Reader
	gear          *[256]uint64
	min, avg, max int
	maskS, maskL  uint64
	buf           []byte
	start, end    int
	eof           bool
}

// NewChunker returns a chunker over rd using buf (grown to twice the maximum chunk size if smaller).
func (r *Repository) NewChunker(rd io.Reader, buf []byte) *Chunker {
	c := &Chunker{gear: r.gear, min: r.cfg.ChunkMin, avg: r.cfg.ChunkAvg, max: r.cfg.ChunkMax}
	b := bits.TrailingZeros(uint(c.avg))
	// Spread mask bits over the high half of the fingerprint, where the gear hash mixes best.
	c.maskS = spreadMask(b + 2)
	c.maskL = spreadMask(b - 2)
	if cap(buf) < 2*c.max {
		buf = make([]byte, 2*c.max)
	}
	c.buf = buf[:cap(buf)]
	c.Reset(rd)
	return c
}

// Reset starts chunking a new stream, keeping the buffer.
func (c *Chunker) Reset(rd io.Reader) {
	c.rd, c.start, c.end, c.eof = rd, 0, 0, false
}

// Buffer returns the chunker's buffer for reuse.
func (c *Chunker) Buffer() []byte { return c.buf }

func spreadMask(n int) uint64 {
	var m uint64
	// n bits, evenly spaced from the top.
	step := 64 / n
	for i := 0; i < n; i++ {
		m |= 1 << (63 - i*step)
	}
	return m
}

// Next returns the next chunk, valid until the next call, or io.EOF after the last.
func (c *Chunker) Next() ([]byte, error) {
	if c.end-c.start < c.max && !c.eof {
		if c.start > 0 {
			c.end = copy(c.buf, c.buf[c.start:c.end])
			c.start = 0
		}
		for c.end < len(c.buf) && !c.eof {
			n, err := c.rd.Read(c.buf[c.end:])
			c.end += n
			if errors.Is(err, io.EOF) {
				c.eof = true
			} else if err != nil {
				return nil, err
			}
		}
	}
	if c.start == c.end {
		return nil, io.EOF
	}
	n := c.cut(c.buf[c.start:c.end])
	chunk := c.buf[c.start : c.start+n]
	c.start += n
	return chunk, nil
}

// cut returns the length of the first chunk of data.
func (c *Chunker) cut(data []byte) int {
	n := len(data)
	if n <= c.min {
		return n
	}
	if n > c.max {
		n = c.max
	}
	normal := c.avg
	if n < normal {
		normal = n
	}
	gear := c.gear
	var fp uint64
	i := c.min
	for ; i < normal; i++ {
		fp = (fp << 1) + gear[data[i]]
		if fp&c.maskS == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		fp = (fp << 1) + gear[data[i]]
		if fp&c.maskL == 0 {
			return i + 1
		}
	}
	return n
}
