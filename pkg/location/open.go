// Package location turns a BackupLocation and its credential Secret into an open gocloud.dev bucket, and
// explains in plain words why a location cannot be used.
//
// Credentials are always passed explicitly to each driver: nothing here reads or sets process-wide
// environment variables, so one process can hold buckets of several locations at once.
package location

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcp"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Credentials is the data of a location's credential Secret (keys as in v1alpha1: S3AccessKeyID, ...).
type Credentials map[string][]byte

// Options are what the opener needs beyond the location itself.
type Options struct {
	// NFSMountPath is where the Job's pod mounts an NFS location's export. The repository lives under
	// NFSMountPath/subPath/prefix.
	NFSMountPath string
	// UploadLimit bounds the bytes per second a data-mover Job writes into the repository (0: no limit).
	UploadLimit int64
}

// Open opens the bucket of loc, scoped to its prefix. The caller closes it.
func Open(ctx context.Context, spec v1alpha1.BackupLocationSpec, creds Credentials, opts Options) (*blob.Bucket, error) {
	b, err := openProvider(ctx, spec, creds, opts)
	if err != nil {
		return nil, err
	}
	if p := strings.Trim(spec.Prefix, "/"); p != "" && spec.Provider != v1alpha1.ProviderNFS {
		return blob.PrefixedBucket(b, p+"/"), nil
	}
	return b, nil
}

func openProvider(ctx context.Context, spec v1alpha1.BackupLocationSpec, creds Credentials, opts Options) (*blob.Bucket, error) {
	switch spec.Provider {
	case v1alpha1.ProviderS3:
		return openS3(ctx, spec, creds)
	case v1alpha1.ProviderAzure:
		return openAzure(ctx, spec, creds)
	case v1alpha1.ProviderGCS:
		return openGCS(ctx, spec, creds)
	case v1alpha1.ProviderNFS:
		return openNFS(spec, opts)
	default:
		return nil, fmt.Errorf("spec.provider %q is not one of s3, azure, gcs, nfs", spec.Provider)
	}
}

// httpClient honours the location's TLS settings. Timeouts bound connection set-up only: bodies of large
// objects stream for as long as they need, under the caller's context.
func httpClient(spec v1alpha1.BackupLocationSpec) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSHandshakeTimeout = 15 * time.Second
	tr.ResponseHeaderTimeout = 2 * time.Minute
	tr.MaxIdleConnsPerHost = 32
	if spec.InsecureSkipTLSVerify || spec.CACert != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if spec.InsecureSkipTLSVerify {
			cfg.InsecureSkipVerify = true //nolint:gosec // the user asked for it on this location
		}
		if spec.CACert != "" {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM([]byte(spec.CACert)) {
				return nil, errors.New("spec.caCert holds no PEM certificate: paste the CA's certificate, BEGIN CERTIFICATE line included")
			}
			cfg.RootCAs = pool
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Transport: tr}, nil
}

func openS3(ctx context.Context, spec v1alpha1.BackupLocationSpec, creds Credentials) (*blob.Bucket, error) {
	hc, err := httpClient(spec)
	if err != nil {
		return nil, err
	}
	region := spec.Region
	if region == "" {
		region = "us-east-1"
	}
	var cfg aws.Config
	if creds != nil {
		id, secret := string(creds[v1alpha1.S3AccessKeyID]), string(creds[v1alpha1.S3SecretAccessKey])
		if id == "" || secret == "" {
			return nil, fmt.Errorf("credential Secret lacks %s or %s: recreate it with kubectl pxb credential create --provider aws",
				v1alpha1.S3AccessKeyID, v1alpha1.S3SecretAccessKey)
		}
		// Built by hand rather than loaded: loading reads the process environment (AWS_CA_BUNDLE, profiles),
		// and an explicit credential must mean exactly what the location says.
		cfg = aws.Config{
			Region:      region,
			Credentials: credentials.NewStaticCredentialsProvider(id, secret, string(creds[v1alpha1.S3SessionToken])),
		}
	} else {
		// Ambient identity (IRSA, pod identity, instance metadata) is what the environment provides.
		cfg, err = awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
		if err != nil {
			return nil, fmt.Errorf("s3 ambient credentials: %w", err)
		}
	}
	cfg.HTTPClient = hc
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if spec.Endpoint != "" {
			o.BaseEndpoint = aws.String(spec.Endpoint)
		}
		o.UsePathStyle = spec.S3ForcePathStyle
		// S3-compatible stores vary in which checksums they accept; send them only where S3 requires them.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	})
	return s3blob.OpenBucket(ctx, client, spec.Bucket, &s3blob.Options{
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
}

func openAzure(ctx context.Context, spec v1alpha1.BackupLocationSpec, creds Credentials) (*blob.Bucket, error) {
	hc, err := httpClient(spec)
	if err != nil {
		return nil, err
	}
	serviceURL := spec.Endpoint
	if serviceURL == "" {
		serviceURL = "https://" + spec.StorageAccount + ".blob.core.windows.net"
	}
	containerURL := strings.TrimSuffix(serviceURL, "/") + "/" + spec.Bucket
	clientOpts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc, Retry: policy.RetryOptions{MaxRetries: 3}}}
	var client *container.Client
	switch {
	case creds == nil:
		cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: clientOpts.ClientOptions})
		if err != nil {
			return nil, fmt.Errorf("azure workload identity: %w", err)
		}
		client, err = container.NewClient(containerURL, cred, clientOpts)
		if err != nil {
			return nil, fmt.Errorf("azure container client: %w", err)
		}
	case len(creds[v1alpha1.AzureAccountKey]) > 0:
		key, err := azblob.NewSharedKeyCredential(spec.StorageAccount, string(creds[v1alpha1.AzureAccountKey]))
		if err != nil {
			// The parse error is not wrapped: it can quote the key.
			return nil, fmt.Errorf("credential Secret's %s is not a valid storage account key (base64)", v1alpha1.AzureAccountKey)
		}
		client, err = container.NewClientWithSharedKeyCredential(containerURL, key, clientOpts)
		if err != nil {
			return nil, fmt.Errorf("azure container client: %w", err)
		}
	case len(creds[v1alpha1.AzureClientSecret]) > 0:
		cred, err := azidentity.NewClientSecretCredential(string(creds[v1alpha1.AzureTenantID]), string(creds[v1alpha1.AzureClientID]),
			string(creds[v1alpha1.AzureClientSecret]), &azidentity.ClientSecretCredentialOptions{ClientOptions: clientOpts.ClientOptions})
		if err != nil {
			return nil, fmt.Errorf("azure service principal (%s, %s, %s): %w", v1alpha1.AzureTenantID, v1alpha1.AzureClientID,
				v1alpha1.AzureClientSecret, err)
		}
		client, err = container.NewClient(containerURL, cred, clientOpts)
		if err != nil {
			return nil, fmt.Errorf("azure container client: %w", err)
		}
	default:
		return nil, fmt.Errorf("credential Secret has neither %s nor %s/%s/%s: recreate it with kubectl pxb credential create --provider azure",
			v1alpha1.AzureAccountKey, v1alpha1.AzureTenantID, v1alpha1.AzureClientID, v1alpha1.AzureClientSecret)
	}
	return azureblob.OpenBucket(ctx, client, nil)
}

func openGCS(ctx context.Context, spec v1alpha1.BackupLocationSpec, creds Credentials) (*blob.Bucket, error) {
	hc, err := httpClient(spec)
	if err != nil {
		return nil, err
	}
	var clientOpts []option.ClientOption
	client := &gcp.HTTPClient{Client: *hc}
	switch {
	case creds != nil:
		key := creds[v1alpha1.GCSServiceAccountJSON]
		if len(key) == 0 {
			return nil, fmt.Errorf("credential Secret lacks %s: recreate it with kubectl pxb credential create --provider gcp --key-file KEY.json",
				v1alpha1.GCSServiceAccountJSON)
		}
		//nolint:staticcheck // the key comes from the user's own Secret, which is the point of this provider
		gc, err := google.CredentialsFromJSON(ctx, key, "https://www.googleapis.com/auth/devstorage.read_write")
		if err != nil {
			// The parse error is not wrapped: it can quote the key.
			return nil, fmt.Errorf("credential Secret's %s is not a service account JSON key", v1alpha1.GCSServiceAccountJSON)
		}
		if client, err = gcp.NewHTTPClient(hc.Transport, gcp.CredentialsTokenSource(gc)); err != nil {
			return nil, fmt.Errorf("gcs client: %w", err)
		}
	case spec.Endpoint == "":
		gc, err := gcp.DefaultCredentials(ctx)
		if err != nil {
			return nil, fmt.Errorf("gcs workload identity: %w", err)
		}
		if client, err = gcp.NewHTTPClient(hc.Transport, gcp.CredentialsTokenSource(gc)); err != nil {
			return nil, fmt.Errorf("gcs client: %w", err)
		}
	}
	if spec.Endpoint != "" {
		// An emulator or a private endpoint; without a credential it is reached unauthenticated.
		clientOpts = append(clientOpts, option.WithEndpoint(strings.TrimSuffix(spec.Endpoint, "/")+"/storage/v1/"))
		if creds == nil {
			clientOpts = append(clientOpts, option.WithoutAuthentication())
		}
	}
	return gcsblob.OpenBucket(ctx, client, spec.Bucket, &gcsblob.Options{ClientOptions: clientOpts})
}

func openNFS(spec v1alpha1.BackupLocationSpec, opts Options) (*blob.Bucket, error) {
	if opts.NFSMountPath == "" {
		return nil, errors.New("nfs location needs the export mounted: run through a pxb Job, which mounts it")
	}
	dir := opts.NFSMountPath
	if spec.NFS != nil && spec.NFS.SubPath != "" {
		dir = filepath.Join(dir, filepath.Clean("/"+spec.NFS.SubPath))
	}
	if p := strings.Trim(spec.Prefix, "/"); p != "" {
		dir = filepath.Join(dir, filepath.Clean("/"+p))
	}
	b, err := OpenDirectory(dir)
	if err != nil {
		return nil, fmt.Errorf("nfs location directory %s: %w", dir, err)
	}
	return b, nil
}

// OpenDirectory opens a directory as a bucket the way an NFS location's export is written, creating it if
// needed. An object is written to a temporary file and renamed into place; the temporary file must be on the
// export (a rename across mounts fails), next to the object, and the repository ignores it in listings. No
// ".attrs" sidecar: the repository sets no object metadata, and the sidecar would cost a second file and an
// MD5 of every byte written.
func OpenDirectory(dir string) (*blob.Bucket, error) {
	return fileblob.OpenBucket(dir, &fileblob.Options{CreateDir: true, NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
}
