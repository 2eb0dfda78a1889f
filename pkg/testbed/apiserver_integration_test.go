//go:build integration

package testbed_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pxb-dev/pxb/pkg/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

func TestAPIServerAnswers(t *testing.T) {
	c := testbed.APIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cs := c.Clientset(t)
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != "v1.34.4" {
		t.Errorf("server version = %s, want v1.34.4", v.GitVersion)
	}
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil || string(body) != "ok" {
		t.Errorf("/readyz = %q, %v; want ok", body, err)
	}

	// The admin kubeconfig file works for a separate client, the way commands under test use it.
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatalf("load %s: %v", c.Kubeconfig, err)
	}
	fromFile, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fromFile.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		t.Errorf("get kube-system through %s: %v", c.Kubeconfig, err)
	}
}

func TestNamespace(t *testing.T) {
	c := testbed.APIServer(t)
	cs := c.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var names []string
	for _, sub := range []string{"a", "b"} {
		t.Run(sub, func(t *testing.T) {
			ns := c.Namespace(t)
			names = append(names, ns)
			if !strings.HasPrefix(ns, "testnamespace-"+sub+"-") {
				t.Errorf("namespace %q is not named after the test", ns)
			}
			// The default ServiceAccount exists, so Pods can be created.
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			}
			created, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create pod in %s: %v", ns, err)
			}
			if created.Spec.ServiceAccountName != "default" {
				t.Errorf("pod service account = %q, want default", created.Spec.ServiceAccountName)
			}
		})
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("namespaces %v: want two distinct", names)
	}
	// Subtests are over: their namespaces are deleted, contents and all.
	for _, ns := range names {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Errorf("namespace %s still there after its test: %v", ns, err)
		}
	}
}

func TestGarbageCollection(t *testing.T) {
	c := testbed.APIServer(t)
	ns := c.Namespace(t)
	cs := c.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	owner, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dependent := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name:            "dependent",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}},
	}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, dependent, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx, owner.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, dependent.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Errorf("dependent not collected after its owner's deletion: %v", err)
	}
}

func TestRBACIsEnforced(t *testing.T) {
	c := testbed.APIServer(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	alice, err := kubernetes.NewForConfig(c.UserConfig(t, "alice", "developers"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("unprivileged list of configmaps: err = %v, want Forbidden", err)
	}
	if !strings.Contains(err.Error(), `User "alice" cannot list resource "configmaps"`) {
		t.Errorf("forbidden message %q does not name the user and resource", err)
	}

	// Binding the group to the aggregated view ClusterRole in the namespace lets alice read there, and only
	// there.
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "developers-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: "developers"}},
	}
	if _, err := c.Clientset(t).RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role binding: %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := alice.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("alice still cannot list configmaps after the role binding: %v", err)
	}
	if _, err := alice.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list in another namespace: err = %v, want Forbidden", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	if _, err := alice.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create with view only: err = %v, want Forbidden", err)
	}
}

func TestUserKubeconfig(t *testing.T) {
	c := testbed.APIServer(t)
	out, err := exec.Command(testbed.Tool(t, "kubectl"), "--kubeconfig", c.UserKubeconfig(t, "bob"),
		"auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl auth whoami: %v: %s", err, out)
	}
	if got, want := string(out), `bob ["system:authenticated"]`; got != want {
		t.Errorf("whoami = %q, want %q", got, want)
	}
	if _, err := os.Stat(c.Kubeconfig); err != nil {
		t.Errorf("admin kubeconfig: %v", err)
	}
}
