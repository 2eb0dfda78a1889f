package mover

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/pxb-dev/pxb/pkg/repo"
)

// benchTree writes 64 MiB in 64 files, half text and half random, like data set A (hack/bench-mover.sh).
func benchTree(b *testing.B) (string, int64) {
	src := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 1))
	var total int64
	for i := range 64 {
		data := append(textBytes(rng, 512<<10), randomBytes(rng, 512<<10)...)
		writeFile(b, filepath.Join(src, fmt.Sprintf("d%d/f%02d", i%4, i)), data)
		total += int64(len(data))
	}
	return src, total
}

// defaultRepo has the default chunk and pack sizes, unlike the small ones of newRepo.
func defaultRepo(b *testing.B) *repo.Repository {
	r, err := repo.Init(context.Background(), openBucket(b, b.TempDir()), testPass, repo.InitOptions{KDF: fastKDF}, repo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func BenchmarkBackup(b *testing.B) {
	src, total := benchTree(b)
	b.SetBytes(total)
	for b.Loop() {
		b.StopTimer()
		r := defaultRepo(b)
		b.StartTimer()
		if _, _, err := Backup(context.Background(), r, src, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRestore(b *testing.B) {
	src, total := benchTree(b)
	r := defaultRepo(b)
	id, _, err := Backup(context.Background(), r, src, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	for b.Loop() {
		b.StopTimer()
		dst := filepath.Join(b.TempDir(), "r")
		b.StartTimer()
		if _, err := Restore(context.Background(), r, id, "", dst, RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
