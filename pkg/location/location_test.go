package location_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/location"
)

func TestOpenRejectsIncompleteCredentials(t *testing.T) {
	ctx := context.Background()
	_, err := location.Open(ctx, v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderS3, Bucket: "b"},
		location.Credentials{v1alpha1.S3AccessKeyID: []byte("id")}, location.Options{})
	if err == nil || !strings.Contains(err.Error(), v1alpha1.S3SecretAccessKey) {
		t.Fatalf("err = %v, want one naming %s", err, v1alpha1.S3SecretAccessKey)
	}
	_, err = location.Open(ctx, v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderAzure, Bucket: "b", StorageAccount: "acct"},
		location.Credentials{v1alpha1.AzureAccountKey: []byte("!!not base64!!")}, location.Options{})
	if err == nil || !strings.Contains(err.Error(), v1alpha1.AzureAccountKey) || strings.Contains(err.Error(), "!!not base64!!") {
		t.Fatalf("err = %v, want one naming %s without quoting the key", err, v1alpha1.AzureAccountKey)
	}
}

func TestOpenRejectsBadCA(t *testing.T) {
	_, err := location.Open(context.Background(), v1alpha1.BackupLocationSpec{Provider: v1alpha1.ProviderS3, Bucket: "b",
		CACert: "not a certificate"}, nil, location.Options{})
	if err == nil || !strings.Contains(err.Error(), "spec.caCert") {
		t.Fatalf("err = %v, want one naming spec.caCert", err)
	}
}
