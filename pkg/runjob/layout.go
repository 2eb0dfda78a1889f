// Package runjob is what the pxb-job `backup` and `restore` subcommands do: read the Backup or Restore, open
// its location, run the object engine (pkg/collect, pkg/apply) and report through the object's status. It
// also owns where a backup and a restore are kept in a location, which `describe`, `logs` and `delete` read.
package runjob

import (
	"context"
	"fmt"
	"io"
	"path"

	"github.com/pxb-dev/pxb/pkg/collect"
)

// The layout of backups and restores in a location. Every prefix is named here and nowhere else; what lies
// under a backup's prefix is pkg/collect's layout, and a restore's summary is collect.RestoreSummaryKey.
//
//	backups/<namespace>/<name>/...          one Backup: manifest, index, objects
//	backups/<namespace>/<name>/job.log      the backup job's log
//	restores/<namespace>/<name>/...         one Restore: its summary
//	restores/<namespace>/<name>/job.log     the restore job's log
const (
	backupsDir  = "backups"
	restoresDir = "restores"
	// LogKey is the job's log, under a backup's or a restore's prefix.
	LogKey = "job.log"
)

// BackupPrefix is where Backup namespace/name is kept in its location.
func BackupPrefix(namespace, name string) string { return path.Join(backupsDir, namespace, name) + "/" }

// RestorePrefix is where Restore namespace/name keeps its summary and log.
func RestorePrefix(namespace, name string) string {
	return path.Join(restoresDir, namespace, name) + "/"
}

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
	r, err := s.Get(ctx, LogKey)
	if err != nil {
		return fmt.Errorf("job log: %w", err)
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("read job log: %w", err)
	}
	return nil
}
