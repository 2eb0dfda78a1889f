package apply

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/collect"
)

// Policy says what a restore does with an object that already exists in the target cluster.
type Policy string

const (
	// PolicyRetain leaves the existing object alone and records it as retained.
	PolicyRetain Policy = "retain"
	// PolicyReplace deletes the existing object, waits until it is gone and creates the backed-up one.
	// Namespaces and CustomResourceDefinitions are updated instead: deleting them would delete everything
	// they hold.
	PolicyReplace Policy = "replace"
	// PolicyUpdate brings the existing object to the backup's state with a forced server-side apply.
	PolicyUpdate Policy = "update"
)

// Labels set on every restored object.
const (
	LabelBackup  = "pxb.dev/backup"
	LabelRestore = "pxb.dev/restore"
	// FieldManager owns the fields a restore writes.
	FieldManager = "pxb"
)

// Options select and shape what a restore does. Namespaces in the filters are the backup's (source) names.
type Options struct {
	// BackupName and RestoreName label every restored object (pxb.dev/backup, pxb.dev/restore).
	BackupName  string
	RestoreName string
	// IncludeNamespaces are source namespace names or globs; empty or "*" means all in the backup.
	IncludeNamespaces []string
	ExcludeNamespaces []string
	// IncludeResources and ExcludeResources are resource types as in collect.Options.
	IncludeResources []string
	ExcludeResources []string
	// Selector is a label selector restored objects must match (Namespaces and CRDs are restored regardless,
	// since the selected objects need them).
	Selector string
	// ClusterResources says which of the backup's cluster-scoped objects are restored: auto (default) those
	// the restored namespaced objects use (their Namespaces, the PersistentVolumes of their claims and the
	// claims' StorageClasses, the CRDs of their types, the ClusterRoleBindings of their ServiceAccounts and
	// those bindings' ClusterRoles), and all of them when every namespace of the backup is restored; true
	// all of them; false none (a target namespace that does not exist is still created, empty). Whatever
	// the policy, Namespaces and the PersistentVolumes bound to claims follow the namespace filter.
	ClusterResources collect.ClusterResources
	// NamespaceMapping maps source namespaces to target namespaces. A ClusterRoleBinding, or a RoleBinding of a
	// namespace not mapped, that binds ServiceAccounts of a mapped namespace is written for their copies under
	// a name of its own (the original's and the target namespaces, joined by "-"; hashed past 253 characters):
	// the original's binding is left as it is, whatever ExistingPolicy says.
	NamespaceMapping map[string]string
	// Namespace, when set, confines the restore to this one target namespace, as for a team's Restore: it
	// writes no cluster-scoped object whatever ClusterResources says, creates no namespace, and skips any
	// object that would land in another namespace.
	Namespace string
	// StorageClassMapping maps source StorageClass names to target ones on claims and volumes.
	StorageClassMapping map[string]string
	// ClaimVolumes binds restored claims ("namespace/name" in the target cluster) to PersistentVolumes
	// that already hold their data.
	ClaimVolumes map[string]string
	// MissingData names the claims ("namespace/name" in the target) whose volume data did not arrive, with
	// why: they are not restored, and the workloads that mount them are held (scaled to zero, suspended,
	// halted, or not restored), so that no application starts on an empty volume.
	MissingData map[string]string
	// ExistingPolicy is retain (default), replace or update.
	ExistingPolicy Policy
	// DryRun reports what would happen without changing the cluster.
	DryRun bool
	// WriteAs, when set, is the client configuration objects are written with: a team's restore writes as
	// an identity the API server holds to the team's rights. The configuration Run is given still tells an
	// object that exists from one the writer may not even read (a RoleBinding, for `edit`), which is retained,
	// not failed.
	WriteAs *rest.Config

	// Parallelism is how many objects are applied at once (default 32).
	Parallelism int
	// QPS and Burst limit the client (defaults 1000 and 2000: a restore writes one object per request;
	// the API server's priority and fairness protects it from a restore that asks too much).
	QPS   float32
	Burst int
	// WaitTimeout bounds waiting for a CRD to be Established or a replaced object to be gone (default 2m).
	WaitTimeout time.Duration
	// Progress, if set, is called every collect.ProgressInterval and at the end with the number of objects
	// done and the number the backup holds for the selected namespaces and types (the label selector may
	// make fewer), always from the same goroutine.
	Progress func(done, total int)
}

func (o *Options) defaults() {
	if o.ExistingPolicy == "" {
		o.ExistingPolicy = PolicyRetain
	}
	if o.ClusterResources == "" {
		o.ClusterResources = collect.ClusterResourcesAuto
	}
	if o.Parallelism <= 0 {
		o.Parallelism = 32
	}
	if o.QPS <= 0 {
		o.QPS = 1000
	}
	if o.Burst <= 0 {
		o.Burst = 2000
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 2 * time.Minute
	}
}

// Validate checks the options without talking to a cluster; errors name the field.
func (o *Options) Validate() error {
	for _, f := range []struct{ name, v string }{{"BackupName", o.BackupName}, {"RestoreName", o.RestoreName}} {
		if f.v == "" {
			continue
		}
		if errs := validation.IsValidLabelValue(f.v); len(errs) > 0 {
			return fmt.Errorf("%s %q: %s", f.name, f.v, strings.Join(errs, "; "))
		}
	}
	if o.Namespace != "" {
		if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
			return fmt.Errorf("Namespace %q: %s", o.Namespace, strings.Join(errs, "; "))
		}
	}
	if err := collect.ValidateNamespacePatterns("IncludeNamespaces", o.IncludeNamespaces); err != nil {
		return err
	}
	if err := collect.ValidateNamespacePatterns("ExcludeNamespaces", o.ExcludeNamespaces); err != nil {
		return err
	}
	if _, err := labels.Parse(o.Selector); err != nil {
		return fmt.Errorf("Selector %q: %w", o.Selector, err)
	}
	// Report mappings in a stable order.
	for _, from := range slices.Sorted(maps.Keys(o.NamespaceMapping)) {
		to := o.NamespaceMapping[from]
		for _, n := range []string{from, to} {
			if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
				return fmt.Errorf("NamespaceMapping %s:%s: %q is not a valid namespace name: %s", from, to, n, strings.Join(errs, "; "))
			}
		}
	}
	targets := map[string]string{}
	for _, from := range slices.Sorted(maps.Keys(o.NamespaceMapping)) {
		to := o.NamespaceMapping[from]
		if other, ok := targets[to]; ok {
			return fmt.Errorf("NamespaceMapping: %s and %s both map to %s", other, from, to)
		}
		targets[to] = from
	}
	for _, from := range slices.Sorted(maps.Keys(o.StorageClassMapping)) {
		to := o.StorageClassMapping[from]
		for _, n := range []string{from, to} {
			if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
				return fmt.Errorf("StorageClassMapping %s:%s: %q is not a valid StorageClass name: %s", from, to, n, strings.Join(errs, "; "))
			}
		}
	}
	switch o.ClusterResources {
	case "", collect.ClusterResourcesAuto, collect.ClusterResourcesAll, collect.ClusterResourcesNone:
	default:
		return fmt.Errorf("ClusterResources %q: must be auto, true or false", o.ClusterResources)
	}
	switch o.ExistingPolicy {
	case "", PolicyRetain, PolicyReplace, PolicyUpdate:
	default:
		return fmt.Errorf("ExistingPolicy %q: must be retain, replace or update", o.ExistingPolicy)
	}
	if err := collect.ValidateResourceNames("IncludeResources", o.IncludeResources); err != nil {
		return err
	}
	return collect.ValidateResourceNames("ExcludeResources", o.ExcludeResources)
}
