//go:build integration

package apply_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// Sizes of the object benchmark (make bench-objects). PXB_BENCH_SCALE multiplies the object counts, to
// show that memory does not grow with the size of a backup.
const benchNamespaces = 20

var benchConfigMaps, benchSecrets, benchDeployments = 10000, 1000, 200

func init() {
	if n, err := strconv.Atoi(os.Getenv("PXB_BENCH_SCALE")); err == nil && n > 1 {
		benchConfigMaps, benchSecrets, benchDeployments = n*benchConfigMaps, n*benchSecrets, n*benchDeployments
	}
}

// BenchmarkObjects backs up and restores 10,000 ConfigMaps, 1,000 Secrets and 200 Deployments across 20
// namespaces on a real API server, and reports objects per second and the peak resident memory of each.
func BenchmarkObjects(b *testing.B) {
	c := testbed.APIServer(b)
	cfg := c.Config
	cfg.QPS, cfg.Burst = 2000, 4000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var namespaces []string
	for range benchNamespaces {
		namespaces = append(namespaces, c.Namespace(b))
	}
	began := time.Now()
	if err := createBenchObjects(cs, namespaces); err != nil {
		b.Fatal(err)
	}
	b.Logf("created %d objects in %s", benchConfigMaps+benchSecrets+benchDeployments, time.Since(began).Round(time.Millisecond))

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		store := newStore(b)
		resetPeakRSS(b)
		baseRSS := peakRSS(b)
		start := time.Now()
		res, err := collect.Run(context.Background(), c.Config, store, collect.Options{IncludeNamespaces: namespaces, BackupName: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		backupTime := time.Since(start)
		backupRSS := peakRSS(b)
		if res.Phase != collect.PhaseCompleted || res.Counts["configmaps"] != benchConfigMaps || res.Counts["secrets"] != benchSecrets ||
			res.Counts["deployments.apps"] != benchDeployments {
			b.Fatalf("backup %s with counts %v, errors %v", res.Phase, res.Counts, res.Errors)
		}

		mapping := map[string]string{}
		for j, ns := range namespaces {
			mapping[ns] = fmt.Sprintf("bench-%d-%d-%d", time.Now().UnixNano()%1_000_000, i, j)
		}
		resetPeakRSS(b)
		start = time.Now()
		rres, err := apply.Run(context.Background(), c.Config, store, newStore(b), apply.Options{
			BackupName: "bench", RestoreName: "bench", NamespaceMapping: mapping})
		if err != nil {
			b.Fatal(err)
		}
		restoreTime := time.Since(start)
		restoreRSS := peakRSS(b)
		if rres.Phase != collect.PhaseCompleted || rres.Counts[apply.OutcomeRestored] < benchConfigMaps+benchSecrets+benchDeployments {
			b.Fatalf("restore %s with counts %v, errors %v", rres.Phase, rres.Counts, rres.Errors)
		}
		b.ReportMetric(float64(res.Total)/backupTime.Seconds(), "backup-objects/s")
		b.ReportMetric(float64(rres.Total)/restoreTime.Seconds(), "restore-objects/s")
		b.ReportMetric(baseRSS, "base-RSS-MiB")
		b.ReportMetric(backupRSS, "backup-peak-RSS-MiB")
		b.ReportMetric(restoreRSS, "restore-peak-RSS-MiB")
		b.ReportMetric(float64(res.Bytes)/(1<<20), "backup-JSON-MiB")
		b.Logf("backup: %d objects, %.1f MiB JSON in %s; restore: %d objects in %s",
			res.Total, float64(res.Bytes)/(1<<20), backupTime.Round(time.Millisecond), rres.Total, restoreTime.Round(time.Millisecond))
	}
}

func createBenchObjects(cs kubernetes.Interface, namespaces []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	value := strings.Repeat("x", 1024)
	for i := range benchConfigMaps {
		ns := namespaces[i%len(namespaces)]
		g.Go(func() error {
			_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%06d", i), Labels: map[string]string{"app": "bench"}},
				Data:       map[string]string{"config": value, "index": strconv.Itoa(i)},
			}, metav1.CreateOptions{})
			return err
		})
	}
	for i := range benchSecrets {
		ns := namespaces[i%len(namespaces)]
		g.Go(func() error {
			_, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("secret-%05d", i), Labels: map[string]string{"app": "bench"}},
				Data:       map[string][]byte{"password": []byte(value[:64] + strconv.Itoa(i))},
			}, metav1.CreateOptions{})
			return err
		})
	}
	replicas := int32(2)
	for i := range benchDeployments {
		ns := namespaces[i%len(namespaces)]
		name := fmt.Sprintf("deploy-%04d", i)
		g.Go(func() error {
			_, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
				Spec: appsv1.DeploymentSpec{
					Replicas: &replicas,
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27",
							Env: []corev1.EnvVar{{Name: "INDEX", Value: strconv.Itoa(i)}}}}},
					},
				},
			}, metav1.CreateOptions{})
			return err
		})
	}
	return g.Wait()
}

// resetPeakRSS makes the kernel's peak resident set size (VmHWM) start again from the current one, after
// returning garbage to the OS, so that each measured step gets its own peak.
func resetPeakRSS(b *testing.B) {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset peak RSS: %v", err)
	}
}

// peakRSS is the process's peak resident set size in MiB since the last reset.
func peakRSS(b *testing.B) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
