// Package jobenv is the environment of one pxb-job run: the clients of the in-cluster identity, the pxb
// objects the job reads and whose status it writes, and how it says that its failure is final.
package jobenv

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/pxb-dev/pxb/pkg/jobspec"
)

// Env holds the clients of a job.
type Env struct {
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Events records Events on the objects the job works for; nil (job kinds that report only to the job
	// that launched them) records none.
	Events *Recorder
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

func (e *Env) resource(t jobspec.Ref) (dynamic.ResourceInterface, error) {
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
func (e *Env) Get(ctx context.Context, t jobspec.Ref, obj any) error {
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

// CheckUID fails, finally, when t names a UID and the object of t's name has another: the object the Job
// was launched for was deleted and made again, and the new one has a Job of its own. Without a UID it checks
// nothing.
func (e *Env) CheckUID(ctx context.Context, t jobspec.Ref) error {
	if t.UID == "" {
		return nil
	}
	var obj metav1.PartialObjectMetadata
	if err := e.Get(ctx, t, &obj); err != nil {
		return err
	}
	if obj.UID != t.UID {
		return Final(fmt.Errorf("%s is not the object this Job was launched for (UID %s, now %s): it was deleted and made again, and the new one is left to its own Job",
			t, t.UID, obj.UID))
	}
	return nil
}

// UpdateStatus reads the target, lets mutate change it, and writes its status through the status
// subresource, starting over when someone else changed the object in between.
func (e *Env) UpdateStatus(ctx context.Context, t jobspec.Ref, mutate func(*unstructured.Unstructured) error) error {
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
func UpdateStatusOf[T any](ctx context.Context, e *Env, t jobspec.Ref, mutate func(*T) error) error {
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
func (e *Env) SetCondition(ctx context.Context, t jobspec.Ref, cond metav1.Condition) error {
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

// FinalError is the error of a job that ends with jobspec.ExitFinal.
type FinalError struct{ Err error }

func (e *FinalError) Error() string { return e.Err.Error() }
func (e *FinalError) Unwrap() error { return e.Err }

// Final marks err, recorded in the job's object's status, as the job's last word.
func Final(err error) error { return &FinalError{Err: err} }
