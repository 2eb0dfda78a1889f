package jobs

import (
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
)

func TestBackupOptions(t *testing.T) {
	o, err := BackupOptions("team-a", "nightly", v1alpha1.BackupSpec{Location: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.IncludeNamespaces, []string{"team-a"}) || o.IncludeClusterResources != collect.ClusterResourcesAuto {
		t.Errorf("an empty spec backs up its own namespace with auto cluster resources: %+v", o)
	}
	if !reflect.DeepEqual(o.ExcludeResources, []string{"backups.pxb.dev", "restores.pxb.dev"}) {
		t.Errorf("pxb's own objects are left out: exclude %v", o.ExcludeResources)
	}
	o, err = BackupOptions("pxb-system", "all", v1alpha1.BackupSpec{Selection: v1alpha1.Selection{
		IncludeNamespaces: []v1alpha1.NamespacePattern{"*"}, ExcludeNamespaces: []v1alpha1.NamespaceName{"kube-system"},
		LabelSelector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		IncludeResources: []v1alpha1.ResourcePattern{"deployments.apps", "backups.pxb.dev"},
		ClusterResources: v1alpha1.ClusterResourcesInclude,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Selector != "app=web" || o.IncludeClusterResources != collect.ClusterResourcesAll || o.BackupName != "all" ||
		!reflect.DeepEqual(o.ExcludeResources, []string{"restores.pxb.dev"}) || !reflect.DeepEqual(o.ExcludeNamespaces, []string{"kube-system"}) {
		t.Errorf("options %+v", o)
	}
	o, err = BackupOptions("pxb-system", "sel", v1alpha1.BackupSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}})
	if err != nil || len(o.IncludeNamespaces) != 0 || o.NamespaceSelector != "env=prod" {
		t.Errorf("a namespace selector alone selects by labels: %+v, %v", o, err)
	}
	_, err = BackupOptions("ns", "b", v1alpha1.BackupSpec{Selection: v1alpha1.Selection{LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}}})
	if err == nil || !strings.Contains(err.Error(), "spec.labelSelector") {
		t.Errorf("a bad selector: %v, want an error naming spec.labelSelector", err)
	}
}

func TestRestoreOptions(t *testing.T) {
	o, err := RestoreOptions("back", v1alpha1.RestoreSpec{
		BackupName: "nightly", NamespaceMapping: map[string]v1alpha1.NamespaceName{"shop": "shop-copy"},
		StorageClassMapping: map[string]v1alpha1.ObjectName{"fast": "slow"}, ExistingResourcePolicy: v1alpha1.ExistingReplace, DryRun: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.BackupName != "nightly" || o.RestoreName != "back" || o.NamespaceMapping["shop"] != "shop-copy" || o.StorageClassMapping["fast"] != "slow" ||
		o.ExistingPolicy != apply.PolicyReplace || !o.DryRun {
		t.Errorf("options %+v", o)
	}
	for policy, want := range map[v1alpha1.ClusterResourcesPolicy]collect.ClusterResources{
		"": collect.ClusterResourcesAuto, v1alpha1.ClusterResourcesInclude: collect.ClusterResourcesAll, v1alpha1.ClusterResourcesExclude: collect.ClusterResourcesNone,
	} {
		o, err := RestoreOptions("r", v1alpha1.RestoreSpec{BackupName: "b", Selection: v1alpha1.Selection{ClusterResources: policy}})
		if err != nil || o.ClusterResources != want {
			t.Errorf("spec.clusterResources %q: %q, %v; want %q", policy, o.ClusterResources, err, want)
		}
	}
	if _, err := RestoreOptions("r", v1alpha1.RestoreSpec{BackupName: "b", Selection: v1alpha1.Selection{ClusterResources: "All"}}); err == nil ||
		!strings.Contains(err.Error(), "spec.clusterResources") {
		t.Errorf("a bad policy: %v, want an error naming spec.clusterResources", err)
	}
	if o, _ := RestoreOptions("r", v1alpha1.RestoreSpec{BackupName: "b"}); o.ExistingPolicy != apply.PolicyRetain {
		t.Errorf("default policy %q, want retain", o.ExistingPolicy)
	}
}

func TestRestoreStatusCounts(t *testing.T) {
	res := &apply.Result{Phase: collect.PhasePartiallySucceeded, Total: 7, ErrorCount: 1,
		Errors: []collect.ItemError{{Resource: "services", Namespace: "shop", Name: "web", Reason: "port taken"}},
		Counts: map[apply.Outcome]int{apply.OutcomeRestored: 3, apply.OutcomeRetained: 1, apply.OutcomeReplaced: 1, apply.OutcomeUpdated: 1, apply.OutcomeFailed: 1}}
	s := RestoreStatus(res, nil, nil)
	if s.Phase != v1alpha1.RestorePartiallySucceeded || *s.Counts != (v1alpha1.RestoreCounts{Created: 3, Updated: 2, Skipped: 1, Failed: 1}) {
		t.Errorf("status %+v counts %+v", s, s.Counts)
	}
	if len(s.Errors) != 1 || s.Errors[0] != "services shop/web: port taken" || s.ErrorCount != 1 {
		t.Errorf("errors %v", s.Errors)
	}
	many := make([]string, 50)
	for i := range many {
		many[i] = strings.Repeat("x", 2000)
	}
	b := bounded(many)
	if len(b) != v1alpha1.MaxStatusMessages || len(b[0]) > 1024 {
		t.Errorf("bounded: %d messages, first %d bytes", len(b), len(b[0]))
	}
}
