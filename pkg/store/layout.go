// Package store is what pxb keeps in a location and how it gets there: opening a BackupLocation with its
// credential and key, the names of everything a backup or a restore leaves in it, backup records, job logs,
// and deleting a backup (refused while object lock keeps it). The plugin and the jobs both use it.
//
// A location's bucket (under the location's prefix) holds one repository (pkg/repo, which names its own
// objects in repo/layout.go) and the probe objects of location checks (pkg/location). Everything pxb
// stores lies in the repository as files of snapshots, each snapshot sealing one unit:
//
//	config, keys/, data/, index/, snapshots/, locks/   the repository (pkg/repo)
//	probe/<16 hex>                                     a location check's object, deleted again
//
//	units in the repository:
//	backups/<namespace>/<name>/                 one Backup's objects (pkg/collect's layout), and:
//	backups/<namespace>/<name>/backup.json      its record (RecordKey)
//	backups/<namespace>/<name>/volumes.json     its volumes (VolumesKey)
//	backups/<namespace>/<name>/job.log          its job's log (LogKey)
//	volumes/<namespace>/<name>/<ns>/<claim>     one snapshot per volume of the Backup, its files
//	restores/<namespace>/<name>/                one Restore's summary (collect.RestoreSummaryKey),
//	                                            volumes.json and job.log
package store

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/pxb-dev/pxb/pkg/collect"
)

// The units' names; every one is named here and nowhere else.
const (
	backupsDir  = "backups"
	restoresDir = "restores"
	// volumesDir holds the snapshots of backups' volume data, apart from backupsDir so that the objects'
	// snapshot of a backup is found by its prefix without its volumes.
	volumesDir = "volumes"
	// LogKey is the job's log, under a backup's or a restore's prefix.
	LogKey = "job.log"
	// RecordKey is a backup's record (BackupRecord), under its prefix.
	RecordKey = "backup.json"
	// VolumesKey holds a backup's or a restore's volume records, under its prefix.
	VolumesKey = "volumes.json"
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

// VolumesPrefix is the repository source prefix of Backup namespace/name's volume snapshots.
func VolumesPrefix(namespace, name string) string {
	return path.Join(volumesDir, namespace, name) + "/"
}

// ParseBackupPrefix is the inverse of BackupPrefix: the namespace and name of the backup kept under unit.
func ParseBackupPrefix(unit string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(unit, backupsDir+"/")
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutSuffix(rest, "/")
	if !ok {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, "/")
	if !ok || len(validation.IsDNS1123Label(namespace)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "", "", false
	}
	return namespace, name, true
}
