package cli

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func TestSelectionFlags(t *testing.T) {
	for _, h := range []selectionHelp{backupSelectionHelp, restoreSelectionHelp} {
		var s selectionFlags
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		s.AddFlags(fs, h)
		err := fs.Parse([]string{"--include-namespaces", "shop,db", "--exclude-namespaces", "old", "-l", "app=web",
			"--include-resources", "Deployments.apps", "--exclude-resources", "events", "--include-cluster-resources", "true"})
		if err != nil {
			t.Fatal(err)
		}
		sel, err := s.ToSelection()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(stringsOf(sel.IncludeNamespaces), ",") != "shop,db" || strings.Join(stringsOf(sel.ExcludeNamespaces), ",") != "old" ||
			sel.LabelSelector.MatchLabels["app"] != "web" || strings.Join(stringsOf(sel.IncludeResources), ",") != "deployments.apps" ||
			strings.Join(stringsOf(sel.ExcludeResources), ",") != "events" || sel.ClusterResources != v1alpha1.ClusterResourcesInclude {
			t.Errorf("selection %+v", sel)
		}
		if f := fs.Lookup("include-cluster-resources"); f.DefValue != "auto" {
			t.Errorf("--include-cluster-resources defaults to %q, want auto", f.DefValue)
		}
	}
	for value, want := range map[string]v1alpha1.ClusterResourcesPolicy{
		"": v1alpha1.ClusterResourcesAuto, "Auto": v1alpha1.ClusterResourcesAuto, "false": v1alpha1.ClusterResourcesExclude,
		"Exclude": v1alpha1.ClusterResourcesExclude, "include": v1alpha1.ClusterResourcesInclude,
	} {
		sel, err := (&selectionFlags{ClusterResources: value}).ToSelection()
		if err != nil || sel.ClusterResources != want {
			t.Errorf("--include-cluster-resources %q: %q, %v; want %q", value, sel.ClusterResources, err, want)
		}
	}
	if err := (&selectionFlags{ClusterResources: "maybe"}).Validate(); err == nil || !strings.Contains(err.Error(), "--include-cluster-resources") {
		t.Errorf("--include-cluster-resources maybe: %v", err)
	}
}

func TestRestoreTakesClusterResources(t *testing.T) {
	o := &RestoreCreateOptions{Name: "r", FromBackup: "b", ExistingResourcePolicy: "retain", RestoreVolumes: true,
		selectionFlags: selectionFlags{ClusterResources: "false"}}
	r, err := o.Restore()
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec.ClusterResources != v1alpha1.ClusterResourcesExclude {
		t.Errorf("restore clusterResources %q, want Exclude", r.Spec.ClusterResources)
	}
}
