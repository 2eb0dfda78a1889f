//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/e2e/framework"
)

// pauseImage is the sandbox image e2e/cluster.sh imports into every node: a container that runs until stopped.
const pauseImage = "pxb.local/pause:e2e"

// kubectlPxb runs `kubectl pxb ARGS...` as a user would, through kubectl's plugin lookup, and logs its output.
func kubectlPxb(t *testing.T, c *framework.Cluster, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	out, err := c.Pxb(t, timeout, args...)
	t.Logf("kubectl pxb %s:\n%s", strings.Join(args, " "), out)
	return out, err
}

// s3Bucket creates a fresh bucket on the clusters' shared S3 server.
func s3Bucket(t *testing.T, c *framework.Cluster, name string) {
	t.Helper()
	client := c.S3.Client()
	if _, err := client.CreateBucket(framework.Context(t, 30*time.Second), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// TestBackupRestoreApplication is the first user journey: install pxb, point it at a bucket, back up an
// application's namespace, lose the namespace, restore it, and the Deployment is Available again.
func TestBackupRestoreApplication(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		if _, err := kubectlPxb(t, c, 3*time.Minute, "install", "--image", c.Image); err != nil {
			t.Fatalf("install: %v", err)
		}
		ns := c.Namespace(t)
		loc := ns // unique, and a valid bucket and object name
		s3Bucket(t, c, loc)
		// A credential from an AWS-style file, and a location with a generated passphrase, as a user makes them.
		credFile := filepath.Join(t.TempDir(), "credentials")
		if err := os.WriteFile(credFile, []byte(fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
			c.S3.AccessKey, c.S3.SecretKey)), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := kubectlPxb(t, c, time.Minute, "credential", "create", loc+"-cred", "--provider", "aws", "--from-file", credFile); err != nil {
			t.Fatalf("credential create: %v", err)
		}
		if _, err := kubectlPxb(t, c, time.Minute, "location", "create", loc, "--provider", "s3", "--bucket", loc,
			"--prefix", "cluster-"+c.Name, "--endpoint", c.S3.Endpoint, "--s3-force-path-style", "--credential", loc+"-cred"); err != nil {
			t.Fatalf("location create: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = c.KubectlCmd(ctx, "delete", "-n", "pxb-system", "backuplocation/"+loc, "secret/"+loc+"-cred", "secret/"+loc+"-encryption-key", "--ignore-not-found").Run()
		})

		c.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: prod}
---
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: e2e-secret}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: %s
        imagePullPolicy: Never
        envFrom: [{configMapRef: {name: settings}}, {secretRef: {name: db}}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`, pauseImage))
		waitAvailable(t, c, ns, "web")

		backup := "app-" + ns[len(ns)-5:]
		out, err := kubectlPxb(t, c, 5*time.Minute, "backup", "create", backup, "--include-namespaces", ns, "--location", loc, "--wait")
		if err != nil {
			t.Fatalf("backup create --wait: %v\n%s", err, c.PodLogs(t, "pxb-system", "pxb.dev/job=backup"))
		}
		if !strings.Contains(out, "Completed") {
			t.Errorf("backup create --wait did not report Completed:\n%s", out)
		}
		if out, err := kubectlPxb(t, c, time.Minute, "backup", "describe", backup, "-n", "pxb-system"); err != nil || !strings.Contains(out, "deployments.apps") {
			t.Errorf("backup describe: %v", err)
		}

		// Lose the whole namespace.
		ctx := framework.Context(t, 3*time.Minute)
		if err := c.Kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.WaitFor(t, 3*time.Minute, "namespace "+ns+" gone", func(ctx context.Context) (bool, error) {
			_, err := c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})

		out, err = kubectlPxb(t, c, 5*time.Minute, "restore", "create", "--from-backup", backup, "--wait")
		if err != nil {
			t.Fatalf("restore create --wait: %v\n%s", err, c.PodLogs(t, "pxb-system", "pxb.dev/job=restore"))
		}
		if !strings.Contains(out, "Completed") {
			t.Errorf("restore create --wait did not report Completed:\n%s", out)
		}
		waitAvailable(t, c, ns, "web")
		cm, err := c.Kube.CoreV1().ConfigMaps(ns).Get(framework.Context(t, 30*time.Second), "settings", metav1.GetOptions{})
		if err != nil || cm.Data["mode"] != "prod" {
			t.Errorf("restored ConfigMap: %v %v", cm, err)
		}
	})
}

// waitAvailable waits until Deployment ns/name is Available.
func waitAvailable(t *testing.T, c *framework.Cluster, ns, name string) {
	t.Helper()
	framework.WaitFor(t, 3*time.Minute, "Deployment "+ns+"/"+name+" Available", func(ctx context.Context) (bool, error) {
		d, err := c.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return available(d), nil
	})
}

func available(d *appsv1.Deployment) bool {
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
