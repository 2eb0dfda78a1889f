package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// ErrRepositoryExists is returned by Init when the bucket already holds a repository, or another Init
// created one first. Open it instead.
var ErrRepositoryExists = errors.New("the location already holds a repository")

// errObjectExists is what a create-only write returns when the object is already there.
var errObjectExists = errors.New("object already exists")

// Init creates a repository in an empty bucket (or prefix) with a new random master key wrapped by passphrase.
//
// Any number of Inits may run at once on one bucket: the config object is created with a create-only
// (conditional) write, so exactly one of them makes the repository and the others return
// ErrRepositoryExists, having removed the key slot they wrote (a slot that object lock keeps is skipped by
// Open and reported by Check). A store that does not honour create-only writes is detected and refused,
// since there two first backups could each make a repository of their own in the same place.
func Init(ctx context.Context, b *blob.Bucket, passphrase []byte, io InitOptions, opts Options) (*Repository, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("init repository: a passphrase is required")
	}
	exists, err := Exists(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	if exists {
		return nil, fmt.Errorf("init repository: %w", ErrRepositoryExists)
	}
	cfg := Config{Version: FormatVersion, ID: randomHex(16), ChunkMin: io.ChunkMin, ChunkAvg: io.ChunkAvg,
		ChunkMax: io.ChunkMax, Compression: io.Compression, CompressionLevel: io.CompressionLevel,
		PackSize: io.PackSize, Created: time.Now().UTC()}
	if cfg.ChunkAvg == 0 {
		cfg.ChunkMin, cfg.ChunkAvg, cfg.ChunkMax = 256<<10, 1<<20, 4<<20
	}
	if cfg.Compression == "" {
		cfg.Compression = "zstd"
	}
	if cfg.CompressionLevel == 0 {
		cfg.CompressionLevel = 1
	}
	if cfg.PackSize == 0 {
		cfg.PackSize = 32 << 20
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	kdf := io.KDF
	if kdf.Time == 0 {
		kdf = DefaultKDF
	}
	master := make([]byte, masterKeyLen)
	if _, err := rand.Read(master); err != nil {
		return nil, err
	}
	r, err := newRepository(b, cfg, master, opts)
	if err != nil {
		return nil, err
	}
	// The key slot goes first: a config without a key would be an unopenable repository.
	if r.keyID, err = r.writeKeySlot(ctx, passphrase, kdf); err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	sealed := seal(r.keys.aead, nil, raw, adConfig)
	err = r.createOnly(ctx, layout.Config, sealed, true)
	if errors.Is(err, errObjectExists) {
		r.discardKeySlot(ctx)
		return nil, fmt.Errorf("init repository: %w (made by another initialisation at the same time)", ErrRepositoryExists)
	}
	if err != nil {
		// The slot stays: the write may have landed all the same, and a config without its slot could never
		// be opened. If it did not land, the slot is a stray that Open skips.
		return nil, fmt.Errorf("init repository: create %s: %w", layout.Config, err)
	}
	if err := r.confirmCreated(ctx, sealed); err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	return r, nil
}

// confirmCreated proves that the config just created is the one stored and that the store refuses a second
// create-only write of it. A store that accepted the second write ignores the condition: the repository is
// removed again (unless object lock keeps it), so that no backup is ever written into a location where two
// of them could each have made a repository.
func (r *Repository) confirmCreated(ctx context.Context, sealed []byte) error {
	err := r.createOnly(ctx, layout.Config, sealed, true)
	if err == nil {
		// The slot only once config is gone: a config must never lose its slot.
		if r.bucket.Delete(ctx, layout.Config) == nil {
			r.discardKeySlot(ctx)
		}
		return fmt.Errorf("the store accepted a second create-only write of %s (If-None-Match: * or its equivalent): "+
			"it ignores conditional writes, so two backups starting at once could each make a repository here and lose "+
			"each other's data; use a store (or a version of it) that supports conditional writes", layout.Config)
	}
	if !errors.Is(err, errObjectExists) {
		return fmt.Errorf("confirm %s: %w", layout.Config, err)
	}
	got, err := readAll(ctx, r.bucket, layout.Config)
	if err != nil {
		return fmt.Errorf("read back %s: %w", layout.Config, err)
	}
	if !bytes.Equal(got, sealed) {
		r.discardKeySlot(ctx)
		return fmt.Errorf("%w: %s was replaced right after it was created (by another initialisation the store let through)",
			ErrRepositoryExists, layout.Config)
	}
	return nil
}

// discardKeySlot removes the key slot Init wrote when its repository was not made: it wraps a master key
// nothing is sealed with. Object lock may keep it; Open then skips it.
func (r *Repository) discardKeySlot(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = r.bucket.Delete(ctx, layout.KeyName(r.keyID))
}

// createOnly writes a whole object only if no object of that name exists; otherwise it returns
// errObjectExists and leaves the stored object as it is. S3, Azure Blob and GCS are asked with their
// conditional writes (If-None-Match: *, If-None-Match: *, ifGenerationMatch=0); a directory, which may be an
// NFS export shared by Jobs on several nodes, gets the object by link(2), which fails if the name exists.
func (r *Repository) createOnly(ctx context.Context, name string, data []byte, retain bool) error {
	if r.s3 != nil {
		return r.s3.createOnly(ctx, name, data, r.lockFor(retain))
	}
	if dir := r.directory(ctx); dir != "" {
		return r.linkOnly(ctx, dir, name, data, retain)
	}
	wo := writerOptions()
	wo.IfNotExist = true
	if err := r.writeWith(ctx, name, data, retain, wo); err != nil {
		if gcerrors.Code(err) == gcerrors.FailedPrecondition || gcerrors.Code(err) == gcerrors.AlreadyExists {
			return errObjectExists
		}
		return err
	}
	return nil
}

// linkOnly creates object name of a directory bucket rooted at dir: written in full under a temporary name
// (which listings skip), then linked to its name, which fails if that exists, on a local file system and
// over NFS alike.
func (r *Repository) linkOnly(ctx context.Context, dir, name string, data []byte, retain bool) error {
	staged := layout.StagedName(name, randomHex(8))
	if err := r.writeWith(ctx, staged, data, retain, writerOptions()); err != nil {
		return err
	}
	defer func() { _ = os.Remove(filepath.Join(dir, filepath.FromSlash(staged))) }()
	err := os.Link(filepath.Join(dir, filepath.FromSlash(staged)), filepath.Join(dir, filepath.FromSlash(name)))
	if errors.Is(err, os.ErrExist) {
		return errObjectExists
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return nil
}

// directory returns the root directory of a directory (fileblob) bucket, "" for other stores. fileblob
// hands its temporary file to BeforeWrite when the writer is made; opened with NoTempDir, as pxb opens
// directories, that file lies beside the object, so a probe under keys/ shows the root. The probe writes
// nothing: BeforeWrite refuses it. A directory bucket whose temporary files go elsewhere (some unit tests',
// never a location) gets gocloud's IfNotExist instead: a stat before a rename, not atomic, so no concurrent
// writers may use such a bucket.
func (r *Repository) directory(ctx context.Context) string {
	var fi os.FileInfo
	if !r.bucket.As(&fi) {
		return ""
	}
	var dir string
	w, err := r.bucket.NewWriter(ctx, layout.DirectoryProbe, &blob.WriterOptions{ContentType: contentType,
		BeforeWrite: func(as func(any) bool) error {
			var f *os.File
			if as(&f) {
				dir = filepath.Dir(f.Name())
			}
			return errProbed
		}})
	if err == nil {
		_ = w.Close()
	}
	if dir == "" || filepath.Base(dir) != path.Dir(layout.DirectoryProbe) {
		return ""
	}
	return filepath.Dir(dir)
}

// errProbed stops the writer that directory makes only to see where fileblob puts its temporary file.
var errProbed = errors.New("probed")

// createOnly puts object name unless it exists (If-None-Match: *).
func (s *s3Store) createOnly(ctx context.Context, name string, data []byte, lock *retention) error {
	in := &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: s.key(name), Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))), ContentType: aws.String(contentType),
		ChecksumAlgorithm: s.checksumFor(lock), IfNoneMatch: aws.String("*")}
	in.ObjectLockMode, in.ObjectLockRetainUntilDate = lock.s3()
	_, err := s.client.PutObject(ctx, in)
	if err == nil {
		return nil
	}
	// 412 when the object exists; 409 when another conditional write of it is in flight.
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "PreconditionFailed" || ae.ErrorCode() == "ConditionalRequestConflict") {
		return errObjectExists
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && (re.HTTPStatusCode() == 412 || re.HTTPStatusCode() == 409) {
		return errObjectExists
	}
	return err
}
