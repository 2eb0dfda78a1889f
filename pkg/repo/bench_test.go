package repo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// benchData is half text, half random, like data set A of the mover benchmark: its text is words drawn
// uniformly from a vocabulary of 4,000 random words of 2-10 letters, which zstd's fastest level compresses
// about 2.5 to 1 at ~200 MB/s (real prose and logs go faster); a few repeated words would flatter compression.
func benchData(n int) []byte {
	rng := rand.New(rand.NewPCG(4, 4))
	data := make([]byte, n)
	words := make([][]byte, 4000)
	for i := range words {
		words[i] = make([]byte, 2+rng.IntN(9))
		for j := range words[i] {
			words[i][j] = 'a' + byte(rng.IntN(26))
		}
	}
	for i := 0; i < n/2; i++ {
		i += copy(data[i:n/2], words[rng.IntN(len(words))])
		if i < n/2 {
			data[i] = ' '
			if rng.IntN(12) == 0 {
				data[i] = '\n'
			}
		}
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
	enc := r.newEncoder(true)
	data := benchData(8 << 20)
	var sealed []byte
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for off := 0; off < len(data); off += 1 << 20 {
			sealed = r.sealBlob(enc, sealed, data[off:off+1<<20])
		}
	}
}

// BenchmarkPipeline is chunk + hash + compress + encrypt on one core, the backup's CPU work per byte.
func BenchmarkPipeline(b *testing.B) {
	r := testRepo(b)
	enc := r.newEncoder(true)
	data := benchData(64 << 20)
	c := r.NewChunker(bytes.NewReader(data), nil)
	var sealed []byte
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c.Reset(bytes.NewReader(data))
		for {
			ch, err := c.Next()
			if err == io.EOF {
				break
			}
			r.Hash(ch)
			sealed = r.sealBlob(enc, sealed, ch)
		}
	}
}

// benchNodes is a directory of 1,000 small files, as in data set B.
func benchNodes() []Node {
	nodes := make([]Node, 1000)
	for i := range nodes {
		nodes[i] = Node{Name: fmt.Sprintf("f%06d", i), Type: NodeFile, Mode: 0o644, UID: 1000, GID: 1000,
			MTime: 1_700_000_000_000_000_000 + int64(i), CTime: 1_700_000_000_000_000_000 + int64(i), Dev: 2049,
			Inode: uint64(100000 + i), Links: 1, Size: 4096, Content: []ID{{byte(i), byte(i >> 8)}}}
	}
	return nodes
}

// BenchmarkTreeEncode is the listing of a 1,000-file directory; per node, see ns/op / 1000.
func BenchmarkTreeEncode(b *testing.B) {
	nodes := benchNodes()
	for b.Loop() {
		var e TreeEncoder
		for i := range nodes {
			if _, err := e.Add(&nodes[i]); err != nil {
				b.Fatal(err)
			}
		}
		e.Finish()
	}
}

// BenchmarkTreeDecode reads the listing of a 1,000-file directory, what an incremental backup does per directory.
func BenchmarkTreeDecode(b *testing.B) {
	nodes := benchNodes()
	var e TreeEncoder
	for i := range nodes {
		if _, err := e.Add(&nodes[i]); err != nil {
			b.Fatal(err)
		}
	}
	raw := e.Finish()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := DecodeTree(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTreeDecodeV1 is BenchmarkTreeDecode for a listing in format 1 (JSON lines), as earlier versions wrote.
func BenchmarkTreeDecodeV1(b *testing.B) {
	raw := []byte(treeMagicV1)
	for _, n := range benchNodes() {
		line, err := json.Marshal(n)
		if err != nil {
			b.Fatal(err)
		}
		raw = append(append(raw, line...), '\n')
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := DecodeTree(raw); err != nil {
			b.Fatal(err)
		}
	}
}
