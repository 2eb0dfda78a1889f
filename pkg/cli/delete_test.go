package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/store"
)

// refusedOpen is the error of opening a repository over S3 at a port nothing listens on, through the real
// client stack (SDK retries, gocloud, the repository).
func refusedOpen(t *testing.T) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderS3, Bucket: "b", Endpoint: "http://" + addr, S3ForcePathStyle: true}
	b, err := location.Open(ctx, spec, location.Credentials{v1alpha1.S3AccessKeyID: []byte("id"), v1alpha1.S3SecretAccessKey: []byte("secret")}, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = repo.Open(ctx, b, []byte("passphrase"), repo.Options{})
	if err == nil {
		t.Fatalf("opened a repository at %s, where nothing listens", addr)
	}
	return fmt.Errorf("open the repository of BackupLocation prod: %w", err)
}

// TestInClusterReason: the plugin hands the deletion of a backup's data to a Job in the cluster for an NFS
// location, and for one whose endpoint does not resolve or answer from its machine; every other failure to
// open the location (credential, passphrase, bucket, Secrets, TLS) would meet the Job too and is reported as
// it is, from the plugin.
func TestInClusterReason(t *testing.T) {
	s3 := &v1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: "prod"}, Spec: v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderS3}}
	nfs := &v1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: "filer"}, Spec: v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderNFS}}
	inCluster := func(host string, err error) error {
		return fmt.Errorf("open the repository of BackupLocation prod: %w",
			&url.Error{Op: "Get", URL: "http://" + host + "/b/config", Err: err})
	}
	secrets := schema.GroupResource{Resource: "secrets"}
	for _, tc := range []struct {
		name string
		loc  *v1alpha1.BackupLocation
		err  error
		want string // in the reason; "" for no Job
	}{
		{"nfs export", nfs, errors.New("open BackupLocation filer: nfs location needs the export mounted: run through a pxb Job, which mounts it"),
			"location filer is an NFS export"},
		{"name only the cluster resolves", s3, inCluster("minio.storage.svc:9000", &net.OpError{Op: "dial", Net: "tcp",
			Err: &net.DNSError{Err: "no such host", Name: "minio.storage.svc", IsNotFound: true}}),
			"location prod cannot be reached from this machine (lookup minio.storage.svc: no such host)"},
		{"proxy that does not resolve", s3, inCluster("10.0.0.9:9000", &net.OpError{Op: "proxyconnect", Net: "tcp",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "proxy.corp", IsNotFound: true}}}),
			"(lookup proxy.corp: no such host)"},
		{"connection refused", s3, refusedOpen(t), "connect: connection refused"},
		{"wrong passphrase", s3, fmt.Errorf("open the repository of BackupLocation prod: %w", repo.ErrWrongPassphrase), ""},
		{"access denied", s3, errors.New("open the repository of BackupLocation prod: access denied: the credential is wrong (AccessDenied)"), ""},
		{"untrusted certificate", s3, inCluster("s3.example:443", x509.UnknownAuthorityError{}), ""},
		{"certificate refused by the server", s3, inCluster("s3.example:443", &net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}), ""},
		{"connection reset after connecting", s3, inCluster("s3.example:443", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}), ""},
		{"encryption key Secret missing", s3, fmt.Errorf("get encryption key Secret: %w", apierrors.NewNotFound(secrets, "prod-key")), ""},
		{"Secrets forbidden", s3, fmt.Errorf("get credential Secret: %w", apierrors.NewForbidden(secrets, "prod-cred", errors.New("no rights"))), ""},
		{"object lock", s3, &store.LockedError{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := inClusterReason(tc.loc, tc.err)
			switch {
			case tc.want == "" && got != "":
				t.Errorf("a Job would delete the data (%q), but the cluster meets the same failure: %v", got, tc.err)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("reason %q, want one with %q for %v", got, tc.want, tc.err)
			}
		})
	}
}
