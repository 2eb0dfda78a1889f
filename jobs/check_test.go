package jobs

import (
	"context"
	"strings"
	"testing"

	"gocloud.dev/blob/fileblob"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// TestEmptyPrefix: a prefix without config is "no repository yet" when it is empty or holds only what a
// lost initialisation or a check leaves; a repository's objects without config, or anything else, are named.
func TestEmptyPrefix(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		objects []string
		status  metav1.ConditionStatus
		reason  string
	}{
		{nil, metav1.ConditionTrue, "NoRepository"},
		{[]string{"keys/0123456789abcdef0123456789abcdef", "locks/00112233445566778899aabbccddeeff"}, metav1.ConditionTrue, "NoRepository"},
		{[]string{"data/01/0123456789abcdef0123456789abcdef"}, metav1.ConditionFalse, "ConfigMissing"},
		{[]string{"keys/0123456789abcdef0123456789abcdef", "photos/cat.jpg"}, metav1.ConditionFalse, "NotARepository"},
	} {
		b, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{Metadata: fileblob.MetadataDontWrite})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range tc.objects {
			if err := b.WriteAll(ctx, o, []byte("x"), nil); err != nil {
				t.Fatal(err)
			}
		}
		c := emptyPrefix(ctx, b, metav1.Condition{Type: v1alpha1.ConditionRepository, Status: metav1.ConditionTrue}, "bucket b")
		_ = b.Close()
		if c.Status != tc.status || c.Reason != tc.reason {
			t.Errorf("%v: %s %s (%s), want %s %s", tc.objects, c.Status, c.Reason, c.Message, tc.status, tc.reason)
		}
		if c.Status == metav1.ConditionFalse && !strings.Contains(c.Message, tc.objects[len(tc.objects)-1]) {
			t.Errorf("%v: message %q does not name the object", tc.objects, c.Message)
		}
		if unusableRepository(c) != (c.Status == metav1.ConditionFalse) {
			t.Errorf("%v: unusable %v", tc.objects, unusableRepository(c))
		}
	}
}
