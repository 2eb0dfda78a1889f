package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gocloud.dev/blob"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/repo"
)

const callTimeout = 30 * time.Second

// Location is an opened BackupLocation.
type Location struct {
	Name   string
	Spec   v1alpha1.BackupLocationSpec
	Bucket *blob.Bucket
	// Store writes and reads backups and restores in the location's repository; what is written under a
	// backup's or restore's prefix becomes readable once Commit seals it.
	Store      collect.Store
	repo       *repoStore
	passphrase []byte
}

// Repository is the location's opened repository.
func (l *Location) Repository() *repo.Repository { return l.repo.r }

// Commit seals what was written under prefix (layout.BackupPrefix or layout.RestorePrefix) into the
// repository and returns the snapshot that holds it.
func (l *Location) Commit(ctx context.Context, prefix string) (string, error) {
	return l.repo.Commit(ctx, prefix)
}

// verifySample is how many blobs of each snapshot ProveReadable decrypts, beyond its trees.
const verifySample = 16

// ProveReadable opens the location's repository afresh from the bucket, as a restore in any cluster would,
// and reads back snapshots: manifests, trees, index entries and a sample of their data. A repository changed
// underneath the job (its config replaced, as two first backups at once used to do) fails here, so the job
// reports a failure instead of a backup nobody can restore.
func (l *Location) ProveReadable(ctx context.Context, snapshots ...string) error {
	fresh, err := repo.Open(ctx, l.Bucket, l.passphrase, repo.Options{})
	if err != nil {
		return fmt.Errorf("read back %s: the repository no longer opens with the location's key: %s", l.URL(""), location.Explain(err))
	}
	if got, want := fresh.Config().ID, l.repo.r.Config().ID; got != want {
		return fmt.Errorf("read back %s: the repository's config object was replaced while the job ran (repository %s "+
			"became %s): what the job wrote is sealed with a key the location no longer uses", l.URL(""), want, got)
	}
	if err := fresh.LoadIndex(ctx); err != nil {
		return fmt.Errorf("read back %s: load the repository index: %s", l.URL(""), location.Explain(err))
	}
	for _, id := range snapshots {
		if err := fresh.VerifySnapshot(ctx, id, verifySample); err != nil {
			return fmt.Errorf("read back %s: %s", l.URL(""), location.Explain(err))
		}
	}
	return nil
}

// Close releases the repository and closes the bucket.
func (l *Location) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	err := l.repo.Close(ctx)
	return errors.Join(err, l.Bucket.Close())
}

// URL says where the location's data is, for people: "s3://bucket/prefix/".
func (l *Location) URL(key string) string {
	var base string
	switch l.Spec.Provider {
	case v1alpha1.ProviderNFS:
		base = "nfs://"
		if l.Spec.NFS != nil {
			base += l.Spec.NFS.Server + l.Spec.NFS.Path + "/"
			if l.Spec.NFS.SubPath != "" {
				base += strings.Trim(l.Spec.NFS.SubPath, "/") + "/"
			}
		}
	case v1alpha1.ProviderAzure:
		base = "azure://" + l.Spec.StorageAccount + "/" + l.Spec.Bucket + "/"
	case v1alpha1.ProviderGCS:
		base = "gs://" + l.Spec.Bucket + "/"
	default:
		base = "s3://" + l.Spec.Bucket + "/"
	}
	if p := strings.Trim(l.Spec.Prefix, "/"); p != "" {
		base += p + "/"
	}
	return base + key
}

// GetLocation reads BackupLocation name from pxb-system.
func GetLocation(ctx context.Context, dyn dynamic.Interface, name string) (*v1alpha1.BackupLocation, error) {
	gctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	u, err := dyn.Resource(v1alpha1.BackupLocationsResource).Namespace(v1alpha1.SystemNamespace).Get(gctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("BackupLocation %q not found in %s", name, v1alpha1.SystemNamespace)
	}
	if err != nil {
		return nil, fmt.Errorf("get BackupLocation %s/%s: %w", v1alpha1.SystemNamespace, name, err)
	}
	var loc v1alpha1.BackupLocation
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &loc); err != nil {
		return nil, fmt.Errorf("decode BackupLocation %s: %w", name, err)
	}
	return &loc, nil
}

// Secrets reads the data of Secret name of pxb-system, which holds a location's what (credential, encryption
// key).
type Secrets func(ctx context.Context, name, what string) (map[string][]byte, error)

// APISecrets reads Secrets through the API.
func APISecrets(kube kubernetes.Interface) Secrets {
	return func(ctx context.Context, name, what string) (map[string][]byte, error) {
		gctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		s, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Get(gctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%s Secret %q not found in %s", what, name, v1alpha1.SystemNamespace)
		}
		if err != nil {
			return nil, fmt.Errorf("get %s Secret %s/%s: %w", what, v1alpha1.SystemNamespace, name, err)
		}
		return s.Data, nil
	}
}

// DirSecrets reads Secrets as the kubelet mounts them into a pod, each in dir/NAME, a file per key: a pod
// that is given its Secrets this way needs no right to read Secrets.
func DirSecrets(dir string) Secrets {
	return func(_ context.Context, name, what string) (map[string][]byte, error) {
		path := filepath.Join(dir, name)
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("%s Secret %s is not mounted at %s: %w", what, name, path, err)
		}
		data := map[string][]byte{}
		for _, e := range entries {
			// The kubelet keeps its own bookkeeping in ..data and ..TIMESTAMP; keys are never dotted twice.
			if strings.HasPrefix(e.Name(), "..") {
				continue
			}
			v, err := os.ReadFile(filepath.Join(path, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("read %s Secret %s: %w", what, name, err)
			}
			data[e.Name()] = v
		}
		return data, nil
	}
}

// OpenBucket opens the bucket of loc with its credential (not its repository); the error is in plain words.
func OpenBucket(ctx context.Context, kube kubernetes.Interface, loc *v1alpha1.BackupLocation, opts location.Options) (*blob.Bucket, error) {
	var creds location.Credentials
	if ref := loc.Spec.Credential; ref != nil {
		data, err := APISecrets(kube)(ctx, ref.Name, "credential")
		if err != nil {
			return nil, err
		}
		creds = data
	}
	b, err := location.Open(ctx, loc.Spec, creds, opts)
	if err != nil {
		return nil, errors.New(location.Explain(err))
	}
	return b, nil
}

// OpenLocation opens BackupLocation name with its credential and encryption key Secrets, and the repository
// in it; create makes the repository when the location holds none yet. opts carries what a Job mounts (an
// NFS export).
func OpenLocation(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, name string, opts location.Options, create bool) (*Location, error) {
	return OpenLocationWith(ctx, APISecrets(kube), dyn, name, opts, create)
}

// OpenLocationWith is OpenLocation with the location's Secrets read from secrets.
func OpenLocationWith(ctx context.Context, secrets Secrets, dyn dynamic.Interface, name string, opts location.Options, create bool) (*Location, error) {
	loc, err := GetLocation(ctx, dyn, name)
	if err != nil {
		return nil, err
	}
	var creds location.Credentials
	if ref := loc.Spec.Credential; ref != nil {
		if creds, err = secrets(ctx, ref.Name, "credential"); err != nil {
			return nil, err
		}
	}
	key, err := secrets(ctx, loc.Spec.EncryptionKey.Name, "encryption key")
	if err != nil {
		return nil, err
	}
	passphrase := key[v1alpha1.EncryptionKeySecretKey]
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("encryption key Secret %s/%s has no %q key", v1alpha1.SystemNamespace, loc.Spec.EncryptionKey.Name, v1alpha1.EncryptionKeySecretKey)
	}
	octx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	b, err := location.Open(octx, loc.Spec, creds, opts)
	if err != nil {
		return nil, fmt.Errorf("open BackupLocation %s: %w", name, err)
	}
	ro := RepoOptions(loc.Spec, b)
	ro.UploadLimit = opts.UploadLimit
	r, err := openRepo(ctx, b, passphrase, ro, create)
	if err == nil {
		var store *repoStore
		if store, err = newRepoStore(ctx, r); err == nil {
			return &Location{Name: name, Spec: loc.Spec, Bucket: b, Store: store, repo: store, passphrase: passphrase}, nil
		}
	}
	_ = b.Close()
	return nil, fmt.Errorf("open the repository of BackupLocation %s: %w", name, explained{err})
}

// explained is err in the plain words of location.Explain, still unwrapping to err: the plugin tells by it a
// location it cannot reach from its machine (a name that does not resolve there) from one nobody can use.
type explained struct{ err error }

func (e explained) Error() string { return location.Explain(e.err) }
func (e explained) Unwrap() error { return e.err }

// Delete removes what is kept under prefix (layout.BackupPrefix or layout.RestorePrefix) from the
// repository; it returns how many snapshots it deleted. The data itself goes at the repository's next
// garbage collection.
func (l *Location) Delete(ctx context.Context, prefix string) (int, error) {
	n, err := l.repo.Delete(ctx, prefix)
	if err != nil {
		return n, fmt.Errorf("delete %s: %s", l.URL(prefix), location.Explain(err))
	}
	return n, nil
}

// DeleteBackup removes Backup namespace/name from the repository: its objects and its volumes' snapshots.
// It returns how many snapshots it deleted; the data goes at the repository's next garbage collection.
func (l *Location) DeleteBackup(ctx context.Context, namespace, name string) (int, error) {
	prefix := layout.BackupPrefix(namespace, name)
	n, err := l.repo.Delete(ctx, prefix, layout.VolumesPrefix(namespace, name))
	if err != nil {
		return n, fmt.Errorf("delete %s: %s", l.URL(prefix), location.Explain(err))
	}
	return n, nil
}
