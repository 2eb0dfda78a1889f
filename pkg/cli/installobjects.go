package cli

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/pxb-dev/pxb/pkg/install"
	"github.com/pxb-dev/pxb/pkg/jobspec"
)

// installObjects is everything kubectl pxb install applies and uninstall removes: the manifests, then the
// reconciler's CronJob, which runs the job image of o.
func installObjects(o install.Options) ([]*unstructured.Unstructured, error) {
	objs, err := install.Objects(o)
	if err != nil {
		return nil, err
	}
	c := jobspec.DefaultConfig()
	if o.Image != "" {
		c.Image = o.Image
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(jobspec.ReconcilerCronJob(c))
	if err != nil {
		return nil, fmt.Errorf("render the reconciler's CronJob: %w", err)
	}
	u := &unstructured.Unstructured{Object: m}
	// Left to the API server: applying them would claim them.
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "jobTemplate", "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "jobTemplate", "spec", "template", "metadata", "creationTimestamp")
	return append(objs, u), nil
}
