package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
)

// disk writes a disk-like pattern onto a block device (-write: seeded random data, an empty stretch, more
// data, the rest left as it is) and gives the checksum of the whole device as its result.
func disk(args []string) error {
	fset := flag.NewFlagSet("disk", flag.ContinueOnError)
	dev := fset.String("dev", "/dev/xvda", "block device")
	seed := fset.Uint64("seed", 1, "seed of the content")
	write := fset.Bool("write", false, "write the pattern before the checksum")
	if err := fset.Parse(args); err != nil {
		return err
	}
	f, err := os.OpenFile(*dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("size of %s: %w", *dev, err)
	}
	if *write {
		rng := rand.New(rand.NewPCG(*seed, 11))
		for _, region := range []struct {
			off, n int64
			zero   bool
		}{{0, 5 << 20, false}, {5 << 20, 6 << 20, true}, {11 << 20, 3<<20 + 512, false}} {
			if region.off+region.n > size {
				return fmt.Errorf("%s has %d bytes; the pattern needs %d", *dev, size, region.off+region.n)
			}
			buf := make([]byte, region.n)
			if !region.zero {
				_, _ = io.ReadFull(rngReader{rng}, buf)
			}
			if _, err := f.WriteAt(buf, region.off); err != nil {
				return fmt.Errorf("write %s: %w", *dev, err)
			}
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", *dev, err)
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return fmt.Errorf("read %s: %w", *dev, err)
	}
	result(fmt.Sprintf("size %d sha256 %s", size, hex.EncodeToString(h.Sum(nil))))
	return nil
}
