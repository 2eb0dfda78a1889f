// Package tenancy holds the rules that keep a team's Backups, Restores and BackupSchedules to the team's
// namespace. Objects in pxb-system belong to administrators and may span namespaces; in any other namespace
// they act on that namespace alone. The API server enforces these rules with the ValidatingAdmissionPolicies
// of manifests/policy.yaml; the jobs check them again before they act (a policy can be deleted), and the
// plugin before it writes anything. The errors are worded like the policies' messages: the field, then the
// fix.
package tenancy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Confined reports whether objects in namespace act on that namespace alone: every namespace but pxb-system.
func Confined(namespace string) bool {
	return namespace != v1alpha1.SystemNamespace
}

// Labels and annotations of a Backup that pxb alone sets: retention finds a schedule's backups by them and
// orders them by the scheduled time, and a synced Backup's data belongs to the cluster that made it. Only
// pxb's own ServiceAccounts may set or change them.
var (
	PXBLabels      = []string{v1alpha1.ScheduleLabel, v1alpha1.ScheduleKindLabel, v1alpha1.SyncedLabel}
	PXBAnnotations = []string{v1alpha1.ScheduledTimeAnnotation, v1alpha1.OriginClusterAnnotation}
)

// CheckBackup checks that Backup b keeps to its namespace and, when loc (b's location) is not nil, that
// the location is open to that namespace. An unknown location (nil) is left to the job that opens it.
func CheckBackup(b *v1alpha1.Backup, loc *v1alpha1.BackupLocation) error {
	return checkBackupSpec("Backup", b.Namespace, "spec", &b.Spec, loc)
}

// CheckSchedule is CheckBackup for the template of BackupSchedule s.
func CheckSchedule(s *v1alpha1.BackupSchedule, loc *v1alpha1.BackupLocation) error {
	return checkBackupSpec("BackupSchedule", s.Namespace, "spec.template", &s.Spec.Template, loc)
}

func checkBackupSpec(kind, ns, field string, spec *v1alpha1.BackupSpec, loc *v1alpha1.BackupLocation) error {
	if !Confined(ns) {
		return nil
	}
	if f, named := reach(ns, spec); f != "" {
		return fmt.Errorf("%s.%s: a %s in namespace %s may only back up %s (%s named); create it in %s as an administrator",
			field, f, kind, ns, ns, named, v1alpha1.SystemNamespace)
	}
	if spec.ClusterResources == v1alpha1.ClusterResourcesInclude {
		return fmt.Errorf("%s.clusterResources: a %s in namespace %s may not take every cluster-scoped object (Include); use Auto or Exclude, or create it in %s as an administrator",
			field, kind, ns, v1alpha1.SystemNamespace)
	}
	if loc != nil && loc.Name == string(spec.Location) && !Allows(loc, ns) {
		return fmt.Errorf("%s.location: BackupLocation %s %s, or choose another location", field, loc.Name, closed(ns))
	}
	return nil
}

// reach says how a backup spec of an object in namespace ns reaches beyond ns: the field that does and
// what it names, or "" when it keeps to ns.
func reach(ns string, spec *v1alpha1.BackupSpec) (field, named string) {
	if spec.NamespaceSelector != nil {
		return "namespaceSelector", "a namespace selector"
	}
	var others []string
	for _, n := range spec.IncludeNamespaces {
		if string(n) != ns {
			others = append(others, string(n))
		}
	}
	if len(others) > 0 {
		return "includeNamespaces", strings.Join(others, ", ")
	}
	return "", ""
}

// Allows reports whether BackupLocation loc is open to the Backups and Restores of namespace ns: pxb-system
// always, another namespace when the location's allowedNamespaces lists it or "*". Empty, it is open to
// pxb-system alone.
func Allows(loc *v1alpha1.BackupLocation, ns string) bool {
	return !Confined(ns) || slices.ContainsFunc(loc.Spec.AllowedNamespaces, func(p v1alpha1.NamespacePattern) bool {
		return p == "*" || string(p) == ns
	})
}

// closed says that a location is not open to namespace ns, and the fix.
func closed(ns string) string {
	return fmt.Sprintf("is not open to namespace %s (the location's spec.allowedNamespaces); ask an administrator to add %s to it", ns, ns)
}

// CheckRestore checks that Restore r writes into its own namespace alone. When b, the Backup r restores
// from, is not nil, it checks that b is in r's namespace and keeps to it, so that the restore brings no
// other namespace's objects; when loc, b's location, is not nil, that the location is open to r's namespace.
func CheckRestore(r *v1alpha1.Restore, b *v1alpha1.Backup, loc *v1alpha1.BackupLocation) error {
	ns := r.Namespace
	if !Confined(ns) {
		return nil
	}
	var targets []string
	for _, from := range slices.Sorted(maps.Keys(r.Spec.NamespaceMapping)) {
		if to := string(r.Spec.NamespaceMapping[from]); to != ns {
			targets = append(targets, to)
		}
	}
	if len(targets) > 0 {
		return fmt.Errorf("spec.namespaceMapping: a Restore in namespace %s may only restore into %s (%s named); create it in %s as an administrator",
			ns, ns, strings.Join(targets, ", "), v1alpha1.SystemNamespace)
	}
	var others []string
	for _, n := range r.Spec.IncludeNamespaces {
		if string(n) != ns {
			others = append(others, string(n))
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("spec.includeNamespaces: a Restore in namespace %s may only restore %s (%s named); create it in %s as an administrator",
			ns, ns, strings.Join(others, ", "), v1alpha1.SystemNamespace)
	}
	if r.Spec.ClusterResources == v1alpha1.ClusterResourcesInclude {
		return fmt.Errorf("spec.clusterResources: a Restore in namespace %s may not write cluster-scoped objects (Include); use Auto or Exclude (outside %s both write none), or create it in %s as an administrator",
			ns, v1alpha1.SystemNamespace, v1alpha1.SystemNamespace)
	}
	if b == nil {
		return nil
	}
	if b.Namespace != ns {
		return fmt.Errorf("spec.backupName: Backup %s/%s is not in namespace %s: a Restore restores a Backup of its own namespace", b.Namespace, b.Name, ns)
	}
	if f, named := reach(ns, &b.Spec); f != "" {
		return fmt.Errorf("spec.backupName: Backup %s/%s reaches beyond namespace %s (its spec.%s: %s), so a Restore in %s may not restore it; restore it from %s as an administrator",
			b.Namespace, b.Name, ns, f, named, ns, v1alpha1.SystemNamespace)
	}
	if loc != nil && loc.Name == string(b.Spec.Location) && !Allows(loc, ns) {
		return fmt.Errorf("spec.backupName: Backup %s/%s is kept in BackupLocation %s, which %s", b.Namespace, b.Name, loc.Name, closed(ns))
	}
	return nil
}

// CheckMarks checks that none of the labels and annotations only pxb sets on a Backup is among these.
func CheckMarks(labels, annotations map[string]string) error {
	for _, m := range []struct {
		field string
		keys  []string
		set   map[string]string
	}{{"metadata.labels", PXBLabels, labels}, {"metadata.annotations", PXBAnnotations, annotations}} {
		for _, k := range m.keys {
			if _, ok := m.set[k]; ok {
				return fmt.Errorf("%s: %s is set by pxb alone (its schedule and sync jobs); leave it out of the Backup", m.field, k)
			}
		}
	}
	return nil
}
