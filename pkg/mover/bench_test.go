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
	benchBackup(b, src)
}

// benchBackup times first backups of src into new repositories.
func benchBackup(b *testing.B, src string) {
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
	b.SetBytes(total)
	benchRestore(b, src)
}

// benchRestore times restores of a backup of src into new directories.
func benchRestore(b *testing.B, src string) {
	r := defaultRepo(b)
	id, _, err := Backup(context.Background(), r, src, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		dst := filepath.Join(b.TempDir(), "r")
		b.StartTimer()
		if _, err := Restore(context.Background(), r, id, "", dst, RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// smallTree writes 10,000 files of 1-8 KiB in 10 directories, like data set B.
func smallTree(b *testing.B) string {
	src := b.TempDir()
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range 10000 {
		n := 1024 + rng.IntN(7*1024)
		writeFile(b, filepath.Join(src, fmt.Sprintf("d%02d/f%06d", i%10, i)), append(textBytes(rng, n/2), randomBytes(rng, n-n/2)...))
	}
	return src
}

// BenchmarkBackupSmallFiles is a first backup of small files, each stored whole; see files/s.
func BenchmarkBackupSmallFiles(b *testing.B) {
	benchBackup(b, smallTree(b))
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkBackupUnchanged is a backup of small files that all match the parent snapshot.
func BenchmarkBackupUnchanged(b *testing.B) {
	src := smallTree(b)
	r := defaultRepo(b)
	parent, _, err := Backup(context.Background(), r, src, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_, st, err := Backup(context.Background(), r, src, Options{Parent: parent})
		if err != nil {
			b.Fatal(err)
		}
		if st.ReusedFiles != 10000 || st.NewBlobs != 0 {
			b.Fatalf("reused %d files, stored %d blobs", st.ReusedFiles, st.NewBlobs)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkRestoreSmallFiles restores 10,000 small files.
func BenchmarkRestoreSmallFiles(b *testing.B) {
	benchRestore(b, smallTree(b))
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "files/s")
}
