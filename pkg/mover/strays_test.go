package mover

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/repo"
)

// TestTwoInitialisationsLeftBehind rebuilds what two first backups that both initialised one location left
// before initialisation was made safe: two key slots of different master keys, one config, and both
// writers' objects. The repository still opens and restores the backups sealed with config's key; Check names
// the stray slot and the backups that cannot be restored; GC deletes none of the stray objects' packs.
func TestTwoInitialisationsLeftBehind(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	good, lost := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(good, "kept"), textBytes(rng, 200<<10))
	writeFile(t, filepath.Join(lost, "lost"), textBytes(rng, 200<<10))

	winner, dir := newRepo(t)
	keep, _, err := Backup(ctx, winner, good, Options{Source: layout.BackupPrefix("shop", "kept")})
	if err != nil {
		t.Fatal(err)
	}
	loser, otherDir := newRepo(t)
	if _, _, err := Backup(ctx, loser, lost, Options{Source: layout.BackupPrefix("shop", "lost")}); err != nil {
		t.Fatal(err)
	}
	// Everything of the loser but its config lands beside the winner's.
	var loserPacks []string
	err = filepath.WalkDir(otherDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(otherDir, p)
		if name := filepath.ToSlash(rel); name == layout.Config || strings.HasPrefix(name, layout.LockPrefix) {
			return nil
		} else if strings.HasPrefix(name, layout.DataPrefix) {
			loserPacks = append(loserPacks, rel)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		writeFile(t, filepath.Join(dir, rel), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(loserPacks) == 0 {
		t.Fatal("the second writer stored no pack")
	}

	r := reopen(t, dir)
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatalf("load index beside a stray key's objects: %v", err)
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].ID != keep {
		t.Fatalf("snapshots listed: %d, want only %s", len(snaps), keep)
	}
	dst := filepath.Join(t.TempDir(), "r")
	if _, err := Restore(ctx, r, keep, "", dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	diffTrees(t, describeTree(t, good), describeTree(t, dst))

	strays, err := r.StrayKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(strays) != 1 || len(strays[0].Indexes) == 0 || len(strays[0].Snapshots) != 1 ||
		!slices.Equal(strays[0].Sources, []string{layout.BackupPrefix("shop", "lost")}) {
		t.Fatalf("stray key slots: %+v; want one, with the lost backup's index and snapshot", strays)
	}
	res, err := r.Check(ctx, repo.CheckOptions{ReadData: true})
	if err == nil || len(res.Errors) != 1 {
		t.Fatalf("check: %v, %+v; want one error naming the stray key slot", err, res)
	}
	for _, want := range []string{"key slot " + strays[0].ID, "two initialisations", "Not restorable: backups/shop/lost/"} {
		if !strings.Contains(res.Errors[0], want) {
			t.Errorf("check's error %q lacks %q", res.Errors[0], want)
		}
	}
	for _, w := range res.Warnings {
		if strings.Contains(w, "in no index") {
			t.Errorf("check calls a pack of the stray key's unindexed: %s", w)
		}
	}

	// GC, with no age guard for unindexed packs, must keep every pack of the stray key.
	if _, err := r.GC(ctx, repo.GCOptions{UnindexedMinAge: -1}); err != nil {
		t.Fatal(err)
	}
	for _, p := range loserPacks {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("after gc, the stray key's pack %s: %v", p, err)
		}
	}
	if _, err := Restore(ctx, r, keep, "", filepath.Join(t.TempDir(), "r2"), RestoreOptions{}); err != nil {
		t.Errorf("restore after gc: %v", err)
	}
}
