package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/pxb-dev/pxb/pkg/layout"
)

var testKDF = KDFParams{Time: 1, Memory: 64, Threads: 1}

// saveFileSnapshot stores a snapshot of a directory holding one file, name, with content.
func saveFileSnapshot(t *testing.T, r *Repository, name string, content []byte) string {
	t.Helper()
	ctx := context.Background()
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	id := r.Hash(content)
	if err := w.SaveBlob(DataBlob, id, content); err != nil {
		t.Fatal(err)
	}
	var enc TreeEncoder
	if _, err := enc.Add(&Node{Name: name, Type: NodeFile, Mode: 0o644, Size: int64(len(content)), Content: []ID{id}}); err != nil {
		t.Fatal(err)
	}
	tree, err := w.SaveTree(enc.Finish())
	if err != nil {
		t.Fatal(err)
	}
	sid, err := w.SaveSnapshot(ctx, &Snapshot{Source: name, Root: Node{Type: NodeDir, Mode: 0o755, Tree: []ID{tree}}})
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// restoreFile reads back the one file of snapshot s.
func restoreFile(t *testing.T, r *Repository, s *Snapshot) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	var name string
	var data []byte
	err := r.WalkTree(ctx, s.Root.Tree, func(n *Node) error {
		name = n.Name
		for _, c := range n.Content {
			b, err := r.LoadBlob(ctx, c, nil)
			if err != nil {
				return err
			}
			data = append(data, b...)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("restore snapshot %s: %v", s.ID, err)
	}
	return name, data
}

func plant(t *testing.T, b *blob.Bucket, name string, data []byte) {
	t.Helper()
	if err := b.WriteAll(context.Background(), name, data, nil); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotsSkipDamaged plants damaged snapshot objects beside two good snapshots: the good ones list
// and restore, the damaged ones are named by SkippedSnapshots, ListSnapshots and Check.
func TestSnapshotsSkipDamaged(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	saveFileSnapshot(t, r, "a", []byte("first file"))
	saveFileSnapshot(t, r, "b", []byte("second file"))
	garbage := layout.SnapshotName(layout.SnapshotID(time.Unix(1000, 0), "0123456789abcdef"))
	empty := layout.SnapshotName(layout.SnapshotID(time.Unix(2000, 0), "fedcba9876543210"))
	newer := layout.SnapshotName(layout.SnapshotID(time.Unix(3000, 0), "00112233445566aa"))
	plant(t, r.bucket, garbage, []byte("this is not a sealed snapshot manifest, just some garbage bytes"))
	plant(t, r.bucket, empty, nil)
	raw, _ := json.Marshal(Snapshot{Version: FormatVersion + 1, Root: Node{Type: NodeDir}})
	plant(t, r.bucket, newer, seal(r.keys.aead, nil, raw, adSnapshot))

	o, err := Open(ctx, r.bucket, []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	snaps, err := o.Snapshots(ctx)
	if err != nil {
		t.Fatalf("Snapshots with damaged objects: %v", err)
	}
	if len(snaps) != 2 {
		t.Fatalf("listed %d snapshots, want the 2 good ones", len(snaps))
	}
	for i, want := range []string{"first file", "second file"} {
		if _, data := restoreFile(t, o, snaps[i]); string(data) != want {
			t.Errorf("snapshot %d restored %q, want %q", i, data, want)
		}
	}
	skipped := o.SkippedSnapshots()
	got := map[string]string{}
	for _, s := range skipped {
		got[s.Name] = s.Problem
	}
	if len(got) != 3 || got[garbage] == "" || got[empty] == "" || !strings.Contains(got[newer], "newer") {
		t.Errorf("skipped %v, want %s, %s and %s (newer format) named", skipped, garbage, empty, newer)
	}
	_, listed, err := o.ListSnapshots(ctx)
	if err != nil || len(listed) != 3 {
		t.Errorf("ListSnapshots: skipped %v, %v; want the 3 damaged objects", listed, err)
	}

	res, err := o.Check(ctx, CheckOptions{})
	if !errors.Is(err, ErrCheckFailed) {
		t.Fatalf("Check: %v, want ErrCheckFailed", err)
	}
	all := strings.Join(res.Errors, "\n")
	for _, n := range []string{garbage, empty, newer} {
		if !strings.Contains(all, n) {
			t.Errorf("Check does not name %s: %s", n, all)
		}
	}
}

// hostileSlot is a key slot asking argon2id for memory GiB of memory.
func hostileSlot(gib uint32) []byte {
	raw, _ := json.Marshal(keySlot{Version: 1, KDF: "argon2id", Params: KDFParams{Time: 1, Memory: gib << 20, Threads: 1},
		Salt: make([]byte, 32), Data: make([]byte, masterKeyLen+overhead), Created: time.Now()})
	return raw
}

// openMeasured opens the repository and says how long it took and how much it allocated.
func openMeasured(ctx context.Context, b *blob.Bucket, pass string) (*Repository, time.Duration, uint64, error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	r, err := Open(ctx, b, []byte(pass), Options{})
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	return r, took, after.TotalAlloc - before.TotalAlloc, err
}

// TestHostileKeySlotSkipped plants a key slot demanding 4 GiB of argon2id memory (and a garbage one): Open
// with the right passphrase still opens through the good slot, quickly and without the allocation, and
// names the skipped slots.
func TestHostileKeySlotSkipped(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	sid := saveFileSnapshot(t, r, "a", []byte("kept"))
	hostile := layout.KeyName("00000000000000000000000000000000") // lists first
	garbage := layout.KeyName("ffffffffffffffffffffffffffffffff")
	plant(t, r.bucket, hostile, hostileSlot(4))
	plant(t, r.bucket, garbage, []byte("{not a key slot"))

	o, took, alloc, err := openMeasured(ctx, r.bucket, "pw")
	if err != nil {
		t.Fatalf("Open with a hostile slot beside the good one: %v", err)
	}
	if took > 5*time.Second || alloc > 64<<20 {
		t.Errorf("Open took %v and allocated %d MiB: it ran argon2id on the hostile slot", took, alloc>>20)
	}
	got := map[string]string{}
	for _, s := range o.SkippedKeySlots() {
		got[s.Name] = s.Problem
	}
	if !strings.Contains(got[hostile], fmt.Sprint(MaxKDFMemory)) || got[garbage] == "" || len(got) != 2 {
		t.Errorf("skipped slots %v, want %s (naming the %d KiB bound) and %s", got, hostile, MaxKDFMemory, garbage)
	}
	if _, err := o.LoadSnapshot(ctx, sid); err != nil {
		t.Error(err)
	}
	res, err := o.Check(ctx, CheckOptions{})
	if err != nil {
		t.Errorf("Check: %v (skipped key slots are warnings, not damage)", err)
	} else if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, hostile) || !strings.Contains(w, garbage) {
		t.Errorf("Check warnings do not name the skipped slots: %s", w)
	}
	keys, err := o.Keys(ctx)
	if err != nil {
		t.Fatalf("Keys with damaged slots: %v", err)
	}
	problems := 0
	for _, k := range keys {
		if k.Problem != "" {
			problems++
		}
	}
	if len(keys) != 3 || problems != 2 {
		t.Errorf("Keys: %+v, want 3 slots, 2 with a problem", keys)
	}
	// A wrong passphrase is still wrong, with the skipped slots named.
	if _, err := Open(ctx, r.bucket, []byte("nope"), Options{}); !errors.Is(err, ErrWrongPassphrase) || !strings.Contains(err.Error(), hostile) {
		t.Errorf("Open with a wrong passphrase: %v, want ErrWrongPassphrase naming %s", err, hostile)
	}
}

// TestOnlyKeySlotHostile: a repository whose only slot is beyond the bounds fails at once, naming the bound.
func TestOnlyKeySlotHostile(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	hostile := layout.KeyName("00000000000000000000000000000000")
	plant(t, r.bucket, hostile, hostileSlot(4))
	if err := r.bucket.Delete(ctx, layout.KeyName(r.keyID)); err != nil {
		t.Fatal(err)
	}
	_, took, alloc, err := openMeasured(ctx, r.bucket, "pw")
	if err == nil {
		t.Fatal("Open succeeded with only a hostile slot")
	}
	if took > 5*time.Second || alloc > 64<<20 {
		t.Errorf("Open took %v and allocated %d MiB: it ran argon2id on the hostile slot", took, alloc>>20)
	}
	if !strings.Contains(err.Error(), hostile) || !strings.Contains(err.Error(), "bound of 262144 KiB") {
		t.Errorf("error %q does not name the slot %s and the bound", err, hostile)
	}
}

// TestKDFBoundsRefusedOnWrite: AddKey and Init refuse parameters beyond the bounds and write nothing.
func TestKDFBoundsRefusedOnWrite(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	for _, p := range []KDFParams{
		{Time: 1, Memory: 4 << 20, Threads: 1},
		{Time: MaxKDFTime + 1, Memory: 64, Threads: 1},
		{Time: 1, Memory: 1024, Threads: MaxKDFThreads + 1},
	} {
		if _, err := r.AddKey(ctx, []byte("other"), p); err == nil || !strings.Contains(err.Error(), "bound") {
			t.Errorf("AddKey(%+v): %v, want a refusal naming the bound", p, err)
		}
		if err := r.ChangePassphrase(ctx, []byte("other"), p); err == nil {
			t.Errorf("ChangePassphrase(%+v) succeeded", p)
		}
	}
	if names, _ := listNames(ctx, r.bucket, layout.KeysPrefix); len(names) != 1 {
		t.Errorf("key slots after refusals: %v, want the one from Init", names)
	}
	if _, err := r.AddKey(ctx, []byte("other"), KDFParams{Time: 1, Memory: MaxKDFMemory, Threads: 4}); err != nil {
		t.Errorf("AddKey at the memory bound: %v", err)
	}

	b := emptyBucket(t)
	_, err := Init(ctx, b, []byte("pw"), InitOptions{KDF: KDFParams{Time: 1, Memory: 4 << 20, Threads: 1}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "bound") {
		t.Fatalf("Init with 4 GiB argon2id memory: %v, want a refusal naming the bound", err)
	}
	if names, _ := listNames(ctx, b, ""); len(names) != 0 {
		t.Errorf("Init refused but left %v", names)
	}
	if DefaultKDF.validate() != nil {
		t.Errorf("DefaultKDF is beyond the bounds")
	}
}

func emptyBucket(t *testing.T) *blob.Bucket {
	t.Helper()
	b, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestOpenNamesNewerFormatAndNotRepository: Open's errors say which of the two it is, so that a location
// check can name it with its fix.
func TestOpenNamesNewerFormatAndNotRepository(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	cfg := r.cfg
	cfg.Version = FormatVersion + 1
	raw, _ := json.Marshal(cfg)
	if err := r.bucket.Delete(ctx, layout.Config); err != nil {
		t.Fatal(err)
	}
	plant(t, r.bucket, layout.Config, seal(r.keys.aead, nil, raw, adConfig))
	if _, err := Open(ctx, r.bucket, []byte("pw"), Options{}); !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), "upgrade pxb") {
		t.Errorf("Open of a newer format: %v, want ErrNewerFormat saying to upgrade", err)
	}

	b := emptyBucket(t)
	plant(t, b, layout.Config, []byte("somebody else's file"))
	if _, err := Open(ctx, b, []byte("pw"), Options{}); !errors.Is(err, ErrNotRepository) {
		t.Errorf("Open of a config without key slots: %v, want ErrNotRepository", err)
	}
}

// TestDamagedIndexSkipped replaces the index object of one of two snapshots with garbage: the repository
// still opens and loads its index, naming the damaged object; the other snapshot restores; the one whose
// blobs only the damaged index named fails naming a blob; Check names the index and GC refuses to run.
func TestDamagedIndexSkipped(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	indexes := func() []string {
		names, err := listNames(ctx, r.bucket, layout.IndexPrefix)
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	saveFileSnapshot(t, r, "a", []byte("first file"))
	before := indexes()
	saveFileSnapshot(t, r, "b", []byte("second file"))
	var damaged string
	for _, n := range indexes() {
		if !slices.Contains(before, n) {
			damaged = n
		}
	}
	if damaged == "" {
		t.Fatal("the second snapshot wrote no index object of its own")
	}
	plant(t, r.bucket, damaged, []byte("not a sealed index: some garbage bytes in its place"))

	o, err := Open(ctx, r.bucket, []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.LoadIndex(ctx); err != nil {
		t.Fatalf("LoadIndex beside a damaged index object: %v", err)
	}
	if s := o.SkippedIndexes(); len(s) != 1 || s[0].Name != damaged {
		t.Errorf("skipped indexes %v, want %s", s, damaged)
	}
	snaps, err := o.Snapshots(ctx)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots %d, %v; want both", len(snaps), err)
	}
	if _, data := restoreFile(t, o, snaps[0]); string(data) != "first file" {
		t.Errorf("the snapshot the damage does not touch restored %q", data)
	}
	err = o.WalkTree(ctx, snaps[1].Root.Tree, func(n *Node) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "blob") {
		t.Errorf("walking the snapshot whose index is damaged: %v, want an error naming the missing blob", err)
	}
	res, err := o.Check(ctx, CheckOptions{})
	if err == nil || !strings.Contains(strings.Join(res.Errors, "\n"), damaged) {
		t.Errorf("check: %v, errors %q; want the damaged index named", err, res.Errors)
	}
	if _, err := o.GC(ctx, GCOptions{MinAge: -1}); err == nil || !strings.Contains(err.Error(), "damaged indexes") {
		t.Errorf("gc beside a damaged index: %v, want a refusal", err)
	}
}

// TestReadDataNamesDamagedPackAndSnapshots flips one byte inside a blob that only one of two snapshots uses:
// a structural check passes; reading the data names the pack, SnapshotsUsingPacks names that snapshot and
// not the other, which still restores.
func TestReadDataNamesDamagedPackAndSnapshots(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	saveFileSnapshot(t, r, "a", []byte("the first file, which only snapshot a holds"))
	saveFileSnapshot(t, r, "b", []byte("the second file, which only snapshot b holds"))
	loc, pack, ok := r.Index().Lookup(r.Hash([]byte("the first file, which only snapshot a holds")))
	if !ok {
		t.Fatal("the first file's blob is not indexed")
	}
	raw, err := r.bucket.ReadAll(ctx, layout.PackName(pack))
	if err != nil {
		t.Fatal(err)
	}
	raw[loc.Offset+loc.Length/2] ^= 0x01
	plant(t, r.bucket, layout.PackName(pack), raw)

	o, err := Open(ctx, r.bucket, []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := o.Check(ctx, CheckOptions{}); err != nil || len(res.DamagedPacks) != 0 {
		t.Fatalf("structural check of a pack with a flipped byte: %v, %+v; want it to pass (only reading the data finds it)", err, res)
	}
	res, err := o.Check(ctx, CheckOptions{ReadData: true})
	if !errors.Is(err, ErrCheckFailed) || !slices.Equal(res.DamagedPacks, []string{pack}) || res.ReadBytes == 0 ||
		res.ReadPacks != res.Packs || !strings.Contains(strings.Join(res.Errors, "\n"), layout.PackName(pack)) {
		t.Fatalf("reading the data: %v, %+v; want pack %s damaged", err, res, pack)
	}
	using, err := o.SnapshotsUsingPacks(ctx, res.DamagedPacks)
	if err != nil {
		t.Fatal(err)
	}
	if len(using) != 1 || len(using[pack]) != 1 || using[pack][0].Source != "a" {
		t.Fatalf("snapshots using pack %s: %v; want a only", pack, using)
	}
	snaps, err := o.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		if s.Source == "b" {
			if _, data := restoreFile(t, o, s); string(data) != "the second file, which only snapshot b holds" {
				t.Fatalf("snapshot b restores %q", data)
			}
		}
	}
}
