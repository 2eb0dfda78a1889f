// Package layout names every object pxb keeps in a location's bucket and every file it keeps in the
// repository there; no other package spells a name. The names are part of the stored format: one changed
// here leaves what earlier versions stored unreadable.
//
// A location's bucket, under the location's prefix, holds one repository (pkg/repo; doc.go there is its
// byte-level format) and the probe objects of location checks (pkg/location):
//
//	config                        the repository's settings, sealed with the master key (Config)
//	keys/<32 hex>                 key slots (KeyName)
//	data/<2 hex>/<32 hex>         packs, under the first two hex digits of their ID (PackName, PackIDFromName)
//	index/<32 hex>                pack indexes (IndexName)
//	snapshots/<time>-<16 hex>     snapshot manifests, named by time so that they list oldest first
//	                              (SnapshotName, SnapshotID)
//	locks/<32 hex>                leases of writers and of garbage collection (LockName)
//	<name>.<16 hex>.tmp           in a directory bucket: an object being created, then linked to <name>
//	                              (StagedName); listings skip every *.tmp (IsTemp)
//	probe/<16 hex>                a location check's object, deleted again (ProbeKey)
//
// Everything else pxb stores lies in the repository as the files of snapshots, each snapshot sealing one
// unit under the unit's prefix (the snapshot's Source):
//
//	backups/<namespace>/<name>/                    one Backup (BackupPrefix, ParseBackupPrefix):
//	    manifest.json                              what the backup holds: types, files, counts, errors
//	                                               (ManifestKey)
//	    index.jsonl                                one entry per object (IndexKey)
//	    objects/<resource>[.<group>]/<namespace>/<n>.jsonl
//	                                               the objects of one type in one namespace, one JSON
//	                                               object per line (ObjectsKey)
//	    objects/<resource>[.<group>]/_cluster/<n>.jsonl
//	                                               the same for cluster-scoped types
//	    backup.json                                its record (RecordKey)
//	    volumes.json                               its volumes (VolumesKey)
//	    job.log                                    its job's log (LogKey)
//	volumes/<namespace>/<name>/<claim namespace>/<claim>
//	                                               one snapshot per volume of the Backup, the volume's
//	                                               files (VolumesPrefix, VolumeSource)
//	restores/<namespace>/<name>/                   one Restore (RestorePrefix):
//	    restore-summary.jsonl                      one entry per object restored (RestoreSummaryKey)
//	    restore-plan.json                          a dry run's plan: objects, diffs, volumes (RestorePlanKey)
//	    volumes.json                               its volumes (VolumesKey)
//	    job.log                                    its job's log (LogKey)
//
// Namespaces cannot begin with "_", so "_cluster" never collides with one. The keys within a unit are
// relative to its prefix. collect.BucketStore, which keeps such keys straight in a bucket (not in a
// location), stores each one zstd-compressed under the key with ".zst" appended (CompressedKey).
package layout

import (
	"path"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The repository's objects.
const (
	// Config is the repository's settings, written once by a create-only write.
	Config = "config"
	// KeysPrefix holds the key slots.
	KeysPrefix = "keys/"
	// DataPrefix holds the packs.
	DataPrefix = "data/"
	// IndexPrefix holds the pack indexes.
	IndexPrefix = "index/"
	// SnapshotPrefix holds the snapshot manifests.
	SnapshotPrefix = "snapshots/"
	// LockPrefix holds the leases.
	LockPrefix = "locks/"

	// DirectoryProbe is the name a repository opens a writer for, and refuses to write, to see where a
	// directory bucket puts its temporary files.
	DirectoryProbe = KeysPrefix + "probe"

	// TempSuffix ends the temporary files of a directory bucket: an object being created (StagedName) or
	// an upload killed midway ("<name>.<time>.tmp"). They are not objects.
	TempSuffix = ".tmp"
)

// KeyName is the object of key slot id.
func KeyName(id string) string { return KeysPrefix + id }

// PackName is the object of pack id (32 hex digits).
func PackName(id string) string { return DataPrefix + id[:2] + "/" + id }

// IndexName is the object of index id.
func IndexName(id string) string { return IndexPrefix + id }

// SnapshotName is the object of snapshot id.
func SnapshotName(id string) string { return SnapshotPrefix + id }

// LockName is the object of lease id.
func LockName(id string) string { return LockPrefix + id }

// SnapshotID is the ID of a snapshot taken at t, random (hex) telling apart snapshots of the same second.
func SnapshotID(t time.Time, random string) string {
	return t.UTC().Format("20060102T150405Z") + "-" + random
}

// StagedName is the temporary name under which a directory bucket's object name is written before it is
// linked to name; random (hex) keeps concurrent writers apart.
func StagedName(name, random string) string { return name + "." + random + TempSuffix }

// IsTemp reports whether a directory bucket's key is a temporary file (TempSuffix), not an object.
func IsTemp(key string) bool { return strings.HasSuffix(key, TempSuffix) }

// PackIDFromName returns the pack ID of a name under data/, or "" for anything else (e.g. a stray temp file).
func PackIDFromName(name string) string {
	rest, ok := strings.CutPrefix(name, DataPrefix)
	if !ok {
		return ""
	}
	dir, id, ok := strings.Cut(rest, "/")
	if !ok || len(id) != 32 || !isHex(id) || dir != id[:2] {
		return ""
	}
	return id
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ProbePrefix holds the objects a location check writes; a crashed check leaves at most one small object
// there.
const ProbePrefix = "probe/"

// ProbeKey is the object of location check id (hex).
func ProbeKey(id string) string { return ProbePrefix + id }

// The units in the repository.
const (
	backupsDir  = "backups"
	restoresDir = "restores"
	// volumesDir holds the snapshots of backups' volume data, apart from backupsDir so that the objects'
	// snapshot of a backup is found by its prefix without its volumes.
	volumesDir = "volumes"
)

// BackupPrefix is where Backup namespace/name is kept in its location.
func BackupPrefix(namespace, name string) string { return path.Join(backupsDir, namespace, name) + "/" }

// RestorePrefix is where Restore namespace/name keeps its summary and log.
func RestorePrefix(namespace, name string) string {
	return path.Join(restoresDir, namespace, name) + "/"
}

// VolumesPrefix is the repository source prefix of Backup namespace/name's volume snapshots.
func VolumesPrefix(namespace, name string) string {
	return path.Join(volumesDir, namespace, name) + "/"
}

// VolumeSource is the repository source of the snapshot of volume ("<claim namespace>/<claim>") of Backup
// namespace/name.
func VolumeSource(namespace, name, volume string) string {
	return VolumesPrefix(namespace, name) + volume
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

// ParseVolumeSource is the inverse of VolumeSource: the namespace and name of the backup whose volume
// ("<claim namespace>/<claim>") source is the snapshot of.
func ParseVolumeSource(source string) (namespace, name, volume string, ok bool) {
	rest, ok := strings.CutPrefix(source, volumesDir+"/")
	if !ok {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || len(validation.IsDNS1123Label(parts[0])) > 0 || len(validation.IsDNS1123Subdomain(parts[1])) > 0 ||
		parts[2] == "" || parts[3] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2] + "/" + parts[3], true
}

// The files under a backup's or a restore's prefix.
const (
	// LogKey is the job's log, under a backup's or a restore's prefix.
	LogKey = "job.log"
	// RecordKey is a backup's record (store.BackupRecord), under its prefix.
	RecordKey = "backup.json"
	// VolumesKey holds a backup's or a restore's volume records, under its prefix.
	VolumesKey = "volumes.json"
	// ManifestKey is a backup's manifest (collect.Manifest).
	ManifestKey = "manifest.json"
	// IndexKey lists a backup's objects, one collect.IndexEntry per line.
	IndexKey = "index.jsonl"
	// RestoreSummaryKey is where a restore writes one apply.SummaryEntry per object, under its prefix.
	RestoreSummaryKey = "restore-summary.jsonl"
	// RestorePlanKey is where a dry-run restore writes its apply.Plan, under its prefix.
	RestorePlanKey = "restore-plan.json"

	objectsDir = "objects"
	// clusterDir stands for the namespace of cluster-scoped objects.
	clusterDir = "_cluster"
)

// ObjectsKey is file seq of the objects of type typeName ("configmaps", "deployments.apps") in namespace
// ("" for cluster-scoped types).
func ObjectsKey(typeName, namespace string, seq int) string {
	ns := namespace
	if ns == "" {
		ns = clusterDir
	}
	return path.Join(objectsDir, typeName, ns, strconv.Itoa(seq)+".jsonl")
}

// CompressedKey is the object under which collect.BucketStore keeps key, zstd-compressed.
func CompressedKey(key string) string { return key + ".zst" }
