package testbed

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Cluster is a real etcd + kube-apiserver on loopback: secure serving with generated certificates, RBAC
// authorization, service-account token signing; and a kube-controller-manager running the controllers that
// need no nodes (see controllers). There is no scheduler or kubelet, and no Job or workload controllers:
// Jobs, CronJobs and Pods are stored and validated but never run.
type Cluster struct {
	// Config is an admin client (user pxb-admin in group system:masters). Each APIServer call returns its
	// own copy.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for the same admin identity, for commands run by tests.
	Kubeconfig string
	// Host is the API server's URL.
	Host string
	// Dir holds the cluster's certificates, data and logs.
	Dir string

	ca                *keyPair
	admin             *keyPair
	apiserver         *process
	etcd              *process
	controllerManager *process
}

var (
	clusterOnce sync.Once
	cluster     *Cluster
	clusterErr  error
)

// APIServer returns the test process's cluster, starting it on first use. Later calls share it.
func APIServer(t testing.TB) *Cluster {
	t.Helper()
	clusterOnce.Do(func() { cluster, clusterErr = startCluster() })
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	onFailureShowLog(t, cluster.apiserver)
	onFailureShowLog(t, cluster.etcd)
	onFailureShowLog(t, cluster.controllerManager)
	c := *cluster
	c.Config = rest.CopyConfig(cluster.Config)
	return &c
}

func startCluster() (*Cluster, error) {
	etcdBin, err := tool("etcd")
	if err != nil {
		return nil, err
	}
	apiserverBin, err := tool("kube-apiserver")
	if err != nil {
		return nil, err
	}
	dir, err := subdir("cluster")
	if err != nil {
		return nil, err
	}
	began := time.Now()
	c := &Cluster{Dir: dir, Kubeconfig: filepath.Join(dir, "admin.kubeconfig")}
	if err := c.writeCerts(); err != nil {
		return nil, err
	}
	var etcdURL string
	c.etcd, err = startWithRetry("etcd", func() (*process, error) {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		etcdURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		data := filepath.Join(dir, "etcd")
		if err := os.RemoveAll(data); err != nil {
			return nil, fmt.Errorf("clear %s: %w", data, err)
		}
		p, err := start("etcd", filepath.Join(dir, "etcd.log"), etcdBin,
			"--name=testbed",
			"--data-dir="+data,
			"--listen-client-urls="+etcdURL,
			"--advertise-client-urls="+etcdURL,
			"--listen-peer-urls="+peerURL,
			"--initial-advertise-peer-urls="+peerURL,
			"--initial-cluster=testbed="+peerURL,
			// Test data is thrown away: skipping fsync makes every write much faster.
			"--unsafe-no-fsync",
			"--log-level=warn",
		)
		if err != nil {
			return nil, err
		}
		return p, waitReady(p, 30*time.Second, func(ctx context.Context) error {
			return httpOK(ctx, http.DefaultClient, etcdURL+"/health")
		})
	})
	if err != nil {
		return nil, err
	}
	etcdReady := time.Since(began)

	c.apiserver, err = startWithRetry("kube-apiserver", func() (*process, error) {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		c.Host = "https://127.0.0.1:" + strconv.Itoa(ports[0])
		c.Config = c.clientConfig(c.admin)
		p, err := start("kube-apiserver", filepath.Join(dir, "kube-apiserver.log"), apiserverBin,
			"--etcd-servers="+etcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port="+strconv.Itoa(ports[0]),
			"--tls-cert-file="+filepath.Join(dir, "serving.crt"),
			"--tls-private-key-file="+filepath.Join(dir, "serving.key"),
			"--client-ca-file="+filepath.Join(dir, "ca.crt"),
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
			"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
			"--service-cluster-ip-range=10.0.0.0/24",
			"--authorization-mode=RBAC",
			// With a loopback advertise address the apiserver must not manage the kubernetes Endpoints.
			"--endpoint-reconciler-type=none",
			"--allow-privileged=true",
			"--profiling=false",
			"--v=1",
		)
		if err != nil {
			return nil, err
		}
		client, err := kubernetes.NewForConfig(c.Config)
		if err != nil {
			return p, fmt.Errorf("client for %s: %w", c.Host, err)
		}
		return p, waitReady(p, 90*time.Second, func(ctx context.Context) error {
			_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	apiserverReady := time.Since(began)
	if err := c.writeKubeconfig(c.Kubeconfig, c.admin); err != nil {
		return nil, err
	}
	if err := c.startControllerManager(); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "testbed: control plane at %[4]s ready after: etcd %[1]s, kube-apiserver %[2]s, kube-controller-manager %[3]s\n",
		etcdReady.Round(time.Millisecond), apiserverReady.Round(time.Millisecond),
		time.Since(began).Round(time.Millisecond), c.Host)
	return c, nil
}

// controllers are the kube-controller-manager controllers that make the API behave as in a real cluster
// without nodes: aggregated ClusterRoles (admin, edit, view) get their rules, deleted namespaces are emptied
// and go away, owner references cascade, namespaces get their default ServiceAccount and kube-root-ca.crt,
// and ValidatingAdmissionPolicies get their type-checking status.
var controllers = []string{
	"clusterrole-aggregation-controller",
	"namespace-controller",
	"garbage-collector-controller",
	"serviceaccount-controller",
	"root-ca-certificate-publisher-controller",
	"validatingadmissionpolicy-status-controller",
}

func (c *Cluster) startControllerManager() error {
	bin, err := tool("kube-controller-manager")
	if err != nil {
		return err
	}
	p, err := start("kube-controller-manager", filepath.Join(c.Dir, "kube-controller-manager.log"), bin,
		"--kubeconfig="+c.Kubeconfig,
		"--controllers="+strings.Join(controllers, ","),
		"--root-ca-file="+filepath.Join(c.Dir, "ca.crt"),
		"--leader-elect=false",
		"--secure-port=0",
		"--v=1",
	)
	if err != nil {
		return err
	}
	c.controllerManager = p
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return fmt.Errorf("client for %s: %w", c.Host, err)
	}
	// Ready once the aggregation controller has filled the admin ClusterRole.
	return waitReady(p, 60*time.Second, func(ctx context.Context) error {
		role, err := client.RbacV1().ClusterRoles().Get(ctx, "admin", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(role.Rules) == 0 {
			return errors.New("ClusterRole admin has no rules yet")
		}
		return nil
	})
}

// writeCerts makes the cluster's CA, the serving certificate, the admin client certificate and the
// service-account signing key.
func (c *Cluster) writeCerts() error {
	ca, err := newCA("pxb-testbed-ca")
	if err != nil {
		return err
	}
	serving, err := ca.issue("kube-apiserver", nil,
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 0, 0, 1)},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"})
	if err != nil {
		return err
	}
	admin, err := ca.issue("pxb-admin", []string{"system:masters"}, nil, nil)
	if err != nil {
		return err
	}
	c.ca, c.admin = ca, admin
	saKey, saKeyPEM, err := newKey()
	if err != nil {
		return err
	}
	saPub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return fmt.Errorf("encode service-account public key: %w", err)
	}
	for _, w := range []struct {
		kp        *keyPair
		cert, key string
	}{{ca, "ca.crt", "ca.key"}, {serving, "serving.crt", "serving.key"}, {admin, "admin.crt", "admin.key"}} {
		if err := w.kp.write(filepath.Join(c.Dir, w.cert), filepath.Join(c.Dir, w.key)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "sa.key"), saKeyPEM, 0o600); err != nil {
		return fmt.Errorf("write service-account key: %w", err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub})
	if err := os.WriteFile(filepath.Join(c.Dir, "sa.pub"), pubPEM, 0o644); err != nil {
		return fmt.Errorf("write service-account public key: %w", err)
	}
	return nil
}

func (c *Cluster) clientConfig(user *keyPair) *rest.Config {
	return &rest.Config{
		Host: c.Host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.ca.certPEM,
			CertData: user.certPEM,
			KeyData:  user.keyPEM,
		},
		// Tests create many objects quickly; client-side throttling would only slow them down.
		QPS:   200,
		Burst: 400,
	}
}

func (c *Cluster) writeKubeconfig(path string, user *keyPair) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testbed"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.ca.certPEM}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: user.certPEM, ClientKeyData: user.keyPEM}
	cfg.Contexts["testbed"] = &clientcmdapi.Context{Cluster: "testbed", AuthInfo: "user", Namespace: "default"}
	cfg.CurrentContext = "testbed"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// UserConfig returns a client config that authenticates as user in groups with a client certificate, so
// RBAC decides what it may do, exactly as for a real user.
func (c *Cluster) UserConfig(t testing.TB, user string, groups ...string) *rest.Config {
	t.Helper()
	return c.clientConfig(c.userCert(t, user, groups))
}

// UserKubeconfig writes a kubeconfig file for user in groups (see UserConfig) and returns its path.
func (c *Cluster) UserKubeconfig(t testing.TB, user string, groups ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := c.writeKubeconfig(path, c.userCert(t, user, groups)); err != nil {
		t.Fatal(err)
	}
	return path
}

func (c *Cluster) userCert(t testing.TB, user string, groups []string) *keyPair {
	t.Helper()
	kp, err := c.ca.issue(user, groups, nil, nil)
	if err != nil {
		t.Fatalf("client certificate for %s: %v", user, err)
	}
	return kp
}

// Clientset returns a typed admin client.
func (c *Cluster) Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	return cs
}

// Dynamic returns a dynamic admin client.
func (c *Cluster) Dynamic(t testing.TB) dynamic.Interface {
	t.Helper()
	d, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	return d
}

// Namespace creates a namespace named after the test, with its default ServiceAccount (Pods need it; the
// controller creates it too, but a test may create a Pod first), and deletes the namespace when the test ends.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	cs := c.Clientset(t)
	name := uniqueName(t, 63)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := cs.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create default service account in %s: %v", name, err)
	}
	return name
}

// httpOK gets url and wants 200.
func httpOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
