package jobspec

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Ref names a pxb object a job reads or writes. A job's own object (a Job's target, jobspec.Target) reaches
// its pod on the command line: Args renders it, AddFlags reads it back.
type Ref struct {
	// Resource is a pxb.dev resource name such as "backups".
	Resource  string
	Namespace string
	Name      string
	// UID, when set, is the UID of the object the Job was launched for: a job refuses an object of the same
	// name made since (see jobenv.Env.CheckUID).
	UID types.UID
}

// AddFlags adds --resource, --namespace and --name.
func (t *Ref) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&t.Resource, "resource", t.Resource, "pxb.dev resource the job works on, for example backups.")
	fs.StringVar(&t.Namespace, "namespace", t.Namespace, "Namespace of the object; empty for cluster-scoped resources.")
	fs.StringVar(&t.Name, "name", t.Name, "Name of the object.")
	fs.StringVar((*string)(&t.UID), "uid", string(t.UID), "UID of the object the Job was launched for; another object of the name is refused.")
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
	args := []string{"--resource", t.Resource, "--namespace", t.Namespace, "--name", t.Name}
	if t.UID != "" {
		args = append(args, "--uid", string(t.UID))
	}
	return args
}

func (t Ref) String() string {
	if t.Namespace == "" {
		return t.Resource + "/" + t.Name
	}
	return t.Resource + "/" + t.Namespace + "/" + t.Name
}

// ExitFinal is the exit code of a job whose work failed for good and whose object's status says so. Its Job
// fails at once (a pod failure policy) instead of running the pod again, which would only repeat the same
// work, rules and guest freezes included, and flip the object's phase back to InProgress meanwhile.
const ExitFinal = 3
