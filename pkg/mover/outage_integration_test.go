//go:build integration

package mover

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// storeProxy forwards TCP connections to an object store. Down cuts every connection and refuses new ones
// (the listener closes: connecting gets ECONNREFUSED), as when the store or the network path to it dies; Up
// listens again on the same address.
type storeProxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener // nil while down
	conns map[net.Conn]bool

	// up counts the bytes sent to the store, down those received from it; a direction's trigger, once set,
	// takes the store down when its count reaches it.
	up, down           atomic.Int64
	upCutAt, downCutAt atomic.Int64
	cut                chan struct{} // closed when a trigger took the store down
	cutOnce            sync.Once
}

func newStoreProxy(t *testing.T, target string) *storeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &storeProxy{target: target, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}, cut: make(chan struct{})}
	go p.serve(ln)
	t.Cleanup(p.Down)
	return p
}

// endpoint is the proxy's address as an S3 endpoint.
func (p *storeProxy) endpoint() string { return "http://" + p.addr }

func (p *storeProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by Down
		}
		go p.forward(c)
	}
}

func (p *storeProxy) forward(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // went down while dialling
		p.mu.Unlock()
		_ = c.Close()
		_ = s.Close()
		return
	}
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	go p.pipe(s, c, &p.up, &p.upCutAt)
	p.pipe(c, s, &p.down, &p.downCutAt)
}

// pipe copies from src to dst, counting into n, until either side closes; then it closes both.
func (p *storeProxy) pipe(dst, src net.Conn, n, cutAt *atomic.Int64) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
		_ = dst.Close()
		_ = src.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
			if at := cutAt.Load(); at > 0 && n.Add(int64(k)) >= at {
				p.cutOnce.Do(func() {
					p.Down()
					close(p.cut)
				})
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cutAfter takes the store down once another bytes have gone in the direction counted by n (p.up: to the
// store; p.down: from it).
func (p *storeProxy) cutAfter(n *atomic.Int64, bytes int64) {
	at := &p.upCutAt
	if n == &p.down {
		at = &p.downCutAt
	}
	at.Store(n.Load() + bytes)
}

// Down closes the listener and every connection: the store is gone.
func (p *storeProxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// Up listens again at the same address: the store is back.
func (p *storeProxy) Up(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	// The port was just freed; a moment's retry covers its release.
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen again on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.upCutAt.Store(0)
	p.downCutAt.Store(0)
	p.mu.Unlock()
	go p.serve(ln)
}

// openS3Location opens test bed S3 store st as a BackupLocation with that endpoint would be opened, through
// pxb's own client settings (timeouts, retries).
func openS3Location(t testing.TB, st *testbed.Store, endpoint string) *blob.Bucket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	spec := v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderS3, Bucket: st.Bucket, Endpoint: endpoint,
		Region: st.Region, S3ForcePathStyle: true}
	creds := location.Credentials{v1alpha1.S3AccessKeyID: []byte(st.AccessKeyID), v1alpha1.S3SecretAccessKey: []byte(st.SecretAccessKey)}
	b, err := location.Open(ctx, spec, creds, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// outageOptions are the repository options of the outage tests: short leases, so that the lock a writer could
// not release while the store was down expires soon and GC runs after it.
var outageOptions = repo.Options{LeaseDuration: 5 * time.Second}

// outageLimit bounds an operation against a store that went away: pxb's client must give up or finish well
// within it. It is a bound for a hang, not a measure of speed.
const outageLimit = 3 * time.Minute

// outageTime is how long the store stays down.
const outageTime = 3 * time.Second

// runBounded runs op and fails the test if it has not returned within outageLimit.
func runBounded(t *testing.T, what string, op func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		return err
	case <-time.After(outageLimit):
		t.Fatalf("%s hung: no result %s after the store went down", what, outageLimit)
		return nil
	}
}

// wantStoreError fails unless err blames the connection to the store (a refused connection names the
// endpoint; a response cut off says the connection failed) and claims no damage to the repository.
func wantStoreError(t *testing.T, what string, err error, endpoint string) {
	t.Helper()
	msg := location.Explain(err)
	t.Logf("%s failed while the store was down: %s", what, msg)
	refused := strings.HasPrefix(msg, "endpoint unreachable") && strings.Contains(msg, strings.TrimPrefix(endpoint, "http://"))
	if !refused && !strings.Contains(msg, "the connection failed") {
		t.Errorf("%s failed with %q; want it to blame the connection to the store at %s", what, msg, endpoint)
	}
	for _, damage := range []string{"truncated", "missing", "damaged"} {
		if strings.Contains(msg, damage) {
			t.Errorf("%s failed with %q: the store went away, nothing is %s", what, msg, damage)
		}
	}
}

// outageRepo is a repository on a fresh S3 bucket reached through a proxy, holding one snapshot of a small
// tree taken before any outage.
func outageRepo(t *testing.T) (st *testbed.Store, p *storeProxy, r *repo.Repository, src1, id1 string) {
	t.Helper()
	st = testbed.S3(t)
	p = newStoreProxy(t, strings.TrimPrefix(st.Endpoint, "http://"))
	ctx := context.Background()
	r, err := repo.Init(ctx, openS3Location(t, st, p.endpoint()), testPass,
		repo.InitOptions{KDF: fastKDF, ChunkMin: 64 << 10, ChunkAvg: 256 << 10, ChunkMax: 1 << 20, PackSize: 2 << 20}, outageOptions)
	if err != nil {
		t.Fatal(err)
	}
	src1 = t.TempDir()
	buildTree(t, src1)
	if id1, _, err = Backup(ctx, r, src1, Options{}); err != nil {
		t.Fatal(err)
	}
	return st, p, r, src1, id1
}

// afterOutage checks what a user checks once the store is back: the repository checks clean with its data
// read, each of the earlier snapshots restores byte for byte, and a new backup of src works and restores.
func afterOutage(t *testing.T, st *testbed.Store, p *storeProxy, earlier map[string]string, src string) {
	t.Helper()
	ctx := context.Background()
	r, err := repo.Open(ctx, openS3Location(t, st, p.endpoint()), testPass, outageOptions)
	if err != nil {
		t.Fatalf("open after the outage: %v", err)
	}
	res := mustCheck(t, r, true)
	t.Logf("check after the outage: %d snapshots, %d packs read, %d leftovers", res.Snapshots, res.ReadPacks, len(res.Warnings))
	for id, tree := range earlier {
		dst := filepath.Join(t.TempDir(), "r")
		if _, err := Restore(ctx, r, id, "", dst, RestoreOptions{}); err != nil {
			t.Fatalf("restore %s after the outage: %v", id, err)
		}
		diffTrees(t, describeTree(t, tree), describeTree(t, dst))
	}
	id, _, err := Backup(ctx, r, src, Options{})
	if err != nil {
		t.Fatalf("backup after the outage: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "r")
	if _, err := Restore(ctx, r, id, "", dst, RestoreOptions{}); err != nil {
		t.Fatalf("restore of the backup made after the outage: %v", err)
	}
	diffTrees(t, describeTree(t, src), describeTree(t, dst))
}

// bigTree writes files of random data, size bytes in all, under dir.
func bigTree(t *testing.T, dir string, seed uint64, size int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := 0; size > 0; i++ {
		n := min(size, 3<<20)
		writeFile(t, filepath.Join(dir, fmt.Sprintf("d%d/f%02d", i%3, i)), randomBytes(rng, n))
		size -= n
	}
}

// TestStoreOutageDuringBackup takes the object store down (every connection cut, new ones refused) while a
// backup is uploading packs, and brings it back a few seconds later. The backup must fail naming the
// unreachable endpoint, or finish, in bounded time; then the repository checks clean with its data read,
// the earlier snapshot restores byte for byte, and the next backup works and restores.
func TestStoreOutageDuringBackup(t *testing.T) {
	st, p, r, src1, id1 := outageRepo(t)
	src := t.TempDir()
	bigTree(t, src, 41, 24<<20) // a dozen packs of 2 MiB
	p.cutAfter(&p.up, 8<<20)
	var id string
	err := runBounded(t, "backup", func() error {
		var err error
		id, _, err = Backup(context.Background(), r, src, Options{})
		return err
	})
	select {
	case <-p.cut:
	default:
		t.Fatal("the backup finished before the store went down: make the tree bigger")
	}
	earlier := map[string]string{id1: src1}
	if err != nil {
		wantStoreError(t, "backup", err, p.endpoint())
	} else {
		t.Logf("backup %s finished across the outage", id)
		earlier[id] = src
	}
	time.Sleep(outageTime)
	p.Up(t)
	afterOutage(t, st, p, earlier, src)
}

// TestStoreOutageDuringRestore takes the object store down while a restore is reading packs, and brings it
// back. The restore must fail naming the unreachable endpoint, or finish byte for byte, in bounded time; then
// the same restore works again, the repository checks clean, and the next backup works.
func TestStoreOutageDuringRestore(t *testing.T) {
	st, p, r, src1, id1 := outageRepo(t)
	src := t.TempDir()
	bigTree(t, src, 42, 16<<20)
	id2, _, err := Backup(context.Background(), r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.cutAfter(&p.down, 6<<20)
	dst := filepath.Join(t.TempDir(), "r")
	err = runBounded(t, "restore", func() error {
		_, err := Restore(context.Background(), r, id2, "", dst, RestoreOptions{})
		return err
	})
	select {
	case <-p.cut:
	default:
		t.Fatal("the restore finished before the store went down: make the tree bigger")
	}
	if err != nil {
		wantStoreError(t, "restore", err, p.endpoint())
	} else {
		t.Log("restore finished across the outage")
		diffTrees(t, describeTree(t, src), describeTree(t, dst))
	}
	time.Sleep(outageTime)
	p.Up(t)
	afterOutage(t, st, p, map[string]string{id1: src1, id2: src}, src)
}

// TestStoreOutageDuringCheck takes the object store down while a check reads the packs' data. A read the
// store did not answer says nothing of the data: the check must fail as incomplete, blaming the connection,
// and name no pack damaged (the maintenance job marks the backups that need a damaged pack). Before, every
// pack read after the cut was reported damaged. Once the store is back the repository checks clean.
func TestStoreOutageDuringCheck(t *testing.T) {
	st, p, r, src1, id1 := outageRepo(t)
	src := t.TempDir()
	bigTree(t, src, 43, 16<<20)
	id2, _, err := Backup(context.Background(), r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.cutAfter(&p.down, 6<<20)
	var res *repo.CheckResult
	err = runBounded(t, "check", func() error {
		var err error
		res, err = r.Check(context.Background(), repo.CheckOptions{ReadData: true})
		return err
	})
	select {
	case <-p.cut:
	default:
		t.Fatal("the check finished before the store went down: make the tree bigger")
	}
	if err == nil {
		t.Fatal("the check passed though the store went down while it read")
	}
	if errors.Is(err, repo.ErrCheckFailed) || len(res.DamagedPacks) > 0 || len(res.Errors) > 0 {
		t.Errorf("check while the store was down: %v; damaged packs %v: a failed read is no damage", err, res.DamagedPacks)
	}
	wantStoreError(t, "check", err, p.endpoint())
	time.Sleep(outageTime)
	p.Up(t)
	afterOutage(t, st, p, map[string]string{id1: src1, id2: src}, src)
}
