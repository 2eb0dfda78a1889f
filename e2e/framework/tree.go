//go:build e2e

package framework

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Rich describes a rich dataset (see e2e/e2etool/tree.go): every kind of entry a volume backup must carry
// over — nested small files, a large pseudo-random file, a sparse file, hard links, symlinks (to a file, to
// a directory, dangling), an empty directory, other owners, setuid/setgid/sticky modes, past mtimes.
type Rich struct {
	Seed  uint64
	Small int   // number of small files (1–8 KiB each)
	Large int64 // bytes of the large file
}

// Manifest is what `e2etool manifest` prints of a volume: one line per entry, sorted by path, with type,
// mode, owner, mtime (ns), size, SHA-256, link target, hard-link group and sparseness.
type Manifest struct {
	Lines   []string
	Summary string // "# entries=… dirs=… files=… symlinks=… bytes=… dense=…"
	Entries int
	Files   int
	// Bytes is the apparent size of the regular files, Dense the bytes they hold without holes; hard links
	// count once.
	Bytes, Dense int64
}

// WriteRich writes the rich dataset into pvc from a pod running as root and returns the volume's manifest.
func (c *Cluster) WriteRich(t testing.TB, ns, pvc string, r Rich) Manifest {
	t.Helper()
	return c.manifestOf(t, ns, pvc, false, "rich", "-dir", "/data", "-seed", fmt.Sprint(r.Seed),
		"-small", fmt.Sprint(r.Small), "-large", fmt.Sprint(r.Large), "-manifest")
}

// ChangeRich rewrites about percent of the bytes of the rich dataset in pvc (a region of the large file, a
// few small files rewritten, one removed, one added) and returns the volume's manifest afterwards.
func (c *Cluster) ChangeRich(t testing.TB, ns, pvc string, percent float64, seed uint64) Manifest {
	t.Helper()
	return c.manifestOf(t, ns, pvc, false, "change", "-dir", "/data", "-percent", fmt.Sprint(percent),
		"-seed", fmt.Sprint(seed), "-manifest")
}

// Manifest returns the manifest of the volume pvc, mounted read-only.
func (c *Cluster) Manifest(t testing.TB, ns, pvc string) Manifest {
	t.Helper()
	return c.manifestOf(t, ns, pvc, true, "manifest", "-dir", "/data")
}

func (c *Cluster) manifestOf(t testing.TB, ns, pvc string, readOnly bool, args ...string) Manifest {
	t.Helper()
	complete := func(msg, log string) error { _, err := ParseManifest(log, msg); return err }
	msg, log := c.RootTool(t, ns, pvc, readOnly, 10*time.Minute, complete, args...)
	m, err := ParseManifest(log, msg)
	if err != nil {
		t.Fatalf("manifest of %s/%s: %v", ns, pvc, err)
	}
	return m
}

// ParseManifest reads a manifest from the tool's output and checks it against the SHA-256 and summary in
// its termination message ("manifest lines=N sha256=H # entries=…").
func ParseManifest(out, msg string) (Manifest, error) {
	var m Manifest
	var lines int
	var sum string
	if _, err := fmt.Sscanf(msg, "manifest lines=%d sha256=%s", &lines, &sum); err != nil {
		return m, fmt.Errorf("termination message %q: %w", msg, err)
	}
	if got := sha256.Sum256([]byte(out)); hex.EncodeToString(got[:]) != sum {
		return m, fmt.Errorf("the output (%d bytes) does not have the SHA-256 its termination message %q names", len(out), msg)
	}
	all := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(all) != lines || !strings.HasPrefix(all[len(all)-1], "# ") {
		return m, fmt.Errorf("%d lines, want %d ending with a summary", len(all), lines)
	}
	m.Lines, m.Summary = all[:len(all)-1], all[len(all)-1]
	var dirs, symlinks int
	if _, err := fmt.Sscanf(m.Summary, "# entries=%d dirs=%d files=%d symlinks=%d bytes=%d dense=%d",
		&m.Entries, &dirs, &m.Files, &symlinks, &m.Bytes, &m.Dense); err != nil {
		return m, fmt.Errorf("summary %q: %w", m.Summary, err)
	}
	return m, nil
}

// maxDiffLines bounds the differences CompareManifests reports.
const maxDiffLines = 20

// CompareManifests fails the test (without stopping it) when got differs from want, showing the first
// differing entries: "-" what want has, "+" what got has. It reports whether they are equal.
func CompareManifests(t testing.TB, what string, want, got Manifest) bool {
	t.Helper()
	diff, n := manifestDiff(want.Lines, got.Lines)
	if n == 0 {
		return true
	}
	more := ""
	if len(diff) > maxDiffLines {
		diff, more = diff[:maxDiffLines], "\n  …"
	}
	t.Errorf("%s: %d of %d entries differ (want %s; got %s):\n  %s%s", what, n, len(want.Lines),
		want.Summary, got.Summary, strings.Join(diff, "\n  "), more)
	return false
}

// manifestDiff merges two manifests sorted by path and returns the differing lines and how many entries
// differ.
func manifestDiff(want, got []string) ([]string, int) {
	var diff []string
	n := 0
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch cmp := comparePaths(want, i, got, j); {
		case cmp < 0:
			diff = append(diff, "- "+want[i])
			i++
			n++
		case cmp > 0:
			diff = append(diff, "+ "+got[j])
			j++
			n++
		default:
			if want[i] != got[j] {
				diff = append(diff, "- "+want[i], "+ "+got[j])
				n++
			}
			i, j = i+1, j+1
		}
	}
	return diff, n
}

// comparePaths orders entry i of a against entry j of b by path; a missing entry sorts last.
func comparePaths(a []string, i int, b []string, j int) int {
	switch {
	case i >= len(a):
		return 1
	case j >= len(b):
		return -1
	}
	return strings.Compare(linePath(a[i]), linePath(b[j]))
}

// linePath is the path a manifest line starts with (quoted).
func linePath(line string) string {
	q, err := strconv.QuotedPrefix(line)
	if err != nil {
		return line
	}
	p, _ := strconv.Unquote(q)
	return p
}
