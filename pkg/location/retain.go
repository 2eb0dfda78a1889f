package location

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"gocloud.dev/blob"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Retainer returns how an object of location spec's bucket b gets its retention once written, for
// providers whose uploads cannot carry one, or nil. On Azure it is a locked time-based immutability policy
// on the blob (version-level immutability must be enabled on the container); S3 object lock and GCS
// retention are set by the upload itself.
func Retainer(spec v1alpha1.BackupLocationSpec, b *blob.Bucket) func(ctx context.Context, name string, until time.Time) error {
	var cc *container.Client
	if spec.Provider != v1alpha1.ProviderAzure || !b.As(&cc) {
		return nil
	}
	// b is scoped to the prefix; the container client is not.
	prefix := ""
	if p := strings.Trim(spec.Prefix, "/"); p != "" {
		prefix = p + "/"
	}
	mode := azblobblob.ImmutabilityPolicySettingLocked
	return func(ctx context.Context, name string, until time.Time) error {
		_, err := cc.NewBlobClient(prefix+name).SetImmutabilityPolicy(ctx, until, &azblobblob.SetImmutabilityPolicyOptions{Mode: &mode})
		var re *azcore.ResponseError
		if errors.As(err, &re) {
			// The SDK's own text spans many lines with the raw response.
			return fmt.Errorf("set the immutability policy of blob %s: the store answered %d %s (does the container have version-level immutability?)",
				prefix+name, re.StatusCode, re.ErrorCode)
		}
		if err != nil {
			return fmt.Errorf("set the immutability policy of blob %s: %s", prefix+name, Explain(err))
		}
		return nil
	}
}
