//go:build integration

package apply_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestNoApplicationStartsOnAnEmptyVolume restores a namespace whose claim "data" (and one claim of a
// StatefulSet) lost their data on the way: those claims are not made, and what mounts them is held, each
// saying why, while the rest is restored as it was.
func TestNoApplicationStartsOnAnEmptyVolume(t *testing.T) {
	c := testbed.APIServer(t)
	kube := c.Clientset(t)
	src, dst := c.Namespace(t), c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	labels := map[string]string{"app": "db"}
	pod := corev1.PodSpec{
		Containers: []corev1.Container{{Name: "db", Image: "postgres:17"}},
		Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
	}
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod}
	claim := func(name string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(kube.CoreV1().PersistentVolumeClaims(src).Create(ctx, claim("data"), metav1.CreateOptions{}))
	must(kube.CoreV1().PersistentVolumeClaims(src).Create(ctx, claim("logs"), metav1.CreateOptions{}))
	must(kube.AppsV1().Deployments(src).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(3)), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template}}, metav1.CreateOptions{}))
	must(kube.BatchV1().CronJobs(src).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "vacuum"},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: pod.Containers, Volumes: pod.Volumes}}}}}}, metav1.CreateOptions{}))
	must(kube.CoreV1().Pods(src).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "shell"}, Spec: pod}, metav1.CreateOptions{}))
	must(kube.AppsV1().StatefulSets(src).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "store"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "store"}},
			Template:             corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "store"}}, Spec: corev1.PodSpec{Containers: pod.Containers}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{*claim("db")}}}, metav1.CreateOptions{}))
	// Untouched: it mounts a claim whose data arrived.
	logs := template.DeepCopy()
	logs.Spec.Volumes[0].PersistentVolumeClaim.ClaimName = "logs"
	must(kube.AppsV1().Deployments(src).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shipper"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: *logs}}, metav1.CreateOptions{}))

	store := newStore(t)
	// The types made here alone: other tests of this package add and remove CRDs while it runs.
	if res := backup(t, c, store, collect.Options{IncludeNamespaces: []string{src}, BackupName: "nightly",
		IncludeResources: []string{"persistentvolumeclaims", "deployments", "cronjobs", "pods", "statefulsets"}}); res.Phase != collect.PhaseCompleted {
		t.Fatalf("backup phase %s: %v", res.Phase, res.Errors)
	}
	const why = "volume x/data: read pack 5f3a: checksum mismatch"
	res, summary := restore(t, c, store, newStore(t), apply.Options{BackupName: "nightly", RestoreName: "back",
		NamespaceMapping: map[string]string{src: dst},
		MissingData:      map[string]string{dst + "/data": why, dst + "/db-store-1": why}})
	// The test bed runs no workload controllers: the StatefulSet's claims are not in the backup.
	if res.Held != 5 {
		t.Errorf("held %d objects, want 5: the claim, the Deployment, the CronJob, the Pod and the StatefulSet", res.Held)
	}

	entry := func(key string) apply.SummaryEntry {
		t.Helper()
		e, ok := summary[key]
		if !ok {
			t.Fatalf("summary has no %s", key)
		}
		return e
	}
	if e := entry("persistentvolumeclaims " + dst + "/data"); e.Outcome != apply.OutcomeSkipped || !strings.Contains(e.Reason, "its data did not arrive ("+why+")") {
		t.Errorf("claim data: %+v", e)
	}
	if _, err := kube.CoreV1().PersistentVolumeClaims(dst).Get(ctx, "data", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("claim data was made, empty: %v", err)
	}
	d, err := kube.AppsV1().Deployments(dst).Get(ctx, "db", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 0 || d.Annotations[apply.AnnotationReplicas] != "3" {
		t.Fatalf("Deployment db: %v; want 0 replicas and %s=3", err, apply.AnnotationReplicas)
	}
	if e := entry("deployments.apps " + dst + "/db"); e.Outcome != apply.OutcomeRestored || !strings.Contains(e.Reason, "scaled to 0 (from 3") ||
		!strings.Contains(e.Reason, "claim "+dst+"/data, whose data did not arrive") {
		t.Errorf("Deployment db in the summary: %+v", e)
	}
	if cj, err := kube.BatchV1().CronJobs(dst).Get(ctx, "vacuum", metav1.GetOptions{}); err != nil || cj.Spec.Suspend == nil || !*cj.Spec.Suspend {
		t.Errorf("CronJob vacuum: %v, want suspended", err)
	}
	if e := entry("pods " + dst + "/shell"); e.Outcome != apply.OutcomeSkipped || !strings.HasPrefix(e.Reason, "not restored: it mounts claim "+dst+"/data") {
		t.Errorf("Pod shell: %+v", e)
	}
	if ss, err := kube.AppsV1().StatefulSets(dst).Get(ctx, "store", metav1.GetOptions{}); err != nil || *ss.Spec.Replicas != 0 {
		t.Errorf("StatefulSet store: %v, want 0 replicas (its claim db-store-1 lost its data)", err)
	}
	if d, err := kube.AppsV1().Deployments(dst).Get(ctx, "shipper", metav1.GetOptions{}); err != nil || *d.Spec.Replicas != 2 || d.Annotations[apply.AnnotationReplicas] != "" {
		t.Errorf("Deployment shipper, whose claim's data arrived: %v, want it as it was", err)
	}
	if _, err := kube.CoreV1().PersistentVolumeClaims(dst).Get(ctx, "logs", metav1.GetOptions{}); err != nil {
		t.Errorf("claim logs: %v", err)
	}
}
