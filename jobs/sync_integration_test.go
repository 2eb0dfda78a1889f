//go:build integration

package jobs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// clusterAEnv hands the shared bucket to the test process that plays cluster A.
const clusterAEnv = "PXB_SYNC_CLUSTER_A"

// clusterAOut prefixes the line on which cluster A reports what it backed up.
const clusterAOut = "cluster-a: "

// clusterA is what cluster A made: its ID, the namespace it backed up, and its Backups as they ended.
type clusterA struct {
	ClusterID string
	Namespace string
	Backups   []v1alpha1.Backup
}

// jobIdentity is a client config for the ServiceAccount Jobs of kind run as: what it may do is what the
// installed RBAC grants that Job's pod.
func jobIdentity(t *testing.T, c *testbed.Cluster, kind jobspec.Kind) *rest.Config {
	// A restore runs as a team's restore identity: the tests restore in their own namespaces.
	return c.UserConfig(t, "system:serviceaccount:"+v1alpha1.SystemNamespace+":"+jobspec.ServiceAccount(kind, ""),
		"system:serviceaccounts", "system:serviceaccounts:"+v1alpha1.SystemNamespace, "system:authenticated")
}

// TestSyncClusterA is cluster A of TestSyncBetweenClusters. The test bed runs one control plane per test
// process, so cluster A is this test run in a process of its own, with its own etcd and kube-apiserver
// (and so its own kube-system UID); it backs up an application into the bucket it is given and prints its
// Backups.
func TestSyncClusterA(t *testing.T) {
	raw := os.Getenv(clusterAEnv)
	if raw == "" {
		t.Skip("run by TestSyncBetweenClusters")
	}
	var st testbed.Store
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatal(err)
	}
	c := testbed.APIServer(t)
	locName := setupOn(t, c, &st, 0)
	kube := c.Clientset(t)
	out := clusterA{Namespace: c.Namespace(t)}
	app(t, kube, out.Namespace)
	for _, b := range []v1alpha1.Backup{
		{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: out.Namespace}, Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: out.Namespace},
			Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName), Selection: v1alpha1.Selection{IncludeResources: []v1alpha1.ResourcePattern{"configmaps"}}}},
	} {
		create(t, c, v1alpha1.BackupsResource, &b)
		if err := jobs.Backup(ctxT(t, 2*time.Minute), c.Config, b.Namespace, b.Name, jobs.Options{}); err != nil {
			t.Fatalf("backup %s in cluster A: %v", b.Name, err)
		}
		var done v1alpha1.Backup
		get(t, c, v1alpha1.BackupsResource, b.Namespace, b.Name, &done)
		out.Backups = append(out.Backups, done)
	}
	var err error
	if out.ClusterID, err = store.ClusterID(ctxT(t, time.Minute), kube); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString(clusterAOut + string(data) + "\n")
}

// runClusterA runs TestSyncClusterA in a child process against bucket st and returns what it made.
func runClusterA(t *testing.T, st *testbed.Store) clusterA {
	t.Helper()
	spec, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctxT(t, 5*time.Minute), os.Args[0], "-test.run=^TestSyncClusterA$", "-test.v")
	// The child's servers keep their data where this test cleans up.
	cmd.Env = append(os.Environ(), clusterAEnv+"="+string(spec), "TMPDIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("cluster A: %v\n%s\n%s", err, stdout, stderr.String())
	}
	lines := bufio.NewScanner(bytes.NewReader(stdout))
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		if data, ok := strings.CutPrefix(lines.Text(), clusterAOut); ok {
			var a clusterA
			if err := json.Unmarshal([]byte(data), &a); err != nil {
				t.Fatal(err)
			}
			return a
		}
	}
	t.Fatalf("cluster A reported nothing:\n%s", stdout)
	return clusterA{}
}

// TestSyncBetweenClusters: cluster A backs up an application to a bucket; cluster B, with the same location,
// syncs it, finds A's Backups marked as synced with A's ID and A's status, and restores the application.
func TestSyncBetweenClusters(t *testing.T) {
	st := testbed.S3(t)
	a := runClusterA(t, st)
	if a.ClusterID == "" || len(a.Backups) != 2 || a.Backups[0].Status.Phase != v1alpha1.BackupCompleted {
		t.Fatalf("cluster A made %+v", a)
	}

	c := testbed.APIServer(t)
	locName := setupOn(t, c, st, 0)
	kube := c.Clientset(t)
	ns := a.Namespace
	t.Cleanup(func() { _ = kube.CoreV1().Namespaces().Delete(ctxT(t, time.Minute), ns, metav1.DeleteOptions{}) })
	if id, err := store.ClusterID(ctxT(t, time.Minute), kube); err != nil || id == a.ClusterID {
		t.Fatalf("cluster B's ID %q (%v) is cluster A's", id, err)
	}
	if _, err := kube.CoreV1().Namespaces().Get(ctxT(t, time.Minute), ns, metav1.GetOptions{}); err == nil {
		t.Fatalf("namespace %s exists in cluster B before the sync", ns)
	}

	// Every backup keeps its record, which the sync reads.
	loc, err := store.OpenLocation(ctxT(t, time.Minute), kube, c.Dynamic(t), locName, location.Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.ReadBackupRecord(ctxT(t, time.Minute), store.Prefixed(loc.Store, layout.BackupPrefix(ns, "nightly")))
	_ = loc.Close()
	if err != nil {
		t.Fatalf("cluster A's backup has no record (jobs.Backup must call store.SaveBackupRecord before sealing): %v", err)
	}

	// As the Job's own identity, so that the installed RBAC is what is tested.
	res, err := jobs.SyncLocation(ctxT(t, 2*time.Minute), jobIdentity(t, c, jobspec.KindSync), locName, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantNew := []string{ns + "/nightly", ns + "/settings"}
	if res.Backups != 2 || !reflect.DeepEqual(res.New, wantNew) || len(res.Present) != 0 || len(res.Failed) != 0 {
		t.Fatalf("sync: %+v", res)
	}
	if _, err := kube.CoreV1().Namespaces().Get(ctxT(t, time.Minute), ns, metav1.GetOptions{}); err != nil {
		t.Fatalf("namespace of the synced Backups: %v", err)
	}
	versions := map[string]string{}
	for _, orig := range a.Backups {
		var b v1alpha1.Backup
		get(t, c, v1alpha1.BackupsResource, ns, orig.Name, &b)
		if b.Labels[v1alpha1.SyncedLabel] != "true" || b.Annotations[v1alpha1.OriginClusterAnnotation] != a.ClusterID {
			t.Errorf("Backup %s: labels %v annotations %v, want synced from %s", b.Name, b.Labels, b.Annotations, a.ClusterID)
		}
		if b.Spec.Location != v1alpha1.ObjectName(locName) || !reflect.DeepEqual(b.Spec.IncludeResources, orig.Spec.IncludeResources) {
			t.Errorf("Backup %s spec %+v, want %+v", b.Name, b.Spec, orig.Spec)
		}
		got, _ := json.Marshal(b.Status)
		want, _ := json.Marshal(orig.Status)
		if string(got) != string(want) {
			t.Errorf("Backup %s status in B:\n%s\nin A:\n%s", b.Name, got, want)
		}
		versions[b.Name] = b.ResourceVersion
	}
	l, err := store.GetLocation(ctxT(t, time.Minute), c.Dynamic(t), locName)
	if err != nil {
		t.Fatal(err)
	}
	cond := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionSynced)
	if cond == nil || cond.Status != metav1.ConditionTrue || cond.Message != "2 backups, 2 new ("+ns+"/nightly, "+ns+"/settings), 0 already present" ||
		l.Status.LastSyncTime == nil || time.Since(l.Status.LastSyncTime.Time) > time.Minute {
		t.Errorf("location status after sync: %+v", l.Status)
	}

	// The synced Backup restores A's application in B.
	create(t, c, v1alpha1.RestoresResource, &v1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Name: "from-a", Namespace: ns},
		Spec:       v1alpha1.RestoreSpec{BackupName: "nightly"},
	})
	if err := jobs.Restore(ctxT(t, 3*time.Minute), c.Config, ns, "from-a", jobs.Options{}); err != nil {
		t.Fatalf("restore from the synced Backup: %v", err)
	}
	checkApp(t, kube, ns, "from-a")

	// Again: nothing new, nothing touched.
	res, err = jobs.SyncLocation(ctxT(t, 2*time.Minute), jobIdentity(t, c, jobspec.KindSync), locName, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Backups != 2 || len(res.New) != 0 || !reflect.DeepEqual(res.Present, wantNew) {
		t.Errorf("second sync: %+v", res)
	}
	for name, rv := range versions {
		var b v1alpha1.Backup
		get(t, c, v1alpha1.BackupsResource, ns, name, &b)
		if b.ResourceVersion != rv {
			t.Errorf("the second sync changed Backup %s", name)
		}
	}
}

// TestSyncOldAndUnfinishedBackups: an empty location syncs nothing; a backup without a record (made before
// records were kept) is rebuilt from its manifest; one that never finished is synced as Failed; one still
// being written is not listed; an existing Backup is left alone; a synced Backup whose status was never
// written gets it.
func TestSyncOldAndUnfinishedBackups(t *testing.T) {
	c := testbed.APIServer(t)
	locName := setup(t, c)
	kube, dyn := c.Clientset(t), c.Dynamic(t)
	ns := c.Namespace(t)

	res, err := jobs.SyncLocation(ctxT(t, time.Minute), jobIdentity(t, c, jobspec.KindSync), locName, jobs.Options{})
	if err != nil || res.Backups != 0 || res.Message() != "0 backups, 0 new, 0 already present" {
		t.Fatalf("sync of an empty location: %+v, %v", res, err)
	}

	// What older jobs left in the location, written the way the backup job writes.
	started := time.Date(2025, 6, 1, 1, 0, 0, 0, time.UTC)
	manifest, err := json.Marshal(collect.Manifest{FormatVersion: collect.FormatVersion, Backup: "old", Started: started,
		Finished: started.Add(90 * time.Second), Namespaces: []string{ns}, Total: 9, Bytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	loc, err := store.OpenLocation(ctxT(t, time.Minute), kube, dyn, locName, location.Options{}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		name, key, data string
		commit          bool
	}{
		{"old", layout.ManifestKey, string(manifest), true},
		{"broken", layout.LogKey, "backup failed: out of luck\n", true},
		{"mine", layout.ManifestKey, string(manifest), true},
		{"resumed", layout.ManifestKey, string(manifest), true},
		{"unsealed", layout.ManifestKey, string(manifest), false},
	} {
		prefix := layout.BackupPrefix(ns, w.name)
		if err := loc.Store.Put(ctxT(t, time.Minute), prefix+w.key, strings.NewReader(w.data)); err != nil {
			t.Fatal(err)
		}
		if w.commit {
			if _, err := loc.Commit(ctxT(t, time.Minute), prefix); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := loc.Close(); err != nil {
		t.Fatal(err)
	}
	// A Backup of this cluster with the same name as a backup in the location, and a synced Backup that a
	// stopped sync left without status (only pxb's own identity sets pxb.dev/synced).
	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: ns},
		Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)}})
	createAs(t, jobIdentity(t, c, jobspec.KindSync), v1alpha1.BackupsResource, &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "resumed", Namespace: ns,
		Labels: map[string]string{v1alpha1.SyncedLabel: "true"}}, Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)}})

	res, err = jobs.SyncLocation(ctxT(t, 2*time.Minute), jobIdentity(t, c, jobspec.KindSync), locName, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Backups != 4 || !reflect.DeepEqual(res.New, []string{ns + "/broken", ns + "/old"}) ||
		!reflect.DeepEqual(res.Present, []string{ns + "/mine", ns + "/resumed"}) || len(res.Failed) != 0 {
		t.Fatalf("sync: %+v", res)
	}
	var old v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, "old", &old)
	s := old.Status
	if old.Labels[v1alpha1.SyncedLabel] != "true" || old.Annotations[v1alpha1.OriginClusterAnnotation] != "" || s.Phase != v1alpha1.BackupCompleted ||
		s.StartTimestamp == nil || !s.StartTimestamp.Time.Equal(started) || s.CompletionTimestamp == nil || !s.CompletionTimestamp.Time.Equal(started.Add(90*time.Second)) ||
		s.Progress == nil || s.Progress.ItemsDone != 9 || s.TotalBytes != 4096 || s.Size != "4.0 KiB" {
		t.Errorf("Backup rebuilt from its manifest: %+v %+v", old.ObjectMeta, s)
	}
	var broken v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, "broken", &broken)
	if broken.Status.Phase != v1alpha1.BackupFailed || !strings.Contains(broken.Status.Message, "did not finish") {
		t.Errorf("Backup of an unfinished backup: %+v", broken.Status)
	}
	var mine v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, "mine", &mine)
	if mine.Labels[v1alpha1.SyncedLabel] != "" || mine.Status.Phase != "" {
		t.Errorf("sync changed this cluster's own Backup: labels %v status %+v", mine.Labels, mine.Status)
	}
	var resumed v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, "resumed", &resumed)
	if resumed.Status.Phase != v1alpha1.BackupCompleted || resumed.Status.TotalBytes != 4096 {
		t.Errorf("synced Backup left without status: %+v", resumed.Status)
	}
	_, err = dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).Get(ctxT(t, time.Minute), "unsealed", metav1.GetOptions{})
	if err == nil {
		t.Error("a backup still being written (not sealed) was synced")
	}
}

// TestSyncUnreadableLocation: a location that cannot be read fails the sync, with the reason in the status.
func TestSyncUnreadableLocation(t *testing.T) {
	c := testbed.APIServer(t)
	locName := setup(t, c)
	kube := c.Clientset(t)
	ctx := ctxT(t, time.Minute)
	sec, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Get(ctx, locName+"-cred", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec.Data[v1alpha1.S3SecretAccessKey] = []byte("wrong")
	if _, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = jobs.SyncLocation(ctxT(t, time.Minute), jobIdentity(t, c, jobspec.KindSync), locName, jobs.Options{})
	if err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("sync with a wrong credential: %v", err)
	}
	l, gerr := store.GetLocation(ctx, c.Dynamic(t), locName)
	if gerr != nil {
		t.Fatal(gerr)
	}
	cond := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionSynced)
	if cond == nil || cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, "access denied") || l.Status.LastSyncTime != nil {
		t.Errorf("location status after a failed sync: %+v", l.Status)
	}
}

// jobLogOf reads the job log that the backup or restore kept under prefix in location locName.
func jobLogOf(t *testing.T, c *testbed.Cluster, locName, prefix string) string {
	t.Helper()
	loc, err := store.OpenLocation(ctxT(t, time.Minute), c.Clientset(t), c.Dynamic(t), locName, location.Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	var log bytes.Buffer
	if err := store.ReadLog(ctxT(t, time.Minute), store.Prefixed(loc.Store, prefix), &log); err != nil {
		t.Fatal(err)
	}
	return log.String()
}

// TestJobsSyncTheirLocation: a backup Job syncs its location before it starts, so the cluster gets back a
// backup it had forgotten (as if another cluster had made it) without a manual sync, and the backup being
// written is never made into a synced Backup; a restore Job syncs too. A sync that goes wrong is a warning
// in the job log and the location's status, never a failure of the backup.
func TestJobsSyncTheirLocation(t *testing.T) {
	c := testbed.APIServer(t)
	locName := setup(t, c)
	kube, dyn := c.Clientset(t), c.Dynamic(t)
	ns := c.Namespace(t)
	app(t, kube, ns)
	backup := func(ns, name string) v1alpha1.Backup {
		t.Helper()
		create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)}})
		if err := jobs.Backup(ctxT(t, 2*time.Minute), jobIdentity(t, c, jobspec.KindBackup), ns, name, jobs.Options{}); err != nil {
			t.Fatalf("backup %s/%s: %v", ns, name, err)
		}
		var b v1alpha1.Backup
		get(t, c, v1alpha1.BackupsResource, ns, name, &b)
		return b
	}
	forget := func(ns, name string) {
		t.Helper()
		if err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).Delete(ctxT(t, time.Minute), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	synced := func(want string) {
		t.Helper()
		l, err := store.GetLocation(ctxT(t, time.Minute), dyn, locName)
		if err != nil {
			t.Fatal(err)
		}
		cond := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionSynced)
		if cond == nil || !strings.Contains(cond.Reason+": "+cond.Message, want) || l.Status.LastSyncTime == nil {
			t.Errorf("location status: %+v, want a Synced condition with %q", l.Status, want)
		}
	}
	clusterID, err := store.ClusterID(ctxT(t, time.Minute), kube)
	if err != nil {
		t.Fatal(err)
	}

	// The first backup's job finds an empty location, and does not sync the backup it writes.
	first := backup(ns, "first")
	if first.Status.Phase != v1alpha1.BackupCompleted || first.Labels[v1alpha1.SyncedLabel] != "" {
		t.Fatalf("first backup: labels %v status %+v", first.Labels, first.Status)
	}
	synced("Synced: 0 backups, 0 new, 0 already present")

	forget(ns, "first")
	second := backup(ns, "second")
	if second.Status.Phase != v1alpha1.BackupCompleted || second.Labels[v1alpha1.SyncedLabel] != "" {
		t.Fatalf("second backup: labels %v status %+v", second.Labels, second.Status)
	}
	var back v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, "first", &back)
	if back.Labels[v1alpha1.SyncedLabel] != "true" || back.Annotations[v1alpha1.OriginClusterAnnotation] != clusterID ||
		back.Status.Phase != v1alpha1.BackupCompleted || back.Status.Progress.ItemsDone != first.Status.Progress.ItemsDone {
		t.Errorf("the forgotten backup after the next backup's job: labels %v annotations %v status %+v", back.Labels, back.Annotations, back.Status)
	}
	want := "sync of location " + locName + ": 1 backup, 1 new (" + ns + "/first), 0 already present"
	synced("Synced: 1 backup, 1 new (" + ns + "/first), 0 already present")
	if log := jobLogOf(t, c, locName, layout.BackupPrefix(ns, "second")); !strings.Contains(log, want) {
		t.Errorf("job log of the second backup lacks %q:\n%s", want, log)
	}

	// A restore job syncs before it restores: the forgotten second backup is back when it ends.
	forget(ns, "second")
	create(t, c, v1alpha1.RestoresResource, &v1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: "again", Namespace: ns},
		Spec: v1alpha1.RestoreSpec{BackupName: "first"}})
	if err := jobs.Restore(ctxT(t, 3*time.Minute), jobIdentity(t, c, jobspec.KindRestore), ns, "again", jobs.Options{}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	get(t, c, v1alpha1.BackupsResource, ns, "second", &back)
	if back.Labels[v1alpha1.SyncedLabel] != "true" || back.Status.Phase != v1alpha1.BackupCompleted {
		t.Errorf("the forgotten backup after a restore's job: labels %v status %+v", back.Labels, back.Status)
	}
	want = "sync of location " + locName + ": 2 backups, 1 new (" + ns + "/second), 1 already present"
	if log := jobLogOf(t, c, locName, layout.RestorePrefix(ns, "again")); !strings.Contains(log, want) {
		t.Errorf("job log of the restore lacks %q:\n%s", want, log)
	}

	// A backup whose Backup cannot be made again (its namespace is being deleted) is a warning of the next
	// backup, which completes.
	doomed := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "doomed-"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"pxb.dev/test"}}}
	doomed, err = kube.CoreV1().Namespaces().Create(ctxT(t, time.Minute), doomed, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ns, err := kube.CoreV1().Namespaces().Get(ctx, doomed.Name, metav1.GetOptions{})
		if err == nil {
			ns.Spec.Finalizers = nil
			_, _ = kube.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
		}
		_ = kube.CoreV1().Namespaces().Delete(ctx, doomed.Name, metav1.DeleteOptions{})
	})
	backup(doomed.Name, "lost")
	forget(doomed.Name, "lost")
	if err := kube.CoreV1().Namespaces().Delete(ctxT(t, time.Minute), doomed.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	third := backup(ns, "third")
	if third.Status.Phase != v1alpha1.BackupCompleted {
		t.Fatalf("a backup whose sync went wrong: %+v", third.Status)
	}
	want = "warning: sync of location " + locName + ": 3 backups, 0 new, 2 already present, 1 could not be synced: " + doomed.Name + "/lost: create Backup:"
	if log := jobLogOf(t, c, locName, layout.BackupPrefix(ns, "third")); !strings.Contains(log, want) {
		t.Errorf("job log of the third backup lacks %q:\n%s", want, log)
	}
	synced("SomeBackupsNotSynced: 3 backups, 0 new, 2 already present, 1 could not be synced: " + doomed.Name + "/lost")
}
