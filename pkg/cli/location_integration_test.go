//go:build integration

package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestCredentialsAndLocations drives credential and location commands the way an administrator would, and
// checks what lands in the cluster. It installs pxb and uninstalls it at the end.
func TestCredentialsAndLocations(t *testing.T) {
	c := testbed.APIServer(t)
	kube := c.Clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mustPxb(t, c, "install")
	t.Cleanup(func() { _, _ = pxb(t, c, "uninstall", "--purge", "--force") })

	dir := t.TempDir()
	awsFile := filepath.Join(dir, "credentials")
	if err := os.WriteFile(awsFile, []byte("[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = s3cr3t-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := pxb(t, c, "credential", "create", "s3-lab", "--provider", "aws")
	if err == nil || !strings.Contains(err.Error(), "--from-file is required") {
		t.Fatalf("create without --from-file: err=%v out=%s", err, out)
	}
	out = mustPxb(t, c, "credential", "create", "s3-lab", "--provider", "aws", "--from-file", awsFile)
	if strings.Contains(out, "s3cr3t-value") {
		t.Fatalf("credential create printed the secret:\n%s", out)
	}
	s, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Get(ctx, "s3-lab", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Data[v1alpha1.S3AccessKeyID]) != "AKIDEXAMPLE" || string(s.Data[v1alpha1.S3SecretAccessKey]) != "s3cr3t-value" ||
		s.Labels[v1alpha1.CredentialLabel] != "aws" {
		t.Fatalf("credential Secret: labels %v, keys %v", s.Labels, keys(s.Data))
	}

	// A location with a generated passphrase; a location referring to a missing credential is refused.
	if out, err := pxb(t, c, "location", "create", "bad", "--provider", "s3", "--bucket", "b1", "--credential", "nope"); err == nil ||
		!strings.Contains(err.Error(), `--credential: credential "nope" not found`) {
		t.Fatalf("location with a missing credential: err=%v out=%s", err, out)
	}
	out = mustPxb(t, c, "location", "create", "lab", "--provider", "s3", "--bucket", "pxb-lab", "--endpoint", "http://127.0.0.1:9",
		"--s3-force-path-style", "--prefix", "cluster-a", "--credential", "s3-lab", "--allowed-namespaces", "*")
	wantLines(t, out, "backuplocation.pxb.dev/lab created", "lab-encryption-key")
	key, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Get(ctx, "lab-encryption-key", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := key.Data[v1alpha1.EncryptionKeySecretKey]; len(p) < 32 || key.Labels[v1alpha1.EncryptionKeyLabel] != "lab" {
		t.Fatalf("generated key: %d bytes, labels %v", len(p), key.Labels)
	}
	if strings.Contains(out, string(key.Data[v1alpha1.EncryptionKeySecretKey])) {
		t.Fatal("location create printed the passphrase")
	}

	// The API server's schema still judges the spec: s3 without a bucket.
	if out, err := pxb(t, c, "location", "create", "nobucket", "--provider", "s3", "--credential", "s3-lab"); err == nil ||
		!strings.Contains(err.Error(), "bucket is required") {
		t.Fatalf("location without bucket: err=%v out=%s", err, out)
	}
	if _, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Get(ctx, "nobucket-encryption-key", metav1.GetOptions{}); err == nil {
		t.Fatal("a refused location left its encryption key Secret behind")
	}

	wantLines(t, mustPxb(t, c, "location", "get"), "lab")
	wantLines(t, mustPxb(t, c, "location", "get", "lab", "-o", "yaml"), "bucket: pxb-lab", "prefix: cluster-a")
	wantStatus(t, mustPxb(t, c, "location", "describe", "lab"),
		"Provider", "s3", "Bucket", "pxb-lab", "Prefix", "cluster-a", "Credential", "s3-lab",
		"Encryption key", "Secret pxb-system/lab-encryption-key", "Backups", "0")
	get := mustPxb(t, c, "credential", "get")
	wantLines(t, get, "s3-lab", "aws", "lab")
	if strings.Contains(get, "s3cr3t-value") || strings.Contains(mustPxb(t, c, "credential", "get", "-o", "yaml"), "s3cr3t-value") {
		t.Fatal("credential get shows the secret")
	}

	// export-key gives another cluster the passphrase and the location, nothing else.
	exported := mustPxb(t, c, "location", "export-key", "lab")
	docs := strings.Split(exported, "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("export-key: want 2 YAML documents:\n%s", exported)
	}
	var gotKey corev1.Secret
	var gotLoc v1alpha1.BackupLocation
	if err := yaml.Unmarshal([]byte(docs[0]), &gotKey); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(docs[1]), &gotLoc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotKey.Data[v1alpha1.EncryptionKeySecretKey], key.Data[v1alpha1.EncryptionKeySecretKey]) || gotKey.Name != "lab-encryption-key" {
		t.Fatalf("exported key Secret %s does not hold the location's passphrase", gotKey.Name)
	}
	if gotLoc.Kind != "BackupLocation" || gotLoc.Spec.Bucket != "pxb-lab" || gotLoc.Spec.Prefix != "cluster-a" || gotLoc.Spec.EncryptionKey.Name != "lab-encryption-key" {
		t.Fatalf("exported location: %+v", gotLoc)
	}
	if strings.Contains(exported, "s3cr3t-value") {
		t.Fatal("export-key leaked the credential")
	}

	// Refusals while in use.
	if out, err := pxb(t, c, "credential", "delete", "s3-lab"); err == nil || !strings.Contains(err.Error(), "used by backup location(s) lab") {
		t.Fatalf("credential delete while used: err=%v out=%s", err, out)
	}
	ns := c.Namespace(t)
	backup := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "Backup",
		"metadata": map[string]any{"name": "nightly", "namespace": ns},
		"spec":     map[string]any{"location": "lab"},
	}}
	dyn := c.Dynamic(t)
	if _, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).Create(ctx, backup, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := pxb(t, c, "location", "delete", "lab"); err == nil || !strings.Contains(err.Error(), "holds 1 backup(s) ("+ns+"/nightly)") {
		t.Fatalf("location delete with a backup: err=%v out=%s", err, out)
	}
	wantLines(t, mustPxb(t, c, "location", "delete", "lab", "--keep-backups"), "deleted (data and encryption key kept)")
	if _, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Get(ctx, "lab-encryption-key", metav1.GetOptions{}); err != nil {
		t.Fatalf("deleting the location removed its key: %v", err)
	}
	wantLines(t, mustPxb(t, c, "credential", "delete", "s3-lab"), "credential s3-lab deleted")
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
