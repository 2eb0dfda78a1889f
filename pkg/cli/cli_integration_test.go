//go:build integration

package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/cli"
	"github.com/pxb-dev/pxb/pkg/install"
	"github.com/pxb-dev/pxb/pkg/testbed"
	"github.com/pxb-dev/pxb/pkg/version"
)

func TestMain(m *testing.M) { testbed.Main(m) }

// pxb runs `kubectl pxb args...` against the test bed's apiserver and returns its output.
func pxb(t *testing.T, c *testbed.Cluster, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := run(t, c, args...)
	return out + errOut, err
}

// pxbStreams runs `kubectl pxb args...`, which must succeed, and returns its standard output and error apart.
func pxbStreams(t *testing.T, c *testbed.Cluster, args ...string) (string, string) {
	t.Helper()
	out, errOut, err := run(t, c, args...)
	if err != nil {
		t.Fatalf("kubectl pxb %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out, errOut
}

func run(t *testing.T, c *testbed.Cluster, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := cli.NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append(args, "--kubeconfig", c.Kubeconfig, "--cache-dir", filepath.Join(t.TempDir(), "cache")))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func mustPxb(t *testing.T, c *testbed.Cluster, args ...string) string {
	t.Helper()
	out, err := pxb(t, c, args...)
	if err != nil {
		t.Fatalf("kubectl pxb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// wantStatus checks "Key: value" lines of the status report, whatever their alignment.
func wantStatus(t *testing.T, out string, kv ...string) {
	t.Helper()
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			got[k] = strings.TrimSpace(v)
		}
	}
	for i := 0; i < len(kv); i += 2 {
		if got[kv[i]] != kv[i+1] {
			t.Errorf("status %s = %q, want %q:\n%s", kv[i], got[kv[i]], kv[i+1], out)
		}
	}
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}

// TestLifecycle runs the commands in the order a user would: before install, install, install again,
// inspect, then uninstall. It owns this package's apiserver and leaves pxb uninstalled.
func TestLifecycle(t *testing.T) {
	c := testbed.APIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("before install", func(t *testing.T) {
		wantLines(t, mustPxb(t, c, "version"), "Client Version: dev\n", "Installed Version: not installed\n")
		wantStatus(t, mustPxb(t, c, "status"), "Installed version", "not installed (run: kubectl pxb install)",
			"Namespace pxb-system", "absent", "CRDs", "0/6 established")
	})

	t.Run("install", func(t *testing.T) {
		// An earlier version's binding that let restore Jobs write anything is taken away by the upgrade.
		legacy := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "pxb-job-restore"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: v1alpha1.SystemNamespace, Name: v1alpha1.RestoreServiceAccount}},
		}
		if _, err := c.Clientset(t).RbacV1().ClusterRoleBindings().Create(ctx, legacy, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		out := mustPxb(t, c, "install", "--image", "pxb-job:it")
		retired := "clusterrolebinding.rbac.authorization.k8s.io/pxb-job-restore deleted\n"
		wantLines(t, out,
			"namespace/pxb-system serverside-applied\n",
			"customresourcedefinition.apiextensions.k8s.io/backups.pxb.dev serverside-applied\n",
			"clusterrole.rbac.authorization.k8s.io/pxb-job-read serverside-applied\n",
			"configmap/pxb-config serverside-applied\n",
			retired)
		if _, err := c.Clientset(t).RbacV1().ClusterRoleBindings().Get(ctx, legacy.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ClusterRoleBinding pxb-job-restore after install: %v, want NotFound", err)
		}
		// Idempotent: the same objects again, no error.
		if again := mustPxb(t, c, "install", "--image", "pxb-job:it"); again != strings.Replace(out, retired, "", 1) {
			t.Errorf("second install printed\n%s\nfirst printed\n%s", again, out)
		}
	})

	t.Run("version", func(t *testing.T) {
		var v install.Versions
		out, errOut := pxbStreams(t, c, "version", "-o", "json")
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		if v.Plugin != "dev" || v.Installed != "dev" || v.JobImage != "pxb-job:it" || strings.Join(v.CRDs, ",") != "dev" {
			t.Errorf("version -o json = %+v, want plugin, installation and CRDs dev, job image pxb-job:it", v)
		}
		// The image install was given is not tagged with the version: the warning says how to fix that.
		if want := "WARNING: the job image pxb-job:it is not of version dev: run kubectl pxb install without --image, or with an image tagged dev\n"; errOut != want {
			t.Errorf("version warned %q, want %q", errOut, want)
		}
	})

	t.Run("version skew and downgrade", func(t *testing.T) {
		defer func(v string) { version.Version = v }(version.Version)
		// A newer pxb is installed...
		version.Version = "v0.3.0"
		mustPxb(t, c, "install", "--image", "pxb-job:v0.3.0")
		// ...and an older plugin meets it.
		version.Version = "v0.2.0"
		out, err := pxb(t, c, "install", "--image", "pxb-job:v0.2.0")
		if want := "would downgrade pxb's custom resource definitions: CRD backuplocations.pxb.dev is of pxb v0.3.0, this plugin installs v0.2.0; upgrade the plugin (kubectl krew upgrade pxb), or pass --force"; err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("install of an older version: err = %v, want %q\n%s", err, want, out)
		}
		if strings.Contains(out, "serverside-applied") {
			t.Errorf("a refused downgrade applied objects:\n%s", out)
		}
		skew := "the cluster runs pxb v0.3.0, newer than this plugin (v0.2.0): upgrade the plugin (kubectl krew upgrade pxb)"
		if _, errOut := pxbStreams(t, c, "version"); errOut != "WARNING: "+skew+"\n" {
			t.Errorf("version warned %q, want %q", errOut, skew)
		}
		wantStatus(t, mustPxb(t, c, "status"), "Installed version", "v0.3.0", "Version skew", skew)

		mustPxb(t, c, "install", "--image", "pxb-job:v0.2.0", "--force")
		var v install.Versions
		if err := json.Unmarshal([]byte(mustPxb(t, c, "version", "-o", "json")), &v); err != nil {
			t.Fatal(err)
		}
		if v.Installed != "v0.2.0" || strings.Join(v.CRDs, ",") != "v0.2.0" || len(v.Skew()) != 0 {
			t.Errorf("after install --force: %+v (skew %q), want everything at v0.2.0", v, v.Skew())
		}
		version.Version = "dev"
		mustPxb(t, c, "install", "--image", "pxb-job:it")
	})

	t.Run("status", func(t *testing.T) {
		wantStatus(t, mustPxb(t, c, "status"), "Client version", "dev", "Installed version", "dev",
			"Job image", "pxb-job:it", "Default location", "<none>", "Namespace pxb-system", "Active",
			"CRDs", "6/6 established", "VolumeSnapshot API", "no", "VolumeSnapshotClasses", "<none>", "KubeVirt", "no")

		// A cluster with the snapshot API, a default class and KubeVirt's VirtualMachine type.
		kubectl := testbed.Tool(t, "kubectl")
		crds := testbed.Tool(t, "snapshot-crds")
		for _, f := range []string{"volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots"} {
			cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", c.Kubeconfig, "apply", "--server-side", "-f",
				filepath.Join(crds, "snapshot.storage.k8s.io_"+f+".yaml"))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kubectl apply %s: %v\n%s", f, err, out)
			}
		}
		dyn := c.Dynamic(t)
		c.KubeVirtCRDs(t)
		class := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
			"metadata":       map[string]any{"name": "hostpath", "annotations": map[string]any{"snapshot.storage.kubernetes.io/is-default-class": "true"}},
			"driver":         "hostpath.csi.k8s.io",
			"deletionPolicy": "Delete",
		}}
		vsc := schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotclasses"}
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			if _, err = dyn.Resource(vsc).Create(ctx, class, metav1.CreateOptions{}); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("create VolumeSnapshotClass: %v", err)
		}
		var st cli.InstallStatus
		if err := yaml.Unmarshal([]byte(mustPxb(t, c, "status", "-o", "yaml")), &st); err != nil {
			t.Fatal(err)
		}
		want := cli.Cluster{VolumeSnapshotAPI: true, KubeVirt: true,
			VolumeSnapshotClasses: []cli.VolumeSnapshotClass{{Name: "hostpath", Driver: "hostpath.csi.k8s.io", Default: true}}}
		if got, _ := json.Marshal(st.Cluster); string(got) != mustJSON(t, want) {
			t.Errorf("status cluster = %s, want %s", got, mustJSON(t, want))
		}
		if !st.Installed || st.JobImage != "pxb-job:it" || len(st.CRDs) != 6 {
			t.Errorf("status = %+v, want installed with job image pxb-job:it and 6 CRDs", st)
		}
	})

	ns := c.Namespace(t)
	t.Run("get backups shows printer columns", func(t *testing.T) {
		dyn := c.Dynamic(t)
		b := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "pxb.dev/v1alpha1", "kind": "Backup",
			"metadata": map[string]any{"name": "nightly", "namespace": ns},
			"spec":     map[string]any{"location": "s3"},
		}}
		b, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).Create(ctx, b, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b.Object["status"] = map[string]any{"phase": "InProgress", "stage": "Volumes", "size": "1.5 GiB", "progress": map[string]any{"percent": int64(40)}}
		if _, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		out := getTable(ctx, t, c, ns, "")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("table has %d lines, want 2:\n%s", len(lines), out)
		}
		if fields := strings.Fields(lines[0]); strings.Join(fields, " ") != "NAME PHASE PROGRESS SIZE LOCATION ERRORS AGE" {
			t.Errorf("header = %q", lines[0])
		}
		if fields := strings.Fields(lines[1]); len(fields) != 7 || strings.Join(fields[:6], " ") != "nightly InProgress 40 1.5 GiB s3" {
			t.Errorf("row = %q", lines[1])
		}
		wide := getTable(ctx, t, c, ns, "wide")
		if header := strings.Fields(strings.SplitN(wide, "\n", 2)[0]); strings.Join(header, " ") != "NAME PHASE STAGE PROGRESS SIZE LOCATION ITEMS ERRORS STARTED AGE" {
			t.Errorf("wide header = %v", header)
		}
	})

	t.Run("uninstall keeps backups", func(t *testing.T) {
		kube := c.Clientset(t)
		// A schedule's CronJob, which could not start its Jobs without pxb's identities, and a setting.
		cronJob := &batchv1.CronJob{
			ObjectMeta: metav1.ObjectMeta{Name: "pxb-schedule-nightly", Namespace: v1alpha1.SystemNamespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "pxb"}},
			Spec: batchv1.CronJobSpec{Schedule: "0 1 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "job", Image: "pxb-job:it"}}}}}}},
		}
		if _, err := kube.BatchV1().CronJobs(v1alpha1.SystemNamespace).Create(ctx, cronJob, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		cms := kube.CoreV1().ConfigMaps(v1alpha1.SystemNamespace)
		patch := `{"data":{"defaultLocation":"s3"}}`
		if _, err := cms.Patch(ctx, v1alpha1.ConfigMapName, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
			t.Fatal(err)
		}

		out := mustPxb(t, c, "uninstall", "--timeout", "2m")
		wantLines(t, out, "clusterrole.rbac.authorization.k8s.io/pxb-job-read deleted\n", "cronjob.batch/pxb-reconcile deleted\n",
			"cronjob.batch/pxb-schedule-nightly suspended\n",
			"customresourcedefinition.apiextensions.k8s.io/backups.pxb.dev kept\n", "namespace/pxb-system kept\n", "configmap/pxb-config kept\n",
			"Kept 1 backups.\n")
		if strings.Contains(out, "customresourcedefinition.apiextensions.k8s.io/backups.pxb.dev deleted") {
			t.Errorf("uninstall without --purge deleted a CRD:\n%s", out)
		}
		if _, err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns).Get(ctx, "nightly", metav1.GetOptions{}); err != nil {
			t.Errorf("Backup %s/nightly after uninstall: %v", ns, err)
		}
		if cj, err := kube.BatchV1().CronJobs(v1alpha1.SystemNamespace).Get(ctx, cronJob.Name, metav1.GetOptions{}); err != nil || cj.Spec.Suspend == nil || !*cj.Spec.Suspend {
			t.Errorf("schedule CronJob after uninstall: %v, want suspended", err)
		}
		if cm, err := cms.Get(ctx, v1alpha1.ConfigMapName, metav1.GetOptions{}); err != nil || len(cm.Data) != 1 || cm.Data["defaultLocation"] != "s3" {
			t.Errorf("pxb-config after uninstall: %v %v, want only the setting defaultLocation=s3", cm.Data, err)
		}
		if _, err := kube.RbacV1().ClusterRoles().Get(ctx, "pxb-job-read", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ClusterRole pxb-job-read after uninstall: %v, want NotFound", err)
		}
		wantStatus(t, mustPxb(t, c, "status"), "Installed version", "not installed (run: kubectl pxb install)",
			"Namespace pxb-system", "Active", "CRDs", "6/6 established")

		// Installing again brings pxb back with what it kept, and the schedule runs again.
		wantLines(t, mustPxb(t, c, "install", "--image", "pxb-job:it"), "cronjob.batch/pxb-schedule-nightly resumed\n")
		if cj, err := kube.BatchV1().CronJobs(v1alpha1.SystemNamespace).Get(ctx, cronJob.Name, metav1.GetOptions{}); err != nil || (cj.Spec.Suspend != nil && *cj.Spec.Suspend) {
			t.Errorf("schedule CronJob after install: %v, want running", err)
		}
		if _, err := c.Dynamic(t).Resource(v1alpha1.BackupsResource).Namespace(ns).Get(ctx, "nightly", metav1.GetOptions{}); err != nil {
			t.Errorf("Backup %s/nightly after install: %v", ns, err)
		}
		wantStatus(t, mustPxb(t, c, "status"), "Installed version", "dev", "Default location", "s3")
	})

	t.Run("uninstall --purge refuses while a Backup exists", func(t *testing.T) {
		out, err := pxb(t, c, "uninstall", "--purge")
		if err == nil || !strings.Contains(err.Error(), "backups exist (for example "+ns+"/nightly)") {
			t.Fatalf("uninstall: err = %v, want refusal naming %s/nightly\n%s", err, ns, out)
		}
		wantStatus(t, mustPxb(t, c, "status"), "CRDs", "6/6 established")
		if _, err := pxb(t, c, "uninstall", "--force"); err == nil || !strings.Contains(err.Error(), "--force only applies with --purge") {
			t.Errorf("uninstall --force without --purge: err = %v, want a refusal naming --purge", err)
		}
	})

	t.Run("uninstall --purge --force", func(t *testing.T) {
		// The writer a team's first restore makes in its namespace goes with pxb.
		writer := metav1.ObjectMeta{Name: v1alpha1.RestoreWriterServiceAccount, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "pxb"}}
		if _, err := c.Clientset(t).CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: writer}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		out := mustPxb(t, c, "uninstall", "--purge", "--force", "--timeout", "2m")
		wantLines(t, out, "customresourcedefinition.apiextensions.k8s.io/backups.pxb.dev deleted\n", "namespace/pxb-system deleted\n",
			"serviceaccount/"+v1alpha1.RestoreWriterServiceAccount+" deleted\n")
		wantStatus(t, mustPxb(t, c, "status"), "Installed version", "not installed (run: kubectl pxb install)",
			"Namespace pxb-system", "absent", "CRDs", "0/6 established", "VolumeSnapshotClasses", "hostpath (hostpath.csi.k8s.io, default)")
	})
}

// getTable asks the apiserver for Backups as a Table, as kubectl get does, and prints it with the shared
// printing helper.
func getTable(ctx context.Context, t *testing.T, c *testbed.Cluster, ns, output string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/apis/pxb.dev/v1alpha1/namespaces", ns, "backups").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(raw, table); err != nil {
		t.Fatal(err)
	}
	flags := cli.NewPrintFlags()
	*flags.OutputFormat = output
	printer, err := flags.ToPrinter()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printer.PrintObj(table, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
