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

	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestAbandonedPackLeavesNoUpload: a writer closed with a pack half uploaded in parts aborts the multipart
// upload, so the store keeps neither an object nor parts that would be billed until a lifecycle rule
// removed them.
func TestAbandonedPackLeavesNoUpload(t *testing.T) {
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
			ups, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(st.Bucket)})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range ups.Uploads {
				t.Errorf("multipart upload of %s left open", aws.ToString(u.Key))
			}
			for _, key := range testbed.Keys(t, b) {
				if strings.HasPrefix(key, "data/") {
					t.Errorf("abandoned pack %s was stored", key)
				}
			}
		})
	}
}
