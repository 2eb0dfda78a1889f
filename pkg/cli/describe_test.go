package cli

import (
	"bytes"
	"io"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func TestDescribeSharedParts(t *testing.T) {
	var buf bytes.Buffer
	printSelection(&buf, v1alpha1.Selection{IncludeNamespaces: []v1alpha1.NamespacePattern{"shop"}, ClusterResources: v1alpha1.ClusterResourcesExclude}, "*")
	if s := buf.String(); !strings.Contains(s, "Namespaces:\tshop\n") || !strings.Contains(s, "Cluster resources:\tExclude\n") || strings.Contains(s, "Namespace selector") {
		t.Errorf("selection of a Restore:\n%s", s)
	}
	buf.Reset()
	printSelection(&buf, v1alpha1.Selection{}, "team-a", &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}})
	if s := buf.String(); !strings.Contains(s, "Namespaces:\tteam-a\n") || !strings.Contains(s, "Namespace selector:\tenv=prod\n") {
		t.Errorf("selection of a Backup:\n%s", s)
	}
	buf.Reset()
	st := v1alpha1.OperationStatus{
		Message: "1 volume failed", Progress: &v1alpha1.Progress{ItemsDone: 3, ItemsTotal: 4, Percent: 75},
		ErrorCount: 2, Errors: []string{"volume shop/data: no space"},
		Volumes:    []v1alpha1.VolumeStatus{{Namespace: "shop", PVC: "data", Phase: v1alpha1.VolumeFailed}},
		Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: "VolumeFailed", Message: "see errors"}},
	}
	printOperationStatus(&buf, "PartiallySucceeded", "Done", st, func(w io.Writer) { io.WriteString(w, "Extra:\tx\n") })
	for _, want := range []string{"Phase:      PartiallySucceeded\n", "Stage:      Done\n", "Message:    1 volume failed\n", "Objects:    3 of 4 (75%)\n",
		"Extra:      x\n", "Errors:     2\n", "... and 1 more", "shop/data", "Conditions:", "Ready", "VolumeFailed", "see errors"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, buf.String())
		}
	}
}
