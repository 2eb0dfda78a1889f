//go:build integration

package repo

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"

	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// onS3 runs test on a fresh repository on each S3 server of the test bed.
func onS3(t *testing.T, test func(t *testing.T, ctx context.Context, st *testbed.Store, b *blob.Bucket, r *Repository)) {
	for name, store := range map[string]func(testing.TB) *testbed.Store{"versitygw": testbed.S3, "minio": testbed.MinIO} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			st := store(t)
			b := st.OpenT(t)
			r, err := Init(ctx, b, []byte("pw"), InitOptions{KDF: KDFParams{Time: 1, Memory: 64, Threads: 1}}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			test(t, ctx, st, b, r)
		})
	}
}

// TestAbandonedPackLeavesNoUpload: a writer closed with a pack half uploaded in parts aborts the multipart
// upload, so the store keeps neither an object nor parts that would be billed until a lifecycle rule
// removed them.
func TestAbandonedPackLeavesNoUpload(t *testing.T) {
	onS3(t, func(t *testing.T, ctx context.Context, st *testbed.Store, b *blob.Bucket, r *Repository) {
		if r.s3 == nil {
			t.Fatal("the repository does not upload to S3 itself")
		}
		w, err := r.NewWriter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for range 3 { // 12 MiB of incompressible blobs: two parts sent, a pack of 32 MiB still open
			data := make([]byte, 4<<20)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			id := r.Hash(data)
			if w.Reserve(DataBlob, id) {
				if err := w.SaveBlob(DataBlob, id, data); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		var client *s3.Client
		if !b.As(&client) {
			t.Fatal("not an S3 bucket")
		}
		// versitygw answers the abort before its posix back end has removed the upload (seen on a loaded
		// machine): what counts is that the upload goes, so it is given a few seconds.
		var ups *s3.ListMultipartUploadsOutput
		for range 50 {
			if ups, err = client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(st.Bucket)}); err != nil {
				t.Fatal(err)
			}
			if len(ups.Uploads) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, u := range ups.Uploads {
			t.Errorf("multipart upload of %s left open", aws.ToString(u.Key))
		}
		for _, key := range testbed.Keys(t, b) {
			if strings.HasPrefix(key, layout.DataPrefix) {
				t.Errorf("abandoned pack %s was stored", key)
			}
		}
	})
}

// TestGCAbortsStaleUploads: garbage collection aborts the incomplete pack uploads that a killed writer left
// (counting them in a dry run), but only those older than UnindexedMinAge, the guard for a writer that
// stalled past its lease.
func TestGCAbortsStaleUploads(t *testing.T) {
	onS3(t, func(t *testing.T, ctx context.Context, st *testbed.Store, b *blob.Bucket, r *Repository) {
		// What a writer killed mid-pack leaves: a started multipart upload with a part, never completed.
		up := r.s3.upload(ctx, layout.PackName(randomHex(16)), nil)
		if _, err := up.Write(make([]byte, s3PartSize)); err != nil {
			t.Fatal(err)
		}
		up.sent.Wait()
		// One outside the repository's data, which is not the repository's to abort.
		var client *s3.Client
		if !b.As(&client) {
			t.Fatal("not an S3 bucket")
		}
		if _, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(st.Bucket), Key: aws.String("other/object")}); err != nil {
			t.Fatal(err)
		}
		open := func() []string {
			ups, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(st.Bucket)})
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, u := range ups.Uploads {
				keys = append(keys, aws.ToString(u.Key))
			}
			return keys
		}
		if stats, err := r.GC(ctx, GCOptions{}); err != nil || stats.AbortedUploads != 0 || len(open()) != 2 {
			t.Fatalf("gc with the default age aborted %v (err %v), uploads left %v; want the fresh upload kept", stats, err, open())
		}
		time.Sleep(time.Second) // stores keep the initiation time in whole seconds
		stats, err := r.GC(ctx, GCOptions{UnindexedMinAge: time.Nanosecond, DryRun: true})
		if err != nil || stats.AbortedUploads != 1 || len(open()) != 2 {
			t.Fatalf("dry run: %+v (err %v), uploads left %v; want one counted, none aborted", stats, err, open())
		}
		stats, err = r.GC(ctx, GCOptions{UnindexedMinAge: time.Nanosecond})
		if err != nil || stats.AbortedUploads != 1 || len(stats.Undeletable) != 0 {
			t.Fatalf("gc: %+v, %v; want one upload aborted", stats, err)
		}
		if left := open(); len(left) != 1 || left[0] != "other/object" {
			t.Fatalf("uploads left after gc: %v, want only other/object", left)
		}
	})
}
