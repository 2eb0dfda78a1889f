//go:build integration

package mover

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// initWriters and initProcesses are how many initialisations race on one empty bucket: goroutines of this
// process and separate processes, all released at one instant.
const (
	initWriters   = 4
	initProcesses = 3
)

// TestConcurrentInit races initialisations of one empty bucket on every store, as first backups starting at
// once do: each writer initialises (or, having lost, opens) the repository and backs up a tree of its own.
// Exactly one key slot and one config must result, and every writer's backup must restore.
func TestConcurrentInit(t *testing.T) {
	for _, tc := range everyStore {
		t.Run(tc.name, func(t *testing.T) {
			for round := range 2 {
				raceInit(t, tc.store(t), round)
			}
		})
	}
}

// raceInit runs one race on st.
func raceInit(t *testing.T, st *testbed.Store, round int) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srcs := make([]string, initWriters+initProcesses)
	for i := range srcs {
		srcs[i] = t.TempDir()
		rng := rand.New(rand.NewPCG(uint64(round), uint64(i)))
		writeFile(t, filepath.Join(srcs[i], "writer"), []byte(fmt.Sprintf("writer %d of round %d", i, round)))
		writeFile(t, filepath.Join(srcs[i], "d", "data"), textBytes(rng, 300<<10))
	}
	// One instant for goroutines and processes alike, far enough ahead for the processes to start.
	at := time.Now().Add(2 * time.Second)
	snaps := make([]string, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i := range initWriters {
		b := st.OpenT(t)
		wg.Go(func() {
			time.Sleep(time.Until(at))
			snaps[i], errs[i] = initAndBackup(ctx, b, srcs[i])
		})
	}
	for i := initWriters; i < len(srcs); i++ {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestConcurrentInitChild$")
		cmd.Env = append(os.Environ(), append(st.Env, "PXB_INIT_URL="+childURL(st), "PXB_INIT_SRC="+srcs[i],
			"PXB_INIT_AT="+strconv.FormatInt(at.UnixNano(), 10))...)
		wg.Go(func() {
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("child: %v\n%s", err, out)
				return
			}
			_, id, ok := strings.Cut(string(out), "snapshot: ")
			if !ok {
				errs[i] = fmt.Errorf("child printed no snapshot:\n%s", out)
				return
			}
			snaps[i], _, _ = strings.Cut(id, "\n")
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	b := st.OpenT(t)
	var keys, configs []string
	for _, k := range testbed.Keys(t, b) {
		switch {
		case strings.HasPrefix(k, layout.KeysPrefix):
			keys = append(keys, k)
		case k == layout.Config:
			configs = append(configs, k)
		}
	}
	if len(keys) != 1 || len(configs) != 1 {
		t.Fatalf("round %d: the bucket holds key slots %q and configs %q; want one of each", round, keys, configs)
	}
	r, err := repo.Open(ctx, b, testPass, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range snaps {
		dst := filepath.Join(t.TempDir(), "r")
		if _, err := Restore(ctx, r, id, "", dst, RestoreOptions{}); err != nil {
			t.Fatalf("round %d: restore writer %d's snapshot %s: %v", round, i, id, err)
		}
		diffTrees(t, describeTree(t, srcs[i]), describeTree(t, dst))
	}
	mustCheck(t, r, true)
}

// initAndBackup is a first backup: the repository initialised, or opened when another writer made it.
func initAndBackup(ctx context.Context, b *blob.Bucket, src string) (string, error) {
	r, err := repo.Init(ctx, b, testPass, repo.InitOptions{KDF: fastKDF}, repo.Options{})
	if errors.Is(err, repo.ErrRepositoryExists) {
		r, err = repo.Open(ctx, b, testPass, repo.Options{})
	}
	if err != nil {
		return "", err
	}
	if err := r.LoadIndex(ctx); err != nil {
		return "", err
	}
	id, _, err := Backup(ctx, r, src, Options{})
	return id, err
}

// childURL is the store's gocloud URL, for a directory with its temporary files beside the objects, as pxb
// opens a directory location.
func childURL(st *testbed.Store) string {
	if st.Provider != testbed.ProviderFile {
		return st.URL
	}
	return st.URL + "?" + url.Values{"no_tmp_dir": {"1"}, "metadata": {"skip"}}.Encode()
}

// TestConcurrentInitChild is one racing writer in a process of its own, run by TestConcurrentInit.
func TestConcurrentInitChild(t *testing.T) {
	u := os.Getenv("PXB_INIT_URL")
	if u == "" {
		t.Skip("run by TestConcurrentInit")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := blob.OpenBucket(ctx, u)
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	defer b.Close()
	at, err := strconv.ParseInt(os.Getenv("PXB_INIT_AT"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Unix(0, at)))
	id, err := initAndBackup(ctx, b, os.Getenv("PXB_INIT_SRC"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("snapshot: %s\n", id)
}
