package install

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// InstalledConfig returns the data of the cluster's pxb-config ConfigMap, or nil when pxb is not installed:
// when there is no pxb-config, or one without the version install sets (uninstall leaves the settings of a
// pxb-config others made, without install's keys).
func InstalledConfig(ctx context.Context, kube kubernetes.Interface) (map[string]string, error) {
	cm, err := kube.CoreV1().ConfigMaps(v1alpha1.SystemNamespace).Get(ctx, v1alpha1.ConfigMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", v1alpha1.SystemNamespace, v1alpha1.ConfigMapName, err)
	}
	if cm.Data[ConfigVersion] == "" {
		return nil, nil
	}
	return cm.Data, nil
}
