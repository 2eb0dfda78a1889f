//go:build e2e

// Package framework holds the e2e suite's helpers: the clusters started by e2e/cluster.sh, a namespace per
// test, waiting for phases and Jobs, and pods that write a dataset into a PVC or checksum it.
package framework

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Storage of the e2e clusters (see e2e/cluster.sh).
const (
	StorageClass        = "pxb-e2e"        // default class; its driver has a default VolumeSnapshotClass
	StorageClassAlt     = "pxb-e2e-alt"    // same driver, for storage-class mapping
	StorageClassNoSnap  = "pxb-e2e-nosnap" // a driver without snapshots: file-level backups only
	VolumeSnapshotClass = "pxb-e2e"
)

// Cluster is one running e2e cluster.
type Cluster struct {
	Name       string
	Kubeconfig string
	Kubectl    string
	Image      string // the pxb-job image, imported into the node
	ToolImage  string // the e2etool image, for test pods
	S3         S3
	Config     *rest.Config
	Kube       kubernetes.Interface
	Dynamic    dynamic.Interface
	Snapshots  snapclient.Interface
}

// S3 is the object store shared by the clusters, reachable from pods and from the host at the same URL.
type S3 struct{ Endpoint, AccessKey, SecretKey string }

// Get returns cluster name ("a" or "b"), skipping the test when it is not up.
func Get(t testing.TB, name string) *Cluster {
	t.Helper()
	c, err := Load(name)
	if err != nil {
		t.Skipf("cluster %s is not up (start it with `make cluster-up CLUSTER=%s`): %v", name, name, err)
	}
	return c
}

// Load reads the environment file that e2e/cluster.sh writes for a running cluster.
func Load(name string) (*Cluster, error) {
	base := os.Getenv("PXB_E2E_DIR")
	if base == "" {
		base = "/var/lib/pxb-e2e"
	}
	env, err := readEnv(filepath.Join(base, name, "env"))
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Name: name, Kubeconfig: env["KUBECONFIG"], Kubectl: env["PXB_E2E_KUBECTL"],
		Image: env["PXB_E2E_IMAGE"], ToolImage: env["PXB_E2E_TOOL_IMAGE"],
		S3: S3{Endpoint: env["PXB_E2E_S3_ENDPOINT"], AccessKey: env["PXB_E2E_S3_ACCESS_KEY"], SecretKey: env["PXB_E2E_S3_SECRET_KEY"]},
	}
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return nil, fmt.Errorf("kubeconfig of cluster %s: %w", name, err)
	}
	if c.Kube, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	if c.Dynamic, err = dynamic.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	if c.Snapshots, err = snapclient.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Kube.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		return nil, fmt.Errorf("reach cluster %s: %w", name, err)
	}
	return c, nil
}

func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			env[k] = v
		}
	}
	return env, sc.Err()
}

// Context returns a context bounded by timeout and by the test's end.
func Context(t testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace for this test alone and deletes it when the test ends (kept on failure when
// PXB_E2E_KEEP is set, for a post-mortem).
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	base := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	ctx := Context(t, time.Minute)
	ns, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-" + base + "-", Labels: map[string]string{"pxb.dev/e2e": "true"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("PXB_E2E_KEEP") != "" {
			t.Logf("keeping namespace %s of cluster %s", ns.Name, c.Name)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	// Pods need the namespace's default service account, which a controller adds shortly after.
	WaitFor(t, time.Minute, "default service account in "+ns.Name, func(ctx context.Context) (bool, error) {
		_, err := c.Kube.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	return ns.Name
}

// KubectlCmd returns kubectl for this cluster.
func (c *Cluster) KubectlCmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, c.Kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
}

// Apply applies a manifest with kubectl.
func (c *Cluster) Apply(t testing.TB, ns, manifest string) {
	t.Helper()
	cmd := c.KubectlCmd(Context(t, time.Minute), "apply", "-n", ns, "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// ServiceAccount creates a service account in ns allowed exactly rules there (a Role and its RoleBinding of
// the same name), for the pods of a test.
func (c *Cluster) ServiceAccount(t testing.TB, ns, name string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	ctx := Context(t, 30*time.Second)
	meta := metav1.ObjectMeta{Name: name}
	if _, err := c.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: meta}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service account %s/%s: %v", ns, name, err)
	}
	if _, err := c.Kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role %s/%s: %v", ns, name, err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: meta,
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}
	if _, err := c.Kube.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role binding %s/%s: %v", ns, name, err)
	}
}
