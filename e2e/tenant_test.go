//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/e2e/framework"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// kubectlAs runs kubectl as user, whom the cluster's administrator impersonates: the API server authorizes
// and admits each request as that user's own.
func kubectlAs(t *testing.T, c *framework.Cluster, user, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.KubectlCmd(ctx, append([]string{"--as", user}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestTenantSelfService: a team member whose only right is the namespace's built-in edit role backs the
// namespace up and restores it with kubectl apply alone: no kubectl pxb, no right in pxb-system. The
// reconciler launches both Jobs; the restored volume holds the same files.
func TestTenantSelfService(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		ns := c.Namespace(t)
		loc := volumeLocation(t, c, ns)
		// The administrator lets the team's namespace use the location.
		if out, err := c.KubectlCmd(framework.Context(t, time.Minute), "patch", "-n", v1alpha1.SystemNamespace, "backuplocation/"+loc,
			"--type", "merge", "-p", fmt.Sprintf(`{"spec":{"allowedNamespaces":[%q]}}`, ns)).CombinedOutput(); err != nil {
			t.Fatalf("allow %s to use location %s: %v\n%s", ns, loc, err, out)
		}
		user := "team-" + suffix(ns)
		if out, err := c.KubectlCmd(framework.Context(t, time.Minute), "create", "rolebinding", "team", "-n", ns,
			"--clusterrole", "edit", "--user", user).CombinedOutput(); err != nil {
			t.Fatalf("bind edit in %s: %v\n%s", ns, err, out)
		}
		c.PVC(t, ns, "data", framework.StorageClass, nil)
		want := c.WriteRich(t, ns, "data", framework.Rich{Seed: 7, Small: 20, Large: 1 << 20})
		c.Apply(t, ns, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n")

		if out, err := kubectlAs(t, c, user, "", "auth", "can-i", "create", "jobs", "-n", v1alpha1.SystemNamespace); err == nil || !strings.HasPrefix(out, "no") {
			t.Fatalf("the team member may create Jobs in %s (%q): the test would not show the reconciler at work", v1alpha1.SystemNamespace, out)
		}
		if out, err := kubectlAs(t, c, user, fmt.Sprintf(`apiVersion: pxb.dev/v1alpha1
kind: Backup
metadata: {name: mine, namespace: %s}
spec: {location: %s}
`, ns, loc), "apply", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply of a Backup as the team member: %v\n%s", err, out)
		}
		// Within the reconciler's minute and the backup's own time.
		b := c.WaitForEnd(t, v1alpha1.BackupsResource, ns, "mine", 3*time.Minute)
		requireEnded(t, c, b, nil, "Completed", "pxb.dev/backup")

		// The team loses its application, and restores it the same way.
		for _, obj := range []string{"configmap/settings", "pvc/data"} {
			if out, err := kubectlAs(t, c, user, "", "delete", "-n", ns, obj, "--wait"); err != nil {
				t.Fatalf("delete %s as the team member: %v\n%s", obj, err, out)
			}
		}
		if out, err := kubectlAs(t, c, user, fmt.Sprintf(`apiVersion: pxb.dev/v1alpha1
kind: Restore
metadata: {name: back, namespace: %s}
spec: {backupName: mine}
`, ns), "apply", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply of a Restore as the team member: %v\n%s", err, out)
		}
		r := c.WaitForEnd(t, v1alpha1.RestoresResource, ns, "back", 3*time.Minute)
		requireEnded(t, c, r, nil, "Completed", "pxb.dev/restore")
		cm, err := c.Kube.CoreV1().ConfigMaps(ns).Get(framework.Context(t, 30*time.Second), "settings", metav1.GetOptions{})
		if err != nil || cm.Data["color"] != "blue" {
			t.Errorf("restored ConfigMap: %v, %v", cm, err)
		}
		framework.CompareManifests(t, "volume restored by the team", want, c.Manifest(t, ns, "data"))
	})
}
