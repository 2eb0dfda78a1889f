//go:build integration

package jobs_test

import (
	"bytes"
	"context"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/install"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var (
	installOnce sync.Once
	installErr  error
)

// setup installs pxb into the test cluster (once per process) and creates a BackupLocation on a fresh S3
// bucket with its credential and encryption key Secrets, as a user would; it returns the location's name.
func setup(t *testing.T, c *testbed.Cluster) string {
	t.Helper()
	return setupOn(t, c, testbed.S3(t), 0)
}

// setupOn is setup on store st, with objectLockDays set to lockDays.
func setupOn(t *testing.T, c *testbed.Cluster, st *testbed.Store, lockDays int32) string {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	installOnce.Do(func() {
		objs, err := install.Objects(install.Options{Image: "pxb.local/pxb-job:test"})
		if err != nil {
			installErr = err
			return
		}
		dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
		if err != nil {
			installErr = err
			return
		}
		ic := install.Client{Dynamic: c.Dynamic(t), Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
		if _, err := ic.Apply(ctx, objs, false); err != nil {
			installErr = err
			return
		}
		installErr = ic.WaitForCRDs(ctx, install.CRDNames(objs), time.Minute)
	})
	if installErr != nil {
		t.Fatalf("install pxb: %v", installErr)
	}
	kube := c.Clientset(t)
	name := st.Bucket // unique per test, and a valid object name
	secrets := []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: name + "-cred", Labels: map[string]string{v1alpha1.CredentialLabel: "true"}},
			Data: map[string][]byte{v1alpha1.S3AccessKeyID: []byte(st.AccessKeyID), v1alpha1.S3SecretAccessKey: []byte(st.SecretAccessKey)}},
		{ObjectMeta: metav1.ObjectMeta{Name: name + "-key", Labels: map[string]string{v1alpha1.EncryptionKeyLabel: "true"}},
			Data: map[string][]byte{v1alpha1.EncryptionKeySecretKey: []byte("correct horse battery staple")}},
	}
	for _, s := range secrets {
		if _, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create(t, c, v1alpha1.BackupLocationsResource, &v1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: v1alpha1.SystemNamespace},
		Spec: v1alpha1.BackupLocationSpec{
			Provider: v1alpha1.ProviderS3, Bucket: st.Bucket, Endpoint: st.Endpoint, Region: st.Region, S3ForcePathStyle: true,
			Prefix: "cluster-a", Credential: &v1alpha1.SecretReference{Name: name + "-cred"},
			EncryptionKey: v1alpha1.SecretReference{Name: name + "-key"}, ObjectLockDays: lockDays,
			// The tests back up and restore in namespaces of their own, as teams do.
			AllowedNamespaces: []v1alpha1.NamespacePattern{"*"},
		},
	})
	return name
}

func kindOf(gvr schema.GroupVersionResource) string {
	return map[schema.GroupVersionResource]string{
		v1alpha1.BackupLocationsResource: "BackupLocation", v1alpha1.BackupsResource: "Backup", v1alpha1.RestoresResource: "Restore",
		v1alpha1.RulesResource: "Rule", v1alpha1.SchedulePoliciesResource: "SchedulePolicy", v1alpha1.BackupSchedulesResource: "BackupSchedule",
	}[gvr]
}

// create creates a pxb object through the API, as `kubectl apply` of its YAML would.
func create(t *testing.T, c *testbed.Cluster, gvr schema.GroupVersionResource, obj metav1.Object) {
	t.Helper()
	createAs(t, c.Config, gvr, obj)
}

// asUnstructured is obj, a pxb object of resource gvr, as the dynamic client sends it.
func asUnstructured(t *testing.T, gvr schema.GroupVersionResource, obj metav1.Object) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(v1alpha1.SchemeGroupVersion.String())
	u.SetKind(kindOf(gvr))
	return u
}

// createAs is create with the identity of cfg.
func createAs(t *testing.T, cfg *rest.Config, gvr schema.GroupVersionResource, obj metav1.Object) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u := asUnstructured(t, gvr, obj)
	unstructured.RemoveNestedField(u.Object, "status")
	if _, err := dyn.Resource(gvr).Namespace(obj.GetNamespace()).Create(ctxT(t, 30*time.Second), u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

func get(t *testing.T, c *testbed.Cluster, gvr schema.GroupVersionResource, ns, name string, out any) {
	t.Helper()
	u, err := c.Dynamic(t).Resource(gvr).Namespace(ns).Get(ctxT(t, 30*time.Second), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatal(err)
	}
}

// app creates a small application: a Deployment, a ConfigMap, a Secret and a Service.
func app(t *testing.T, kube kubernetes.Interface, ns string) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	labels := map[string]string{"app": "shop"}
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Labels: labels, Annotations: map[string]string{"note": "keep"}},
		Data:       map[string]string{"mode": "prod", "greeting": "hello"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Labels: labels},
		Data:       map[string][]byte{"password": []byte("s3cr3t\x00bytes")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "nginx:1.27", Env: []corev1.EnvVar{{Name: "MODE", Value: "prod"}},
				}}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func deleteApp(t *testing.T, kube kubernetes.Interface, ns string) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	for _, err := range []error{
		kube.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{}),
		kube.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}),
		kube.CoreV1().Secrets(ns).Delete(ctx, "db", metav1.DeleteOptions{}),
		kube.CoreV1().ConfigMaps(ns).Delete(ctx, "settings", metav1.DeleteOptions{}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// checkApp compares the application in ns with the one app created, field by field.
func checkApp(t *testing.T, kube kubernetes.Interface, ns, restore string) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cm.Data, map[string]string{"mode": "prod", "greeting": "hello"}) || cm.Annotations["note"] != "keep" || cm.Labels["app"] != "shop" {
		t.Errorf("ConfigMap: data %v annotations %v labels %v", cm.Data, cm.Annotations, cm.Labels)
	}
	if cm.Labels[apply.LabelRestore] != restore {
		t.Errorf("ConfigMap label %s=%q, want %q", apply.LabelRestore, cm.Labels[apply.LabelRestore], restore)
	}
	sec, err := kube.CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["password"]) != "s3cr3t\x00bytes" {
		t.Errorf("Secret data %q", sec.Data)
	}
	svc, err := kube.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.IntValue() != 8080 || svc.Spec.Selector["app"] != "shop" {
		t.Errorf("Service spec %+v", svc.Spec)
	}
	dep, err := kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := dep.Spec.Template.Spec.Containers
	if *dep.Spec.Replicas != 2 || len(c) != 1 || c[0].Image != "nginx:1.27" || len(c[0].Env) != 1 || c[0].Env[0].Value != "prod" {
		t.Errorf("Deployment spec %+v", dep.Spec)
	}
}

// TestBackupDeleteRestore is the journey of the backup and restore jobs: back up a namespace, delete the
// application, restore it, into the same namespace and into a mapped one.
func TestBackupDeleteRestore(t *testing.T) {
	c := testbed.APIServer(t)
	locName := setup(t, c)
	kube := c.Clientset(t)
	ns := c.Namespace(t)
	app(t, kube, ns)

	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: ns},
		Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)},
	})
	if err := jobs.Backup(ctxT(t, 2*time.Minute), c.Config, ns, "nightly", jobs.Options{}); err != nil {
		t.Fatalf("backup job: %v", err)
	}
	var b v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, "nightly", &b)
	s := b.Status
	if s.Phase != v1alpha1.BackupCompleted || s.Stage != v1alpha1.BackupStageDone || s.StartTimestamp == nil || s.CompletionTimestamp == nil {
		t.Fatalf("backup status: phase %q stage %q start %v end %v message %q errors %v", s.Phase, s.Stage, s.StartTimestamp, s.CompletionTimestamp, s.Message, s.Errors)
	}
	// The Deployment, ConfigMap, Secret, Service, the default ServiceAccount and the Namespace.
	if s.Progress == nil || s.Progress.ItemsDone < 5 || s.Progress.Percent != 100 || s.TotalBytes == 0 || s.Size == "" {
		t.Errorf("backup status counts: progress %+v bytes %d size %q", s.Progress, s.TotalBytes, s.Size)
	}
	if !strings.Contains(s.Message, "s3://") || !strings.Contains(s.Message, "/cluster-a/backups/"+ns+"/nightly/") {
		t.Errorf("backup message %q does not say where the data is", s.Message)
	}

	// What is in the bucket, read the way describe and logs read it.
	loc, err := store.OpenLocation(ctxT(t, time.Minute), kube, c.Dynamic(t), locName, location.Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	kept := store.Prefixed(loc.Store, layout.BackupPrefix(ns, "nightly"))
	m, err := collect.ReadManifest(ctxT(t, time.Minute), kept)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, tr := range m.Types {
		got[tr.String()] = tr.Count
	}
	for _, typ := range []string{"deployments.apps", "configmaps", "secrets", "services", "namespaces"} {
		if got[typ] != 1 {
			t.Errorf("backup holds %d %s, want 1 (types %v)", got[typ], typ, got)
		}
	}
	// Everything in the bucket is the encrypted repository: no object, key or value, shows in the clear.
	keys := testbed.Keys(t, loc.Bucket)
	for _, key := range keys {
		data, err := loc.Bucket.ReadAll(ctxT(t, time.Minute), key)
		if err != nil {
			t.Fatal(err)
		}
		for _, clear := range []string{"s3cr3t", "nginx:1.27", "settings", ns} {
			if bytes.Contains(data, []byte(clear)) || strings.Contains(key, clear) {
				t.Errorf("bucket object %s shows %q in the clear", key, clear)
			}
		}
	}
	if len(keys) == 0 {
		t.Error("the bucket is empty")
	}
	var log strings.Builder
	if err := store.ReadLog(ctxT(t, time.Minute), kept, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "backed up") || !strings.Contains(log.String(), "deployments.apps: 1") {
		t.Errorf("job log:\n%s", log.String())
	}

	// kubectl get backups shows what a user looks for.
	kubectl, err := exec.Command("../hack/tools.sh", "kubectl").Output()
	if err != nil {
		t.Fatalf("hack/tools.sh kubectl: %v", err)
	}
	out, err := exec.Command(strings.TrimSpace(string(kubectl)), "--kubeconfig", c.Kubeconfig, "get", "backups", "-n", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get backups: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "PHASE") || !strings.Contains(lines[1], "nightly") || !strings.Contains(lines[1], "Completed") ||
		!strings.Contains(lines[1], locName) || !strings.Contains(lines[1], "100") {
		t.Errorf("kubectl get backups:\n%s", out)
	}

	// Delete the application and restore it where it was.
	deleteApp(t, kube, ns)
	create(t, c, v1alpha1.RestoresResource, &v1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Name: "back", Namespace: ns},
		Spec:       v1alpha1.RestoreSpec{BackupName: "nightly"},
	})
	if err := jobs.Restore(ctxT(t, 3*time.Minute), c.Config, ns, "back", jobs.Options{}); err != nil {
		t.Fatalf("restore job: %v", err)
	}
	var r v1alpha1.Restore
	get(t, c, v1alpha1.RestoresResource, ns, "back", &r)
	rs := r.Status
	if rs.Phase != v1alpha1.RestoreCompleted || rs.Counts == nil || rs.Counts.Created < 4 || rs.Counts.Failed != 0 || rs.CompletionTimestamp == nil {
		t.Fatalf("restore status: phase %q counts %+v message %q errors %v", rs.Phase, rs.Counts, rs.Message, rs.Errors)
	}
	checkApp(t, kube, ns, "back")
	restored := map[string]apply.Outcome{}
	if err := apply.ReadSummary(ctxT(t, time.Minute), store.Prefixed(loc.Store, layout.RestorePrefix(ns, "back")), func(e apply.SummaryEntry) error {
		restored[e.Resource+" "+e.Name] = e.Outcome
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A team's Restore writes no cluster-scoped object, its Namespace included.
	if _, touched := restored["namespaces "+ns]; restored["deployments.apps web"] != apply.OutcomeRestored || touched {
		t.Errorf("restore summary: %v", restored)
	}

	// A retried Job finds the Restore finished and changes nothing.
	if err := jobs.Restore(ctxT(t, time.Minute), c.Config, ns, "back", jobs.Options{}); err != nil {
		t.Errorf("second run of a finished restore: %v", err)
	}

	// Into another namespace: only an administrator's Backup and Restore, in pxb-system, span namespaces.
	sys, nightly, copied := v1alpha1.SystemNamespace, "nightly-"+ns, "copy-"+ns
	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: nightly, Namespace: sys},
		Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName), Selection: v1alpha1.Selection{IncludeNamespaces: []v1alpha1.NamespacePattern{v1alpha1.NamespacePattern(ns)}}},
	})
	if err := jobs.Backup(ctxT(t, 2*time.Minute), c.Config, sys, nightly, jobs.Options{}); err != nil {
		t.Fatalf("backup job in %s: %v", sys, err)
	}
	target := ns + "-copy"
	create(t, c, v1alpha1.RestoresResource, &v1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Name: copied, Namespace: sys},
		Spec: v1alpha1.RestoreSpec{BackupName: v1alpha1.ObjectName(nightly), NamespaceMapping: map[string]v1alpha1.NamespaceName{ns: v1alpha1.NamespaceName(target)},
			ExistingResourcePolicy: v1alpha1.ExistingUpdate},
	})
	if err := jobs.Restore(ctxT(t, 3*time.Minute), c.Config, sys, copied, jobs.Options{}); err != nil {
		t.Fatalf("mapped restore job: %v", err)
	}
	get(t, c, v1alpha1.RestoresResource, sys, copied, &r)
	if r.Status.Phase != v1alpha1.RestoreCompleted {
		t.Fatalf("mapped restore: phase %q message %q errors %v", r.Status.Phase, r.Status.Message, r.Status.Errors)
	}
	checkApp(t, kube, target, copied)
}

// TestFailuresAreReported: a job that cannot do its work says why, in its error and in the status.
func TestFailuresAreReported(t *testing.T) {
	c := testbed.APIServer(t)
	locName := setup(t, c)
	ns := c.Namespace(t)

	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "nowhere", Namespace: ns},
		Spec:       v1alpha1.BackupSpec{Location: "no-such-location"},
	})
	err := jobs.Backup(ctxT(t, time.Minute), c.Config, ns, "nowhere", jobs.Options{})
	if err == nil || !strings.Contains(err.Error(), `BackupLocation "no-such-location" not found`) {
		t.Errorf("backup to a missing location: %v", err)
	}
	var b v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, "nowhere", &b)
	if b.Status.Phase != v1alpha1.BackupFailed || !strings.Contains(b.Status.Message, "no-such-location") || b.Status.CompletionTimestamp == nil {
		t.Errorf("failed backup status: %+v", b.Status)
	}

	create(t, c, v1alpha1.RestoresResource, &v1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Name: "from-failed", Namespace: ns},
		Spec:       v1alpha1.RestoreSpec{BackupName: "nowhere"},
	})
	err = jobs.Restore(ctxT(t, time.Minute), c.Config, ns, "from-failed", jobs.Options{})
	if err == nil || !strings.Contains(err.Error(), "is Failed, not Completed") {
		t.Errorf("restore from a failed backup: %v", err)
	}
	var r v1alpha1.Restore
	get(t, c, v1alpha1.RestoresResource, ns, "from-failed", &r)
	if r.Status.Phase != v1alpha1.RestoreFailed || !strings.Contains(r.Status.Message, "not Completed") {
		t.Errorf("failed restore status: %+v", r.Status)
	}

	// A backup of a namespace that does not exist fails before writing anything. Only an administrator's
	// Backup, in pxb-system, names another namespace than its own.
	ghost := "ghost-" + ns
	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: ghost, Namespace: v1alpha1.SystemNamespace},
		Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName), Selection: v1alpha1.Selection{IncludeNamespaces: []v1alpha1.NamespacePattern{"no-such-ns"}}},
	})
	err = jobs.Backup(ctxT(t, time.Minute), c.Config, v1alpha1.SystemNamespace, ghost, jobs.Options{})
	if err == nil || !strings.Contains(err.Error(), `"no-such-ns" not found`) {
		t.Errorf("backup of a missing namespace: %v", err)
	}
	if err := jobs.Backup(ctxT(t, time.Minute), c.Config, ns, "absent", jobs.Options{}); err == nil || !strings.Contains(err.Error(), "Backup "+ns+"/absent not found") {
		t.Errorf("backup job for a Backup that does not exist: %v", err)
	}
}

// TestObjectLockedLocation backs up into a location with objectLockDays on a bucket with S3 object lock:
// every object the backup wrote carries a compliance-mode retention date that many days ahead, so the
// store itself refuses to delete them.
func TestObjectLockedLocation(t *testing.T) {
	for name, store := range map[string]func(testing.TB) *testbed.Store{"versitygw": testbed.S3Locked, "minio": testbed.MinIOLocked} {
		t.Run(name, func(t *testing.T) { testObjectLockedLocation(t, store(t)) })
	}
}

func testObjectLockedLocation(t *testing.T, st *testbed.Store) {
	c := testbed.APIServer(t)
	locName := setupOn(t, c, st, 2)
	kube := c.Clientset(t)
	ns := c.Namespace(t)
	app(t, kube, ns)
	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "locked", Namespace: ns},
		Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)},
	})
	started := time.Now()
	if err := jobs.Backup(ctxT(t, 2*time.Minute), c.Config, ns, "locked", jobs.Options{}); err != nil {
		t.Fatalf("backup job: %v", err)
	}

	ctx := ctxT(t, time.Minute)
	b := st.OpenT(t)
	var client *s3.Client
	if !b.As(&client) {
		t.Fatal("not an S3 bucket")
	}
	checked := 0
	for _, key := range testbed.Keys(t, b) {
		// Writers' leases are deleted when released, so they are the one kind written without retention.
		if strings.HasPrefix(key, "cluster-a/"+layout.LockPrefix) {
			continue
		}
		head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		until := head.ObjectLockRetainUntilDate
		if head.ObjectLockMode != s3types.ObjectLockModeCompliance || until == nil ||
			until.Before(started.Add(47*time.Hour)) || until.After(time.Now().Add(49*time.Hour)) {
			t.Errorf("%s: lock mode %q until %v, want COMPLIANCE about 2 days ahead", key, head.ObjectLockMode, until)
		}
		// The store refuses to remove a locked version, whoever asks.
		if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(key),
			VersionId: head.VersionId}); err == nil {
			t.Errorf("%s: deleting the locked version succeeded", key)
		}
		checked++
	}
	if checked < 4 {
		t.Fatalf("only %d objects in the bucket after a backup", checked)
	}
}
