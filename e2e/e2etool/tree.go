package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The rich dataset: every kind of file system entry a volume backup must carry over, with content that
// neither compresses nor deduplicates away. Its layout, relative to -dir:
//
//	small/dD/eE/fNNNNN.dat  -small files of 1–8 KiB in nested directories; every third has an mtime in 2001
//	large.bin               -large pseudo-random bytes, mode 0640
//	sparse.img              64 MiB apparent size, 2.25 MiB of data at three offsets, holes in between
//	empty-file              zero bytes
//	names/with space ü.txt  a name with a space and a non-ASCII letter
//	hard/a hard/b hard/sub/c  one inode under three names
//	links/to-file           -> ../hard/a, owned by 1234:1234
//	links/to-dir            -> ../small
//	links/dangling          -> ../nowhere/missing
//	links/absolute          -> /nonexistent/absolute
//	empty/                  an empty directory, mode 0750
//	owned/ owned/secret     1234:1234, modes 0700 and 0600
//	bin/run.sh bin/suid     modes 0755 and 04755
//	shared/ shared/file     setgid directory 02775; group 1234, mode 0664
//	tmp/                    sticky directory 01777
//
// Directories and most special entries get mtimes in the past, set after their content, so that a restore
// that does not set them (or sets them before writing into the directory) shows.

const (
	ownerID    = 1234
	sparseSize = 64 << 20
)

// past is the mtime given to entries whose mtime is checked: nanoseconds included, to catch truncation.
var past = time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)

// newRand returns a deterministic generator for purpose and seed.
func newRand(purpose string, seed uint64) *rand.ChaCha8 {
	return rand.NewChaCha8(sha256.Sum256(fmt.Appendf(nil, "pxb-e2e %s %d", purpose, seed)))
}

func writeRich(args []string) error {
	fset := flag.NewFlagSet("rich", flag.ContinueOnError)
	dir := fset.String("dir", "/data", "directory to write into")
	seed := fset.Uint64("seed", 1, "seed of the content")
	small := fset.Int("small", 200, "number of small files")
	large := fset.Int64("large", 500<<20, "bytes of the large file")
	manifest := fset.Bool("manifest", false, "print the manifest of -dir afterwards")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *small < 0 || *large < 0 {
		return errors.New("-small and -large must not be negative")
	}
	if os.Geteuid() != 0 {
		return errors.New("rich must run as root: it gives entries other owners")
	}
	w := &treeWriter{dir: *dir}
	w.rich(*seed, *small, *large)
	if w.err != nil {
		return w.err
	}
	if *manifest {
		return printManifest(*dir)
	}
	result(fmt.Sprintf("rich dataset written to %s", *dir))
	return nil
}

// treeWriter writes entries under dir and keeps the first error, so that the layout reads as a list.
type treeWriter struct {
	dir string
	err error
}

func (w *treeWriter) path(rel string) string { return filepath.Join(w.dir, rel) }

func (w *treeWriter) fail(err error) {
	if w.err == nil && err != nil {
		w.err = err
	}
}

func (w *treeWriter) mkdir(rel string, mode uint32) {
	if w.err != nil {
		return
	}
	if err := os.MkdirAll(w.path(rel), 0o755); err != nil {
		w.fail(fmt.Errorf("mkdir %s: %w", rel, err))
		return
	}
	w.chmod(rel, mode)
}

// file writes n bytes from src (nil: none) into rel with mode (Unix bits, setuid included).
func (w *treeWriter) file(rel string, mode uint32, src io.Reader, n int64) {
	if w.err != nil {
		return
	}
	p := w.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.fail(fmt.Errorf("mkdir for %s: %w", rel, err))
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		w.fail(fmt.Errorf("create %s: %w", rel, err))
		return
	}
	if src != nil {
		if _, err := io.CopyN(f, src, n); err != nil {
			f.Close()
			w.fail(fmt.Errorf("write %s: %w", rel, err))
			return
		}
	}
	w.fail(f.Close())
	w.chmod(rel, mode)
}

// text writes s into rel with mode.
func (w *treeWriter) text(rel string, mode uint32, s string) {
	w.file(rel, mode, strings.NewReader(s), int64(len(s)))
}

// chmod sets the Unix mode bits, setuid, setgid and sticky included (os.Chmod takes Go's FileMode instead).
func (w *treeWriter) chmod(rel string, mode uint32) {
	if w.err == nil {
		if err := unix.Chmod(w.path(rel), mode); err != nil {
			w.fail(fmt.Errorf("chmod %s: %w", rel, err))
		}
	}
}

// chown changes the owner without following symlinks; it clears setuid and setgid, so modes come after.
func (w *treeWriter) chown(rel string, uid, gid int) {
	if w.err == nil {
		if err := os.Lchown(w.path(rel), uid, gid); err != nil {
			w.fail(fmt.Errorf("chown %s: %w", rel, err))
		}
	}
}

func (w *treeWriter) symlink(rel, target string) {
	if w.err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(w.path(rel)), 0o755); err != nil {
		w.fail(err)
		return
	}
	_ = os.Remove(w.path(rel))
	if err := os.Symlink(target, w.path(rel)); err != nil {
		w.fail(fmt.Errorf("symlink %s: %w", rel, err))
	}
}

func (w *treeWriter) link(rel, existing string) {
	if w.err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(w.path(rel)), 0o755); err != nil {
		w.fail(err)
		return
	}
	_ = os.Remove(w.path(rel))
	if err := os.Link(w.path(existing), w.path(rel)); err != nil {
		w.fail(fmt.Errorf("link %s: %w", rel, err))
	}
}

// mtime sets the modification (and access) time without following symlinks.
func (w *treeWriter) mtime(rel string, t time.Time) {
	if w.err != nil {
		return
	}
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, w.path(rel), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		w.fail(fmt.Errorf("set mtime of %s: %w", rel, err))
	}
}

func (w *treeWriter) rich(seed uint64, small int, large int64) {
	rng := newRand("rich", seed)
	ints := rand.New(rng)
	w.mkdir("small", 0o755)
	for i := range small {
		rel := smallPath(i)
		w.file(rel, 0o644, rng, int64(1024+ints.IntN(7*1024+1)))
		if i%3 == 0 {
			w.mtime(rel, past.Add(time.Duration(i)*time.Second))
		}
	}
	w.file("large.bin", 0o640, newRand("large", seed), large)
	w.sparse("sparse.img", newRand("sparse", seed))
	w.mtime("sparse.img", past)
	w.file("empty-file", 0o644, nil, 0)
	w.text("names/with space ü.txt", 0o644, "a name to keep\n")

	w.file("hard/a", 0o644, rng, 4096)
	w.link("hard/b", "hard/a")
	w.link("hard/sub/c", "hard/a")
	w.mtime("hard/a", past)

	w.symlink("links/to-file", "../hard/a")
	w.chown("links/to-file", ownerID, ownerID)
	w.symlink("links/to-dir", "../small")
	w.symlink("links/dangling", "../nowhere/missing")
	w.symlink("links/absolute", "/nonexistent/absolute")
	for _, l := range []string{"to-file", "to-dir", "dangling", "absolute"} {
		w.mtime("links/"+l, past)
	}

	w.mkdir("empty", 0o750)
	w.mkdir("owned", 0o755)
	w.file("owned/secret", 0o600, rng, 3000)
	w.chown("owned/secret", ownerID, ownerID)
	w.chmod("owned/secret", 0o600)
	w.chown("owned", ownerID, ownerID)
	w.chmod("owned", 0o700)
	w.text("bin/run.sh", 0o755, "#!/bin/sh\necho hi\n")
	w.file("bin/suid", 0o4755, rng, 2048)
	w.mkdir("shared", 0o755)
	w.file("shared/file", 0o664, rng, 1500)
	w.chown("shared/file", 0, ownerID)
	w.chmod("shared/file", 0o664)
	w.chmod("shared", 0o2775)
	w.mkdir("tmp", 0o1777)

	// Directories last: writing into a directory changes its mtime.
	for i, d := range []string{"small/d0", "small/d1/e1", "hard/sub", "hard", "links", "empty", "owned", "bin", "shared", "tmp", "names"} {
		if _, err := os.Lstat(w.path(d)); err == nil {
			w.mtime(d, past.Add(time.Duration(i)*time.Hour))
		}
	}
}

func smallPath(i int) string {
	return fmt.Sprintf("small/d%d/e%d/f%05d.dat", i%5, (i/5)%4, i)
}

// sparse writes a file of sparseSize bytes with data at its start, in its middle and at its end, and checks
// that the file system kept the holes.
func (w *treeWriter) sparse(rel string, src io.Reader) {
	if w.err != nil {
		return
	}
	f, err := os.OpenFile(w.path(rel), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		w.fail(fmt.Errorf("create %s: %w", rel, err))
		return
	}
	defer f.Close()
	if err := f.Truncate(sparseSize); err != nil {
		w.fail(fmt.Errorf("truncate %s: %w", rel, err))
		return
	}
	for _, r := range []struct{ off, n int64 }{{0, 1 << 20}, {24 << 20, 1 << 20}, {sparseSize - 256<<10, 256 << 10}} {
		buf := make([]byte, r.n)
		if _, err := io.ReadFull(src, buf); err != nil {
			w.fail(err)
			return
		}
		if _, err := f.WriteAt(buf, r.off); err != nil {
			w.fail(fmt.Errorf("write %s: %w", rel, err))
			return
		}
	}
	if err := f.Sync(); err != nil {
		w.fail(fmt.Errorf("sync %s: %w", rel, err))
		return
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		w.fail(fmt.Errorf("stat %s: %w", rel, err))
		return
	}
	if !isSparse(&st) {
		w.fail(fmt.Errorf("%s: %d bytes allocated for %d: the file system does not keep holes", rel, st.Blocks*512, st.Size))
	}
}

func isSparse(st *unix.Stat_t) bool { return st.Blocks*512 < st.Size/2 }

// changeTree rewrites about -percent of the bytes of a rich dataset: a few small files get new content, one is
// deleted and one added, and a region of the large file is overwritten in place (sizes stay).
func changeTree(args []string) error {
	fset := flag.NewFlagSet("change", flag.ContinueOnError)
	dir := fset.String("dir", "/data", "directory of a rich dataset")
	percent := fset.Float64("percent", 5, "share of the dataset's bytes to rewrite")
	seed := fset.Uint64("seed", 2, "seed of the new content")
	manifest := fset.Bool("manifest", false, "print the manifest of -dir afterwards")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *percent <= 0 || *percent > 100 {
		return errors.New("-percent must be in (0, 100]")
	}
	entries, err := scanTree(*dir)
	if err != nil {
		return err
	}
	var total int64
	var smalls []string
	for _, e := range entries {
		if e.kind == "file" && !e.firstLink {
			continue // counted under its first name
		}
		if e.kind == "file" {
			total += e.dense
			if strings.HasPrefix(e.path, "small/") {
				smalls = append(smalls, e.path)
			}
		}
	}
	target := int64(float64(total) * *percent / 100)
	rng := newRand("change", *seed)
	ints := rand.New(rng)
	w := &treeWriter{dir: *dir}
	var changed int64
	// A few small files: rewritten, one removed, one added.
	ints.Shuffle(len(smalls), func(i, j int) { smalls[i], smalls[j] = smalls[j], smalls[i] })
	for i, rel := range smalls[:min(len(smalls), 6)] {
		info, err := os.Stat(w.path(rel))
		if err != nil {
			return err
		}
		if i == 0 {
			if err := os.Remove(w.path(rel)); err != nil {
				return fmt.Errorf("remove %s: %w", rel, err)
			}
			continue
		}
		w.file(rel, uint32(info.Mode().Perm()), rng, info.Size())
		changed += info.Size()
	}
	added := fmt.Sprintf("small/added-%d.dat", *seed)
	w.file(added, 0o644, rng, 4096)
	changed += 4096
	if w.err != nil {
		return w.err
	}
	// The rest in one region of the large file, at a seeded offset.
	if n := target - changed; n > 0 {
		p := w.path("large.bin")
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		n = min(n, info.Size())
		off := int64(0)
		if room := info.Size() - n; room > 0 {
			off = ints.Int64N(room+1) &^ 4095
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("open large.bin: %w", err)
		}
		if _, err := io.CopyN(io.NewOffsetWriter(f, off), rng, n); err != nil {
			f.Close()
			return fmt.Errorf("overwrite large.bin: %w", err)
		}
		if err := f.Close(); err != nil {
			return err
		}
		changed += n
	}
	if *manifest {
		return printManifest(*dir)
	}
	result(fmt.Sprintf("changed %d of %d bytes", changed, total))
	return nil
}

// entry is one file system entry of a manifest.
type entry struct {
	path   string // relative, "." for the root
	kind   string // dir, file, symlink, fifo, socket, char, block
	st     unix.Stat_t
	target string
	sum    string
	// dense is the number of bytes a reader must get: the size, or less when the file has holes.
	dense     int64
	group     string // hard-link group: the lexically first path of the inode
	firstLink bool
}

// scanTree lstats every entry under dir (but lost+found at the root) and hashes regular files.
func scanTree(dir string) ([]*entry, error) {
	var entries []*entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "lost+found" && d.IsDir() {
			return filepath.SkipDir
		}
		e := &entry{path: rel}
		if err := unix.Lstat(p, &e.st); err != nil {
			return fmt.Errorf("lstat %s: %w", rel, err)
		}
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			e.kind = "dir"
		case unix.S_IFREG:
			e.kind = "file"
			e.dense = min(e.st.Size, e.st.Blocks*512)
			if e.sum, err = fileSum(p); err != nil {
				return err
			}
		case unix.S_IFLNK:
			e.kind = "symlink"
			if e.target, err = os.Readlink(p); err != nil {
				return err
			}
		case unix.S_IFIFO:
			e.kind = "fifo"
		case unix.S_IFSOCK:
			e.kind = "socket"
		case unix.S_IFCHR:
			e.kind = "char"
		case unix.S_IFBLK:
			e.kind = "block"
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	slices.SortFunc(entries, func(a, b *entry) int { return strings.Compare(a.path, b.path) })
	groups := map[uint64]string{}
	for _, e := range entries { // sorted: the first name seen of an inode is the lexically first
		if e.kind != "file" || e.st.Nlink < 2 {
			e.firstLink = true
			continue
		}
		if g, ok := groups[e.st.Ino]; ok {
			e.group = g
			continue
		}
		groups[e.st.Ino] = e.path
		e.group, e.firstLink = e.path, true
	}
	return entries, nil
}

func fileSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// line is an entry as a manifest line. Symlinks have their own mtime and owner (restores set both with
// AT_SYMLINK_NOFOLLOW and lchown) but no meaningful mode; directories no meaningful size.
func (e *entry) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q %s", e.path, e.kind)
	if e.kind != "symlink" {
		fmt.Fprintf(&b, " mode=%04o", e.st.Mode&0o7777)
	}
	fmt.Fprintf(&b, " uid=%d gid=%d mtime=%d", e.st.Uid, e.st.Gid, e.st.Mtim.Nano())
	switch e.kind {
	case "file":
		fmt.Fprintf(&b, " size=%d sha256=%s nlink=%d", e.st.Size, e.sum, e.st.Nlink)
		if e.group != "" {
			fmt.Fprintf(&b, " hardlink=%q", e.group)
		}
		if e.st.Size >= 1<<20 {
			fmt.Fprintf(&b, " sparse=%t", isSparse(&e.st))
		}
	case "symlink":
		fmt.Fprintf(&b, " target=%q", e.target)
	case "char", "block":
		fmt.Fprintf(&b, " rdev=%d", e.st.Rdev)
	}
	return b.String()
}

// printManifest prints one line per entry, sorted by path, then a summary line starting with "#"; the
// termination message carries the SHA-256 of everything printed, so that a reader knows it got all of it.
func printManifest(dir string) error {
	entries, err := scanTree(dir)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	var bytes, dense int64
	h := sha256.New()
	out := io.MultiWriter(os.Stdout, h)
	for _, e := range entries {
		counts[e.kind]++
		if e.kind == "file" && e.firstLink {
			bytes += e.st.Size
			dense += e.dense
		}
		fmt.Fprintln(out, e.line())
	}
	summary := fmt.Sprintf("# entries=%d dirs=%d files=%d symlinks=%d bytes=%d dense=%d",
		len(entries), counts["dir"], counts["file"], counts["symlink"], bytes, dense)
	fmt.Fprintln(out, summary)
	msg := fmt.Sprintf("manifest lines=%d sha256=%s %s", len(entries)+1, hex.EncodeToString(h.Sum(nil)), summary)
	_ = os.WriteFile("/dev/termination-log", []byte(msg), 0o644)
	return nil
}

func manifest(args []string) error {
	fset := flag.NewFlagSet("manifest", flag.ContinueOnError)
	dir := fset.String("dir", "/data", "directory to describe")
	if err := fset.Parse(args); err != nil {
		return err
	}
	return printManifest(*dir)
}
