package layout

import (
	"testing"
	"time"
)

func TestParseBackupPrefix(t *testing.T) {
	for _, tc := range []struct {
		unit, ns, name string
		ok             bool
	}{
		{BackupPrefix("shop", "nightly"), "shop", "nightly", true},
		{BackupPrefix("pxb-system", "all.v2"), "pxb-system", "all.v2", true},
		{RestorePrefix("shop", "back"), "", "", false},
		{"backups/shop/", "", "", false},
		{"backups/shop/nightly", "", "", false},
		{"backups/shop/nightly/volumes/", "", "", false},
		{"backups/Shop/nightly/", "", "", false},
		{"/mnt/volume", "", "", false},
	} {
		ns, name, ok := ParseBackupPrefix(tc.unit)
		if ns != tc.ns || name != tc.name || ok != tc.ok {
			t.Errorf("ParseBackupPrefix(%q) = %q, %q, %v; want %q, %q, %v", tc.unit, ns, name, ok, tc.ns, tc.name, tc.ok)
		}
	}
}

func TestParseVolumeSource(t *testing.T) {
	for _, tc := range []struct {
		source, ns, name, volume string
		ok                       bool
	}{
		{VolumeSource("shop", "nightly", "db/data-0"), "shop", "nightly", "db/data-0", true},
		{VolumeSource("shop", "all.v2", "shop/logs"), "shop", "all.v2", "shop/logs", true},
		{BackupPrefix("shop", "nightly"), "", "", "", false},
		{VolumesPrefix("shop", "nightly"), "", "", "", false},
		{"volumes/shop/nightly/db", "", "", "", false},
		{"volumes/Shop/nightly/db/data", "", "", "", false},
	} {
		ns, name, volume, ok := ParseVolumeSource(tc.source)
		if ns != tc.ns || name != tc.name || volume != tc.volume || ok != tc.ok {
			t.Errorf("ParseVolumeSource(%q) = %q, %q, %q, %v; want %q, %q, %q, %v", tc.source, ns, name, volume, ok,
				tc.ns, tc.name, tc.volume, tc.ok)
		}
	}
}

func TestLayout(t *testing.T) {
	if got := BackupPrefix("shop", "nightly"); got != "backups/shop/nightly/" {
		t.Errorf("BackupPrefix = %q", got)
	}
	if got := RestorePrefix("shop", "back"); got != "restores/shop/back/" {
		t.Errorf("RestorePrefix = %q", got)
	}
}

// TestNames pins every name: they are what earlier versions of pxb stored, and must stay as they are.
func TestNames(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	at := time.Date(2026, 11, 24, 13, 4, 5, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct{ got, want string }{
		{Config, "config"},
		{KeyName(id), "keys/" + id},
		{PackName(id), "data/01/" + id},
		{IndexName(id), "index/" + id},
		{SnapshotName("20261124T120405Z-0011223344556677"), "snapshots/20261124T120405Z-0011223344556677"},
		{SnapshotID(at, "0011223344556677"), "20261124T120405Z-0011223344556677"},
		{LockName(id), "locks/" + id},
		{DirectoryProbe, "keys/probe"},
		{StagedName("config", "0011223344556677"), "config.0011223344556677.tmp"},
		{ProbeKey("0011223344556677"), "probe/0011223344556677"},
		{VolumesPrefix("shop", "nightly"), "volumes/shop/nightly/"},
		{VolumeSource("shop", "nightly", "db/data-0"), "volumes/shop/nightly/db/data-0"},
		{LogKey, "job.log"},
		{RecordKey, "backup.json"},
		{VolumesKey, "volumes.json"},
		{ManifestKey, "manifest.json"},
		{IndexKey, "index.jsonl"},
		{RestoreSummaryKey, "restore-summary.jsonl"},
		{ObjectsKey("deployments.apps", "shop", 2), "objects/deployments.apps/shop/2.jsonl"},
		{ObjectsKey("namespaces", "", 0), "objects/namespaces/_cluster/0.jsonl"},
		{CompressedKey("index.jsonl"), "index.jsonl.zst"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestPackIDFromName(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ name, want string }{
		{PackName(id), id},
		{"data/01/" + id + ".0011223344556677.tmp", ""},
		{"data/02/" + id, ""},
		{"data/01/0123456789ABCDEF0123456789abcdef", ""},
		{"data/01/0123", ""},
		{"index/" + id, ""},
	} {
		if got := PackIDFromName(tc.name); got != tc.want {
			t.Errorf("PackIDFromName(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if !IsTemp(StagedName(KeyName(id), "0011223344556677")) || IsTemp(KeyName(id)) {
		t.Error("IsTemp does not tell a staged name from an object")
	}
}
