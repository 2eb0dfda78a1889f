package install

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/pager"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Kept splits what install applies into what an uninstall without purge deletes and what it keeps: the
// CRDs (deleting them deletes every Backup, Restore, schedule and location), the pxb-system namespace
// (with the locations' Secrets in it) and pxb-config, whose settings others made survive (see ReleaseConfig).
func Kept(objs []*unstructured.Unstructured) (remove, keep []*unstructured.Unstructured) {
	for _, obj := range objs {
		switch {
		case obj.GetKind() == "CustomResourceDefinition",
			obj.GetKind() == "Namespace" && obj.GetName() == v1alpha1.SystemNamespace,
			obj.GetKind() == "ConfigMap" && obj.GetName() == v1alpha1.ConfigMapName:
			keep = append(keep, obj)
		default:
			remove = append(remove, obj)
		}
	}
	return remove, keep
}

// ReleaseConfig gives up the keys of pxb-config that install owns (the job image and the version, which
// make pxb count as installed), keeping the settings made by anyone else: applying the ConfigMap without
// them removes what pxb's field manager alone owned.
func (c Client) ReleaseConfig(ctx context.Context) error {
	empty := &unstructured.Unstructured{}
	empty.SetAPIVersion("v1")
	empty.SetKind("ConfigMap")
	empty.SetNamespace(v1alpha1.SystemNamespace)
	empty.SetName(v1alpha1.ConfigMapName)
	_, err := c.Dynamic.Resource(configMapsResource).Namespace(v1alpha1.SystemNamespace).
		Apply(ctx, v1alpha1.ConfigMapName, empty, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("release %s/%s: %w", v1alpha1.SystemNamespace, v1alpha1.ConfigMapName, err)
	}
	return nil
}

var (
	configMapsResource = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	cronJobsResource   = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}
)

// suspendedByUninstall marks the CronJobs uninstall suspended, which install resumes.
const suspendedByUninstall = "pxb.dev/suspended-by-uninstall"

// pxbCronJobs selects the CronJobs pxb made in pxb-system: those of BackupSchedules and of locations'
// checks, syncs and maintenance.
const pxbCronJobs = "app.kubernetes.io/managed-by=pxb"

// SuspendCronJobs suspends pxb's running CronJobs, which could not start their Jobs once the identities
// they run as are gone, and marks them so that install resumes them. It returns their names.
func (c Client) SuspendCronJobs(ctx context.Context) ([]string, error) {
	return c.setSuspended(ctx, true)
}

// ResumeCronJobs resumes the CronJobs an uninstall suspended, and returns their names.
func (c Client) ResumeCronJobs(ctx context.Context) ([]string, error) {
	return c.setSuspended(ctx, false)
}

func (c Client) setSuspended(ctx context.Context, suspend bool) ([]string, error) {
	ri := c.Dynamic.Resource(cronJobsResource).Namespace(v1alpha1.SystemNamespace)
	list, err := ri.List(ctx, metav1.ListOptions{LabelSelector: pxbCronJobs})
	if err != nil {
		return nil, fmt.Errorf("list pxb's CronJobs: %w", err)
	}
	var names []string
	for _, cj := range list.Items {
		suspended, _, _ := unstructured.NestedBool(cj.Object, "spec", "suspend")
		_, marked := cj.GetAnnotations()[suspendedByUninstall]
		var patch string
		switch {
		case suspend && !suspended:
			// A CronJob someone suspended stays theirs to resume.
			patch = fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}},"spec":{"suspend":true}}`, suspendedByUninstall)
		case !suspend && marked:
			patch = fmt.Sprintf(`{"metadata":{"annotations":{%q:null}},"spec":{"suspend":false}}`, suspendedByUninstall)
		default:
			continue
		}
		if _, err := ri.Patch(ctx, cj.GetName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
			return names, fmt.Errorf("set suspend=%t on CronJob %s: %w", suspend, cj.GetName(), err)
		}
		names = append(names, cj.GetName())
	}
	return names, nil
}

// Count is how many objects of a pxb resource exist in the cluster.
type Count struct {
	Resource schema.GroupVersionResource
	N        int
}

// CountObjects counts the objects of every pxb resource, across namespaces, for uninstall to say what it kept.
func (c Client) CountObjects(ctx context.Context) ([]Count, error) {
	var out []Count
	for _, r := range v1alpha1.AllResources {
		n := 0
		list := func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return c.Dynamic.Resource(r).List(ctx, opts)
		}
		err := pager.New(list).EachListItem(ctx, metav1.ListOptions{}, func(runtime.Object) error {
			n++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", r.Resource, err)
		}
		out = append(out, Count{Resource: r, N: n})
	}
	return out, nil
}
