package location

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// Probe proves that the bucket can be written, read, listed and deleted, the way backups will use it. The
// error says in plain words which step failed and what the provider answered.
func Probe(ctx context.Context, b *blob.Bucket) error {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("probe id: %w", err)
	}
	key := layout.ProbeKey(hex.EncodeToString(id))
	payload := []byte("pxb location probe " + key)

	if err := b.WriteAll(ctx, key, payload, nil); err != nil {
		return fmt.Errorf("write %s: %s", key, Explain(err))
	}
	got, err := b.ReadAll(ctx, key)
	if err != nil {
		return fmt.Errorf("read back %s: %s", key, Explain(err))
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("read back %s: got %d bytes that differ from the %d written: the store does not return what it stores",
			key, len(got), len(payload))
	}
	found := false
	it := b.List(&blob.ListOptions{Prefix: layout.ProbePrefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("list %s: %s", layout.ProbePrefix, Explain(err))
		}
		if obj.Key == key {
			found = true
			break
		}
	}
	if !found {
		return fmt.Errorf("list %s: the object just written is not listed", layout.ProbePrefix)
	}
	if err := b.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %s", key, Explain(err))
	}
	return nil
}

// Explain says what a storage error means for the user, keeping the provider's own words at the end.
func Explain(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *x509.CertificateInvalidError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &certErr),
		strings.Contains(msg, "x509:"), strings.Contains(msg, "tls:"):
		return "TLS failure: the endpoint's certificate is not trusted; set the location's caCert to the CA that signed it (" + msg + ")"
	case errors.As(err, &dnsErr):
		return "endpoint unreachable: its host name does not resolve (" + msg + ")"
	case errors.As(err, &opErr), strings.Contains(msg, "connection refused"), strings.Contains(msg, "no such host"),
		strings.Contains(msg, "i/o timeout"):
		return "endpoint unreachable: check the location's endpoint and the network path from the cluster (" + msg + ")"
	}
	switch gcerrors.Code(err) {
	case gcerrors.PermissionDenied:
		return "access denied: the credential is wrong or lacks permission on the bucket (" + msg + ")"
	case gcerrors.NotFound:
		if isMissingBucket(msg) {
			return "bucket not found: create it, or fix the location's bucket name (" + msg + ")"
		}
		return "object not found (" + msg + ")"
	case gcerrors.DeadlineExceeded, gcerrors.Canceled:
		return "timed out (" + msg + ")"
	}
	if isMissingBucket(msg) {
		return "bucket not found: create it, or fix the location's bucket name (" + msg + ")"
	}
	if isBadCredential(msg) {
		return "access denied: the credential is wrong or lacks permission on the bucket (" + msg + ")"
	}
	return msg
}

func isMissingBucket(msg string) bool {
	for _, s := range []string{"NoSuchBucket", "ContainerNotFound", "bucket doesn't exist", "The specified bucket does not exist",
		"storage: bucket doesn't exist", "notFound: Bucket"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func isBadCredential(msg string) bool {
	for _, s := range []string{"InvalidAccessKeyId", "SignatureDoesNotMatch", "AuthenticationFailed", "AccessDenied",
		"AuthorizationFailure", "401", "403"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
