//go:build integration

package location_test

import (
	"context"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"golang.org/x/sys/unix"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

// spec describes a test bed store the way a user's BackupLocation and credential Secret would.
func spec(st *testbed.Store) (v1alpha1.BackupLocationSpec, location.Credentials) {
	switch st.Provider {
	case testbed.ProviderS3:
		return v1alpha1.BackupLocationSpec{
				Provider: v1alpha1.ProviderS3, Bucket: st.Bucket, Endpoint: st.Endpoint, Region: st.Region,
				S3ForcePathStyle: true, Prefix: "cluster-a",
			}, location.Credentials{
				v1alpha1.S3AccessKeyID: []byte(st.AccessKeyID), v1alpha1.S3SecretAccessKey: []byte(st.SecretAccessKey),
			}
	case testbed.ProviderAzure:
		return v1alpha1.BackupLocationSpec{
				Provider: v1alpha1.ProviderAzure, Bucket: st.Bucket, Endpoint: st.Endpoint,
				StorageAccount: st.AccountName, Prefix: "cluster-a",
			}, location.Credentials{
				v1alpha1.AzureAccountKey: []byte(st.AccountKey),
			}
	case testbed.ProviderGCS:
		return v1alpha1.BackupLocationSpec{
			Provider: v1alpha1.ProviderGCS, Bucket: st.Bucket, Endpoint: st.Endpoint, Prefix: "cluster-a",
		}, nil
	default:
		return v1alpha1.BackupLocationSpec{
			Provider: v1alpha1.ProviderNFS, NFS: &v1alpha1.NFSLocation{Server: "nfs.example", Path: "/export", SubPath: "team"},
			Prefix: "cluster-a",
		}, nil
	}
}

func open(t *testing.T, st *testbed.Store) (context.Context, v1alpha1.BackupLocationSpec, location.Credentials, location.Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	s, creds := spec(st)
	// This kernel cannot mount NFS: an NFS location is exercised through the same fileblob code on a
	// directory standing where the Job's pod would mount the export.
	return ctx, s, creds, location.Options{NFSMountPath: st.Dir}
}

// openProbed opens the location on st and probes it, as `location create` does; the bucket closes with the test.
func openProbed(t *testing.T, st *testbed.Store) (context.Context, *blob.Bucket) {
	t.Helper()
	ctx, s, creds, opts := open(t, st)
	b, err := location.Open(ctx, s, creds, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	if err := location.Probe(ctx, b); err != nil {
		t.Fatalf("probe: %v", err)
	}
	return ctx, b
}

func TestProbeEveryProvider(t *testing.T) {
	for name, mk := range map[string]func(testing.TB) *testbed.Store{
		"s3": testbed.S3, "minio": testbed.MinIO, "azure": testbed.Azure, "gcs": testbed.GCS, "nfs": testbed.Dir,
	} {
		t.Run(name, func(t *testing.T) {
			st := mk(t)
			ctx, b := openProbed(t, st)
			// The prefix scopes everything: an object written through the location lands under it in the bucket.
			if err := b.WriteAll(ctx, "marker", []byte("x"), nil); err != nil {
				t.Fatal(err)
			}
			raw := st.OpenT(t)
			key := "cluster-a/marker"
			if st.Provider == testbed.ProviderFile {
				key = "team/cluster-a/marker"
			}
			if ok, err := raw.Exists(ctx, key); err != nil || !ok {
				t.Fatalf("object %s not in the bucket (exists=%v, err=%v)", key, ok, err)
			}
		})
	}
}

func TestProbeExplainsFailures(t *testing.T) {
	s3 := testbed.S3(t)
	ctx, good, creds, opts := open(t, s3)

	wrongKey := location.Credentials{
		v1alpha1.S3AccessKeyID: creds[v1alpha1.S3AccessKeyID], v1alpha1.S3SecretAccessKey: []byte("not-the-secret"),
	}
	missing := good
	missing.Bucket = "pxb-no-such-bucket"

	// A port that nothing listens on: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadEndpoint := "http://" + l.Addr().String()
	l.Close()
	unreachable := good
	unreachable.Endpoint = deadEndpoint

	for _, tc := range []struct {
		name  string
		spec  v1alpha1.BackupLocationSpec
		creds location.Credentials
		want  string
	}{
		{"wrong secret key", good, wrongKey, "access denied"},
		{"missing bucket", missing, creds, "bucket not found"},
		{"unreachable endpoint", unreachable, creds, "endpoint unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := location.Open(ctx, tc.spec, tc.creds, opts)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer b.Close()
			err = location.Probe(ctx, b)
			if err == nil {
				t.Fatal("probe succeeded; want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "not-the-secret") || strings.Contains(err.Error(), s3.SecretAccessKey) {
				t.Fatalf("error leaks the secret key: %q", err)
			}
		})
	}
}

// TestAzureImmutability: on Azure a retained object gets a locked immutability policy once written, on the
// blob under the location's prefix. Azurite implements no immutability and refuses the call, so this checks
// that pxb asks for it, on the right blob, and reports the refusal; it cannot check Azure's enforcement.
func TestAzureImmutability(t *testing.T) {
	st := testbed.Azure(t)
	ctx, s, creds, opts := open(t, st)
	s.ObjectLockDays = 1
	b, err := location.Open(ctx, s, creds, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	retain := location.Retainer(s, b)
	if retain == nil {
		t.Fatal("no retainer for an Azure location")
	}
	if err := b.WriteAll(ctx, "locked", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	err = retain(ctx, "locked", time.Now().Add(time.Hour))
	if err == nil || err.Error() != "set the immutability policy of blob cluster-a/locked: the store answered 501 APINotImplemented (does the container have version-level immutability?)" {
		t.Fatalf("retain on Azurite: %v; want its refusal, naming the prefixed blob", err)
	}
	t.Logf("Azurite: %v", err)
	for name, mk := range map[string]func(testing.TB) *testbed.Store{"s3": testbed.S3, "gcs": testbed.GCS} {
		st := mk(t)
		ctx, s, creds, opts := open(t, st)
		b, err := location.Open(ctx, s, creds, opts)
		if err != nil {
			t.Fatal(err)
		}
		if location.Retainer(s, b) != nil {
			t.Errorf("%s: a retainer, but its uploads carry their retention", name)
		}
		b.Close()
	}
}

// TestNFSExportOnItsOwnMount: in a Job's pod the export is a mount of its own, apart from the pod's
// temporary directory; every write (a temporary file renamed into place) must stay on the export. The
// export stands here on tmpfs, apart from the temporary directory.
func TestNFSExportOnItsOwnMount(t *testing.T) {
	export, err := os.MkdirTemp("/dev/shm", "pxb-export-")
	if err != nil {
		t.Skipf("no tmpfs at /dev/shm to stand for a separate mount: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(export) })
	var a, b unix.Stat_t
	if unix.Stat(export, &a) != nil || unix.Stat(os.TempDir(), &b) != nil || a.Dev == b.Dev {
		t.Skipf("%s and %s are on one file system: the test needs two", export, os.TempDir())
	}
	st := &testbed.Store{Provider: testbed.ProviderFile, Dir: export}
	ctx, bucket := openProbed(t, st)
	if err := bucket.WriteAll(ctx, "packs/p1", []byte("pack"), nil); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(export, "team", "cluster-a", "packs", "p1"))
	if err != nil || string(got) != "pack" {
		t.Fatalf("object on the export: %q, %v; want \"pack\"", got, err)
	}
	// An object is one file: no ".attrs" sidecar beside it.
	err = filepath.WalkDir(export, func(path string, _ fs.DirEntry, err error) error {
		if strings.HasSuffix(path, ".attrs") {
			t.Errorf("sidecar %s written on the export", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
