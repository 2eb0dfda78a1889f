//go:build integration

package apply_test

import (
	"strings"
	"testing"

	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestConfinedRestore restores, confined to a team's namespace, a backup of two namespaces and every
// cluster-scoped object they use, asked to take them all: the mapped namespace's objects land in the
// team's namespace, the other namespace's are skipped, and no cluster-scoped object is written.
func TestConfinedRestore(t *testing.T) {
	c := testbed.APIServer(t)
	dyn := c.Dynamic(t)
	a, b := createApp(t, dyn, c.Namespace(t), uniqueID(t)), createApp(t, dyn, c.Namespace(t), uniqueID(t)+"b")
	store := newStore(t)
	if res := backup(t, c, store, collect.Options{IncludeNamespaces: []string{a.ns, b.ns}, BackupName: "both",
		IncludeClusterResources: collect.ClusterResourcesAll}); res.Phase != collect.PhaseCompleted {
		t.Fatalf("backup phase %s: %v", res.Phase, res.Errors)
	}
	team := c.Namespace(t)
	res, summary := restore(t, c, store, newStore(t), apply.Options{BackupName: "both", RestoreName: "team",
		NamespaceMapping: map[string]string{a.ns: team}, ClusterResources: collect.ClusterResourcesAll, Namespace: team})
	if res.Phase != collect.PhaseCompleted {
		t.Errorf("restore phase %s, errors %v", res.Phase, res.Errors)
	}
	if e := summary["configmaps "+team+"/shop-config"]; e.Outcome != apply.OutcomeRestored || e.SourceNamespace != a.ns {
		t.Errorf("the mapped namespace's ConfigMap: %+v, want it restored into %s", e, team)
	}
	if e := summary["configmaps "+b.ns+"/shop-config"]; e.Outcome != apply.OutcomeSkipped ||
		e.Reason != "a restore confined to namespace "+team+" writes nothing into namespace "+b.ns {
		t.Errorf("the other namespace's ConfigMap: %+v, want it skipped as outside %s", e, team)
	}
	for k, e := range summary {
		if strings.Contains(k, " /") {
			t.Errorf("cluster-scoped %s was written (%s)", k, e.Outcome)
		}
	}
}
