//go:build integration

package jobs_test

import (
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestReadBackFailsWhenConfigReplaced: a job that sealed its work into the repository, whose config is then
// replaced underneath it (as a second initialisation that the store let through did), fails its read-back
// naming the config, instead of reporting a backup that cannot be restored. The replacement is what the old
// race left: another repository's config and key slot, under the same passphrase.
func TestReadBackFailsWhenConfigReplaced(t *testing.T) {
	c := testbed.APIServer(t)
	st := testbed.S3(t)
	name := setupOn(t, c, st, 0)
	ctx := ctxT(t, 2*time.Minute)
	kube := c.Clientset(t)

	openJob := func() *store.Location {
		t.Helper()
		loc, err := store.OpenLocation(ctx, kube, c.Dynamic(t), name, location.Options{}, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = loc.Close() })
		return loc
	}
	seal := func(loc *store.Location, backup string) string {
		t.Helper()
		prefix := layout.BackupPrefix("shop", backup)
		if err := loc.Store.Put(ctx, prefix+"resources.json", strings.NewReader(`{"kind":"ConfigMap"}`)); err != nil {
			t.Fatal(err)
		}
		id, err := loc.Commit(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	loc := openJob()
	id := seal(loc, "first")
	if err := loc.ProveReadable(ctx, id); err != nil {
		t.Fatalf("read back of an untouched repository: %v", err)
	}

	// Another repository under the same passphrase; its config and key slot go over this one's.
	bucket := blob.PrefixedBucket(st.OpenT(t), "cluster-a/")
	other := testbed.Dir(t).OpenT(t)
	if _, err := repo.Init(ctx, other, []byte("correct horse battery staple"), repo.InitOptions{}, repo.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range testbed.Keys(t, other) {
		if k != layout.Config && !strings.HasPrefix(k, layout.KeysPrefix) {
			continue
		}
		data, err := other.ReadAll(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := bucket.WriteAll(ctx, k, data, nil); err != nil {
			t.Fatal(err)
		}
	}
	err := loc.ProveReadable(ctx, id)
	if err == nil || !strings.Contains(err.Error(), "the repository's config object was replaced while the job ran") {
		t.Fatalf("read back after config was replaced: %v; want it to name the replaced config", err)
	}

	// The location now holds what the old race left: a check and a maintenance name the stray key slot and
	// the backup that cannot be restored, and the maintenance deletes nothing.
	st2, err := jobs.CheckLocation(ctx, c.Config, name, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cond := meta.FindStatusCondition(st2.Conditions, v1alpha1.ConditionRepository)
	if cond == nil || cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, "two initialisations") ||
		!strings.Contains(cond.Message, "Not restorable: backups/shop/first/") {
		t.Errorf("check's Repository condition: %+v; want False, naming the stray key slot and backups/shop/first/", cond)
	}
	_, err = jobs.MaintainLocation(ctx, c.Config, name, jobs.Options{})
	if err == nil || !strings.Contains(err.Error(), "Not restorable: backups/shop/first/") {
		t.Errorf("maintenance: %v; want it to fail naming the backup sealed with the stray key", err)
	}

	// Garbage in place of config: the repository no longer opens at all. The first job has ended: a lease it
	// still held, sealed with the other key, would (rightly) stop every writer, since no one can read it.
	if err := loc.Close(); err != nil {
		t.Fatal(err)
	}
	loc = openJob()
	id = seal(loc, "second")
	if err := bucket.WriteAll(ctx, layout.Config, []byte("not a config"), nil); err != nil {
		t.Fatal(err)
	}
	err = loc.ProveReadable(ctx, id)
	if err == nil || !strings.Contains(err.Error(), "the repository no longer opens with the location's key") ||
		!strings.Contains(err.Error(), "config") {
		t.Fatalf("read back after config was overwritten: %v; want it to say the repository no longer opens, naming config", err)
	}
}
