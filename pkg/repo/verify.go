package repo

import (
	"context"
	"fmt"
)

// VerifySnapshot proves that snapshot id can be read with this repository's key: its manifest opens, every
// tree blob it reaches decrypts and decodes, every blob it references is indexed, and up to sample of its
// blobs (spread over the snapshot) decrypt and match their IDs. It is the check a backup makes of what
// it wrote before it reports success, reading far less than a restore.
func (r *Repository) VerifySnapshot(ctx context.Context, id string, sample int) error {
	s, err := r.LoadSnapshot(ctx, id)
	if err != nil {
		return err
	}
	// Tree blobs were read whole by the walk; the sample is drawn from every blob referenced, in order.
	var blobs []ID
	seen := map[ID]bool{}
	err = r.checkTree(ctx, s.Root.Tree, "/", map[ID]bool{}, func(b ID) {
		if !seen[b] {
			seen[b] = true
			blobs = append(blobs, b)
		}
	})
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	var buf []byte
	n := min(sample, len(blobs))
	for i := range n {
		b := blobs[i*len(blobs)/n]
		if buf, err = r.LoadBlob(ctx, b, buf); err != nil {
			return fmt.Errorf("snapshot %s: blob %s: %w", id, b, err)
		}
	}
	return nil
}
