package repo

import (
	"bytes"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func testRepo(t testing.TB) *Repository {
	t.Helper()
	cfg := Config{Version: 1, ChunkMin: 256 << 10, ChunkAvg: 1 << 20, ChunkMax: 4 << 20, Compression: "zstd", CompressionLevel: 1, PackSize: 32 << 20}
	r, err := newRepository(nil, cfg, make([]byte, 32), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func chunkAll(t testing.TB, r *Repository, data []byte) [][]byte {
	c := r.NewChunker(bytes.NewReader(data), nil)
	var out [][]byte
	for {
		ch, err := c.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(ch))
	}
}

func TestChunkerBoundsAndShiftResistance(t *testing.T) {
	r := testRepo(t)
	rng := rand.New(rand.NewPCG(1, 1))
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	chunks := chunkAll(t, r, data)
	var total int
	for i, c := range chunks {
		total += len(c)
		if len(c) > r.cfg.ChunkMax || (len(c) < r.cfg.ChunkMin && i != len(chunks)-1) {
			t.Fatalf("chunk %d has %d bytes, outside [%d, %d]", i, len(c), r.cfg.ChunkMin, r.cfg.ChunkMax)
		}
	}
	if total != len(data) {
		t.Fatalf("chunks cover %d of %d bytes", total, len(data))
	}
	avg := len(data) / len(chunks)
	if avg < 700<<10 || avg > 1500<<10 {
		t.Errorf("average chunk %d bytes, want about 1 MiB", avg)
	}
	// Inserting bytes at the front changes only the first chunks.
	shifted := chunkAll(t, r, append([]byte("a few new bytes"), data...))
	seen := map[ID]bool{}
	for _, c := range chunks {
		seen[r.Hash(c)] = true
	}
	same := 0
	for _, c := range shifted {
		if seen[r.Hash(c)] {
			same++
		}
	}
	if same < len(chunks)-2 {
		t.Errorf("after a 15-byte insert only %d of %d chunks are unchanged", same, len(chunks))
	}
}

func TestChunkBoundariesDependOnKey(t *testing.T) {
	a := testRepo(t)
	k := make([]byte, 32)
	k[0] = 1
	b, err := newRepository(nil, a.cfg, k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	ca, cb := chunkAll(t, a, data), chunkAll(t, b, data)
	if len(ca) == len(cb) && len(ca[0]) == len(cb[0]) {
		t.Error("two keys cut identical chunks")
	}
}

// TestSealBlobCompression: random data is stored as it is, large and small; text is compressed, including a
// small file of words that hardly repeat (entropy-coded literals, without which it would stay raw).
func TestSealBlobCompression(t *testing.T) {
	r := testRepo(t)
	rng := rand.New(rand.NewPCG(3, 3))
	random := make([]byte, 1<<20)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var words []byte
	for len(words) < 4<<10 {
		for range 2 + rng.IntN(8) {
			words = append(words, byte('a'+rng.IntN(26)))
		}
		words = append(words, ' ')
	}
	text := bytes.Repeat([]byte("pxb compresses text "), 50000)
	enc := r.newEncoder(true)
	for _, tc := range []struct {
		name   string
		data   []byte
		maxLen int
	}{
		{"random", random, len(random) + 1 + overhead},
		{"small random", random[:4<<10], 4<<10 + 1 + overhead},
		{"text", text, len(text) / 10},
		{"small text", words, len(words) * 3 / 4},
	} {
		if want := !strings.Contains(tc.name, "random"); worthCompressing(tc.data) != want {
			t.Errorf("%s: worth compressing is %v, want %v", tc.name, !want, want)
		}
		sealed := r.sealBlob(enc, nil, tc.data)
		if len(sealed) > tc.maxLen {
			t.Errorf("%s: %d bytes sealed to %d, want at most %d", tc.name, len(tc.data), len(sealed), tc.maxLen)
		}
		id := r.Hash(tc.data)
		out, err := r.openBlob(id, Loc{RawLength: uint32(len(tc.data))}, sealed, nil)
		if err != nil || !bytes.Equal(out, tc.data) {
			t.Errorf("%s: round trip failed: %v", tc.name, err)
		}
	}
}

// TestTreeFormats: listings written by earlier versions (format 1, JSON lines) are still read; the binary
// format 2 round-trips every field; a newer format is refused by name.
func TestTreeFormats(t *testing.T) {
	v1 := treeMagicV1 + `{"name":"a","type":"file","mode":420,"uid":1,"gid":2,"mtime":-5,"inode":7,"links":2,"size":9,` +
		`"content":["` + strings.Repeat("ab", 32) + `"],"holes":[{"off":0,"len":3}],"xattrs":[{"name":"user.x","value":"AQ=="}]}` + "\n" +
		`{"name":"b","type":"symlink","target":"../a"}` + "\n"
	nodes, err := DecodeTree([]byte(v1))
	if err != nil {
		t.Fatalf("format 1 tree: %v", err)
	}
	if len(nodes) != 2 || nodes[0].MTime != -5 || nodes[0].Content[0][0] != 0xab || nodes[0].Holes[0].Len != 3 ||
		string(nodes[0].Xattrs[0].Value) != "\x01" || nodes[1].Target != "../a" {
		t.Fatalf("format 1 tree decoded as %+v", nodes)
	}
	var e TreeEncoder
	for i := range nodes {
		if _, err := e.Add(&nodes[i]); err != nil {
			t.Fatal(err)
		}
	}
	raw := e.Finish()
	if !bytes.HasPrefix(raw, []byte("pxbtree2\n")) {
		t.Fatalf("new trees start %q", raw[:9])
	}
	back, err := DecodeTree(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, nodes) {
		t.Errorf("format 2 round trip:\n got %+v\nwant %+v", back, nodes)
	}
	if _, err := DecodeTree([]byte("pxbtree3\n")); err == nil || !strings.Contains(err.Error(), "newer than this pxb supports") {
		t.Errorf("format 3 tree: %v", err)
	}
}
