package repo

import (
	"context"
	"testing"
)

// TestCheckBesideBackupAndDelete: while a check reads the repository, a backup completes and another
// snapshot is deleted, as the maintenance job's check meets backups that run and backups that are deleted.
// Neither is damage. Before the check listed the snapshots first, the new snapshot's blobs were in no index
// it had read and the deleted one was missing: both reported as errors.
func TestCheckBesideBackupAndDelete(t *testing.T) {
	ctx := context.Background()
	r := fileRepo(t, Options{})
	gone := saveFileSnapshot(t, r, "a", []byte("the snapshot deleted during the check"))
	saveFileSnapshot(t, r, "b", []byte("a snapshot that stays"))
	other, err := Open(ctx, r.bucket, []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	testHookCheckRead = func() {
		testHookCheckRead = nil
		ran = true
		saveFileSnapshot(t, other, "c", []byte("a backup that completes during the check"))
		if err := other.DeleteSnapshot(ctx, gone); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { testHookCheckRead = nil })
	res, err := r.Check(ctx, CheckOptions{ReadData: true})
	if !ran {
		t.Fatal("the hook did not run")
	}
	if err != nil {
		t.Fatalf("check beside a backup and a deletion: %v", err)
	}
	if res.Snapshots != 1 {
		t.Errorf("check counted %d snapshots; want 1: the one there all along", res.Snapshots)
	}
	res, err = r.Check(ctx, CheckOptions{ReadData: true})
	if err != nil || res.Snapshots != 2 {
		t.Fatalf("the next check: %d snapshots, %v; want 2 and no error", res.Snapshots, err)
	}
}
