//go:build integration && stress

package mover

// The stress run (make stress): writers, a restorer and a maintenance process, each its own OS process, share
// one repository on versitygw while the parent kills them with SIGKILL at random points and starts them
// again. PXB_STRESS_SEED (printed at the start) fixes every random choice: the kill schedule, the victims and
// what each process does; what the processes interleave with still varies from run to run.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

const (
	// stressWriters is how many writer processes back up at once.
	stressWriters = 3
	// stressRounds is the default number of kills (PXB_STRESS_ROUNDS); with the pause between kills it sizes
	// a run to a few minutes on 2 cores.
	stressRounds = 100
	// stressLease is every process's lease: short, so that killed holders' locks lapse within the run.
	stressLease = 3 * time.Second
	// stressKeep is how many newest snapshots of each writer the maintenance process keeps; of the older
	// ones it deletes all but one in stressKeepToEnd, which the final restores read back.
	stressKeep      = 3
	stressKeepToEnd = 3
)

// stressOptions are the repository options of every process of the run.
var stressOptions = repo.Options{LeaseDuration: stressLease}

// stressEvent is one line of a child's event log, read by the parent to count and judge what happened.
type stressEvent struct {
	Role string `json:"role"`
	Op   string `json:"op"` // backup, restore, forget, gc, check
	ID   string `json:"id,omitempty"`
	// Class is ok, or why the operation failed: locked, lease-lost, data-gone and forgotten are what
	// concurrency makes expected; unexpected and mismatch are failures of the run.
	Class string `json:"class"`
	Err   string `json:"err,omitempty"`
	// Deleted and Repacked are the packs a GC deleted and rewrote.
	Deleted  int `json:"deleted,omitempty"`
	Repacked int `json:"repacked,omitempty"`
}

// stressRun is the shared directory of a run: writers' trees, the records of completed and forgotten
// snapshots, event logs and the children's output.
type stressRun struct {
	dir   string
	store *testbed.Store
	seed  uint64
}

func (s *stressRun) path(parts ...string) string {
	return filepath.Join(append([]string{s.dir}, parts...)...)
}

// TestStress is the stress run; hack/stress.sh runs it.
func TestStress(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PXB_STRESS_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("PXB_STRESS_SEED=%q: want an unsigned integer: %v", v, err)
		}
	}
	rounds := stressRounds
	if v := os.Getenv("PXB_STRESS_ROUNDS"); v != "" {
		var err error
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			t.Fatalf("PXB_STRESS_ROUNDS=%q: want a positive integer", v)
		}
	}
	t.Logf("PXB_STRESS_SEED=%d PXB_STRESS_ROUNDS=%d (%d writers, lease %s)", seed, rounds, stressWriters, stressLease)
	start := time.Now()
	ctx := context.Background()
	st := testbed.S3(t)
	s := &stressRun{dir: t.TempDir(), store: st, seed: seed}
	for _, d := range []string{"done", "forgotten", "events", "logs"} {
		if err := os.MkdirAll(s.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, err := repo.Init(ctx, openS3Location(t, st, st.Endpoint), testPass,
		repo.InitOptions{KDF: fastKDF, ChunkMin: 16 << 10, ChunkAvg: 64 << 10, ChunkMax: 256 << 10, PackSize: 1 << 20}, stressOptions)
	if err != nil {
		t.Fatal(err)
	}

	roles := []string{"restorer", "maintainer"}
	for i := range stressWriters {
		roles = append(roles, fmt.Sprintf("writer%d", i))
	}
	procs := map[string]*stressProc{}
	for _, role := range roles {
		procs[role] = s.start(t, role, 0)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	kills := map[string]int{}
	var selfExits []string
	// reap restarts the children that ended by themselves: they work until killed, so each one is a failure.
	reap := func() {
		for _, role := range roles {
			if p := procs[role]; p.exited() {
				selfExits = append(selfExits, fmt.Sprintf("%s (life %d) exited by itself: %v; see %s", role, p.life, p.err, p.log))
				procs[role] = s.start(t, role, p.life+1)
			}
		}
	}
	for round := range rounds {
		time.Sleep(time.Duration(300+rng.IntN(2700)) * time.Millisecond)
		// Writers are most of the run's processes and of its kills; the restorer and maintenance get a share each.
		var victim string
		switch k := rng.IntN(10); {
		case k < 2:
			victim = "restorer"
		case k < 4:
			victim = "maintainer"
		default:
			victim = fmt.Sprintf("writer%d", rng.IntN(stressWriters))
		}
		reap()
		p := procs[victim]
		p.kill()
		kills[strings.TrimRight(victim, "0123456789")]++
		procs[victim] = s.start(t, victim, p.life+1)
		if (round+1)%20 == 0 {
			t.Logf("round %d/%d, %s", round+1, rounds, time.Since(start).Round(time.Second))
		}
	}
	reap()
	for _, role := range roles {
		procs[role].kill()
	}
	loopEnd := time.Now()

	// Every lease of the killed processes has lapsed once a lease and its skew allowance have passed.
	time.Sleep(stressLease + stressLease/6 + time.Second)
	r, err := repo.Open(ctx, openS3Location(t, st, st.Endpoint), testPass, stressOptions)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing writes any more: the final GC may take every unused pack, however young.
	gc, err := r.GC(ctx, repo.GCOptions{MinAge: -1})
	if err != nil {
		t.Errorf("final gc: %v", err)
		gc = &repo.GCStats{}
	}
	res, err := r.Check(ctx, repo.CheckOptions{ReadData: true})
	switch {
	case err != nil:
		t.Errorf("final check with data: %v", err)
		if res == nil {
			res = &repo.CheckResult{}
		}
	case len(res.Warnings) > 0:
		t.Errorf("final check after gc: %d leftovers, first %s", len(res.Warnings), res.Warnings[0])
	}
	restored := s.restoreAll(t, r)

	events := s.events(t)
	sum := summarize(events)
	report := []string{
		fmt.Sprintf("seed %d, %d rounds, %s in the kill loop, %s in all", seed, rounds, loopEnd.Sub(start).Round(time.Second),
			time.Since(start).Round(time.Second)),
		fmt.Sprintf("kills: writer %d, restorer %d, maintainer %d", kills["writer"], kills["restorer"], kills["maintainer"]),
	}
	for _, op := range []string{"backup", "restore", "forget", "gc", "check"} {
		report = append(report, fmt.Sprintf("%s: %s", op, sum.line(op)))
	}
	report = append(report,
		fmt.Sprintf("snapshots: %d completed, %d of them restored and compared during the run", len(s.records(t, "done")), len(sum.restored)),
		fmt.Sprintf("gc during the run: %d packs deleted, %d repacked", sum.deleted, sum.repacked),
		fmt.Sprintf("final gc: %d packs deleted, %d repacked, %d indexes, %d locks, %d uploads aborted", gc.DeletedPacks,
			gc.RepackedPacks, gc.DeletedIndexes, gc.DeletedLocks, gc.AbortedUploads),
		fmt.Sprintf("final check: %d snapshots, %d packs, %d MiB read", res.Snapshots, res.Packs, res.ReadBytes>>20),
		fmt.Sprintf("final restores: %d of %d completed snapshots still kept restored byte for byte (%d forgotten by maintenance)",
			restored.ok, restored.kept, restored.forgotten))
	for _, line := range report {
		t.Log(line)
	}
	for _, e := range selfExits {
		t.Error(e)
	}
	for _, e := range events {
		if e.Class == "unexpected" || e.Class == "mismatch" {
			t.Errorf("%s %s %s: %s: %s", e.Role, e.Op, e.ID, e.Class, e.Err)
		}
	}
	// A run in which some kind of work never once succeeded tested nothing of it.
	for _, op := range []string{"backup", "restore", "gc", "check"} {
		if sum.count[op]["ok"] == 0 {
			t.Errorf("no %s succeeded during the run: %s", op, sum.line(op))
		}
	}
	if t.Failed() {
		keep := filepath.Join(os.TempDir(), fmt.Sprintf("pxb-stress-%d", seed))
		if err := os.Rename(s.dir, keep); err != nil {
			t.Logf("records and logs not kept: %v", err)
		} else {
			t.Logf("records and logs kept in %s", keep)
		}
		t.Logf("reproduce with PXB_STRESS_SEED=%d PXB_STRESS_ROUNDS=%d make stress", seed, rounds)
	}
}

// stressProc is one running child.
type stressProc struct {
	cmd  *exec.Cmd
	life int
	log  string
	done chan struct{}
	err  error
}

// start runs role as a child process: this test binary again, running TestStressChild.
func (s *stressRun) start(t *testing.T, role string, life int) *stressProc {
	t.Helper()
	storeJSON, err := json.Marshal(s.store)
	if err != nil {
		t.Fatal(err)
	}
	p := &stressProc{life: life, log: s.path("logs", fmt.Sprintf("%s-%03d.log", role, life)), done: make(chan struct{})}
	out, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestStressChild$", "-test.count=1", "-test.v")
	p.cmd.Env = append(os.Environ(), "PXB_STRESS_ROLE="+role, "PXB_STRESS_DIR="+s.dir, "PXB_STRESS_STORE="+string(storeJSON),
		"PXB_STRESS_SEED="+strconv.FormatUint(s.seed, 10), "PXB_STRESS_LIFE="+strconv.Itoa(life))
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

func (p *stressProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *stressProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// TestStressChild is a process of TestStress: a writer, the restorer or the maintenance process, working until
// it is killed.
func TestStressChild(t *testing.T) {
	role := os.Getenv("PXB_STRESS_ROLE")
	if role == "" {
		t.Skip("only run as a child of TestStress")
	}
	var st testbed.Store
	if err := json.Unmarshal([]byte(os.Getenv("PXB_STRESS_STORE")), &st); err != nil {
		t.Fatal(err)
	}
	seed, err := strconv.ParseUint(os.Getenv("PXB_STRESS_SEED"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	life, err := strconv.Atoi(os.Getenv("PXB_STRESS_LIFE"))
	if err != nil {
		t.Fatal(err)
	}
	s := &stressRun{dir: os.Getenv("PXB_STRESS_DIR"), store: &st, seed: seed}
	c := &stressChild{run: s, role: role, rng: rand.New(rand.NewPCG(seed, uint64(life)<<8|roleNumber(role)))}
	events, err := os.OpenFile(s.path("events", role+".log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c.events = events
	c.repo, err = repo.Open(context.Background(), openS3Location(t, &st, st.Endpoint), testPass, stressOptions)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.HasPrefix(role, "writer"):
		c.write(t)
	case role == "restorer":
		c.restore(t)
	case role == "maintainer":
		c.maintain(t)
	}
}

// roleNumber tells the children's random streams apart.
func roleNumber(role string) uint64 {
	switch role {
	case "restorer":
		return 1
	case "maintainer":
		return 2
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(role, "writer"))
	return uint64(10 + n)
}

type stressChild struct {
	run    *stressRun
	role   string
	rng    *rand.Rand
	repo   *repo.Repository
	events *os.File
}

// record appends an event; one write per line, so a kill leaves at most a torn last line.
func (c *stressChild) record(t *testing.T, op, id string, err error) {
	t.Helper()
	c.recordClass(t, op, id, classify(err), err)
}

func (c *stressChild) recordClass(t *testing.T, op, id, class string, err error) {
	t.Helper()
	c.emit(t, stressEvent{Op: op, ID: id, Class: class}, err)
}

func (c *stressChild) emit(t *testing.T, e stressEvent, err error) {
	t.Helper()
	e.Role = c.role
	if err != nil {
		e.Err = err.Error()
	}
	line, _ := json.Marshal(e)
	if _, err := c.events.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s %s: %s %s", c.role, e.Op, e.ID, e.Class, e.Err)
}

// classify names the failures that concurrency makes expected; anything else is unexpected.
func classify(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, repo.ErrLocked):
		return "locked"
	case errors.Is(err, repo.ErrLeaseLost):
		return "lease-lost"
	case errors.Is(err, repo.ErrDataGone):
		return "data-gone"
	default:
		return "unexpected"
	}
}

func (c *stressChild) pause(minMs, spanMs int) {
	time.Sleep(time.Duration(minMs+c.rng.IntN(spanMs)) * time.Millisecond)
}

// write backs up the writer's tree, changed a little each time, with its last snapshot as parent, and
// records each snapshot that completes with the description of the tree it holds.
func (c *stressChild) write(t *testing.T) {
	ctx := context.Background()
	src := c.run.path("src", c.role)
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		c.seedTree(t, src)
	}
	for {
		c.change(t, src)
		want := describeTree(t, src)
		snaps, err := c.repo.Snapshots(ctx)
		if err != nil {
			c.record(t, "backup", "", err)
			c.pause(200, 800)
			continue
		}
		parent := ""
		for _, sn := range snaps {
			if sn.Host == c.role {
				parent = sn.ID
			}
		}
		id, _, err := Backup(ctx, c.repo, src, Options{Parent: parent, Host: c.role})
		if err != nil && parent != "" && c.run.forgotten(parent) {
			c.recordClass(t, "backup", "", "forgotten", err) // the parent was deleted under the backup
		} else {
			c.record(t, "backup", id, err)
		}
		if err == nil {
			c.run.writeRecord(t, "done", id, want)
		}
		c.pause(100, 1500)
	}
}

// seedTree writes a writer's first tree. Part of it comes from a pool that every writer shares, so that
// writers store the same blobs.
func (c *stressChild) seedTree(t *testing.T, src string) {
	tmp := src + ".new"
	_ = os.RemoveAll(tmp)
	for i := range 6 {
		writeFile(t, filepath.Join(tmp, fmt.Sprintf("d%d/f%d", i%2, i)), c.content())
	}
	if err := os.Rename(tmp, src); err != nil {
		t.Fatal(err)
	}
}

// content is new file data: random, text, or a piece of the shared pool.
func (c *stressChild) content() []byte {
	switch c.rng.IntN(3) {
	case 0:
		return randomBytes(c.rng, 1+c.rng.IntN(1<<20))
	case 1:
		return textBytes(c.rng, 1+c.rng.IntN(512<<10))
	default:
		pool := rand.New(rand.NewPCG(c.run.seed, uint64(c.rng.IntN(8))))
		return randomBytes(pool, 512<<10)
	}
}

// change makes one to three changes to the tree: new, rewritten, appended to, removed and linked files.
func (c *stressChild) change(t *testing.T, src string) {
	var files []string
	_ = filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	for range 1 + c.rng.IntN(3) {
		pick := func() string {
			if len(files) == 0 {
				return filepath.Join(src, "d0/f0")
			}
			return files[c.rng.IntN(len(files))]
		}
		switch k := c.rng.IntN(10); {
		case k < 3:
			writeFile(t, filepath.Join(src, fmt.Sprintf("d%d/n%d", c.rng.IntN(3), c.rng.IntN(1000))), c.content())
		case k < 6:
			writeFile(t, pick(), c.content())
		case k < 7:
			f, err := os.OpenFile(pick(), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Write(textBytes(c.rng, 1+c.rng.IntN(64<<10)))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
		case k < 9:
			// Keep the tree between a handful and a few dozen files.
			if len(files) > 4 {
				if err := os.Remove(pick()); err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
			}
		default:
			link := filepath.Join(src, fmt.Sprintf("l%d", c.rng.IntN(4)))
			_ = os.Remove(link)
			if err := os.Symlink(strings.TrimPrefix(pick(), src+"/"), link); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// restore restores completed snapshots, chosen at random, and compares each with its record.
func (c *stressChild) restore(t *testing.T) {
	ctx := context.Background()
	work := c.run.path("restore")
	for {
		var ids []string
		for _, id := range c.run.records(t, "done") {
			if !c.run.forgotten(id) {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			c.pause(200, 500)
			continue
		}
		id := ids[c.rng.IntN(len(ids))]
		if err := os.RemoveAll(work); err != nil {
			t.Fatal(err)
		}
		_, err := Restore(ctx, c.repo, id, "", work, RestoreOptions{})
		switch {
		case err != nil && c.run.forgotten(id):
			c.recordClass(t, "restore", id, "forgotten", err)
		case err != nil:
			c.record(t, "restore", id, err)
		default:
			// The parent's final restore of the same snapshot shows the differences line by line.
			if want, got := c.run.readRecord(t, "done", id), describeTree(t, work); strings.Join(want, "\n") != strings.Join(got, "\n") {
				c.recordClass(t, "restore", id, "mismatch", fmt.Errorf("the restored tree differs from the one backed up (%d entries, %d restored)", len(want), len(got)))
			} else {
				c.record(t, "restore", id, nil)
			}
		}
		c.pause(100, 1000)
	}
}

// maintain forgets all but the newest snapshots of each writer, collects garbage and checks the repository
// with a share of its data, over and over, as the maintenance job does.
func (c *stressChild) maintain(t *testing.T) {
	ctx := context.Background()
	for {
		if c.rng.IntN(2) == 0 {
			c.forget(t)
		}
		st, err := c.repo.GC(ctx, repo.GCOptions{})
		e := stressEvent{Op: "gc", Class: classify(err)}
		if st != nil {
			e.Deleted, e.Repacked = st.DeletedPacks, st.RepackedPacks
		}
		c.emit(t, e, err)
		if _, err := c.repo.Check(ctx, repo.CheckOptions{ReadData: true, SubsetPercent: 25}); err != nil {
			c.recordClass(t, "check", "", "unexpected", err)
		} else {
			c.record(t, "check", "", nil)
		}
		c.pause(200, 1500)
	}
}

// forget deletes every writer's snapshots but its newest stressKeep and those kept to the end, recording each
// before it goes. The kept ones share blobs with deleted ones, so GC repacks as well as deletes.
func (c *stressChild) forget(t *testing.T) {
	ctx := context.Background()
	snaps, err := c.repo.Snapshots(ctx)
	if err != nil {
		c.record(t, "forget", "", err)
		return
	}
	byHost := map[string][]*repo.Snapshot{}
	for _, s := range snaps {
		byHost[s.Host] = append(byHost[s.Host], s)
	}
	for _, list := range byHost {
		for _, s := range list[:max(0, len(list)-stressKeep)] {
			if keptToEnd(s.ID) {
				continue
			}
			c.run.writeRecord(t, "forgotten", s.ID, nil)
			c.record(t, "forget", s.ID, c.repo.DeleteSnapshot(ctx, s.ID))
		}
	}
}

// keptToEnd says whether maintenance keeps snapshot id however old it is.
func keptToEnd(id string) bool {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32()%stressKeepToEnd == 0
}

// writeRecord writes lines as record id of kind (done, forgotten), atomically.
func (s *stressRun) writeRecord(t *testing.T, kind, id string, lines []string) {
	t.Helper()
	tmp := s.path(kind, "."+id)
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.path(kind, id)); err != nil {
		t.Fatal(err)
	}
}

func (s *stressRun) readRecord(t *testing.T, kind, id string) []string {
	t.Helper()
	raw, err := os.ReadFile(s.path(kind, id))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(raw), "\n")
}

// records lists the ids of kind, sorted.
func (s *stressRun) records(t *testing.T, kind string) []string {
	t.Helper()
	entries, err := os.ReadDir(s.path(kind))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

func (s *stressRun) forgotten(id string) bool {
	_, err := os.Stat(s.path("forgotten", id))
	return err == nil
}

type restoreCount struct{ ok, kept, forgotten int }

// restoreAll restores every completed snapshot that maintenance did not forget, and every forgotten one that
// is still there, and compares each with its record.
func (s *stressRun) restoreAll(t *testing.T, r *repo.Repository) restoreCount {
	t.Helper()
	ctx := context.Background()
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	for _, sn := range snaps {
		present[sn.ID] = true
	}
	var n restoreCount
	for _, id := range s.records(t, "done") {
		if s.forgotten(id) {
			n.forgotten++
			if !present[id] {
				continue
			}
		} else {
			n.kept++
			if !present[id] {
				t.Errorf("completed snapshot %s is gone from the repository, though nothing deleted it", id)
				continue
			}
		}
		dst := filepath.Join(t.TempDir(), "r")
		if _, err := Restore(ctx, r, id, "", dst, RestoreOptions{}); err != nil {
			t.Errorf("final restore of %s: %v", id, err)
			continue
		}
		if want, got := s.readRecord(t, "done", id), describeTree(t, dst); strings.Join(want, "\n") != strings.Join(got, "\n") {
			t.Errorf("final restore of %s differs from what was backed up:", id)
			diffTrees(t, want, got)
			continue
		}
		if !s.forgotten(id) {
			n.ok++
		}
	}
	return n
}

// events reads every child's event log; a torn last line (its writer killed) is skipped.
func (s *stressRun) events(t *testing.T) []stressEvent {
	t.Helper()
	var out []stressEvent
	entries, err := os.ReadDir(s.path("events"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		f, err := os.Open(s.path("events", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev stressEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				out = append(out, ev)
			}
		}
		f.Close()
	}
	return out
}

// stressSummary counts events by operation and class, and what the GC runs removed.
type stressSummary struct {
	count             map[string]map[string]int
	deleted, repacked int
	restored          map[string]bool // distinct snapshots restored whole
}

func summarize(events []stressEvent) stressSummary {
	s := stressSummary{count: map[string]map[string]int{}, restored: map[string]bool{}}
	for _, e := range events {
		if s.count[e.Op] == nil {
			s.count[e.Op] = map[string]int{}
		}
		s.count[e.Op][e.Class]++
		s.deleted += e.Deleted
		s.repacked += e.Repacked
		if e.Class == "ok" && e.Op == "restore" {
			s.restored[e.ID] = true
		}
	}
	return s
}

// line says how often op ended in each class, ok first.
func (s stressSummary) line(op string) string {
	classes := make([]string, 0, len(s.count[op]))
	for c := range s.count[op] {
		classes = append(classes, c)
	}
	sort.Slice(classes, func(i, j int) bool { return classes[i] == "ok" || classes[j] != "ok" && classes[i] < classes[j] })
	var parts []string
	for _, c := range classes {
		parts = append(parts, fmt.Sprintf("%d %s", s.count[op][c], c))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
