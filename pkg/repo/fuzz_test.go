package repo

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Every decoder of a stored format is fuzzed. The seeds are valid encodings, so `go test` runs them as tests.

func sampleBlobs() []blobEntry {
	return []blobEntry{
		{Type: DataBlob, ID: ID{1, 2, 3}, Offset: 0, Length: 100, RawLength: 300},
		{Type: TreeBlob, ID: ID{4, 5, 6}, Offset: 100, Length: 50, RawLength: 21},
	}
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add(encodeIndex([]*packRecord{{ID: "00112233445566778899aabbccddeeff", Size: 200, Blobs: sampleBlobs()}}))
	f.Add(encodeIndex(nil))
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, raw []byte) {
		packs, err := decodeIndex(raw)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes: there is one encoding per index.
		if again := encodeIndex(packs); !bytes.Equal(again, raw) {
			t.Fatalf("re-encoding differs:\n%x\n%x", raw, again)
		}
	})
}

func FuzzDecodePackHeader(f *testing.F) {
	f.Add(encodePackHeader(sampleBlobs()), int64(150))
	f.Add([]byte{1, 0}, int64(0))
	f.Add([]byte{9}, int64(0))
	f.Fuzz(func(t *testing.T, raw []byte, start int64) {
		blobs, err := decodePackHeader(raw, start)
		if err != nil {
			return
		}
		var end int64
		for _, b := range blobs {
			if int64(b.Offset) != end {
				t.Fatalf("blob at %d, expected %d", b.Offset, end)
			}
			end += int64(b.Length)
		}
		if end != start {
			t.Fatalf("blobs end at %d, header at %d", end, start)
		}
	})
}

func sampleTree(t testing.TB) []byte {
	var e TreeEncoder
	for _, n := range []Node{
		{Name: "a", Type: NodeFile, Mode: 0o644, Size: 5, Content: []ID{{9}}, Xattrs: []Xattr{{Name: "user.x", Value: []byte{0, 1}}}},
		{Name: "b", Type: NodeDir, Mode: 0o755, Tree: []ID{{8}}},
		{Name: "c", Type: NodeSymlink, Target: "../x"},
		{Name: "d", Type: NodeFile, Size: 1 << 30, Holes: []Extent{{Off: 0, Len: 1 << 20}}},
	} {
		if _, err := e.Add(&n); err != nil {
			t.Fatal(err)
		}
	}
	return e.Finish()
}

func FuzzDecodeTree(f *testing.F) {
	f.Add(sampleTree(f))
	f.Add([]byte(treeMagicV1 + `{"name":"a","type":"dir","tree":["` + strings.Repeat("00", 32) + `"]}` + "\n"))
	f.Add([]byte(treeMagicV1 + `{"name":"..","type":"dir"}` + "\n"))
	f.Add([]byte("pxbtree3\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		nodes, err := DecodeTree(raw)
		if err != nil {
			return
		}
		var e TreeEncoder
		for i := range nodes {
			if _, err := e.Add(&nodes[i]); err != nil {
				t.Fatalf("decoded node does not re-encode: %v", err)
			}
		}
		again := e.Finish()
		if len(raw) < TreeBlobTarget {
			back, err := DecodeTree(again)
			if err != nil || len(back) != len(nodes) {
				t.Fatalf("re-encoded tree does not decode: %v", err)
			}
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	raw, _ := json.Marshal(Snapshot{Version: 1, Time: time.Unix(1, 0), Root: Node{Type: NodeDir, Tree: []ID{{1}}}})
	f.Add(raw)
	f.Add([]byte(`{"version":2,"root":{"type":"dir"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := decodeSnapshot(raw)
		if err == nil && (s.Version != FormatVersion || s.Root.Type != NodeDir) {
			t.Fatalf("accepted %+v", s)
		}
	})
}

func FuzzDecodeKeySlot(f *testing.F) {
	raw, _ := json.Marshal(keySlot{Version: 1, KDF: "argon2id", Params: KDFParams{Time: 1, Memory: 64, Threads: 1},
		Salt: make([]byte, 32), Data: make([]byte, masterKeyLen+overhead)})
	f.Add(raw)
	f.Add([]byte(`{"version":1,"kdf":"argon2id","params":{"time":1,"memory":4294967295,"threads":255}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := decodeKeySlot(raw)
		// A decoded slot must never ask the KDF for absurd resources.
		if err == nil && (s.Params.Memory > 4<<20 || s.Params.Time > 100) {
			t.Fatalf("accepted %+v", s.Params)
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	raw, _ := json.Marshal(Config{Version: 1, ChunkMin: 1 << 18, ChunkAvg: 1 << 20, ChunkMax: 1 << 22, Compression: "zstd", CompressionLevel: 1, PackSize: 1 << 25})
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := decodeConfig(raw)
		if err == nil && c.ChunkAvg&(c.ChunkAvg-1) != 0 {
			t.Fatalf("accepted %+v", c)
		}
	})
}

func FuzzDecodeLock(f *testing.F) {
	raw, _ := json.Marshal(lockInfo{Version: 1, Kind: lockShared, Expires: time.Unix(5, 0)})
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := decodeLock(raw)
		if err == nil && l.Kind != lockShared && l.Kind != lockExclusive {
			t.Fatalf("accepted kind %q", l.Kind)
		}
	})
}

// FuzzOpenBlob feeds arbitrary sealed bytes to the blob decoder of a real key: nothing but a genuine blob
// with the right ID may come out.
func FuzzOpenBlob(f *testing.F) {
	k, err := deriveKeys(make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	r := &Repository{keys: k}
	plain := []byte("some content")
	id := k.hash(plain)
	sealed := r.sealBlob(nil, nil, plain)
	f.Add(sealed, uint32(len(plain)))
	f.Add([]byte{1, 2, 3}, uint32(0))
	f.Fuzz(func(t *testing.T, sealed []byte, rawLen uint32) {
		out, err := r.openBlob(id, Loc{RawLength: rawLen}, sealed, nil)
		if err == nil && !bytes.Equal(out, plain) {
			t.Fatalf("decoded %q", out)
		}
	})
}
