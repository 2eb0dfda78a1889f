// Command benchmover runs the data-mover benchmark: pxb side by side with kopia and restic on generated,
// seeded data sets, each into fresh repositories, reporting wall time, throughput, CPU seconds, peak RSS and
// repository size, with every tool's time as a ratio to kopia's in the same run. hack/bench-mover.sh builds
// the tools and calls it.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/s3blob"

	"golang.org/x/sys/unix"

	"github.com/pxb-dev/pxb/pkg/mover"
	"github.com/pxb-dev/pxb/pkg/repo"
)

const password = "pxb-benchmark-password"

func main() {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "pxb-") {
		if err := pxbOp(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchmover:", err)
		os.Exit(1)
	}
}

// pxbOp is one measured pxb step, run as a child process so its CPU time and peak RSS are its own.
func pxbOp(op string, args []string) error {
	fs := flag.NewFlagSet(op, flag.ExitOnError)
	url := fs.String("repo", "", "bucket URL")
	src := fs.String("src", "", "source directory")
	target := fs.String("target", "", "restore target")
	_ = fs.Parse(args)
	if path := os.Getenv("PXB_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if path := os.Getenv("PXB_MEMPROFILE"); path != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	ctx := context.Background()
	b, err := blob.OpenBucket(ctx, *url)
	if err != nil {
		return err
	}
	defer b.Close()
	if op == "pxb-init" {
		_, err := repo.Init(ctx, b, []byte(password), repo.InitOptions{}, repo.Options{})
		return err
	}
	r, err := repo.Open(ctx, b, []byte(password), repo.Options{})
	if err != nil {
		return err
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	latest := ""
	if len(snaps) > 0 {
		latest = snaps[len(snaps)-1].ID
	}
	switch op {
	case "pxb-backup":
		_, st, err := mover.Backup(ctx, r, *src, mover.Options{Parent: latest})
		fmt.Fprintf(os.Stderr, "pxb: %+v\n", st)
		return err
	case "pxb-restore":
		_, err := mover.Restore(ctx, r, latest, "", *target, mover.RestoreOptions{})
		return err
	}
	return fmt.Errorf("unknown op %s", op)
}

type config struct {
	work, sets, tools string
	runs              int
	kopia, restic     string
	seed              uint64
	self              string
	// s3 is the versitygw endpoint (http://127.0.0.1:PORT) and s3Dir its data directory, for S3 repositories.
	versitygw, s3, s3Dir string
}

const (
	s3Key    = "pxbbench"
	s3Secret = "pxbbench-secret"
)

// startVersitygw runs an S3 gateway over a directory for the S3 repositories; the caller kills it.
func (c *config) startVersitygw() (*exec.Cmd, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	c.s3, c.s3Dir = "http://"+addr, filepath.Join(c.work, "s3")
	if err := os.RemoveAll(c.s3Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.s3Dir, 0o755); err != nil {
		return nil, err
	}
	// Its request log goes nowhere: one line per request would drown the report.
	cmd := exec.Command(c.versitygw, "--access", s3Key, "--secret", s3Secret, "--region", "us-east-1", "--port", addr, "posix", c.s3Dir)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for range 100 {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return cmd, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("versitygw did not start on %s", addr)
}

func (c *config) createBucket(name string) error {
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(c.s3), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s3Key, s3Secret, "")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	return err
}

func run() error {
	var c config
	flag.StringVar(&c.work, "work", "/tmp/pxb-bench", "work directory (data sets, repositories, restores)")
	flag.StringVar(&c.sets, "sets", "A,B,C", "data sets")
	flag.StringVar(&c.tools, "tools", "kopia,kopia-zstd,restic,pxb", "tools; kopia must come first for ratios")
	flag.IntVar(&c.runs, "runs", 3, "runs per tool and data set (medians reported)")
	flag.StringVar(&c.kopia, "kopia", "kopia", "kopia binary")
	flag.StringVar(&c.restic, "restic", "restic", "restic binary")
	flag.Uint64Var(&c.seed, "seed", 1, "data set seed")
	flag.StringVar(&c.versitygw, "versitygw", "", "versitygw binary: repositories go into S3 on it instead of directories")
	flag.Parse()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	c.self = self
	tools := strings.Split(c.tools, ",")
	store := "directory"
	if c.versitygw != "" {
		gw, err := c.startVersitygw()
		if err != nil {
			return err
		}
		defer func() { _ = gw.Process.Kill(); _ = gw.Wait() }()
		store = "S3 (versitygw)"
	}
	fmt.Printf("# pxb data mover benchmark (%s repositories, %d run(s), medians)\n\n", store, c.runs)
	for _, set := range strings.Split(c.sets, ",") {
		data := filepath.Join(c.work, "data-"+set)
		fmt.Fprintf(os.Stderr, "generating data set %s in %s\n", set, data)
		files, err := generate(set, data, c.seed)
		if err != nil {
			return err
		}
		results := map[string][]*result{}
		// Restored trees are removed only after the set: on an ext4 without a journal, creating files soon
		// after many were deleted scans past every recently deleted inode (ext4's recently_deleted), which
		// would make each tool's restore pay for the previous tool's clean-up.
		trash := filepath.Join(c.work, "trash-"+set)
		// A run that failed midway left its trash behind, whose names the runs below would collide with.
		if err := removeTrash(trash); err != nil {
			return err
		}
		for runNo := range c.runs {
			// Each run starts with another tool, so that none always runs after the others' work.
			k := runNo % len(tools)
			for _, tool := range append(tools[k:len(tools):len(tools)], tools[:k]...) {
				fmt.Fprintf(os.Stderr, "set %s run %d: %s\n", set, runNo+1, tool)
				res, err := c.measureTool(tool, set, data, files, runNo, trash)
				if err != nil {
					return fmt.Errorf("%s on %s: %w", tool, set, err)
				}
				results[tool] = append(results[tool], res)
			}
		}
		report(set, tools, results, files)
		if err := removeTrash(trash); err != nil {
			return err
		}
	}
	return nil
}

// On these machines / is ext4 mounted with discard: for a while after gigabytes are deleted, writing new
// large files costs several times the system time (a 2 GiB dd: 0.5 s or 7 s of it), whichever tool writes.
// Restores of data set C vary the most; compare tools within a run, and over several runs.
//
// removeTrash deletes restored trees, then waits until ext4 no longer skips their inodes: it does for 60 s
// after a deletion once the inode table is written back (five minutes before). Without the wait, the next
// set's first restore, or the next benchmark's, ran ten times slower (B: 54 s instead of 5.5, nearly all of
// it system time), whichever tool it was.
func removeTrash(trash string) error {
	if _, err := os.Stat(trash); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.RemoveAll(trash); err != nil {
		return err
	}
	syscall.Sync()
	fmt.Fprintln(os.Stderr, "waiting a minute for the file system to settle after removing restored trees")
	time.Sleep(61 * time.Second)
	return nil
}

// step is one measured command.
type step struct {
	Wall, CPU time.Duration
	RSS       int64 // bytes
	RepoSize  int64
}

type result struct {
	first, unchanged, changed, restore step
	added                              int64
}

type dataFile struct {
	rel  string
	size int64
	kind string // "mixed": half text, half random
	seed uint64
}

func (c *config) measureTool(tool, set, data string, files []dataFile, runNo int, trash string) (*result, error) {
	base := filepath.Join(c.work, fmt.Sprintf("%s-%s-%d", tool, set, runNo))
	if err := os.RemoveAll(base); err != nil {
		return nil, err
	}
	repoDir := filepath.Join(base, "repo")
	cache := filepath.Join(base, "cache")
	target := filepath.Join(base, "restore")
	for _, d := range []string{repoDir, cache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	defer os.RemoveAll(base)
	t := &toolRun{c: c, tool: tool, repo: repoDir, cache: cache, data: data}
	if c.s3 != "" {
		t.bucket = fmt.Sprintf("%s-%s-%d", tool, strings.ToLower(set), runNo)
		t.repo = filepath.Join(c.s3Dir, t.bucket)
		if err := c.createBucket(t.bucket); err != nil {
			return nil, err
		}
		defer os.RemoveAll(t.repo)
	}
	if err := t.init(); err != nil {
		return nil, err
	}
	res := &result{}
	var err error
	if res.first, err = t.backup(); err != nil {
		return nil, err
	}
	if res.unchanged, err = t.backup(); err != nil {
		return nil, err
	}
	changed, err := change(data, files, c.seed+uint64(runNo)+100)
	if err != nil {
		return nil, err
	}
	if res.changed, err = t.backup(); err != nil {
		return nil, err
	}
	res.added = res.changed.RepoSize - res.unchanged.RepoSize
	if res.restore, err = t.restore(target); err != nil {
		return nil, err
	}
	if err := verify(data, target); err != nil {
		return nil, fmt.Errorf("restore verification: %w", err)
	}
	if err := os.MkdirAll(trash, 0o755); err != nil {
		return nil, err
	}
	kept := filepath.Join(trash, filepath.Base(base))
	if err := os.Rename(target, kept); err != nil {
		return nil, err
	}
	// The kept tree's pages leave the cache: gigabytes of them would have the next tools' steps reclaim
	// memory as they write, and the later a tool ran, the more.
	if err := evict(kept); err != nil {
		return nil, err
	}
	// Put the changed files back for the next tool.
	for _, f := range changed {
		if err := writeFile(filepath.Join(data, f.rel), f); err != nil {
			return nil, err
		}
	}
	return res, nil
}

type toolRun struct {
	c                       *config
	tool, repo, cache, data string
	bucket                  string // S3 repositories only; repo is then the bucket's directory in versitygw
}

func (t *toolRun) env() []string {
	return append(os.Environ(), "KOPIA_PASSWORD="+password, "RESTIC_PASSWORD="+password,
		"KOPIA_CHECK_FOR_UPDATES=false", "RESTIC_CACHE_DIR="+t.cache,
		"KOPIA_CONFIG_PATH="+filepath.Join(t.cache, "kopia.config"), "KOPIA_CACHE_DIRECTORY="+filepath.Join(t.cache, "kopia"),
		"KOPIA_LOG_DIR="+filepath.Join(t.cache, "logs"), "AWS_ACCESS_KEY_ID="+s3Key, "AWS_SECRET_ACCESS_KEY="+s3Secret)
}

func (t *toolRun) resticRepo() string {
	if t.bucket != "" {
		return "s3:" + t.c.s3 + "/" + t.bucket
	}
	return t.repo
}

func (t *toolRun) url() string {
	if t.bucket != "" {
		return "s3://" + t.bucket + "?endpoint=" + t.c.s3 + "&use_path_style=true&region=us-east-1"
	}
	return "file://" + t.repo + "?metadata=skip"
}

func (t *toolRun) init() error {
	switch t.tool {
	case "pxb":
		_, err := t.exec(t.c.self, "pxb-init", "-repo", t.url())
		return err
	case "kopia", "kopia-zstd":
		args := []string{"repository", "create", "filesystem", "--path", t.repo}
		if t.bucket != "" {
			args = []string{"repository", "create", "s3", "--bucket", t.bucket, "--endpoint", strings.TrimPrefix(t.c.s3, "http://"),
				"--disable-tls", "--access-key", s3Key, "--secret-access-key", s3Secret, "--region", "us-east-1"}
		}
		if _, err := t.exec(t.c.kopia, args...); err != nil {
			return err
		}
		if t.tool == "kopia-zstd" {
			_, err := t.exec(t.c.kopia, "policy", "set", "--global", "--compression=zstd-fastest")
			return err
		}
		return nil
	case "restic":
		_, err := t.exec(t.c.restic, "init", "--repo", t.resticRepo())
		return err
	}
	return fmt.Errorf("unknown tool %s", t.tool)
}

func (t *toolRun) backup() (step, error) {
	var s step
	var err error
	switch t.tool {
	case "pxb":
		s, err = t.exec(t.c.self, "pxb-backup", "-repo", t.url(), "-src", t.data)
	case "kopia", "kopia-zstd":
		s, err = t.exec(t.c.kopia, "snapshot", "create", t.data)
	case "restic":
		s, err = t.exec(t.c.restic, "backup", "--repo", t.resticRepo(), t.data)
	}
	if err != nil {
		return s, err
	}
	s.RepoSize, err = dirSize(t.repo)
	return s, err
}

func (t *toolRun) restore(target string) (step, error) {
	switch t.tool {
	case "pxb":
		return t.exec(t.c.self, "pxb-restore", "-repo", t.url(), "-target", target)
	case "kopia", "kopia-zstd":
		cmd := exec.Command(t.c.kopia, "snapshot", "list", t.data, "--json")
		cmd.Env = t.env()
		out, err := cmd.Output()
		if err != nil {
			return step{}, fmt.Errorf("kopia snapshot list: %w", err)
		}
		var snaps []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(out, &snaps); err != nil || len(snaps) == 0 {
			return step{}, fmt.Errorf("kopia snapshot list: %v (%d snapshots)", err, len(snaps))
		}
		return t.exec(t.c.kopia, "snapshot", "restore", snaps[len(snaps)-1].ID, target)
	case "restic":
		return t.exec(t.c.restic, "restore", "--repo", t.resticRepo(), "latest:"+t.data, "--target", target)
	}
	return step{}, fmt.Errorf("unknown tool %s", t.tool)
}

// exec runs one measured command under /usr/bin/time: the peak RSS the kernel reports for a direct child of
// this (large) process would include this process's own memory, copied into the child at fork.
func (t *toolRun) exec(bin string, args ...string) (step, error) {
	usage := filepath.Join(t.cache, "usage")
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M %U %S", "-o", usage, bin}, args...)...)
	cmd.Env = t.env()
	// What the previous step left dirty is written back now, not during this step: writeback competing
	// with a restore's writes made its system time vary several-fold, to whichever tool came next.
	syscall.Sync()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return step{}, fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
	}
	raw, err := os.ReadFile(usage)
	if err != nil {
		return step{}, err
	}
	var rssKiB int64
	var user, sys float64
	if _, err := fmt.Sscanf(string(raw), "%d %f %f", &rssKiB, &user, &sys); err != nil {
		return step{}, fmt.Errorf("parse %s: %q: %w", usage, raw, err)
	}
	return step{Wall: wall, CPU: time.Duration((user + sys) * float64(time.Second)), RSS: rssKiB * 1024}, nil
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// ---- data sets ----

func generate(set, dir string, seed uint64) ([]dataFile, error) {
	rng := rand.New(rand.NewPCG(seed, uint64(set[0])))
	var files []dataFile
	switch set {
	case "A":
		// 8,000 files of 1 KiB..64 MiB on a log scale, skewed (size = 1 KiB * 2^(16 u^k)) so they total 2 GiB.
		us := make([]float64, 8000)
		for i := range us {
			us[i] = rng.Float64()
		}
		total := func(k float64) float64 {
			var s float64
			for _, u := range us {
				s += 1024 * math.Exp2(16*math.Pow(u, k))
			}
			return s
		}
		lo, hi := 1.0, 50.0
		for range 60 {
			mid := (lo + hi) / 2
			if total(mid) > 2<<30 {
				lo = mid
			} else {
				hi = mid
			}
		}
		for i, u := range us {
			size := int64(1024 * math.Exp2(16*math.Pow(u, lo)))
			files = append(files, dataFile{rel: fmt.Sprintf("d%02d/f%05d", i%40, i), size: size, kind: "mixed", seed: rng.Uint64()})
		}
	case "B":
		for i := range 200000 {
			files = append(files, dataFile{rel: fmt.Sprintf("d%03d/f%06d", i%200, i), size: 1024 + rng.Int64N(7*1024+1), kind: "mixed", seed: rng.Uint64()})
		}
	case "C":
		files = append(files, dataFile{rel: "big", size: 2 << 30, kind: "runs", seed: rng.Uint64()})
	case "tiny": // a smoke test of the benchmark itself
		for i := range 60 {
			files = append(files, dataFile{rel: fmt.Sprintf("d%d/f%02d", i%3, i), size: 1024 << rng.IntN(12), kind: "mixed", seed: rng.Uint64()})
		}
	default:
		return nil, fmt.Errorf("unknown data set %q", set)
	}
	stamp := filepath.Join(dir, ".generated")
	if b, err := os.ReadFile(stamp); err == nil && string(b) == fmt.Sprint(seed) {
		return files, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.rel), f); err != nil {
			return nil, err
		}
	}
	return files, os.WriteFile(stamp, []byte(fmt.Sprint(seed)), 0o644)
}

var vocabulary = func() []string {
	rng := rand.New(rand.NewPCG(42, 42))
	words := make([]string, 4000)
	for i := range words {
		b := make([]byte, 2+rng.IntN(9))
		for j := range b {
			b[j] = 'a' + byte(rng.IntN(26))
		}
		words[i] = string(b)
	}
	return words
}()

func fillText(rng *rand.Rand, b []byte) {
	i := 0
	for i < len(b) {
		w := vocabulary[int(rng.Uint64()%uint64(len(vocabulary)))]
		i += copy(b[i:], w)
		if i < len(b) {
			if rng.IntN(12) == 0 {
				b[i] = '\n'
			} else {
				b[i] = ' '
			}
			i++
		}
	}
}

func fillRandom(seed uint64, b []byte) {
	var key [32]byte
	for i := range 4 {
		key[i] = byte(seed >> (8 * i))
	}
	_, _ = rand.NewChaCha8(key).Read(b)
}

func writeFile(path string, f dataFile) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, int(min(f.size, 1<<20)))
	rng := rand.New(rand.NewPCG(f.seed, 7))
	buf := make([]byte, min(f.size, 1<<20))
	switch f.kind {
	case "mixed":
		half := f.size / 2
		for off := int64(0); off < half; off += int64(len(buf)) {
			n := min(int64(len(buf)), half-off)
			fillText(rng, buf[:n])
			w.Write(buf[:n])
		}
		for off := half; off < f.size; off += int64(len(buf)) {
			n := min(int64(len(buf)), f.size-off)
			fillRandom(rng.Uint64(), buf[:n])
			w.Write(buf[:n])
		}
	case "runs":
		for run := int64(0); run*(1<<20) < f.size; run++ {
			if run%2 == 0 {
				fillText(rng, buf)
			} else {
				fillRandom(rng.Uint64(), buf)
			}
			w.Write(buf)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return out.Close()
}

// change rewrites 4 KiB at a random place in 5% of the files (in 5% of the 1 MiB runs of a single file), and
// returns the files to regenerate afterwards.
func change(dir string, files []dataFile, seed uint64) ([]dataFile, error) {
	rng := rand.New(rand.NewPCG(seed, 3))
	patch := make([]byte, 4096)
	var changed []dataFile
	apply := func(f dataFile, off int64) error {
		fillRandom(rng.Uint64(), patch)
		h, err := os.OpenFile(filepath.Join(dir, f.rel), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer h.Close()
		_, err = h.WriteAt(patch[:min(4096, f.size-off)], off)
		return err
	}
	if len(files) == 1 {
		f := files[0]
		for run := int64(0); run*(1<<20) < f.size; run++ {
			if rng.IntN(20) == 0 {
				if err := apply(f, run*(1<<20)+rng.Int64N(1<<20-4096)); err != nil {
					return nil, err
				}
			}
		}
		return files, nil
	}
	for _, f := range files {
		if rng.IntN(20) == 0 {
			if err := apply(f, rng.Int64N(max(1, f.size-4096))); err != nil {
				return nil, err
			}
			changed = append(changed, f)
		}
	}
	return changed, nil
}

// verify compares the checksums of every file in the data set and the restore.
func verify(data, target string) error {
	want, err := checksums(data)
	if err != nil {
		return err
	}
	got, err := checksums(target)
	if err != nil {
		return err
	}
	delete(want, ".generated")
	delete(got, ".generated")
	if len(want) != len(got) {
		return fmt.Errorf("%d files restored, %d in the data set", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			return fmt.Errorf("%s differs after restore", k)
		}
	}
	return nil
}

// evict writes back the files under dir and drops their pages from the page cache.
func evict(dir string) error {
	syscall.Sync()
	return eachFile(dir, func(_ string, f *os.File) error { return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) })
}

func checksums(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := eachFile(dir, func(rel string, f *os.File) error {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		out[rel] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return out, err
}

// eachFile calls fn with every regular file under dir, open, and its path relative to dir.
func eachFile(dir string, fn func(rel string, f *os.File) error) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(dir, p)
		return fn(rel, f)
	})
}

// ---- report ----

func median(xs []float64) float64 {
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

func report(set string, tools []string, results map[string][]*result, files []dataFile) {
	var total int64
	for _, f := range files {
		total += f.size
	}
	mb := float64(total) / 1e6
	fmt.Printf("## data set %s: %d files, %.2f GiB\n\n", set, len(files), float64(total)/(1<<30))
	fmt.Println("| tool | step | wall s | ratio to kopia | MB/s | files/s | CPU s | peak RSS MiB | repo MiB |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	get := func(tool string, pick func(*result) step) (wall, cpu, rss, size float64) {
		var w, c, r, s []float64
		for _, res := range results[tool] {
			st := pick(res)
			w = append(w, st.Wall.Seconds())
			c = append(c, st.CPU.Seconds())
			r = append(r, float64(st.RSS)/(1<<20))
			s = append(s, float64(st.RepoSize)/(1<<20))
		}
		return median(w), median(c), median(r), median(s)
	}
	steps := []struct {
		name string
		pick func(*result) step
	}{
		{"first backup", func(r *result) step { return r.first }},
		{"unchanged backup", func(r *result) step { return r.unchanged }},
		{"5% changed backup", func(r *result) step { return r.changed }},
		{"restore", func(r *result) step { return r.restore }},
	}
	for _, s := range steps {
		kw, _, _, _ := get(tools[0], s.pick)
		for _, tool := range tools {
			w, c, r, size := get(tool, s.pick)
			repoCol := fmt.Sprintf("%.0f", size)
			if s.name == "restore" {
				repoCol = ""
			}
			if s.name == "5% changed backup" {
				var added []float64
				for _, res := range results[tool] {
					added = append(added, float64(res.added)/(1<<20))
				}
				repoCol = fmt.Sprintf("%.0f (+%.1f)", size, median(added))
			}
			fmt.Printf("| %s | %s | %.2f | %.2f | %.0f | %.0f | %.1f | %.0f | %s |\n", tool, s.name, w, w/kw, mb/w,
				float64(len(files))/w, c, r, repoCol)
		}
	}
	fmt.Println()
}
