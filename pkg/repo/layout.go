package repo

import "strings"

// Every object name in a repository is built here.
const (
	configName     = "config"
	keysPrefix     = "keys/"
	dataPrefix     = "data/"
	indexPrefix    = "index/"
	snapshotPrefix = "snapshots/"
	lockPrefix     = "locks/"
)

func keyName(id string) string      { return keysPrefix + id }
func packName(id string) string     { return dataPrefix + id[:2] + "/" + id }
func indexName(id string) string    { return indexPrefix + id }
func snapshotName(id string) string { return snapshotPrefix + id }
func lockName(id string) string     { return lockPrefix + id }

// packIDFromName returns the pack ID of a name under data/, or "" for anything else (e.g. a stray temp file).
func packIDFromName(name string) string {
	rest, ok := strings.CutPrefix(name, dataPrefix)
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
