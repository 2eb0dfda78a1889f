package tenancy

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func location(name string, allowed ...v1alpha1.NamespacePattern) *v1alpha1.BackupLocation {
	return &v1alpha1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: v1alpha1.SystemNamespace},
		Spec: v1alpha1.BackupLocationSpec{AllowedNamespaces: allowed}}
}

func backup(ns string, spec v1alpha1.BackupSpec) *v1alpha1.Backup {
	if spec.Location == "" {
		spec.Location = "main"
	}
	return &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: ns}, Spec: spec}
}

func names(n ...v1alpha1.NamespacePattern) v1alpha1.Selection {
	return v1alpha1.Selection{IncludeNamespaces: n}
}

// wantErr fails unless err is nil when want is empty, or says every part of want.
func wantErr(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("%s: %v, want it allowed", what, err)
		}
		return
	}
	if err == nil {
		t.Errorf("%s: allowed, want a refusal saying %q", what, want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q, want it to say %q", what, err, w)
		}
	}
}

func TestCheckBackup(t *testing.T) {
	open := location("main", "t1")
	for _, tc := range []struct {
		what string
		b    *v1alpha1.Backup
		loc  *v1alpha1.BackupLocation
		want []string
	}{
		{"own namespace, implied", backup("t1", v1alpha1.BackupSpec{}), open, nil},
		{"own namespace, named", backup("t1", v1alpha1.BackupSpec{Selection: names("t1")}), open, nil},
		{"another namespace", backup("t1", v1alpha1.BackupSpec{Selection: names("t1", "kube-system")}), open,
			[]string{"spec.includeNamespaces: a Backup in namespace t1 may only back up t1 (kube-system named); create it in pxb-system as an administrator"}},
		{"every namespace", backup("t1", v1alpha1.BackupSpec{Selection: names("*")}), open, []string{"spec.includeNamespaces", "(* named)"}},
		{"namespace selector", backup("t1", v1alpha1.BackupSpec{NamespaceSelector: &metav1.LabelSelector{}}), open,
			[]string{"spec.namespaceSelector: a Backup in namespace t1 may only back up t1"}},
		{"every cluster-scoped object", backup("t1", v1alpha1.BackupSpec{Selection: v1alpha1.Selection{ClusterResources: v1alpha1.ClusterResourcesInclude}}), open,
			[]string{"spec.clusterResources", "Include", "use Auto or Exclude"}},
		{"related cluster-scoped objects", backup("t1", v1alpha1.BackupSpec{Selection: v1alpha1.Selection{ClusterResources: v1alpha1.ClusterResourcesAuto}}), open, nil},
		{"location closed to the namespace", backup("t2", v1alpha1.BackupSpec{}), open,
			[]string{"spec.location: BackupLocation main is not open to namespace t2", "ask an administrator to add t2 to it"}},
		{"location open to pxb-system alone", backup("t1", v1alpha1.BackupSpec{}), location("main"), []string{"spec.location"}},
		{"location open to all", backup("t2", v1alpha1.BackupSpec{}), location("main", "*"), nil},
		{"unknown location: left to the job", backup("t2", v1alpha1.BackupSpec{}), nil, nil},
		{"another location than the one given", backup("t2", v1alpha1.BackupSpec{Location: "other"}), open, nil},
		{"administrators span namespaces", backup(v1alpha1.SystemNamespace, v1alpha1.BackupSpec{Selection: v1alpha1.Selection{
			IncludeNamespaces: []v1alpha1.NamespacePattern{"*"}, ClusterResources: v1alpha1.ClusterResourcesInclude}}), location("main"), nil},
	} {
		wantErr(t, tc.what, CheckBackup(tc.b, tc.loc), tc.want...)
	}
}

func TestCheckScheduleNamesTheTemplate(t *testing.T) {
	s := &v1alpha1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "t1"},
		Spec: v1alpha1.BackupScheduleSpec{Policy: "daily", Template: v1alpha1.BackupSpec{Location: "main", Selection: names("kube-system")}}}
	wantErr(t, "template naming kube-system", CheckSchedule(s, location("main", "t1")),
		"spec.template.includeNamespaces: a BackupSchedule in namespace t1 may only back up t1 (kube-system named)")
	s.Spec.Template.Selection = names("t1")
	wantErr(t, "template of its namespace, closed location", CheckSchedule(s, location("main", "t2")),
		"spec.template.location: BackupLocation main is not open to namespace t1")
	wantErr(t, "template of its namespace", CheckSchedule(s, location("main", "t1")))
}

func TestCheckRestore(t *testing.T) {
	restore := func(ns string, spec v1alpha1.RestoreSpec) *v1alpha1.Restore {
		spec.BackupName = "b"
		return &v1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: ns}, Spec: spec}
	}
	own := backup("t1", v1alpha1.BackupSpec{})
	open := location("main", "t1")
	for _, tc := range []struct {
		what string
		r    *v1alpha1.Restore
		b    *v1alpha1.Backup
		loc  *v1alpha1.BackupLocation
		want []string
	}{
		{"own namespace", restore("t1", v1alpha1.RestoreSpec{}), own, open, nil},
		{"own namespace, mapped onto itself", restore("t1", v1alpha1.RestoreSpec{Selection: names("t1"),
			NamespaceMapping: map[string]v1alpha1.NamespaceName{"t1": "t1"}}), own, open, nil},
		{"into another namespace", restore("t1", v1alpha1.RestoreSpec{NamespaceMapping: map[string]v1alpha1.NamespaceName{"t1": "t2"}}), own, open,
			[]string{"spec.namespaceMapping: a Restore in namespace t1 may only restore into t1 (t2 named); create it in pxb-system as an administrator"}},
		{"another namespace of the backup", restore("t1", v1alpha1.RestoreSpec{Selection: names("kube-system")}), own, open,
			[]string{"spec.includeNamespaces: a Restore in namespace t1 may only restore t1 (kube-system named)"}},
		{"every cluster-scoped object", restore("t1", v1alpha1.RestoreSpec{Selection: v1alpha1.Selection{ClusterResources: v1alpha1.ClusterResourcesInclude}}), own, open,
			[]string{"spec.clusterResources", "Include"}},
		{"a backup of another namespace", restore("t1", v1alpha1.RestoreSpec{}), backup("t2", v1alpha1.BackupSpec{}), open,
			[]string{"spec.backupName: Backup t2/b is not in namespace t1"}},
		{"a backup reaching beyond the namespace", restore("t1", v1alpha1.RestoreSpec{}), backup("t1", v1alpha1.BackupSpec{Selection: names("kube-system")}), open,
			[]string{"spec.backupName: Backup t1/b reaches beyond namespace t1 (its spec.includeNamespaces: kube-system)", "restore it from pxb-system as an administrator"}},
		{"a backup in a location closed to the namespace", restore("t1", v1alpha1.RestoreSpec{}), own, location("main", "t2"),
			[]string{"spec.backupName: Backup t1/b is kept in BackupLocation main, which is not open to namespace t1"}},
		{"the spec alone, as the plugin checks it", restore("t1", v1alpha1.RestoreSpec{}), nil, nil, nil},
		{"administrators map anywhere", restore(v1alpha1.SystemNamespace, v1alpha1.RestoreSpec{Selection: names("*"),
			NamespaceMapping: map[string]v1alpha1.NamespaceName{"a": "b"}}), backup(v1alpha1.SystemNamespace, v1alpha1.BackupSpec{Selection: names("*")}), location("main"), nil},
	} {
		wantErr(t, tc.what, CheckRestore(tc.r, tc.b, tc.loc), tc.want...)
	}
}

func TestCheckMarks(t *testing.T) {
	wantErr(t, "user labels", CheckMarks(map[string]string{"app": "shop", "pxb.dev/tier": "gold"}, map[string]string{"note": "x"}))
	for _, k := range PXBLabels {
		wantErr(t, "label "+k, CheckMarks(map[string]string{k: "x"}, nil), "metadata.labels: "+k+" is set by pxb alone")
	}
	for _, k := range PXBAnnotations {
		wantErr(t, "annotation "+k, CheckMarks(nil, map[string]string{k: "x"}), "metadata.annotations: "+k+" is set by pxb alone")
	}
}
