//go:build integration

package jobs_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// eventsOn are the Events regarding the object kind/name in namespace ns, oldest first, as the API server
// lists them (what kubectl get events shows), each as "type reason: note".
func eventsOn(t *testing.T, kube kubernetes.Interface, ns, kind, name string) []eventsv1.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := kube.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func describeEvents(evs []eventsv1.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %s %s (%s, %s): %s", e.Type, e.Reason, e.ReportingController, e.Action, e.Note)
	}
	return b.String()
}

// hasEvent says whether evs holds an Event of type and reason whose note contains every one of notes.
func hasEvent(evs []eventsv1.Event, typ, reason string, notes ...string) bool {
	for _, e := range evs {
		if e.Type != typ || e.Reason != reason {
			continue
		}
		all := true
		for _, n := range notes {
			all = all && strings.Contains(e.Note, n)
		}
		if all {
			return true
		}
	}
	return false
}

// completedAndFailed runs, as the backup Job's identity, Backup "nightly" of an application in a namespace of
// its own, which completes, and Backup "nowhere" into a location that does not exist, which fails; it
// returns the location and the namespace.
func completedAndFailed(t *testing.T, c *testbed.Cluster) (string, string) {
	t.Helper()
	locName := setup(t, c)
	ns := c.Namespace(t)
	app(t, c.Clientset(t), ns)
	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: ns},
		Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(locName)},
	})
	if err := jobs.Backup(ctxT(t, 2*time.Minute), jobIdentity(t, c, jobspec.KindBackup), ns, "nightly", jobs.Options{}); err != nil {
		t.Fatalf("backup job: %v", err)
	}
	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "nowhere", Namespace: ns},
		Spec:       v1alpha1.BackupSpec{Location: "no-such-location"},
	})
	if err := jobs.Backup(ctxT(t, time.Minute), jobIdentity(t, c, jobspec.KindBackup), ns, "nowhere", jobs.Options{}); err == nil {
		t.Fatal("a backup to a missing location succeeded")
	}
	return locName, ns
}

// TestJobsRecordEvents: backup and check Jobs, each as its own identity, record Events on their objects that
// say what a user asks of a backup: it started, it completed with where the data is, it failed and why, the
// location is unavailable and why.
func TestJobsRecordEvents(t *testing.T) {
	c := testbed.APIServer(t)
	locName, ns := completedAndFailed(t, c)
	kube := c.Clientset(t)
	host, _ := os.Hostname()

	var b v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, "nightly", &b)
	evs := eventsOn(t, kube, ns, "Backup", "nightly")
	if len(evs) != 2 || !hasEvent(evs, corev1.EventTypeNormal, "Started", "location "+locName) ||
		!hasEvent(evs, corev1.EventTypeNormal, "Completed", b.Status.Message) {
		t.Errorf("events of a completed backup (status message %q):%s", b.Status.Message, describeEvents(evs))
	}
	for _, e := range evs {
		if e.Regarding.UID != b.UID || e.Regarding.APIVersion != v1alpha1.SchemeGroupVersion.String() ||
			e.ReportingController != "pxb.dev/backup-job" || e.ReportingInstance != host || e.Action != "Backup" {
			t.Errorf("event %s: regarding %+v, reported by %s/%s, action %s", e.Reason, e.Regarding, e.ReportingController, e.ReportingInstance, e.Action)
		}
	}

	// A backup whose location does not exist fails, and says so, naming the location.
	evs = eventsOn(t, kube, ns, "Backup", "nowhere")
	if !hasEvent(evs, corev1.EventTypeWarning, "LocationUnavailable", "location no-such-location is unavailable", "not found") ||
		!hasEvent(evs, corev1.EventTypeWarning, "Failed", `BackupLocation "no-such-location" not found`) ||
		hasEvent(evs, corev1.EventTypeNormal, "Completed") {
		t.Errorf("events of a failed backup:%s", describeEvents(evs))
	}

	// A check of a location whose bucket is gone says it is unavailable, on the location in pxb-system, and
	// no credential shows in what it says.
	create(t, c, v1alpha1.BackupLocationsResource, &v1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Name: locName + "-gone", Namespace: v1alpha1.SystemNamespace},
		Spec: v1alpha1.BackupLocationSpec{
			Provider: v1alpha1.ProviderS3, Bucket: "no-such-bucket-" + locName, Endpoint: testbed.S3(t).Endpoint, Region: "us-east-1",
			S3ForcePathStyle: true, Credential: &v1alpha1.SecretReference{Name: locName + "-cred"},
			EncryptionKey: v1alpha1.SecretReference{Name: locName + "-key"},
		},
	})
	st, err := jobs.CheckLocation(ctxT(t, 2*time.Minute), jobIdentity(t, c, jobspec.KindCheck), locName+"-gone", jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	evs = eventsOn(t, kube, v1alpha1.SystemNamespace, "BackupLocation", locName+"-gone")
	if st.Phase != v1alpha1.LocationUnavailable || len(evs) != 1 || !hasEvent(evs, corev1.EventTypeWarning, "LocationUnavailable", st.Message) ||
		evs[0].ReportingController != "pxb.dev/check-job" {
		t.Errorf("events of an unavailable location (phase %s, message %q):%s", st.Phase, st.Message, describeEvents(evs))
	}
	cred, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Get(ctxT(t, time.Minute), locName+"-cred", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if strings.Contains(e.Note, string(cred.Data[v1alpha1.S3SecretAccessKey])) {
			t.Errorf("event %s holds the location's secret key: %s", e.Reason, e.Note)
		}
	}
}
