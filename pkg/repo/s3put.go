package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob"

	"github.com/pxb-dev/pxb/pkg/layout"
)

// On S3 the repository uploads objects itself instead of through gocloud's writer. The transfer manager
// behind that writer allocates fresh part buffers for every object it uploads (the first part through
// io.ReadAll), and with three packs uploading at once those buffers were the largest part of a backup's
// memory on S3. Here every upload of a repository draws its parts from one pool, and objects already in
// memory are sent as they are.

// s3PartSize is the size of a multipart upload's parts: S3's smallest (but for the last part).
const s3PartSize = 5 << 20

// s3Store is where a repository on S3 puts its objects.
type s3Store struct {
	client *s3.Client
	bucket string
	prefix string // what the gocloud bucket puts before object names: the location's prefix
	// checksum is the integrity checksum sent with uploads: none when the client was configured to send
	// checksums only where S3 requires them (as some S3-compatible stores want).
	checksum types.ChecksumAlgorithm

	mu    sync.Mutex
	made  int
	max   int
	parts chan []byte // free part buffers
}

// errListed stops the listing newS3Store makes only to learn the bucket and prefix.
var errListed = errors.New("listed")

// newS3Store returns the S3 store behind b, with a pool of parts part buffers, or nil when b is not on S3.
// The bucket name and the key prefix are those gocloud puts in a listing request, read through its
// documented BeforeList hook; the request itself is never sent.
func newS3Store(b *blob.Bucket, parts int) (*s3Store, error) {
	var c *s3.Client
	if b == nil || !b.As(&c) {
		return nil, nil
	}
	s := &s3Store{client: c, max: parts, parts: make(chan []byte, parts)}
	if c.Options().RequestChecksumCalculation != aws.RequestChecksumCalculationWhenRequired {
		s.checksum = types.ChecksumAlgorithmCrc32
	}
	const probe = "p"
	found := false
	_, _, err := b.ListPage(context.Background(), blob.FirstPageToken, 1, &blob.ListOptions{Prefix: probe,
		BeforeList: func(as func(any) bool) error {
			var v2 *s3.ListObjectsV2Input
			var v1 *s3.ListObjectsInput
			switch {
			case as(&v2):
				s.bucket, s.prefix = aws.ToString(v2.Bucket), aws.ToString(v2.Prefix)
			case as(&v1):
				s.bucket, s.prefix = aws.ToString(v1.Bucket), aws.ToString(v1.Prefix)
			default:
				return nil
			}
			found = true
			return errListed
		}})
	if !found || !errors.Is(err, errListed) || !strings.HasSuffix(s.prefix, probe) {
		return nil, fmt.Errorf("cannot tell the S3 bucket and key prefix of this bucket (listing said %v)", err)
	}
	s.prefix = strings.TrimSuffix(s.prefix, probe)
	return s, nil
}

// retention is the object lock an upload asks for.
type retention struct {
	mode  string // S3's object lock mode: COMPLIANCE or GOVERNANCE
	until time.Time
}

// s3 is the lock as S3 request fields; none for a nil lock.
func (l *retention) s3() (types.ObjectLockMode, *time.Time) {
	if l == nil {
		return "", nil
	}
	return types.ObjectLockMode(l.mode), aws.Time(l.until)
}

// key is the S3 key of object name. The prefix is as gocloud escaped it; the repository's own names need no
// escaping.
func (s *s3Store) key(name string) *string { return aws.String(s.prefix + name) }

// checksumFor is the checksum an upload sends: S3 refuses an object lock without one.
func (s *s3Store) checksumFor(lock *retention) types.ChecksumAlgorithm {
	if lock != nil && s.checksum == "" {
		return types.ChecksumAlgorithmCrc32
	}
	return s.checksum
}

// put stores data as object name in one request.
func (s *s3Store) put(ctx context.Context, name string, data []byte, lock *retention) error {
	in := &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: s.key(name), Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))), ContentType: aws.String(contentType),
		ChecksumAlgorithm: s.checksumFor(lock)}
	in.ObjectLockMode, in.ObjectLockRetainUntilDate = lock.s3()
	_, err := s.client.PutObject(ctx, in)
	return err
}

// part returns a free part buffer, waiting for one when the pool's are all in use.
func (s *s3Store) part(ctx context.Context) ([]byte, error) {
	select {
	case b := <-s.parts:
		return b, nil
	default:
	}
	s.mu.Lock()
	if s.made < s.max {
		s.made++
		s.mu.Unlock()
		return make([]byte, 0, s3PartSize), nil
	}
	s.mu.Unlock()
	select {
	case b := <-s.parts:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *s3Store) release(b []byte) {
	if b != nil {
		s.parts <- b[:0]
	}
}

// s3Upload streams one object: its first part goes up as a plain PUT when the object fits in it, otherwise
// parts are sent as they fill, in the background, while the next one fills.
type s3Upload struct {
	s    *s3Store
	ctx  context.Context
	name string
	lock *retention

	buf    []byte  // the part being filled
	id     *string // the multipart upload, once started
	number int32   // parts started
	sent   sync.WaitGroup

	mu    sync.Mutex
	parts []types.CompletedPart
	err   error
}

func (s *s3Store) upload(ctx context.Context, name string, lock *retention) *s3Upload {
	return &s3Upload{s: s, ctx: ctx, name: name, lock: lock}
}

func (u *s3Upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *s3Upload) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if err := u.failed(); err != nil {
			return written, err
		}
		if u.buf == nil {
			b, err := u.s.part(u.ctx)
			if err != nil {
				return written, err
			}
			u.buf = b
		}
		n := copy(u.buf[len(u.buf):cap(u.buf)], p)
		u.buf = u.buf[:len(u.buf)+n]
		p = p[n:]
		written += n
		if len(u.buf) == cap(u.buf) {
			if err := u.send(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// send uploads the filled part in the background; the buffer returns to the pool once it is sent.
func (u *s3Upload) send() error {
	s := u.s
	if u.id == nil {
		in := &s3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: s.key(u.name),
			ContentType: aws.String(contentType), ChecksumAlgorithm: s.checksumFor(u.lock)}
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = u.lock.s3()
		out, err := s.client.CreateMultipartUpload(u.ctx, in)
		if err != nil {
			return err
		}
		u.id = out.UploadId
	}
	u.number++
	number, buf, id := u.number, u.buf, u.id
	u.buf = nil
	u.sent.Add(1)
	go func() {
		defer u.sent.Done()
		defer s.release(buf)
		out, err := s.client.UploadPart(u.ctx, &s3.UploadPartInput{Bucket: aws.String(s.bucket), Key: s.key(u.name),
			UploadId: id, PartNumber: aws.Int32(number), Body: bytes.NewReader(buf),
			ContentLength: aws.Int64(int64(len(buf))), ChecksumAlgorithm: s.checksumFor(u.lock)})
		u.mu.Lock()
		defer u.mu.Unlock()
		if err != nil {
			if u.err == nil {
				u.err = fmt.Errorf("part %d: %w", number, err)
			}
			return
		}
		u.parts = append(u.parts, types.CompletedPart{PartNumber: aws.Int32(number), ETag: out.ETag,
			ChecksumCRC32: out.ChecksumCRC32, ChecksumCRC32C: out.ChecksumCRC32C,
			ChecksumCRC64NVME: out.ChecksumCRC64NVME, ChecksumSHA1: out.ChecksumSHA1, ChecksumSHA256: out.ChecksumSHA256})
	}()
	return nil
}

// Close completes the object.
func (u *s3Upload) Close() error {
	if u.id == nil {
		defer u.discardBuf()
		return u.s.put(u.ctx, u.name, u.buf, u.lock)
	}
	if len(u.buf) > 0 {
		if err := u.send(); err != nil {
			u.Abort()
			return err
		}
	}
	u.sent.Wait()
	if err := u.failed(); err != nil {
		u.Abort()
		return err
	}
	slices.SortFunc(u.parts, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	_, err := u.s.client.CompleteMultipartUpload(u.ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(u.s.bucket),
		Key: u.s.key(u.name), UploadId: u.id, MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts}})
	if err != nil {
		u.Abort()
	}
	return err
}

// Abort discards the object: nothing of it remains stored (parts of a started multipart upload included).
func (u *s3Upload) Abort() {
	u.discardBuf()
	u.sent.Wait()
	if u.id == nil {
		return
	}
	// The upload's own context may be what was cancelled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), time.Minute)
	defer cancel()
	// On failure the parts stay until the bucket's lifecycle rule for incomplete uploads removes them.
	_ = u.s.abort(ctx, u.s.key(u.name), u.id)
	u.id = nil
}

// abort discards multipart upload id of key with its parts.
func (s *s3Store) abort(ctx context.Context, key, id *string) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.bucket), Key: key, UploadId: id})
	return err
}

func (u *s3Upload) discardBuf() {
	u.s.release(u.buf)
	u.buf = nil
}

// abortStaleUploads aborts the multipart uploads of packs started before cutoff: what writers killed
// mid-pack left behind (a writer that ends aborts its own), which S3 would otherwise keep, and bill, until
// a lifecycle rule removed them. With dryRun it only counts them.
func (s *s3Store) abortStaleUploads(ctx context.Context, cutoff time.Time, dryRun bool) (int, error) {
	n := 0
	// The whole bucket's, filtered here: MinIO matches a listing's prefix against whole keys only.
	data := s.prefix + layout.DataPrefix
	pages := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("list incomplete uploads under %s: %w", layout.DataPrefix, err)
		}
		for _, u := range page.Uploads {
			if !strings.HasPrefix(aws.ToString(u.Key), data) || u.Initiated == nil || !u.Initiated.Before(cutoff) {
				continue
			}
			if !dryRun {
				if err := s.abort(ctx, u.Key, u.UploadId); err != nil {
					return n, fmt.Errorf("abort the incomplete upload of %s: %w", strings.TrimPrefix(aws.ToString(u.Key), s.prefix), err)
				}
			}
			n++
		}
	}
	return n, nil
}
