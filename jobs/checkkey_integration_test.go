//go:build integration

package jobs_test

import (
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestCheckOpensRepositoryWithLocationKey: location check opens the repository with the location's key. A
// second location on the same bucket and prefix with another passphrase is not Available, and its
// Repository condition is False naming the wrong passphrase; the location with the right passphrase is
// Available with the condition True; a location with no repository yet says the first backup creates one;
// one whose prefix holds something else says it is not a pxb repository.
func TestCheckOpensRepositoryWithLocationKey(t *testing.T) {
	c := testbed.APIServer(t)
	st := testbed.S3(t)
	name := setupOn(t, c, st, 0)
	ctx := ctxT(t, 3*time.Minute)
	kube, dyn := c.Clientset(t), c.Dynamic(t)

	check := func(loc string) (*v1alpha1.BackupLocationStatus, *metav1.Condition) {
		t.Helper()
		s, err := jobs.CheckLocation(ctx, c.Config, loc, jobs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := store.GetLocation(ctx, dyn, loc)
		if err != nil {
			t.Fatal(err)
		}
		return &stored.Status, meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionRepository)
	}

	// No repository yet.
	s, cond := check(name)
	if s.Phase != v1alpha1.LocationAvailable || cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != "NoRepository" ||
		!strings.Contains(cond.Message, "the first backup creates it") {
		t.Fatalf("empty location: phase %s, Repository %+v; want Available, True NoRepository", s.Phase, cond)
	}

	// The first backup makes the repository.
	l, err := store.OpenLocation(ctx, kube, dyn, name, location.Options{}, true)
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	s, cond = check(name)
	if s.Phase != v1alpha1.LocationAvailable || cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != "Opens" {
		t.Fatalf("right passphrase: phase %s, Repository %+v; want Available, True Opens", s.Phase, cond)
	}

	// A second location on the same bucket and prefix, with another passphrase.
	first, err := store.GetLocation(ctx, dyn, name)
	if err != nil {
		t.Fatal(err)
	}
	other := name + "-b"
	if _, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: other + "-key", Labels: map[string]string{v1alpha1.EncryptionKeyLabel: "true"}},
		Data:       map[string][]byte{v1alpha1.EncryptionKeySecretKey: []byte("another passphrase entirely")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	spec := first.Spec
	spec.EncryptionKey = v1alpha1.SecretReference{Name: other + "-key"}
	create(t, c, v1alpha1.BackupLocationsResource, &v1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Name: other, Namespace: v1alpha1.SystemNamespace}, Spec: spec})
	s, cond = check(other)
	avail := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionAvailable)
	if s.Phase == v1alpha1.LocationAvailable || avail == nil || avail.Status != metav1.ConditionFalse {
		t.Errorf("wrong passphrase: phase %s, Available %+v; want not Available", s.Phase, avail)
	}
	if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != "WrongPassphrase" ||
		!strings.Contains(cond.Message, "wrong passphrase") || !strings.Contains(cond.Message, other+"-key") ||
		!strings.Contains(s.Message, "wrong passphrase") {
		t.Errorf("wrong passphrase: message %q, Repository %+v; want False WrongPassphrase naming the Secret", s.Message, cond)
	}
	// The right passphrase still opens it.
	if s, cond = check(name); s.Phase != v1alpha1.LocationAvailable || cond == nil || cond.Status != metav1.ConditionTrue {
		t.Errorf("right passphrase after the other check: phase %s, Repository %+v", s.Phase, cond)
	}

	// A prefix that holds something else.
	foreign := name + "-c"
	if err := blob.PrefixedBucket(st.OpenT(t), "elsewhere/").WriteAll(ctx, "report.csv", []byte("a,b\n"), nil); err != nil {
		t.Fatal(err)
	}
	spec = first.Spec
	spec.Prefix = "elsewhere"
	create(t, c, v1alpha1.BackupLocationsResource, &v1alpha1.BackupLocation{
		ObjectMeta: metav1.ObjectMeta{Name: foreign, Namespace: v1alpha1.SystemNamespace}, Spec: spec})
	s, cond = check(foreign)
	if s.Phase == v1alpha1.LocationAvailable || cond == nil || cond.Reason != "NotARepository" || !strings.Contains(cond.Message, "report.csv") {
		t.Errorf("foreign prefix: phase %s, Repository %+v; want not Available, NotARepository naming report.csv", s.Phase, cond)
	}
}
