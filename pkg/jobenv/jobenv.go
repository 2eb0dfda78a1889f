// Package jobenv is the environment of one pxb-job run: the clients of the in-cluster identity, the pxb
// objects the job reads and whose status it writes, and how it says that its failure is final.
package jobenv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Ref names a pxb object a job reads or writes. A job's own object (a Job's target, jobspec.Target) reaches
// its pod on the command line: Args renders it, AddFlags reads it back.
type Ref struct {
	// Resource is a pxb.dev resource name such as "backups".
	Resource  string
	Namespace string
	Name      string
}

// AddFlags adds --resource, --namespace and --name.
func (t *Ref) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&t.Resource, "resource", t.Resource, "pxb.dev resource the job works on, for example backups.")
	fs.StringVar(&t.Namespace, "namespace", t.Namespace, "Namespace of the object; empty for cluster-scoped resources.")
	fs.StringVar(&t.Name, "name", t.Name, "Name of the object.")
}

// GVR returns the target's resource, which must be one of pxb's.
func (t Ref) GVR() (schema.GroupVersionResource, error) {
	i := slices.IndexFunc(v1alpha1.AllResources, func(r schema.GroupVersionResource) bool { return r.Resource == t.Resource })
	if i < 0 {
		names := make([]string, len(v1alpha1.AllResources))
		for j, r := range v1alpha1.AllResources {
			names[j] = r.Resource
		}
		return schema.GroupVersionResource{}, fmt.Errorf("--resource must be one of %s, not %q", strings.Join(names, ", "), t.Resource)
	}
	return v1alpha1.AllResources[i], nil
}

// Validate checks that the target names an object.
func (t Ref) Validate() error {
	if _, err := t.GVR(); err != nil {
		return err
	}
	if t.Name == "" {
		return errors.New("--name is required")
	}
	return nil
}

// Args are the command-line arguments that name t; AddFlags reads them.
func (t Ref) Args() []string {
	return []string{"--resource", t.Resource, "--namespace", t.Namespace, "--name", t.Name}
}

func (t Ref) String() string {
	if t.Namespace == "" {
		return t.Resource + "/" + t.Name
	}
	return t.Resource + "/" + t.Namespace + "/" + t.Name
}

// Env holds the clients of a job.
type Env struct {
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// NewEnv builds clients from the in-cluster config, or outside a cluster (for development) from the
// kubeconfig that kubectl would use.
func NewEnv() (*Env, error) {
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("load cluster config: %w", err)
	}
	return NewEnvForConfig(cfg)
}

// NewEnvForConfig builds clients for cfg.
func NewEnvForConfig(cfg *rest.Config) (*Env, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build clientset: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build dynamic client: %w", err)
	}
	return &Env{Config: cfg, Kube: kube, Dynamic: dyn}, nil
}

func (e *Env) resource(t Ref) (dynamic.ResourceInterface, error) {
	gvr, err := t.GVR()
	if err != nil {
		return nil, err
	}
	if t.Namespace == "" {
		return e.Dynamic.Resource(gvr), nil
	}
	return e.Dynamic.Resource(gvr).Namespace(t.Namespace), nil
}

// Get reads the target into obj, a pointer to its typed object (for example *v1alpha1.Backup).
func (e *Env) Get(ctx context.Context, t Ref, obj any) error {
	ri, err := e.resource(t)
	if err != nil {
		return err
	}
	u, err := ri.Get(ctx, t.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get %s: %w", t, err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return fmt.Errorf("decode %s: %w", t, err)
	}
	return nil
}

// UpdateStatus reads the target, lets mutate change it, and writes its status through the status
// subresource, starting over when someone else changed the object in between.
func (e *Env) UpdateStatus(ctx context.Context, t Ref, mutate func(*unstructured.Unstructured) error) error {
	ri, err := e.resource(t)
	if err != nil {
		return err
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := ri.Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := mutate(u); err != nil {
			return err
		}
		_, err = ri.UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: "pxb-job"})
		return err
	})
	if err != nil {
		return fmt.Errorf("update status of %s: %w", t, err)
	}
	return nil
}

// UpdateStatusOf is UpdateStatus for a typed object: T is the object's type, for example v1alpha1.Backup.
func UpdateStatusOf[T any](ctx context.Context, e *Env, t Ref, mutate func(*T) error) error {
	return e.UpdateStatus(ctx, t, func(u *unstructured.Unstructured) error {
		obj := new(T)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if err := mutate(obj); err != nil {
			return err
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		u.Object = m
		return nil
	})
}

// SetCondition sets a condition in the target's status.conditions, which every pxb kind with a status has.
func (e *Env) SetCondition(ctx context.Context, t Ref, cond metav1.Condition) error {
	return e.UpdateStatus(ctx, t, func(u *unstructured.Unstructured) error {
		raw, _, err := unstructured.NestedSlice(u.Object, "status", "conditions")
		if err != nil {
			return fmt.Errorf("read conditions: %w", err)
		}
		conds := make([]metav1.Condition, len(raw))
		for i, c := range raw {
			m, ok := c.(map[string]any)
			if !ok {
				return fmt.Errorf("condition %d is not an object", i)
			}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &conds[i]); err != nil {
				return fmt.Errorf("decode condition %d: %w", i, err)
			}
		}
		cond.ObservedGeneration = u.GetGeneration()
		meta.SetStatusCondition(&conds, cond)
		out := make([]any, len(conds))
		for i := range conds {
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&conds[i])
			if err != nil {
				return fmt.Errorf("encode condition: %w", err)
			}
			out[i] = m
		}
		return unstructured.SetNestedSlice(u.Object, out, "status", "conditions")
	})
}

// ExitFinal is the exit code of a job whose work failed for good and whose object's status says so. Its Job
// fails at once (a pod failure policy) instead of running the pod again, which would only repeat the same
// work, rules and guest freezes included, and flip the object's phase back to InProgress meanwhile.
const ExitFinal = 3

// FinalError is the error of a job that ends with ExitFinal.
type FinalError struct{ Err error }

func (e *FinalError) Error() string { return e.Err.Error() }
func (e *FinalError) Unwrap() error { return e.Err }

// Final marks err, recorded in the job's object's status, as the job's last word.
func Final(err error) error { return &FinalError{Err: err} }
