package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"gocloud.dev/gcerrors"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// clockSkew is how far the clocks of two processes sharing a repository may disagree: a lock counts as live
// until its Expires plus this allowance, judged by the reader's clock. For a lease shorter than six times
// the allowance (only tests use such leases) it is a sixth of the lease instead.
const clockSkew = 5 * time.Minute

// skewFor is the clock-skew allowance for a lease of duration d.
func skewFor(d time.Duration) time.Duration { return min(clockSkew, d/6) }

// timeNow is the clock of leases and garbage collection; tests move it.
var timeNow = time.Now

// testHookReadLock, when set, is called before each lock object is read; an error it returns stands for a
// failed read.
var testHookReadLock func(name string) error

// testHookRefresh, when set, is called before each refresh of a lease; an error it returns stands for a
// failed refresh.
var testHookRefresh func() error

// live reports whether a lock still counts at now: until its Expires plus the clock-skew allowance.
func (li *lockInfo) live(now time.Time) bool {
	return now.Before(li.Expires.Add(skewFor(li.Expires.Sub(li.Created))))
}

type lockKind string

const (
	lockShared    lockKind = "shared"    // writers: any number at once
	lockExclusive lockKind = "exclusive" // garbage collection: alone
)

// lockInfo is the content of a lock object. A lock is a time-bounded lease: its holder refreshes it by writing
// a new lock object (names are never reused) and deleting the old one, and anyone may ignore (and GC delete)
// a lock whose Expires has passed, so a dead holder never blocks the repository.
type lockInfo struct {
	Version int       `json:"version"`
	Kind    lockKind  `json:"kind"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

func decodeLock(raw []byte) (*lockInfo, error) {
	var l lockInfo
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if l.Version > FormatVersion {
		return nil, fmt.Errorf("lock format version %d is newer than this pxb supports (%d)", l.Version, FormatVersion)
	}
	if l.Kind != lockShared && l.Kind != lockExclusive {
		return nil, fmt.Errorf("unknown lock kind %q", l.Kind)
	}
	return &l, nil
}

type lease struct {
	r    *Repository
	kind lockKind

	mu      sync.Mutex
	name    string
	expires time.Time
	lastErr error

	stop chan struct{}
	done chan struct{}

	releaseOnce sync.Once
	releaseErr  error
}

// ErrLocked means another process holds a conflicting lock.
var ErrLocked = errors.New("repository is locked")

// ErrLeaseLost means an operation's own lease could not be refreshed in time and may have expired: the
// operation stopped before its next write or deletion.
var ErrLeaseLost = errors.New("lease lost")

func (r *Repository) writeLock(ctx context.Context, kind lockKind) (string, time.Time, error) {
	host, _ := os.Hostname()
	now := timeNow().UTC()
	li := lockInfo{Version: FormatVersion, Kind: kind, Host: host, PID: os.Getpid(), Created: now, Expires: now.Add(r.opts.LeaseDuration)}
	raw, err := json.Marshal(li)
	if err != nil {
		return "", time.Time{}, err
	}
	name := layout.LockName(randomHex(16))
	// Locks are deleted on release, so they never carry object-lock retention.
	if err := r.writeObject(ctx, name, seal(r.keys.aead, nil, raw, adLock), false); err != nil {
		return "", time.Time{}, err
	}
	return name, li.Expires, nil
}

type heldLock struct {
	name string
	info *lockInfo
	err  error
}

// locks reads every lock object. A lock that cannot be read or decoded is returned with its error: only one
// that is verifiably gone (not found when read) is left out.
func (r *Repository) locks(ctx context.Context) ([]heldLock, error) {
	names, err := listNames(ctx, r.bucket, layout.LockPrefix)
	if err != nil {
		return nil, err
	}
	var out []heldLock
	for _, n := range names {
		var sealed []byte
		err := error(nil)
		if testHookReadLock != nil {
			err = testHookReadLock(n)
		}
		if err == nil {
			sealed, err = r.bucket.ReadAll(ctx, n) // not readAll, which drops the NotFound code
		}
		if err != nil {
			// A lock released between list and read is gone: nothing to respect.
			if gcerrors.Code(err) == gcerrors.NotFound {
				continue
			}
			out = append(out, heldLock{name: n, err: fmt.Errorf("lock %s: %w", n, err)})
			continue
		}
		raw, err := open(r.keys.aead, nil, sealed, adLock)
		if err != nil {
			out = append(out, heldLock{name: n, err: fmt.Errorf("lock %s: %w", n, err)})
			continue
		}
		li, err := decodeLock(raw)
		if err != nil {
			err = fmt.Errorf("lock %s: %w", n, err)
		}
		out = append(out, heldLock{name: n, info: li, err: err})
	}
	return out, nil
}

// acquire writes a lock of the given kind, then checks for conflicting live locks. Both sides write before they
// check, so of two racing conflicting lockers at least one sees the other and backs off. Locks fail closed: a
// lock that cannot be read or decoded conflicts with every kind until the store shows it older than a lease
// (staleLock), and a lock is live until its Expires plus the clock-skew allowance.
func (r *Repository) acquire(ctx context.Context, kind lockKind) (*lease, error) {
	name, expires, err := r.writeLock(ctx, kind)
	if err != nil {
		return nil, fmt.Errorf("take %s lock: %w", kind, err)
	}
	held, err := r.locks(ctx)
	if err != nil {
		_ = r.bucket.Delete(ctx, name)
		return nil, fmt.Errorf("take %s lock: %w", kind, err)
	}
	now := timeNow()
	for _, h := range held {
		if h.name == name {
			continue
		}
		if h.err != nil && !r.staleLock(ctx, name, h.name) {
			_ = r.bucket.Delete(ctx, name)
			return nil, fmt.Errorf("take %s lock: %w: unreadable lock %s counts as held (delete it once its holder is known to be gone): %w",
				kind, ErrLocked, h.name, h.err)
		}
		if h.err != nil || !h.info.live(now) {
			continue
		}
		if kind == lockExclusive || h.info.Kind == lockExclusive {
			_ = r.bucket.Delete(ctx, name)
			return nil, fmt.Errorf("%w: %s lock %s held by %s (pid %d) until %s", ErrLocked, h.info.Kind, h.name,
				h.info.Host, h.info.PID, h.info.Expires.Format(time.RFC3339))
		}
	}
	l := &lease{r: r, kind: kind, name: name, expires: expires, stop: make(chan struct{}), done: make(chan struct{})}
	go l.refresh()
	return l, nil
}

// staleLock reports whether lock other, which cannot be read, is older than a live lock object can be: a
// holder writes a new one at every refresh and stops once its lease lapses, so none lives longer than a
// lease. Both times are the store's (other's write against that of own, just written): no clock of a
// process enters. Anything short of proof keeps it held.
func (r *Repository) staleLock(ctx context.Context, own, other string) bool {
	mine, err := r.bucket.Attributes(ctx, own)
	if err != nil {
		return false
	}
	theirs, err := r.bucket.Attributes(ctx, other)
	if err != nil {
		return false
	}
	return mine.ModTime.Sub(theirs.ModTime) > r.opts.LeaseDuration+skewFor(r.opts.LeaseDuration)
}

func (l *lease) refresh() {
	defer close(l.done)
	period := l.r.opts.LeaseDuration / 5
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), period)
		var name string
		var expires time.Time
		err := error(nil)
		if testHookRefresh != nil {
			err = testHookRefresh()
		}
		if err == nil {
			name, expires, err = l.r.writeLock(ctx, l.kind)
		}
		l.mu.Lock()
		if err != nil {
			l.lastErr = err
			l.mu.Unlock()
			cancel()
			continue
		}
		old := l.name
		l.name, l.expires, l.lastErr = name, expires, nil
		l.mu.Unlock()
		_ = l.r.bucket.Delete(ctx, old)
		cancel()
	}
}

// valid fails once the lease may have expired: past that point a garbage collection may have started, and
// writing an index or snapshot could reference data it removes.
func (l *lease) valid() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	margin := l.r.opts.LeaseDuration / 10
	if timeNow().Add(margin).After(l.expires) {
		return fmt.Errorf("%w: %s lock %s expired at %s (last refresh error: %v); stopping to stay safe from concurrent writers and garbage collection",
			ErrLeaseLost, l.kind, l.name, l.expires.Format(time.RFC3339), l.lastErr)
	}
	return nil
}

// release stops refreshing and deletes the lock; later calls do nothing.
func (l *lease) release(ctx context.Context) error {
	l.releaseOnce.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := l.r.bucket.Delete(ctx, l.name); err != nil {
			l.releaseErr = fmt.Errorf("release lock %s: %w", l.name, err)
		}
	})
	return l.releaseErr
}

// Lease is a shared lease held by a reader, so that garbage collection, which rewrites and deletes packs,
// waits until the read is done (a restore would otherwise fail on a pack deleted under it).
type Lease struct{ l *lease }

// ReadLease takes a shared lease and then reloads the index, so that what the reader finds indexed stays
// until Release. It fails with ErrLocked while garbage collection holds the repository.
func (r *Repository) ReadLease(ctx context.Context) (*Lease, error) {
	l, err := r.sharedLeaseThenIndex(ctx)
	if err != nil {
		return nil, err
	}
	return &Lease{l: l}, nil
}

// sharedLeaseThenIndex takes a shared lease, then loads the index: in this order, what the index says is
// stored stays stored while the lease lasts.
func (r *Repository) sharedLeaseThenIndex(ctx context.Context) (*lease, error) {
	l, err := r.acquire(ctx, lockShared)
	if err != nil {
		return nil, err
	}
	if err := r.LoadIndex(ctx); err != nil {
		_ = l.release(context.WithoutCancel(ctx))
		return nil, err
	}
	return l, nil
}

// Valid fails with ErrLeaseLost once the lease may have expired.
func (l *Lease) Valid() error { return l.l.valid() }

// Release stops refreshing the lease and deletes its lock; later calls do nothing.
func (l *Lease) Release(ctx context.Context) error { return l.l.release(ctx) }
