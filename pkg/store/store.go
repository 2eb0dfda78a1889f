// Package store is what pxb keeps in a location and how it gets there: opening a BackupLocation with its
// credential and key, backup records, job logs, and deleting a backup (refused while object lock keeps it).
// The plugin and the jobs both use it.
//
// A location's bucket holds one repository (pkg/repo) and the probe objects of location checks
// (pkg/location). Everything pxb stores lies in the repository as files of snapshots, each snapshot sealing
// one unit: a backup's objects, record and log, one volume of a backup, a restore's summary and log. Every
// name, and the tree they make, is in pkg/layout (BackupPrefix, RestorePrefix, VolumesPrefix, RecordKey,
// VolumesKey, LogKey, ...).
package store

import (
	"context"
	"fmt"
	"io"

	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
)

// Prefixed scopes a Store to the keys under prefix.
func Prefixed(s collect.Store, prefix string) collect.Store { return prefixStore{s: s, prefix: prefix} }

type prefixStore struct {
	s      collect.Store
	prefix string
}

func (p prefixStore) Put(ctx context.Context, key string, r io.Reader) error {
	return p.s.Put(ctx, p.prefix+key, r)
}

func (p prefixStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return p.s.Get(ctx, p.prefix+key)
}

// ReadLog copies the job log stored under a backup's or restore's store to w.
func ReadLog(ctx context.Context, s collect.Store, w io.Writer) error {
	r, err := s.Get(ctx, layout.LogKey)
	if err != nil {
		return fmt.Errorf("job log: %w", err)
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("read job log: %w", err)
	}
	return nil
}
