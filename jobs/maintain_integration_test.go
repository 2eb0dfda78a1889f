//go:build integration

package jobs_test

import (
	"crypto/rand"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// packBytes is the size of the packs in the location that setupOn made on st.
func packBytes(t *testing.T, st *testbed.Store) int64 {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	b := st.OpenT(t)
	var n int64
	it := b.List(&blob.ListOptions{Prefix: "cluster-a/" + layout.DataPrefix})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n += o.Size
	}
}

// TestMaintainLocation: deleting a backup removes it from the location at once; maintenance then frees the
// data only it used, keeps what the remaining backup needs, and says so in the location's status. Under
// object lock the data stays, with the date it unlocks; a damaged repository is reported and nothing goes.
func TestMaintainLocation(t *testing.T) {
	c := testbed.APIServer(t)
	kube := c.Clientset(t)
	for _, tc := range []struct {
		name     string
		store    func(testing.TB) *testbed.Store
		lockDays int32
	}{{"s3", testbed.S3, 0}, {"s3-locked", testbed.S3Locked, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.store(t)
			locName := setupOn(t, c, st, tc.lockDays)
			ns := c.Namespace(t)
			app(t, kube, ns)
			// 600 KiB that only the first backup holds.
			bigConfigMap(t, kube, ns)
			backup := func(name string) { t.Helper(); backupNow(t, c, locName, ns, name) }
			// freeRecent: the packs of these backups are seconds old; --safety=none lets them go.
			freeRecent := jobs.Options{FreeRecent: true}
			maintain := func(opts jobs.Options) (*jobs.MaintenanceResult, metav1.Condition, error) {
				t.Helper()
				res, err := jobs.MaintainLocation(ctxT(t, 2*time.Minute), jobIdentity(t, c, jobspec.KindMaintenance), locName, opts)
				l, gerr := store.GetLocation(ctxT(t, time.Minute), c.Dynamic(t), locName)
				if gerr != nil {
					t.Fatal(gerr)
				}
				cond := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionMaintained)
				if cond == nil || l.Status.LastMaintenanceTime == nil || time.Since(l.Status.LastMaintenanceTime.Time) > time.Minute {
					t.Fatalf("location status after maintenance: %+v", l.Status)
				}
				return res, *cond, err
			}

			// An empty location: nothing to maintain, and that is no failure.
			res, cond, err := maintain(jobs.Options{})
			if err != nil || !res.Empty || cond.Status != metav1.ConditionTrue || cond.Reason != "NoRepository" ||
				cond.Message != "the location holds no repository yet: nothing to maintain" {
				t.Fatalf("maintenance of an empty location: %v, %+v", err, cond)
			}

			backup("one")
			if err := kube.CoreV1().ConfigMaps(ns).Delete(ctxT(t, time.Minute), "blob", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			backup("two")
			// Nothing to free yet.
			res, cond, err = maintain(freeRecent)
			if err != nil || cond.Status != metav1.ConditionTrue || res.GC.DeletedBytes != 0 ||
				!strings.HasPrefix(cond.Message, "verified 2 snapshots in ") || !strings.Contains(cond.Message, "; freed 0 B (0 packs deleted, 0 rewritten)") {
				t.Fatalf("maintenance with nothing to free: %v, %+v", err, cond)
			}

			loc, err := store.OpenLocation(ctxT(t, time.Minute), kube, c.Dynamic(t), locName, location.Options{}, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := loc.DeleteBackup(ctxT(t, time.Minute), ns, "one"); err != nil {
				t.Fatal(err)
			}
			loc.Close()
			before := packBytes(t, st)
			if tc.lockDays == 0 {
				// By default, data written within a lease's time stays for a later maintenance.
				res, cond, err := maintain(jobs.Options{})
				if err != nil || cond.Status != metav1.ConditionTrue || res.GC.DeletedBytes != 0 || packBytes(t, st) != before ||
					!regexp.MustCompile(`; freed 0 B \(0 packs deleted, 0 rewritten\); \d+(\.\d)? KiB of unused data in \d+ packs? written in the last 35m0s goes at a later maintenance$`).MatchString(cond.Message) {
					t.Errorf("maintenance right after a delete: %v, %+v; want nothing freed yet, and the young data named", err, cond)
				}
				// While a backup writes, maintenance removes nothing and says why; the next one does.
				r, err := repo.Open(ctxT(t, time.Minute), blob.PrefixedBucket(st.OpenT(t), "cluster-a/"),
					[]byte("correct horse battery staple"), repo.Options{})
				if err != nil {
					t.Fatal(err)
				}
				w, err := r.NewWriter(ctxT(t, time.Minute))
				if err != nil {
					t.Fatal(err)
				}
				res, cond, err = maintain(freeRecent)
				if err != nil || res.GC != nil || cond.Status != metav1.ConditionFalse || cond.Reason != "RepositoryBusy" ||
					!strings.HasSuffix(cond.Message, "; unused data not removed: a backup, a restore or another maintenance was using the location; the next maintenance removes it") {
					t.Errorf("maintenance while a backup writes: %v, %+v", err, cond)
				}
				if after := packBytes(t, st); after != before {
					t.Errorf("packs %d bytes before a busy maintenance, %d after", before, after)
				}
				if err := w.Close(ctxT(t, time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			res, cond, err = maintain(freeRecent)
			after := packBytes(t, st)
			if tc.lockDays == 0 {
				if err != nil || cond.Status != metav1.ConditionTrue || res.GC.DeletedBytes < 600<<10 || before-after < 600<<10 ||
					!strings.HasPrefix(cond.Message, "verified 1 snapshot in ") || !strings.Contains(cond.Message, " KiB (") {
					t.Errorf("maintenance after a delete: %v, %+v; packs %d bytes before, %d after: want the 600 KiB only the deleted backup held freed",
						err, cond, before, after)
				}
			} else {
				tomorrow := time.Now().UTC().Add(24 * time.Hour).Format("2006-01-02")
				if err != nil || cond.Status != metav1.ConditionTrue || res.GC.DeletedBytes != 0 || res.GC.RepackedPacks != 0 || after != before ||
					!regexp.MustCompile(` KiB of unused data in \d+ packs? stays under object lock until `+tomorrow).MatchString(cond.Message) {
					t.Errorf("maintenance under object lock: %v, %+v; packs %d bytes before, %d after: want everything kept until %s",
						err, cond, before, after, tomorrow)
				}
			}
			// The backup that is left is whole.
			loc, err = store.OpenLocation(ctxT(t, time.Minute), kube, c.Dynamic(t), locName, location.Options{}, false)
			if err != nil {
				t.Fatal(err)
			}
			defer loc.Close()
			if _, err := collect.ReadManifest(ctxT(t, time.Minute), store.Prefixed(loc.Store, layout.BackupPrefix(ns, "two"))); err != nil {
				t.Fatalf("backup two after maintenance: %v", err)
			}
			if tc.lockDays > 0 {
				return
			}

			// A pack gone missing: maintenance reports the damage by name and deletes nothing.
			b := st.OpenT(t)
			var victim string
			it := b.List(&blob.ListOptions{Prefix: "cluster-a/" + layout.DataPrefix})
			if o, err := it.Next(ctxT(t, time.Minute)); err == nil {
				victim = o.Key
			}
			if victim == "" {
				t.Fatal("no pack left")
			}
			if err := b.Delete(ctxT(t, time.Minute), victim); err != nil {
				t.Fatal(err)
			}
			before = packBytes(t, st)
			_, cond, err = maintain(freeRecent)
			name := strings.TrimPrefix(victim, "cluster-a/")
			if err == nil || !strings.Contains(err.Error(), "is damaged") || cond.Status != metav1.ConditionFalse ||
				cond.Reason != "RepositoryDamaged" || !strings.Contains(cond.Message, name) || !strings.Contains(cond.Message, "nothing deleted") {
				t.Errorf("maintenance of a damaged repository: %v, %+v; want RepositoryDamaged naming %s", err, cond, name)
			}
			if after := packBytes(t, st); after != before {
				t.Errorf("packs %d bytes before maintaining a damaged repository, %d after", before, after)
			}
		})
	}
}

// TestMaintainReadData: a byte flipped inside a pack that only one backup needs passes the structural check;
// maintenance with ReadDataPercent 100 reads every pack, names the damaged pack and the backup it breaks,
// deletes nothing, and marks that Backup DataVerified=False naming the pack. The other backup is not marked
// and its data still reads back whole.
func TestMaintainReadData(t *testing.T) {
	c := testbed.APIServer(t)
	kube := c.Clientset(t)
	st := testbed.S3(t)
	locName := setupOn(t, c, st, 0)
	nsOne, nsTwo := c.Namespace(t), c.Namespace(t)
	app(t, kube, nsOne)
	app(t, kube, nsTwo)
	// 600 KiB that only the first backup holds.
	bigConfigMap(t, kube, nsOne)
	backup := func(ns, name string) { t.Helper(); backupNow(t, c, locName, ns, name) }
	backup(nsOne, "one")
	backup(nsTwo, "two")
	// A deleted backup leaves unused data, which a maintenance that finds damage must not remove.
	backup(nsTwo, "three")
	loc, err := store.OpenLocation(ctxT(t, time.Minute), kube, c.Dynamic(t), locName, location.Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loc.DeleteBackup(ctxT(t, time.Minute), nsTwo, "three"); err != nil {
		t.Fatal(err)
	}
	loc.Close()

	// Find a blob of backup one in a pack that backup two does not use.
	r, err := repo.Open(ctxT(t, time.Minute), blob.PrefixedBucket(st.OpenT(t), "cluster-a/"), []byte("correct horse battery staple"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	snaps, err := r.Snapshots(ctxT(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// blobsOf lists the blobs (trees and file contents) of the snapshots of Backup ns/name.
	blobsOf := func(ns, name string) []repo.ID {
		t.Helper()
		var ids []repo.ID
		for _, s := range snaps {
			if s.Source != layout.BackupPrefix(ns, name) && !strings.HasPrefix(s.Source, layout.VolumesPrefix(ns, name)) {
				continue
			}
			ids = append(ids, s.Root.Tree...)
			if err := r.WalkTree(ctxT(t, time.Minute), s.Root.Tree, func(n *repo.Node) error {
				ids = append(ids, n.Content...)
				ids = append(ids, n.Tree...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if len(ids) == 0 {
			t.Fatalf("no snapshot of backup %s/%s among %d", ns, name, len(snaps))
		}
		return ids
	}
	packsOfTwo := map[string]bool{}
	two := blobsOf(nsTwo, "two")
	for _, id := range two {
		_, pack, ok := r.Index().Lookup(id)
		if !ok {
			t.Fatalf("blob %s of backup two is not indexed", id)
		}
		packsOfTwo[pack] = true
	}
	var victim string
	var at repo.Loc
	for _, id := range blobsOf(nsOne, "one") {
		if l, pack, ok := r.Index().Lookup(id); ok && !packsOfTwo[pack] && l.Type == repo.DataBlob {
			victim, at = pack, l
			break
		}
	}
	if victim == "" {
		t.Fatal("every pack of backup one holds a blob of backup two")
	}
	bucket := st.OpenT(t)
	key := "cluster-a/" + layout.PackName(victim)
	raw, err := bucket.ReadAll(ctxT(t, time.Minute), key)
	if err != nil {
		t.Fatal(err)
	}
	raw[at.Offset+at.Length/2] ^= 0x40
	if err := bucket.WriteAll(ctxT(t, time.Minute), key, raw, nil); err != nil {
		t.Fatal(err)
	}

	maintain := func(opts jobs.Options) (*jobs.MaintenanceResult, metav1.Condition, error) {
		t.Helper()
		res, err := jobs.MaintainLocation(ctxT(t, 2*time.Minute), jobIdentity(t, c, jobspec.KindMaintenance), locName, opts)
		l, gerr := store.GetLocation(ctxT(t, time.Minute), c.Dynamic(t), locName)
		if gerr != nil {
			t.Fatal(gerr)
		}
		cond := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionMaintained)
		if cond == nil {
			t.Fatalf("location status after maintenance: %+v", l.Status)
		}
		return res, *cond, err
	}
	// The structure is sound: without reading the data, the flipped byte goes unnoticed.
	_, cond, err := maintain(jobs.Options{})
	if err != nil || cond.Status != metav1.ConditionTrue || strings.Contains(cond.Message, "read ") {
		t.Fatalf("maintenance without reading the data: %v, %+v; want it to pass, which is why --read-data exists", err, cond)
	}

	// A rotating read (scheduled maintenance) reads one slice first and records when; one overdue by a whole
	// period reads every pack, and so finds the damage.
	const period = time.Hour
	res, cond, err := maintain(jobs.Options{ReadDataPeriod: period})
	l, gerr := store.GetLocation(ctxT(t, time.Minute), c.Dynamic(t), locName)
	if gerr != nil {
		t.Fatal(gerr)
	}
	if res == nil || res.Check == nil || res.Check.ReadPacks == res.Check.Packs || l.Status.LastDataReadTime == nil ||
		(res.Check.ReadPacks > 0 && !strings.Contains(cond.Message, " in turn, every pack within 1 hour")) {
		t.Fatalf("first rotating read: %+v, %v, %+v, last read %v; want some packs read, the time recorded", res, err, cond, l.Status.LastDataReadTime)
	}
	setLastDataRead(t, c, locName, time.Now().Add(-2*period))
	res, cond, err = maintain(jobs.Options{ReadDataPeriod: period})
	if err == nil || res.Check.ReadPacks != res.Check.Packs || cond.Reason != "RepositoryDamaged" || !strings.Contains(cond.Message, layout.PackName(victim)) {
		t.Fatalf("rotating read overdue by two periods: %v, %+v; want every pack read and %s named", err, cond, layout.PackName(victim))
	}

	before := packBytes(t, st)
	res, cond, err = maintain(jobs.Options{ReadDataPercent: 100, FreeRecent: true})
	name := layout.PackName(victim)
	t.Logf("maintenance reading the data: %s", cond.Message)
	if err == nil || !strings.Contains(err.Error(), "is damaged") || cond.Status != metav1.ConditionFalse || cond.Reason != "RepositoryDamaged" ||
		!regexp.MustCompile(`^verified 2 snapshots in (\d+) packs, read (\d+) of (\d+) packs \(\d+(\.\d)? [KM]iB\): `).MatchString(cond.Message) ||
		res.Check.ReadPacks != res.Check.Packs || res.GC != nil ||
		!strings.Contains(cond.Message, "; damaged pack "+name+" breaks backup "+nsOne+"/one; ") ||
		strings.Contains(cond.Message, nsTwo+"/two") || !strings.Contains(cond.Message, "nothing deleted") {
		t.Errorf("maintenance reading the data: %v, %+v; want RepositoryDamaged naming pack %s and backup %s/one only", err, cond, name, nsOne)
	}
	if len(res.Damaged) != 1 || res.Damaged[0].Name != name || len(res.Damaged[0].Backups) != 1 || res.Damaged[0].Backups[0] != nsOne+"/one" {
		t.Errorf("damaged packs: %+v; want %s breaking %s/one", res.Damaged, name, nsOne)
	}
	if after := packBytes(t, st); after != before {
		t.Errorf("packs %d bytes before maintaining a damaged repository, %d after: want nothing deleted", before, after)
	}

	var one, twoB v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, nsOne, "one", &one)
	get(t, c, v1alpha1.BackupsResource, nsTwo, "two", &twoB)
	dv := meta.FindStatusCondition(one.Status.Conditions, v1alpha1.ConditionDataVerified)
	if dv == nil || dv.Status != metav1.ConditionFalse || dv.Reason != v1alpha1.ConditionReasonDataDamaged || !strings.Contains(dv.Message, name) {
		t.Errorf("backup one's conditions: %+v; want DataVerified False (DataDamaged) naming %s", one.Status.Conditions, name)
	}
	if dv := meta.FindStatusCondition(twoB.Status.Conditions, v1alpha1.ConditionDataVerified); dv != nil {
		t.Errorf("backup two marked: %+v", dv)
	}

	// Backup two reads back whole: every blob of its snapshots, from the repository opened afresh.
	fresh, err := repo.Open(ctxT(t, time.Minute), blob.PrefixedBucket(st.OpenT(t), "cluster-a/"), []byte("correct horse battery staple"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.LoadIndex(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, id := range two {
		if _, err := fresh.LoadBlob(ctxT(t, time.Minute), id, nil); err != nil {
			t.Errorf("backup two after the damage: %v", err)
		}
	}
	loc, err = store.OpenLocation(ctxT(t, time.Minute), kube, c.Dynamic(t), locName, location.Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	if _, err := collect.ReadManifest(ctxT(t, time.Minute), store.Prefixed(loc.Store, layout.BackupPrefix(nsTwo, "two"))); err != nil {
		t.Errorf("backup two's manifest after the damage: %v", err)
	}
}

// setLastDataRead sets location name's status.lastDataReadTime to at.
func setLastDataRead(t *testing.T, c *testbed.Cluster, name string, at time.Time) {
	t.Helper()
	res := c.Dynamic(t).Resource(v1alpha1.BackupLocationsResource).Namespace(v1alpha1.SystemNamespace)
	u, err := res.Get(ctxT(t, time.Minute), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(u.Object, at.UTC().Format(time.RFC3339), "status", "lastDataReadTime"); err != nil {
		t.Fatal(err)
	}
	if _, err := res.UpdateStatus(ctxT(t, time.Minute), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// bigConfigMap makes ConfigMap ns/blob of 600 KiB of random bytes, so that it stays that size in the
// repository.
func bigConfigMap(t *testing.T, kube kubernetes.Interface, ns string) {
	t.Helper()
	big := make([]byte, 600<<10)
	_, _ = rand.Read(big)
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctxT(t, time.Minute), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "blob"}, BinaryData: map[string][]byte{"data": big},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// backupNow creates Backup ns/name of location locName and runs its job in-process.
func backupNow(t *testing.T, c *testbed.Cluster, locName, ns, name string) {
	t.Helper()
	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)}})
	if err := jobs.Backup(ctxT(t, 2*time.Minute), jobIdentity(t, c, jobspec.KindBackup), ns, name, jobs.Options{}); err != nil {
		t.Fatalf("backup %s/%s: %v", ns, name, err)
	}
}
