package repo

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

// A TreeFetcher reads the directory listings of a snapshot for a walk of it, and reads ahead: the listings of
// a directory's subdirectories are read together, in merged requests, while the directory itself is walked.
// On an object store every read is a request, and a walk that read each listing only when it came to it would
// wait one round trip per directory. Safe for concurrent use.
type TreeFetcher struct {
	r   *Repository
	ctx context.Context

	mu    sync.Mutex
	blobs map[ID]*fetched // read or being read ahead, each taken once
	held  int64           // plaintext bytes of those blobs
}

type fetched struct {
	done chan struct{}
	size int64
	data []byte
	got  bool
	err  error
}

const (
	// aheadBudget bounds the listings read ahead and not yet walked; beyond it listings are read when walked.
	aheadBudget = 64 << 20
	// aheadReads is how many reads ahead one directory's subdirectories may have in flight.
	aheadReads = 16
)

// NewTreeFetcher returns a fetcher whose reads ahead end with ctx.
func (r *Repository) NewTreeFetcher(ctx context.Context) *TreeFetcher {
	return &TreeFetcher{r: r, ctx: ctx, blobs: map[ID]*fetched{}}
}

// Prefetch starts reading the given listings, as far as the budget allows. A listing that is read ahead
// should be walked: until it is, it holds its share of the budget.
func (f *TreeFetcher) Prefetch(trees [][]ID) {
	var ids []ID
	var entries []*fetched
	f.mu.Lock()
	for _, tree := range trees {
		for _, id := range tree {
			if _, ok := f.blobs[id]; ok {
				continue
			}
			loc, _, ok := f.r.index.Lookup(id)
			if !ok || f.held+int64(loc.RawLength) > aheadBudget {
				continue // a missing blob is reported by the walk's own read
			}
			e := &fetched{done: make(chan struct{}), size: int64(loc.RawLength)}
			f.blobs[id] = e
			f.held += e.size
			ids = append(ids, id)
			entries = append(entries, e)
		}
	}
	f.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	reads, err := f.r.PlanReads(ids)
	if err != nil {
		for _, e := range entries {
			e.err = err
			close(e.done)
		}
		return
	}
	sem := make(chan struct{}, aheadReads)
	for _, p := range reads {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			err := f.r.LoadRead(f.ctx, p, func(i int, data []byte) error {
				entries[i].data, entries[i].got = bytes.Clone(data), true
				return nil
			})
			for _, i := range p.Indexes() {
				if !entries[i].got {
					entries[i].err = fmt.Errorf("read ahead: %v", err)
				}
				close(entries[i].done)
			}
		}()
	}
}

// blob returns a listing blob's plaintext: read ahead when it was, else read now. A failed read ahead is read
// again, so that an error is the walk's own read's.
func (f *TreeFetcher) blob(ctx context.Context, id ID) ([]byte, error) {
	f.mu.Lock()
	e, ok := f.blobs[id]
	if ok {
		delete(f.blobs, id)
	}
	f.mu.Unlock()
	if ok {
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		f.mu.Lock()
		f.held -= e.size
		f.mu.Unlock()
		if e.err == nil {
			return e.data, nil
		}
	}
	return f.r.LoadBlob(ctx, id, nil)
}

// Load returns all entries of a directory listing in name order.
func (f *TreeFetcher) Load(ctx context.Context, tree []ID) ([]Node, error) {
	var all []Node
	err := f.walk(ctx, tree, false, func(nodes []Node) error {
		all = append(all, nodes...)
		return nil
	})
	return all, err
}

// Walk calls fn for each entry of a directory listing in name order, holding one of its blobs at a time, and
// reads ahead the listings of its subdirectories.
func (f *TreeFetcher) Walk(ctx context.Context, tree []ID, fn func(*Node) error) error {
	return f.walk(ctx, tree, true, eachNode(fn))
}

func eachNode(fn func(*Node) error) func([]Node) error {
	return func(nodes []Node) error {
		for i := range nodes {
			if err := fn(&nodes[i]); err != nil {
				return err
			}
		}
		return nil
	}
}

func (f *TreeFetcher) walk(ctx context.Context, tree []ID, ahead bool, fn func([]Node) error) error {
	for _, id := range tree {
		raw, err := f.blob(ctx, id)
		if err != nil {
			return err
		}
		nodes, err := DecodeTree(raw)
		if err != nil {
			return fmt.Errorf("tree blob %s: %w", id, err)
		}
		if ahead {
			var sub [][]ID
			for i := range nodes {
				if nodes[i].Type == NodeDir {
					sub = append(sub, nodes[i].Tree)
				}
			}
			f.Prefetch(sub)
		}
		if err := fn(nodes); err != nil {
			return err
		}
	}
	return nil
}
