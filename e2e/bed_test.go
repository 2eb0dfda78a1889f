//go:build e2e

// The tests in this file prove the e2e bed itself: the in-cluster path of Jobs, CSI snapshots that are real
// copies, and CronJobs, on every cluster that is up.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pxb-dev/pxb/e2e/framework"
)

// clusters lists the clusters to test: PXB_E2E_CLUSTERS (default "a b"); a cluster that is not up is skipped.
func clusters() []string {
	if v := os.Getenv("PXB_E2E_CLUSTERS"); v != "" {
		return strings.Fields(v)
	}
	return []string{"a", "b"}
}

// eachCluster runs fn as a parallel subtest per cluster.
func eachCluster(t *testing.T, fn func(t *testing.T, c *framework.Cluster)) {
	for _, name := range clusters() {
		t.Run("cluster-"+name, func(t *testing.T) {
			t.Parallel()
			fn(t, framework.Get(t, name))
		})
	}
}

var probeGVR = schema.GroupVersionResource{Group: "e2e.pxb.dev", Version: "v1alpha1", Resource: "probes"}

const probeCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: probes.e2e.pxb.dev}
spec:
  group: e2e.pxb.dev
  scope: Namespaced
  names: {plural: probes, singular: probe, kind: Probe}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// TestJobReadsCustomResource: a Job's pod reads a custom resource through the ordinary in-cluster config (the
// kubernetes Service and its service account token) and writes the resource's status.
func TestJobReadsCustomResource(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		c.Apply(t, "default", probeCRD)
		framework.WaitFor(t, time.Minute, "probe CRD served", func(ctx context.Context) (bool, error) {
			_, err := c.Dynamic.Resource(probeGVR).Namespace("default").List(ctx, metav1.ListOptions{})
			return err == nil, nil
		})
		ns := c.Namespace(t)
		message := fmt.Sprintf("hello from %s at %d", t.Name(), time.Now().UnixNano())
		c.ServiceAccount(t, ns, "prober",
			rbacv1.PolicyRule{APIGroups: []string{"e2e.pxb.dev"}, Resources: []string{"probes"}, Verbs: []string{"get"}},
			rbacv1.PolicyRule{APIGroups: []string{"e2e.pxb.dev"}, Resources: []string{"probes/status"}, Verbs: []string{"update"}})
		c.Apply(t, ns, fmt.Sprintf(`apiVersion: e2e.pxb.dev/v1alpha1
kind: Probe
metadata: {name: first}
spec: {message: %q}
---
apiVersion: batch/v1
kind: Job
metadata: {name: probe}
spec:
  backoffLimit: 0
  template:
    spec:
      serviceAccountName: prober
      restartPolicy: Never
      dnsPolicy: Default
      containers:
      - name: probe
        image: %s
        imagePullPolicy: Never
        args: [crstatus, -group, e2e.pxb.dev, -resource, probes, -name, first]
`, message, c.ToolImage))
		c.WaitForJob(t, ns, "probe", 2*time.Minute)
		obj, err := c.Dynamic.Resource(probeGVR).Namespace(ns).Get(framework.Context(t, 30*time.Second), "first", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get probe: %v", err)
		}
		phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
		echo, _, _ := unstructured.NestedString(obj.Object, "status", "echo")
		server, _, _ := unstructured.NestedString(obj.Object, "status", "server")
		if phase != "Completed" || echo != message {
			t.Fatalf("probe status: phase %q echo %q, want Completed and %q", phase, echo, message)
		}
		svc, err := c.Kube.CoreV1().Services("default").Get(framework.Context(t, 30*time.Second), "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get kubernetes service: %v", err)
		}
		if want := "https://" + svc.Spec.ClusterIP + ":443"; server != want {
			t.Errorf("the pod reached the apiserver at %q, want the kubernetes Service %q", server, want)
		}
	})
}

// TestSnapshotRestore: a VolumeSnapshot keeps the bytes the PVC had when it was taken, and a PVC restored from
// it holds exactly those bytes, although the source changed since.
func TestSnapshotRestore(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		c.PVC(t, ns, "source", "", nil)
		before := c.WriteDataset(t, ns, "source", 1, 20, 100<<10)
		if !strings.HasSuffix(before, " files=21") { // 20 files and the seed marker
			t.Fatalf("dataset checksum %q: want 21 files", before)
		}
		c.Snapshot(t, ns, "snap", "source")
		after := c.WriteDataset(t, ns, "source", 2, 25, 100<<10)
		if after == before {
			t.Fatalf("rewriting the source did not change its checksum %s", before)
		}
		c.PVC(t, ns, "restored", framework.StorageClassAlt, framework.SnapshotSource("snap"))
		if got := c.Checksum(t, ns, "restored"); got != before {
			t.Errorf("restored volume checksum %s, want the snapshot's %s (source now %s)", got, before, after)
		}
		if got := c.Checksum(t, ns, "source"); got != after {
			t.Errorf("source volume checksum %s, want %s", got, after)
		}
	})
}

// TestVolumeWithoutSnapshots: the class meant for file-level backups provisions and mounts volumes.
func TestVolumeWithoutSnapshots(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		c.PVC(t, ns, "files", framework.StorageClassNoSnap, nil)
		written := c.WriteDataset(t, ns, "files", 3, 5, 10<<10)
		if got := c.Checksum(t, ns, "files"); got != written {
			t.Errorf("checksum %s after remount, want %s", got, written)
		}
	})
}

// TestCronJobFires: a CronJob's schedule creates a Job that runs to completion.
func TestCronJobFires(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		cj := &batchv1.CronJob{
			ObjectMeta: metav1.ObjectMeta{Name: "tick"},
			Spec: batchv1.CronJobSpec{
				Schedule:          "*/1 * * * *",
				ConcurrencyPolicy: batchv1.ForbidConcurrent,
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
					BackoffLimit: new(int32),
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						DNSPolicy:     corev1.DNSDefault,
						Containers: []corev1.Container{{
							Name: "tick", Image: c.ToolImage, ImagePullPolicy: corev1.PullNever,
							Args: []string{"checksum", "-dir", "/etc/ssl"},
						}},
					}},
				}},
			},
		}
		if _, err := c.Kube.BatchV1().CronJobs(ns).Create(framework.Context(t, 30*time.Second), cj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create CronJob: %v", err)
		}
		// The schedule fires at the next minute boundary.
		var job string
		framework.WaitFor(t, 150*time.Second, "a Job of the CronJob", func(ctx context.Context) (bool, error) {
			jobs, err := c.Kube.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, j := range jobs.Items {
				for _, o := range j.OwnerReferences {
					if o.Kind == "CronJob" && o.Name == "tick" {
						job = j.Name
						return true, nil
					}
				}
			}
			return false, nil
		})
		c.WaitForJob(t, ns, job, 2*time.Minute)
		framework.WaitFor(t, time.Minute, "CronJob lastSuccessfulTime", func(ctx context.Context) (bool, error) {
			got, err := c.Kube.BatchV1().CronJobs(ns).Get(ctx, "tick", metav1.GetOptions{})
			return err == nil && got.Status.LastSuccessfulTime != nil, err
		})
	})
}

// TestS3Reachable: the shared S3 server answers at the same URL from the host and from a pod (an anonymous
// request gets S3's AccessDenied error, which proves the S3 server itself answered).
func TestS3Reachable(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		if c.S3.Endpoint == "" {
			t.Fatal("the cluster environment names no S3 endpoint")
		}
		ctx := framework.Context(t, 30*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.S3.Endpoint+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("from the host: %v", err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "<Code>AccessDenied</Code>") {
			t.Errorf("from the host: status %d body %q, want 403 AccessDenied", resp.StatusCode, body)
		}
		ns := c.Namespace(t)
		got := c.RunTool(t, ns, "get", "-url", c.S3.Endpoint+"/")
		if !strings.HasPrefix(got, "status=403 ") || !strings.Contains(got, "<Code>AccessDenied</Code>") {
			t.Errorf("from a pod: %q, want status 403 with AccessDenied", got)
		}
	})
}
