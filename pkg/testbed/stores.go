package testbed

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/s3blob"
	"google.golang.org/api/option"

	"github.com/pxb-dev/pxb/pkg/location"
)

// Provider names, as a BackupLocation spells them.
const (
	ProviderS3    = "s3"
	ProviderAzure = "azure"
	ProviderGCS   = "gcs"
	ProviderFile  = "file"
)

// Well-known fixed credentials of the local servers (Azurite's are its documented development account).
const (
	s3AccessKeyID     = "pxbtestbed"
	s3SecretAccessKey = "pxbtestbed-secret"
	s3Region          = "us-east-1"
	azureAccount      = "devstoreaccount1"
	azureAccountKey   = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	gcsProject        = "pxb-testbed"
)

// Store is a fresh, empty bucket (or container, or directory) on a local object store.
type Store struct {
	// Provider is ProviderS3, ProviderAzure, ProviderGCS or ProviderFile.
	Provider string
	// Bucket is the bucket or container name; empty for ProviderFile.
	Bucket string
	// Endpoint is the service URL: http://127.0.0.1:PORT for S3 and GCS, http://127.0.0.1:PORT/ACCOUNT for
	// Azure; empty for ProviderFile.
	Endpoint string
	// Region is the S3 region.
	Region string
	// PathStyle is true when the bucket is addressed in the path (S3).
	PathStyle bool
	// ObjectLock is true for a bucket created with S3 object lock enabled (versioning on).
	ObjectLock bool
	// AccessKeyID and SecretAccessKey are the S3 credentials.
	AccessKeyID, SecretAccessKey string
	// AccountName and AccountKey are the Azure shared-key credentials.
	AccountName, AccountKey string
	// Dir is the directory of a ProviderFile store.
	Dir string
	// URL opens the bucket with gocloud.dev's blob.OpenBucket in a process whose environment has Env.
	URL string
	// Env holds the KEY=VALUE settings (credentials, emulator address) that URL needs.
	Env []string

	open func(ctx context.Context) (*blob.Bucket, error)
}

// Open opens the bucket with the store's explicit credentials, independent of the process environment. The
// caller closes it.
func (s *Store) Open(ctx context.Context) (*blob.Bucket, error) {
	b, err := s.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open %s bucket %q: %w", s.Provider, s.Bucket, err)
	}
	return b, nil
}

// OpenT opens the bucket (see Open) and closes it when the test ends.
func (s *Store) OpenT(t testing.TB) *blob.Bucket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := s.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// Keys lists every object key in b (directories left out); a listing error fails the test.
func Keys(t testing.TB, b *blob.Bucket) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var keys []string
	it := b.List(nil)
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			return keys
		}
		if err != nil {
			t.Fatalf("list the bucket: %v", err)
		}
		if !o.IsDir {
			keys = append(keys, o.Key)
		}
	}
}

// server is one object store process shared by the test process.
type server struct {
	once     sync.Once
	err      error
	proc     *process
	endpoint string
	// readyPath, if set, must answer 200 before the server counts as ready: some answer HTTP while still
	// initializing, and refuse requests then.
	readyPath string
}

// get starts the server on first use; a failed start fails every later caller too.
func (s *server) get(t testing.TB, run func(s *server) error) *server {
	t.Helper()
	s.once.Do(func() { s.err = run(s) })
	if s.err != nil {
		t.Fatal(s.err)
	}
	onFailureShowLog(t, s.proc)
	return s
}

// start starts the named tool on a fresh port and waits until it answers HTTP at the endpoint. args gets the
// port and an empty directory for the server's data.
func (s *server) start(name string, args func(port int, dir string) ([]string, error)) error {
	return s.startEnv(name, nil, args)
}

// startEnv is start with env added to the server's environment.
func (s *server) startEnv(name string, env []string, args func(port int, dir string) ([]string, error)) error {
	bin, err := tool(name)
	if err != nil {
		return err
	}
	dir, err := subdir(name)
	if err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("make %s: %w", data, err)
	}
	began := time.Now()
	s.proc, err = startWithRetry(name, func() (*process, error) {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		s.endpoint = "http://127.0.0.1:" + strconv.Itoa(ports[0])
		argv, err := args(ports[0], data)
		if err != nil {
			return nil, err
		}
		p, err := startEnv(name, filepath.Join(dir, name+".log"), bin, env, argv...)
		if err != nil {
			return nil, err
		}
		return p, waitReady(p, 60*time.Second, func(ctx context.Context) error {
			if s.readyPath != "" {
				return httpOK(ctx, http.DefaultClient, s.endpoint+s.readyPath)
			}
			return httpAnswers(ctx, s.endpoint)
		})
	})
	if err == nil {
		fmt.Fprintf(os.Stderr, "testbed: %s ready in %s (%s)\n", name, time.Since(began).Round(time.Millisecond), s.endpoint)
	}
	return err
}

// httpAnswers succeeds when anything answers HTTP at url, whatever the status.
func httpAnswers(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

var s3srv server

// S3 returns a fresh bucket on versitygw, an S3 gateway over a directory started with a versioning directory
// so that versioning and object lock behave as on AWS.
func S3(t testing.TB) *Store {
	t.Helper()
	return newS3Bucket(t, false)
}

// S3Locked returns a fresh bucket created with S3 object lock enabled (which turns versioning on). Objects
// are locked by giving them a retention mode and date when written.
func S3Locked(t testing.TB) *Store {
	t.Helper()
	return newS3Bucket(t, true)
}

func newS3Bucket(t testing.TB, lock bool) *Store {
	t.Helper()
	srv := s3srv.get(t, func(s *server) error {
		return s.start("versitygw", func(port int, dir string) ([]string, error) {
			// Old versions live apart from the buckets' directories, which versitygw lists as buckets.
			versions := dir + "-versions"
			if err := os.MkdirAll(versions, 0o755); err != nil {
				return nil, fmt.Errorf("make %s: %w", versions, err)
			}
			return []string{
				"--access", s3AccessKeyID, "--secret", s3SecretAccessKey, "--region", s3Region,
				"--port", "127.0.0.1:" + strconv.Itoa(port),
				"posix", "--versioning-dir", versions, dir,
			}, nil
		})
	})
	return s3Bucket(t, srv.endpoint, lock)
}

var minioSrv server

// MinIO returns a fresh bucket on MinIO, the other S3 server users run themselves.
func MinIO(t testing.TB) *Store {
	t.Helper()
	return newMinIOBucket(t, false)
}

// MinIOLocked returns a fresh MinIO bucket created with object lock enabled.
func MinIOLocked(t testing.TB) *Store {
	t.Helper()
	return newMinIOBucket(t, true)
}

func newMinIOBucket(t testing.TB, lock bool) *Store {
	t.Helper()
	srv := minioSrv.get(t, func(s *server) error {
		env := []string{"MINIO_ROOT_USER=" + s3AccessKeyID, "MINIO_ROOT_PASSWORD=" + s3SecretAccessKey,
			"MINIO_REGION=" + s3Region, "MINIO_BROWSER=off", "MINIO_UPDATE=off"}
		// MinIO answers 503 "Server not initialized yet" for a while after it listens; this answers 200 once
		// it can take writes.
		s.readyPath = "/minio/health/cluster"
		return s.startEnv("minio", env, func(port int, dir string) ([]string, error) {
			return []string{"server", "--quiet", "--address", "127.0.0.1:" + strconv.Itoa(port), dir}, nil
		})
	})
	return s3Bucket(t, srv.endpoint, lock)
}

// s3Bucket makes a fresh bucket on the S3 server at endpoint.
func s3Bucket(t testing.TB, endpoint string, lock bool) *Store {
	t.Helper()
	st := &Store{
		Provider:        ProviderS3,
		Bucket:          uniqueName(t, 63),
		Endpoint:        endpoint,
		Region:          s3Region,
		PathStyle:       true,
		ObjectLock:      lock,
		AccessKeyID:     s3AccessKeyID,
		SecretAccessKey: s3SecretAccessKey,
	}
	st.URL = "s3://" + st.Bucket + "?" + url.Values{
		"endpoint":       {st.Endpoint},
		"region":         {st.Region},
		"use_path_style": {"true"},
	}.Encode()
	st.Env = []string{"AWS_ACCESS_KEY_ID=" + st.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + st.SecretAccessKey}
	client := st.s3Client()
	st.open = func(ctx context.Context) (*blob.Bucket, error) {
		return s3blob.OpenBucket(ctx, client, st.Bucket, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in := &s3.CreateBucketInput{Bucket: aws.String(st.Bucket)}
	if lock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if _, err := client.CreateBucket(ctx, in); err != nil {
		t.Fatalf("create S3 bucket %s: %v", st.Bucket, err)
	}
	return st
}

// s3Client is an S3 client for the store with its static credentials.
func (s *Store) s3Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: s.PathStyle,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, ""),
	})
}

var azuriteSrv server

// Azure returns a fresh container on Azurite. Azurite has no immutability policies: no object lock here.
func Azure(t testing.TB) *Store {
	t.Helper()
	srv := azuriteSrv.get(t, func(s *server) error {
		return s.start("azurite", func(port int, dir string) ([]string, error) {
			return []string{
				"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port), "--location", dir,
				"--skipApiVersionCheck", "--loose", "--silent",
			}, nil
		})
	})
	st := &Store{
		Provider:    ProviderAzure,
		Bucket:      uniqueName(t, 63),
		Endpoint:    srv.endpoint + "/" + azureAccount,
		AccountName: azureAccount,
		AccountKey:  azureAccountKey,
	}
	st.URL = "azblob://" + st.Bucket + "?" + url.Values{
		"protocol": {"http"},
		"domain":   {srv.endpoint[len("http://"):]},
	}.Encode()
	st.Env = []string{"AZURE_STORAGE_ACCOUNT=" + st.AccountName, "AZURE_STORAGE_KEY=" + st.AccountKey}
	cred, err := azblob.NewSharedKeyCredential(st.AccountName, st.AccountKey)
	if err != nil {
		t.Fatalf("azure credential: %v", err)
	}
	client, err := container.NewClientWithSharedKeyCredential(st.Endpoint+"/"+st.Bucket, cred, nil)
	if err != nil {
		t.Fatalf("azure container client: %v", err)
	}
	st.open = func(ctx context.Context) (*blob.Bucket, error) {
		return azureblob.OpenBucket(ctx, client, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.Create(ctx, nil); err != nil {
		t.Fatalf("create Azure container %s: %v", st.Bucket, err)
	}
	return st
}

var (
	gcsSrv    server
	gcsClient *storage.Client
)

// GCS returns a fresh bucket on fake-gcs-server. It stores retention settings but does not enforce them.
func GCS(t testing.TB) *Store {
	t.Helper()
	srv := gcsSrv.get(t, func(s *server) error {
		err := s.start("fake-gcs-server", func(port int, dir string) ([]string, error) {
			p := strconv.Itoa(port)
			return []string{
				"-scheme", "http", "-host", "127.0.0.1", "-port", p,
				"-external-url", "http://127.0.0.1:" + p, "-public-host", "127.0.0.1:" + p,
				"-backend", "filesystem", "-filesystem-root", dir, "-log-level", "warn",
			}, nil
		})
		if err != nil {
			return err
		}
		// One client for the server: a bucket opened with a caller's client does not close it.
		gcsClient, err = storage.NewClient(context.Background(),
			option.WithEndpoint(s.endpoint+"/storage/v1/"), option.WithoutAuthentication())
		if err != nil {
			return fmt.Errorf("GCS client for %s: %w", s.endpoint, err)
		}
		return nil
	})
	st := &Store{
		Provider: ProviderGCS,
		Bucket:   uniqueName(t, 63),
		Endpoint: srv.endpoint,
	}
	st.URL = "gs://" + st.Bucket
	st.Env = []string{"STORAGE_EMULATOR_HOST=" + srv.endpoint[len("http://"):]}
	st.open = func(ctx context.Context) (*blob.Bucket, error) {
		return gcsblob.OpenBucket(ctx, nil, st.Bucket, &gcsblob.Options{Client: gcsClient})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gcsClient.Bucket(st.Bucket).Create(ctx, gcsProject, nil); err != nil {
		t.Fatalf("create GCS bucket %s: %v", st.Bucket, err)
	}
	return st
}

// Dir returns a fresh directory opened the way an NFS location is written (location.OpenDirectory).
func Dir(t testing.TB) *Store {
	t.Helper()
	dir := t.TempDir()
	st := &Store{Provider: ProviderFile, Dir: dir}
	st.URL = (&url.URL{Scheme: "file", Path: dir}).String()
	st.open = func(context.Context) (*blob.Bucket, error) {
		return location.OpenDirectory(dir)
	}
	return st
}
