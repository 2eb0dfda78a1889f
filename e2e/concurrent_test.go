//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pxb-dev/pxb/e2e/framework"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/layout"
)

// TestConcurrentFirstBackups: two backups started at the same moment into a new, empty location both
// complete, the location ends with one repository (a single key slot), and each backup restores byte for
// byte. Before the fix both backups initialised the repository, each with its own master key, and both said
// Completed while neither could be restored. The race depends on timing, so it runs several rounds, each on
// a location of its own. The race is in the location, not the cluster: one cluster runs it.
func TestConcurrentFirstBackups(t *testing.T) {
	c := framework.Get(t, clusters()[0])
	for round := 1; round <= 3; round++ {
		t.Run(fmt.Sprintf("round-%d", round), func(t *testing.T) { concurrentFirstBackups(t, c, round) })
	}
}

// concurrentFirstBackups is one round: two namespaces, each with a volume and a ConfigMap of its own, backed
// up at once into a fresh location, then restored into new namespaces.
func concurrentFirstBackups(t *testing.T, c *framework.Cluster, round int) {
	const timeout = 5 * time.Minute
	ns := [2]string{c.Namespace(t), c.Namespace(t)}
	// A fresh bucket: the location holds no repository, so both backups find it empty.
	loc := volumeLocation(t, c, ns[0])
	if keys := keySlots(t, c, loc); len(keys) != 0 {
		t.Fatalf("the new location %s already holds key slots %v", loc, keys)
	}

	var want [2]framework.Manifest
	var backups [2]string
	for i := range ns {
		c.PVC(t, ns[i], "data", framework.StorageClass, nil)
		// Distinct seeds, so that a restore given the other backup's data shows.
		want[i] = c.WriteRich(t, ns[i], "data", framework.Rich{Seed: uint64(100*round + i), Small: 20, Large: 1 << 20})
		c.Apply(t, ns[i], fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {owner: %s}\n", ns[i]))
		backups[i] = "first-" + suffix(ns[i])
		deleteAtEnd(t, c, v1alpha1.BackupsResource, backups[i])
	}

	// Both commands are built and waiting before either starts, so that their Jobs find the location empty
	// at about the same time.
	before := c.Inventory(t)
	var out [2]string
	var errs [2]error
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range ns {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			args := []string{"backup", "create", backups[i], "-n", "pxb-system", "--include-namespaces", ns[i],
				"--location", loc, "--wait", "--timeout", timeout.String()}
			ready.Done()
			<-start
			// c.Pxb fails the test only when the plugin does not build, and volumeLocation built it already:
			// nothing here calls t.Fatal off the test's goroutine.
			out[i], errs[i] = c.Pxb(t, timeout+time.Minute, args...)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()

	// Both are checked before the test stops, so that a failure shows what each backup said.
	for i, name := range backups {
		t.Logf("kubectl pxb backup create %s:\n%s", name, out[i])
		b := c.WaitForEnd(t, v1alpha1.BackupsResource, "pxb-system", name, time.Minute)
		msg, _, _ := unstructured.NestedString(b.Object, "status", "message")
		if phase := framework.Phase(b); phase != "Completed" || errs[i] != nil {
			t.Errorf("backup %s of %s ended %s (command error: %v), want Completed; status.message: %q\n%s",
				name, ns[i], phase, errs[i], msg, c.PodLogs(t, "pxb-system", "pxb.dev/backup="+name))
		} else if v := framework.Volume(t, b, "data", ns[i]); v.Phase != "Completed" {
			t.Errorf("backup %s volume %v: want phase Completed", name, v)
		}
	}
	logStartSpread(t, c, backups)
	if keys := keySlots(t, c, loc); len(keys) != 1 {
		t.Errorf("location %s holds %d key slots %v after two first backups, want exactly 1: each backup made a repository of its own",
			loc, len(keys), keys)
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, name := range backups {
		c.WaitNoLeftovers(t, "pxb.dev/backup="+name, before, 2*time.Minute)
	}

	for i, name := range backups {
		target := c.Namespace(t)
		r, err := restoreCreate(t, c, name+"-r", name, timeout, "--namespace-mappings", ns[i]+":"+target)
		requireEnded(t, c, r, err, "Completed", "pxb.dev/restore")
		framework.CompareManifests(t, fmt.Sprintf("volume of %s restored from %s (started beside another first backup)", ns[i], name),
			want[i], c.Manifest(t, target, "data"))
		cm, err := c.Kube.CoreV1().ConfigMaps(target).Get(framework.Context(t, 30*time.Second), "settings", metav1.GetOptions{})
		if err != nil {
			t.Errorf("ConfigMap settings restored from %s into %s: %v", name, target, err)
		} else if got := cm.Data["owner"]; got != ns[i] {
			t.Errorf("ConfigMap settings restored from %s into %s has owner %q, want %q", name, target, got, ns[i])
		}
	}
}

// keySlots lists the objects under keys/ of the repository in BackupLocation loc, straight from the S3
// server: where the location's spec puts the repository (its bucket, under its prefix if any).
func keySlots(t *testing.T, c *framework.Cluster, loc string) []string {
	t.Helper()
	ctx := framework.Context(t, time.Minute)
	l, err := c.Dynamic.Resource(v1alpha1.BackupLocationsResource).Namespace(v1alpha1.SystemNamespace).Get(ctx, loc, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get BackupLocation %s: %v", loc, err)
	}
	bucket, _, _ := unstructured.NestedString(l.Object, "spec", "bucket")
	prefix, _, _ := unstructured.NestedString(l.Object, "spec", "prefix")
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		prefix += "/"
	}
	client := c.S3.Client()
	var keys []string
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + layout.KeysPrefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("list s3://%s/%s%s: %v", bucket, prefix, layout.KeysPrefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// logStartSpread logs how far apart the backups' Jobs started their containers: the race needs both to find
// the location empty, so a round whose Jobs started far apart proved little. The pods may be gone already;
// then it says nothing.
func logStartSpread(t *testing.T, c *framework.Cluster, backups [2]string) {
	t.Helper()
	var starts []time.Time
	for _, name := range backups {
		pods, err := c.Kube.CoreV1().Pods("pxb-system").List(framework.Context(t, 30*time.Second),
			metav1.ListOptions{LabelSelector: "pxb.dev/backup=" + name + ",pxb.dev/job=backup"})
		if err != nil {
			return
		}
		var first time.Time
		for _, p := range pods.Items {
			for _, s := range p.Status.ContainerStatuses {
				var at metav1.Time
				switch {
				case s.State.Terminated != nil:
					at = s.State.Terminated.StartedAt
				case s.State.Running != nil:
					at = s.State.Running.StartedAt
				}
				if !at.IsZero() && (first.IsZero() || at.Time.Before(first)) {
					first = at.Time
				}
			}
		}
		if first.IsZero() {
			return
		}
		starts = append(starts, first)
	}
	d := starts[1].Sub(starts[0])
	if d < 0 {
		d = -d
	}
	t.Logf("the backup Jobs of %s and %s started %s apart", backups[0], backups[1], d)
}
