package collect

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"gocloud.dev/blob/memblob"
)

func TestBucketStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	defer b.Close()
	s := NewBucketStore(b)

	value := strings.Repeat(`{"kind":"ConfigMap"}`+"\n", 10000)
	w := NewStreamWriter(ctx, s, "objects/configmaps/a/0.jsonl")
	if _, err := io.Copy(w, strings.NewReader(value)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	attrs, err := b.Attributes(ctx, "objects/configmaps/a/0.jsonl.zst")
	if err != nil {
		t.Fatalf("stored object: %v", err)
	}
	if attrs.Size >= int64(len(value))/10 {
		t.Errorf("stored %d bytes for %d bytes of repetitive JSON: not compressed", attrs.Size, len(value))
	}
	r, err := s.Get(ctx, "objects/configmaps/a/0.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(got) != value {
		t.Errorf("read back %d bytes (%v), want the %d written", len(got), err, len(value))
	}

	if _, err := s.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}

	// An aborted stream stores nothing.
	w = NewStreamWriter(ctx, s, "aborted")
	_, _ = w.Write([]byte("partial"))
	w.Abort(errors.New("listing failed"))
	if ok, _ := b.Exists(ctx, "aborted.zst"); ok {
		t.Error("an aborted stream left an object")
	}
}
