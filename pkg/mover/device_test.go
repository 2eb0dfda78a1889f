package mover

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxb-dev/pxb/pkg/repo"
)

// diskImage is the content of a small disk: data, an empty (zero) stretch, more data.
func diskImage(seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 9))
	var img []byte
	img = append(img, randomBytes(rng, 3<<20)...)
	img = append(img, make([]byte, 4<<20)...)
	img = append(img, textBytes(rng, 2<<20)...)
	img = append(img, randomBytes(rng, 1<<20+4096)...)
	return img
}

// device makes a file of size bytes filled with fill, to stand for a block device.
func device(t *testing.T, size int, fill byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dev")
	writeFile(t, path, bytes.Repeat([]byte{fill}, size))
	return path
}

// checkRestored checks that the device at path starts with img and has only fill bytes after it.
func checkRestored(t *testing.T, path string, img []byte, fill byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(img)], img) {
		t.Error("the restored device differs from the original")
	}
	if !bytes.Equal(got[len(img):], bytes.Repeat([]byte{fill}, len(got)-len(img))) {
		t.Error("the bytes past the original's size were changed")
	}
}

func deviceNode(t *testing.T, r *repo.Repository, id string) *repo.Node {
	t.Helper()
	snap, err := r.LoadSnapshot(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	n, err := findPath(context.Background(), r, &snap.Root, DeviceFile)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDeviceRoundTrip backs up a device and restores it onto a larger one holding other data: the original's
// bytes come back exactly, its empty stretch included (zeroed, not left as it was), and the bytes past the
// original's size are untouched.
func TestDeviceRoundTrip(t *testing.T) {
	r, _ := newRepo(t)
	img := diskImage(1)
	src := device(t, len(img), 0)
	if err := os.WriteFile(src, img, 0o600); err != nil {
		t.Fatal(err)
	}
	id, st, err := BackupDevice(context.Background(), r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes != int64(len(img)) || st.Files != 1 {
		t.Errorf("stats %+v", st)
	}
	n := deviceNode(t, r, id)
	var hole int64
	for _, h := range n.Holes {
		hole += h.Len
	}
	// The zero stretch is 4 MiB; chunks straddling its ends hold some of it as data.
	if hole < 3<<20 || hole > 4<<20 {
		t.Errorf("holes %v (%d bytes) for a 4 MiB zero stretch", n.Holes, hole)
	}

	const extra = 1 << 20
	dst := device(t, len(img)+extra, 0xAA)
	if _, err := RestoreDevice(context.Background(), r, id, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	checkRestored(t, dst, img, 0xAA)

	// A second backup of the same content stores nothing new.
	_, st, err = BackupDevice(context.Background(), r, src, Options{Parent: id})
	if err != nil {
		t.Fatal(err)
	}
	if st.NewBytes > 64<<10 {
		t.Errorf("unchanged device: %d new bytes", st.NewBytes)
	}

	small := device(t, len(img)-1, 0)
	_, err = RestoreDevice(context.Background(), r, id, small, RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "restore onto a volume at least as large") {
		t.Errorf("restore onto a smaller device: %v", err)
	}
}

// TestDeviceOnLoopDevices does the round trip on real block devices (loop devices over files), where the
// size comes from the device and holes are zeroed with BLKZEROOUT.
func TestDeviceOnLoopDevices(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	attach := func(path string) string {
		t.Helper()
		out, err := exec.Command("losetup", "--find", "--show", path).CombinedOutput()
		if err != nil {
			t.Skipf("no loop device here (losetup: %v: %s)", err, out)
		}
		dev := strings.TrimSpace(string(out))
		t.Cleanup(func() { _ = exec.Command("losetup", "--detach", dev).Run() })
		return dev
	}
	r, _ := newRepo(t)
	img := diskImage(2)
	srcFile := device(t, len(img), 0)
	if err := os.WriteFile(srcFile, img, 0o600); err != nil {
		t.Fatal(err)
	}
	dstFile := device(t, len(img)+(1<<20), 0x55)
	src, dst := attach(srcFile), attach(dstFile)
	id, _, err := BackupDevice(context.Background(), r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := deviceNode(t, r, id); n.Size != int64(len(img)) || len(n.Holes) == 0 {
		t.Errorf("device node: size %d (want %d), holes %v", n.Size, len(img), n.Holes)
	}
	if _, err := RestoreDevice(context.Background(), r, id, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	checkRestored(t, dst, img, 0x55)
}
