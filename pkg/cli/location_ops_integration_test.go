//go:build integration

package cli_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// s3Location creates credential NAME and location NAME on store, the way an administrator would.
func s3Location(t *testing.T, c *testbed.Cluster, name string, st *testbed.Store, accessKey, secretKey string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "credentials")
	creds := "[default]\naws_access_key_id = " + accessKey + "\naws_secret_access_key = " + secretKey + "\n"
	if err := os.WriteFile(file, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	mustPxb(t, c, "credential", "create", name, "--provider", "aws", "--from-file", file)
	mustPxb(t, c, "location", "create", name, "--provider", "s3", "--bucket", st.Bucket, "--endpoint", st.Endpoint,
		"--region", st.Region, "--s3-force-path-style", "--credential", name, "--allowed-namespaces", "*")
}

func passphraseOf(t *testing.T, c *testbed.Cluster, location string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.Clientset(t).CoreV1().Secrets(v1alpha1.SystemNamespace).Get(ctx, location+"-encryption-key", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Data[v1alpha1.EncryptionKeySecretKey]
}

// TestLocationOperations covers rotate-key and check against versitygw. It installs pxb and uninstalls it at
// the end.
func TestLocationOperations(t *testing.T) {
	c := testbed.APIServer(t)
	mustPxb(t, c, "install")
	t.Cleanup(func() { _, _ = pxb(t, c, "uninstall", "--purge", "--force") })

	// Under object lock the new key slot is locked like everything else: without it, whoever holds the
	// bucket's credential could delete the only slot and with it every backup.
	t.Run("rotate-key under object lock", func(t *testing.T) {
		st := testbed.S3Locked(t)
		file := filepath.Join(t.TempDir(), "credentials")
		if err := os.WriteFile(file, []byte("[default]\naws_access_key_id = "+st.AccessKeyID+"\naws_secret_access_key = "+st.SecretAccessKey+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		mustPxb(t, c, "credential", "create", "vault", "--provider", "aws", "--from-file", file)
		mustPxb(t, c, "location", "create", "vault", "--provider", "s3", "--bucket", st.Bucket, "--endpoint", st.Endpoint,
			"--region", st.Region, "--s3-force-path-style", "--credential", "vault", "--object-lock-days", "1")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		l, err := store.OpenLocation(ctx, c.Clientset(t), c.Dynamic(t), "vault", location.Options{}, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		newFile := filepath.Join(t.TempDir(), "new")
		if err := os.WriteFile(newFile, []byte("another passphrase\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		mustPxb(t, c, "location", "rotate-key", "vault", "--new-passphrase-file", newFile)
		b := st.OpenT(t)
		var client *s3.Client
		if !b.As(&client) {
			t.Fatal("not an S3 bucket")
		}
		list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(st.Bucket), Prefix: aws.String(layout.KeysPrefix)})
		if err != nil || len(list.Contents) != 1 {
			t.Fatalf("key slots after the rotation: %v, %v; want the new one", list, err)
		}
		head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(st.Bucket), Key: list.Contents[0].Key})
		if err != nil {
			t.Fatal(err)
		}
		if until := head.ObjectLockRetainUntilDate; until == nil || until.Before(time.Now().Add(23*time.Hour)) {
			t.Errorf("new key slot %s retained until %v, want about a day ahead", aws.ToString(list.Contents[0].Key), until)
		}
	})

	t.Run("rotate-key", func(t *testing.T) {
		st := testbed.S3(t)
		s3Location(t, c, "rotate", st, st.AccessKeyID, st.SecretAccessKey)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()

		// Before any backup there is no repository and nothing to rotate.
		out, err := pxb(t, c, "location", "rotate-key", "rotate")
		if err == nil || !strings.Contains(err.Error(), "holds no repository yet") {
			t.Fatalf("rotate-key without a repository: err=%v out=%s", err, out)
		}

		// Something written before the rotation, the way a backup Job writes it.
		kube, dyn := c.Clientset(t), c.Dynamic(t)
		l, err := store.OpenLocation(ctx, kube, dyn, "rotate", location.Options{}, true)
		if err != nil {
			t.Fatal(err)
		}
		before := layout.BackupPrefix("ns", "before")
		key := before + "objects.json"
		if err := l.Store.Put(ctx, key, strings.NewReader("written before the rotation")); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Commit(ctx, before); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		old := passphraseOf(t, c, "rotate")

		newFile := filepath.Join(t.TempDir(), "new")
		if err := os.WriteFile(newFile, []byte("a brand new passphrase\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out = mustPxb(t, c, "location", "rotate-key", "rotate", "--new-passphrase-file", newFile)
		wantLines(t, out, "encryption key of location rotate rotated", "1 old key slot(s) removed")
		if strings.Contains(out, "a brand new passphrase") || strings.Contains(out, string(old)) {
			t.Fatalf("rotate-key printed a passphrase:\n%s", out)
		}
		if got := string(passphraseOf(t, c, "rotate")); got != "a brand new passphrase" {
			t.Fatalf("Secret after rotation holds %d bytes, not the new passphrase", len(got))
		}

		// The new passphrase (now in the Secret) reads what was written before.
		l, err = store.OpenLocation(ctx, kube, dyn, "rotate", location.Options{}, false)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Store.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		_ = rc.Close()
		_ = l.Close()
		if err != nil || string(data) != "written before the rotation" {
			t.Fatalf("read after rotation: %q, %v", data, err)
		}

		// The old passphrase no longer opens the repository, and says so.
		b := st.OpenT(t)
		_, err = repo.Open(ctx, b, old, repo.Options{})
		if !errors.Is(err, repo.ErrWrongPassphrase) || !strings.Contains(err.Error(), "wrong passphrase") {
			t.Fatalf("open with the old passphrase: %v", err)
		}

		// A second rotation with a generated passphrase works the same way.
		wantLines(t, mustPxb(t, c, "location", "rotate-key", "rotate"), "1 old key slot(s) removed")
		if p := passphraseOf(t, c, "rotate"); len(p) < 32 || string(p) == "a brand new passphrase" {
			t.Fatalf("generated passphrase: %d bytes", len(p))
		}
		if _, err := repo.Open(ctx, b, []byte("a brand new passphrase"), repo.Options{}); !errors.Is(err, repo.ErrWrongPassphrase) {
			t.Fatalf("open with the first rotation's passphrase: %v", err)
		}
	})

	t.Run("check", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		st := testbed.S3(t)
		s3Location(t, c, "avail", st, st.AccessKeyID, st.SecretAccessKey)
		s3Location(t, c, "badsecret", st, st.AccessKeyID, "not-the-secret")
		missing := *st
		missing.Bucket = "pxb-no-such-bucket"
		s3Location(t, c, "nobucket", &missing, st.AccessKeyID, st.SecretAccessKey)
		locked := testbed.S3Locked(t)
		s3Location(t, c, "locked", locked, locked.AccessKeyID, locked.SecretAccessKey)
		// Object lock asked of a bucket that cannot keep it.
		mustPxb(t, c, "location", "create", "wantlock", "--provider", "s3", "--bucket", st.Bucket, "--endpoint", st.Endpoint,
			"--region", st.Region, "--s3-force-path-style", "--credential", "avail", "--object-lock-days", "1")

		// The Job's own function, in-process, against the real apiserver and versitygw.
		for _, tc := range []struct {
			name, phase, message string
			lock                 metav1.ConditionStatus
		}{
			{"avail", "Available", "write, read, list and delete of a probe object succeeded; object lock: not enabled on bucket", metav1.ConditionFalse},
			{"locked", "Available", "object lock: enabled on bucket " + locked.Bucket, metav1.ConditionTrue},
			{"badsecret", "Unavailable", "access denied: the credential is wrong", ""},
			{"nobucket", "Unavailable", "bucket not found: create it, or fix the location's bucket name", ""},
			{"wantlock", "Unavailable", "objectLockDays is 1 but object lock: not enabled on bucket " + st.Bucket, metav1.ConditionFalse},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, err := jobs.CheckLocation(ctx, c.Config, tc.name, jobs.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if string(st.Phase) != tc.phase || !strings.Contains(st.Message, tc.message) {
					t.Fatalf("check %s: phase %s, message %q; want %s, %q", tc.name, st.Phase, st.Message, tc.phase, tc.message)
				}
				// What a user sees.
				l, err := store.GetLocation(ctx, c.Dynamic(t), tc.name)
				if err != nil {
					t.Fatal(err)
				}
				if string(l.Status.Phase) != tc.phase || l.Status.Message != st.Message || l.Status.LastValidationTime == nil ||
					time.Since(l.Status.LastValidationTime.Time) > time.Minute {
					t.Fatalf("stored status %+v", l.Status)
				}
				avail := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionAvailable)
				want := metav1.ConditionTrue
				if tc.phase != "Available" {
					want = metav1.ConditionFalse
				}
				if avail == nil || avail.Status != want || avail.Message != st.Message {
					t.Fatalf("Available condition %+v", avail)
				}
				if lock := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionObjectLock); tc.lock != "" && (lock == nil || lock.Status != tc.lock) {
					t.Fatalf("ObjectLock condition %+v, want %s", lock, tc.lock)
				}
				out := mustPxb(t, c, "location", "describe", tc.name)
				wantStatus(t, out, "Phase", tc.phase)
				wantLines(t, out, tc.message)
				if strings.Contains(out, "not-the-secret") || strings.Contains(st.Message, "not-the-secret") {
					t.Fatal("the secret leaked into the status")
				}
			})
		}
		get := mustPxb(t, c, "location", "get")
		for _, line := range strings.Split(get, "\n") {
			if f := strings.Fields(line); len(f) > 0 && (f[0] == "avail" && !strings.Contains(line, "Available") ||
				f[0] == "nobucket" && !strings.Contains(line, "Unavailable")) {
				t.Errorf("location get: %q", line)
			}
		}

		// The command launches a Job per check, shaped like the other Jobs; the test bed runs no pods, so it
		// cannot finish here (the e2e suite runs it on a real cluster).
		out := mustPxb(t, c, "location", "check", "avail", "--wait=false")
		wantLines(t, out, "runs the check of location avail", "kubectl pxb location describe avail")
		jobs, err := c.Clientset(t).BatchV1().Jobs(v1alpha1.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "pxb.dev/location=avail"})
		if err != nil || len(jobs.Items) != 1 {
			t.Fatalf("check Jobs: %v, %v", jobs, err)
		}
		pod := jobs.Items[0].Spec.Template.Spec
		if got := strings.Join(pod.Containers[0].Args, " "); got != "check --resource backuplocations --namespace pxb-system --name avail" ||
			pod.ServiceAccountName != v1alpha1.LocationServiceAccount {
			t.Fatalf("check Job runs %q as %s", got, pod.ServiceAccountName)
		}
		if out, err := pxb(t, c, "location", "check", "avail", "--timeout", "2s"); err == nil || !strings.Contains(err.Error(), "did not finish within 2s") {
			t.Fatalf("check that cannot run: err=%v out=%s", err, out)
		}
		if out, err := pxb(t, c, "location", "check", "nope"); err == nil || !strings.Contains(err.Error(), `BackupLocation "nope" not found`) {
			t.Fatalf("check of a missing location: err=%v out=%s", err, out)
		}
	})

	// This kernel cannot mount NFS and the test bed runs no pods: what is checked is that the API server
	// accepts the Job, volume and claim that mount the export with its options.
	t.Run("nfs", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		mustPxb(t, c, "location", "create", "filer", "--provider", "nfs", "--nfs-server", "filer.lab", "--nfs-path", "/export/backups",
			"--nfs-mount-options", "nfsvers=4.1,hard")
		wantLines(t, mustPxb(t, c, "location", "check", "filer", "--wait=false"), "runs the check of location filer")
		kube := c.Clientset(t)
		jobs, err := kube.BatchV1().Jobs(v1alpha1.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "pxb.dev/location=filer"})
		if err != nil || len(jobs.Items) != 1 {
			t.Fatalf("check Jobs: %v, %v", jobs, err)
		}
		claim := ""
		for _, v := range jobs.Items[0].Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				claim = v.PersistentVolumeClaim.ClaimName
			}
		}
		pvc, err := kube.CoreV1().PersistentVolumeClaims(v1alpha1.SystemNamespace).Get(ctx, claim, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("claim %q of the check Job: %v", claim, err)
		}
		pv, err := kube.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pv.Spec.NFS == nil || pv.Spec.NFS.Server != "filer.lab" || strings.Join(pv.Spec.MountOptions, ",") != "nfsvers=4.1,hard" {
			t.Fatalf("PersistentVolume %s: %+v", pv.Name, pv.Spec)
		}
		// A second check reuses them.
		mustPxb(t, c, "location", "check", "filer", "--wait=false")
		pvs, err := kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: "pxb.dev/location=filer"})
		if err != nil || len(pvs.Items) != 1 {
			t.Fatalf("PersistentVolumes after two checks: %v, %v", pvs, err)
		}
		// Deleting the location deletes them (the export's data is not touched: the volume is Retain).
		mustPxb(t, c, "location", "delete", "filer")
		for what, get := range map[string]func() (metav1.Object, error){
			"claim " + pvc.Name: func() (metav1.Object, error) {
				return kube.CoreV1().PersistentVolumeClaims(v1alpha1.SystemNamespace).Get(ctx, pvc.Name, metav1.GetOptions{})
			},
			"PersistentVolume " + pv.Name: func() (metav1.Object, error) {
				return kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
			},
		} {
			// Gone, or going once the protection finalizers are dropped.
			if o, err := get(); err == nil && o.GetDeletionTimestamp() == nil {
				t.Errorf("%s kept after its location was deleted", what)
			}
		}
		// The test bed runs no pvc-protection or pv-protection controller, which would drop these finalizers
		// once no pod uses them; without that, pxb-system could never be deleted by uninstall.
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			unprotect := []byte(`{"metadata":{"finalizers":null}}`)
			claims := kube.CoreV1().PersistentVolumeClaims(v1alpha1.SystemNamespace)
			if _, err := claims.Patch(ctx, pvc.Name, types.MergePatchType, unprotect, metav1.PatchOptions{}); err != nil {
				t.Error(err)
			}
			if _, err := kube.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType, unprotect, metav1.PatchOptions{}); err != nil {
				t.Error(err)
			}
			_ = claims.Delete(ctx, pvc.Name, metav1.DeleteOptions{})
			_ = kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
		})
	})
}
