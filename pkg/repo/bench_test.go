package repo

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func newTestEncoder(t testing.TB) *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// benchData is half text, half random, like data set A.
func benchData(n int) []byte {
	rng := rand.New(rand.NewPCG(4, 4))
	data := make([]byte, n)
	words := []string{"backup ", "restore ", "volume ", "snapshot ", "kubernetes ", "\n"}
	for i := 0; i < n/2; {
		i += copy(data[i:n/2], words[rng.IntN(len(words))])
	}
	for i := n / 2; i < n; i++ {
		data[i] = byte(rng.Uint32())
	}
	return data
}

func BenchmarkChunker(b *testing.B) {
	r := testRepo(b)
	data := benchData(64 << 20)
	c := r.NewChunker(bytes.NewReader(data), nil)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c.Reset(bytes.NewReader(data))
		for {
			if _, err := c.Next(); err == io.EOF {
				break
			}
		}
	}
}

func BenchmarkHash(b *testing.B) {
	r := testRepo(b)
	data := benchData(1 << 20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r.Hash(data)
	}
}

// BenchmarkSealBlob is compression (skipped for the random half) plus AES-GCM, per 1 MiB chunk.
func BenchmarkSealBlob(b *testing.B) {
	r := testRepo(b)
	enc := newTestEncoder(b)
	data := benchData(8 << 20)
	var sealed, scratch []byte
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for off := 0; off < len(data); off += 1 << 20 {
			sealed, scratch = r.sealBlob(enc, sealed[:0], scratch, data[off:off+1<<20])
		}
	}
}

// BenchmarkPipeline is chunk + hash + compress + encrypt on one core, the backup's CPU work per byte.
func BenchmarkPipeline(b *testing.B) {
	r := testRepo(b)
	enc := newTestEncoder(b)
	data := benchData(64 << 20)
	c := r.NewChunker(bytes.NewReader(data), nil)
	var sealed, scratch []byte
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c.Reset(bytes.NewReader(data))
		for {
			ch, err := c.Next()
			if err == io.EOF {
				break
			}
			r.Hash(ch)
			sealed, scratch = r.sealBlob(enc, sealed[:0], scratch, ch)
		}
	}
}
