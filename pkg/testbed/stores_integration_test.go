//go:build integration

package testbed_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/pxb-dev/pxb/pkg/testbed"
)

// payload is a few MiB of random bytes, an odd size so no chunking lines up by luck.
func payload(t *testing.T) []byte {
	t.Helper()
	data := make([]byte, 9<<20+12345)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestStoresRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		store    func(testing.TB) *testbed.Store
		provider string
	}{
		{"s3", testbed.S3, testbed.ProviderS3},
		{"s3-locked", testbed.S3Locked, testbed.ProviderS3},
		{"minio", testbed.MinIO, testbed.ProviderS3},
		{"minio-locked", testbed.MinIOLocked, testbed.ProviderS3},
		{"azure", testbed.Azure, testbed.ProviderAzure},
		{"gcs", testbed.GCS, testbed.ProviderGCS},
		{"dir", testbed.Dir, testbed.ProviderFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.store(t)
			if st.Provider != tc.provider {
				t.Errorf("provider = %q, want %q", st.Provider, tc.provider)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			b := st.OpenT(t)

			// A fresh bucket is empty.
			if first, err := b.List(nil).Next(ctx); err != io.EOF {
				t.Fatalf("fresh bucket lists %v, %v; want nothing", first, err)
			}
			data := payload(t)
			const key = "dir/some object.bin"
			if err := b.WriteAll(ctx, key, data, nil); err != nil {
				t.Fatalf("write: %v", err)
			}
			got, err := b.ReadAll(ctx, key)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, differing from the %d written", len(got), len(data))
			}
			attrs, err := b.Attributes(ctx, key)
			if err != nil {
				t.Fatalf("attributes: %v", err)
			}
			if attrs.Size != int64(len(data)) {
				t.Errorf("size = %d, want %d", attrs.Size, len(data))
			}
			// A range read returns exactly the middle of the object.
			r, err := b.NewRangeReader(ctx, key, 5<<20, 1000, nil)
			if err != nil {
				t.Fatalf("range read: %v", err)
			}
			part, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(part, data[5<<20:5<<20+1000]) {
				t.Errorf("range read = %d bytes, %v; want the 1000 bytes at 5 MiB", len(part), err)
			}
			if err := b.Delete(ctx, key); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if ok, err := b.Exists(ctx, key); ok || err != nil {
				t.Errorf("after delete: exists = %v, %v", ok, err)
			}
			// Another store of the same kind is a different, empty bucket.
			if other := tc.store(t); other.Bucket == st.Bucket && other.Dir == st.Dir {
				t.Errorf("two calls gave the same bucket %q %q", st.Bucket, st.Dir)
			}
		})
	}
}

// TestStoreURL opens each store through its gocloud.dev URL in a child process given only Env, the way a Job
// gets its location, and reads an object written through Open.
func TestStoreURL(t *testing.T) {
	for _, store := range []func(testing.TB) *testbed.Store{testbed.S3, testbed.Azure, testbed.GCS, testbed.Dir} {
		st := store(t)
		t.Run(st.Provider, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := st.OpenT(t).WriteAll(ctx, "k", []byte("hello from "+st.Provider), nil); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestStoreURLChild$")
			cmd.Env = append(os.Environ(), append(st.Env, "TESTBED_OPEN_URL="+st.URL)...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child opening %s: %v\n%s", st.URL, err, out)
			}
			if want := "read: hello from " + st.Provider; !strings.Contains(string(out), want) {
				t.Errorf("child output %q lacks %q", out, want)
			}
		})
	}
}

func TestStoreURLChild(t *testing.T) {
	u := os.Getenv("TESTBED_OPEN_URL")
	if u == "" {
		t.Skip("run by TestStoreURL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := blob.OpenBucket(ctx, u)
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	defer b.Close()
	data, err := b.ReadAll(ctx, "k")
	if err != nil {
		t.Fatalf("read through %s: %v", u, err)
	}
	os.Stdout.WriteString("read: " + string(data) + "\n")
}

// TestS3ObjectLock asserts what versitygw does with a locked object, as AWS does: a plain delete only adds a
// delete marker and the locked version stays readable; deleting that version is refused.
func TestS3ObjectLock(t *testing.T) {
	st := testbed.S3Locked(t)
	if !st.ObjectLock {
		t.Fatal("S3Locked store does not say ObjectLock")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := st.OpenT(t)
	var client *s3.Client
	if !b.As(&client) {
		t.Fatal("bucket is not backed by an S3 client")
	}

	data := []byte("locked content")
	const key = "locked"
	lockUntil := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := b.WriteAll(ctx, key, data, compliance(lockUntil)); err != nil {
		t.Fatalf("write locked object: %v", err)
	}
	ret, err := client.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: &st.Bucket, Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get retention: %v", err)
	}
	if ret.Retention.Mode != "COMPLIANCE" || !ret.Retention.RetainUntilDate.Equal(lockUntil) {
		t.Errorf("retention = %s until %v, want COMPLIANCE until %v", ret.Retention.Mode, ret.Retention.RetainUntilDate, lockUntil)
	}

	// The plain delete succeeds but only hides the object behind a delete marker.
	if err := b.Delete(ctx, key); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if ok, err := b.Exists(ctx, key); ok || err != nil {
		t.Errorf("after delete: exists = %v, %v; want hidden", ok, err)
	}
	versions, err := client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &st.Bucket, Prefix: aws.String(key)})
	if err != nil {
		t.Fatalf("list versions: %v", err)
	}
	if len(versions.Versions) != 1 || len(versions.DeleteMarkers) != 1 {
		t.Fatalf("versions = %d, delete markers = %d; want 1 and 1", len(versions.Versions), len(versions.DeleteMarkers))
	}
	version := versions.Versions[0].VersionId
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &st.Bucket, Key: aws.String(key), VersionId: version})
	if err != nil {
		t.Fatalf("read locked version: %v", err)
	}
	got, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("locked version = %q, %v; want %q", got, err, data)
	}

	// Deleting the locked version itself is refused, even with a governance bypass.
	_, err = client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: &st.Bucket, Key: aws.String(key), VersionId: version, BypassGovernanceRetention: aws.Bool(true),
	})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
		t.Fatalf("delete locked version: err = %v, want AccessDenied", err)
	}
	if _, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &st.Bucket, Key: aws.String(key), VersionId: version}); err != nil {
		t.Errorf("locked version gone after refused delete: %v", err)
	}
}

// TestS3LockNeedsLockedBucket: asking for retention on a bucket created without object lock fails, as on AWS.
func TestS3LockNeedsLockedBucket(t *testing.T) {
	st := testbed.S3(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := st.OpenT(t).WriteAll(ctx, "k", []byte("x"), compliance(time.Now().Add(time.Hour)))
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidRequest" {
		t.Fatalf("locked write to a bucket without object lock: err = %v, want InvalidRequest", err)
	}
}

// compliance asks S3 to lock the written object in compliance mode until the given time.
func compliance(until time.Time) *blob.WriterOptions {
	return &blob.WriterOptions{BeforeWrite: func(as func(any) bool) error {
		var in *transfermanager.UploadObjectInput
		if !as(&in) {
			return errors.New("writer is not an S3 upload")
		}
		in.ObjectLockMode = tmtypes.ObjectLockModeCompliance
		in.ObjectLockRetainUntilDate = &until
		return nil
	}}
}
