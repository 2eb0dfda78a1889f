package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
)

func writeDataset(args []string) error {
	fset := flag.NewFlagSet("write", flag.ContinueOnError)
	dir := fset.String("dir", "/data", "directory to write into")
	seed := fset.Uint64("seed", 1, "seed of the content")
	files := fset.Int("files", 10, "number of files")
	size := fset.Int64("size", 64<<10, "bytes per file")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *files < 0 || *size < 0 {
		return errors.New("-files and -size must not be negative")
	}
	rng := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	for i := 0; i < *files; i++ {
		// Two levels, so restores have directories to recreate.
		path := filepath.Join(*dir, fmt.Sprintf("d%02d", i%4), fmt.Sprintf("f%04d.bin", i))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("create dir: %w", err)
		}
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		if _, err := io.CopyN(f, rngReader{rng}, *size); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", path, err)
		}
	}
	// A marker naming the seed, so the tree's checksum changes with the seed even for empty files.
	if err := os.WriteFile(filepath.Join(*dir, "SEED"), []byte(fmt.Sprint(*seed)), 0o644); err != nil {
		return fmt.Errorf("write seed marker: %w", err)
	}
	return checksum([]string{"-dir", *dir})
}

type rngReader struct{ r *rand.Rand }

func (r rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}

func checksum(args []string) error {
	fset := flag.NewFlagSet("checksum", flag.ContinueOnError)
	dir := fset.String("dir", "/data", "directory to checksum")
	if err := fset.Parse(args); err != nil {
		return err
	}
	h := sha256.New()
	n := 0
	err := filepath.WalkDir(*dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(*dir, path)
		if err != nil {
			return err
		}
		if d.Name() == "lost+found" && d.IsDir() {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%o\x00", rel, info.Mode())
		switch {
		case info.Mode().IsRegular():
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(h, f); err != nil {
				return fmt.Errorf("read %s: %w", path, err)
			}
			n++
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			fmt.Fprint(h, target)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checksum %s: %w", *dir, err)
	}
	result(fmt.Sprintf("%s files=%d", hex.EncodeToString(h.Sum(nil)), n))
	return nil
}
