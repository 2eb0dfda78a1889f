package cli

import (
	"strings"
	"testing"
)

// TestCreateRefusesWhatATeamMayNot runs the create commands in a team's namespace against a kubeconfig
// that points nowhere: each refuses, naming the field, before it reaches for the cluster.
func TestCreateRefusesWhatATeamMayNot(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backup", "create", "b", "-n", "t1", "--include-namespaces", "kube-system", "--location", "main"},
			"spec.includeNamespaces: a Backup in namespace t1 may only back up t1 (kube-system named); create it in pxb-system as an administrator"},
		{[]string{"backup", "create", "b", "--namespace-selector", "team=a", "-n", "t1", "--location", "main"}, "spec.namespaceSelector: a Backup in namespace t1"},
		{[]string{"backup", "create", "b", "--include-cluster-resources", "true", "--location", "main"}, "spec.clusterResources: a Backup in namespace team-a may not take every cluster-scoped object"},
		{[]string{"backup", "create", "b", "--labels", "pxb.dev/schedule=nightly", "--location", "main"}, "--labels: metadata.labels: pxb.dev/schedule is set by pxb alone"},
		{[]string{"schedule", "create", "s", "-n", "t1", "--policy", "daily", "--include-namespaces", "t1,kube-system", "--location", "main"},
			"spec.template.includeNamespaces: a BackupSchedule in namespace t1 may only back up t1 (kube-system named)"},
		{[]string{"restore", "create", "r", "-n", "t1", "--from-backup", "b", "--namespace-mappings", "t1:t2"},
			"spec.namespaceMapping: a Restore in namespace t1 may only restore into t1 (t2 named)"},
		{[]string{"restore", "create", "r", "-n", "t1", "--from-backup", "b", "--include-namespaces", "kube-system"},
			"spec.includeNamespaces: a Restore in namespace t1 may only restore t1 (kube-system named)"},
	} {
		out, err := runNowhere(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v (%s), want an error with %q", tc.args, err, out, tc.want)
		}
	}
}

// TestCreateLetsAdministratorsSpanNamespaces: in pxb-system the same selections are an administrator's.
func TestCreateLetsAdministratorsSpanNamespaces(t *testing.T) {
	for _, args := range [][]string{
		{"backup", "create", "b", "-n", "pxb-system", "--include-namespaces", "kube-system,t1", "--include-cluster-resources", "true", "--location", "main"},
		{"backup", "create", "b", "--include-namespaces", "kube-system", "--location", "main"},
		{"schedule", "create", "s", "-n", "pxb-system", "--policy", "daily", "--include-namespaces", "*", "--location", "main"},
		{"restore", "create", "r", "-n", "pxb-system", "--from-backup", "b", "--namespace-mappings", "t1:t2"},
	} {
		out, err := runNowhere(t, append(args, "--dry-run=client", "-o", "name")...)
		if err != nil {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
}

func TestInstallTenantRole(t *testing.T) {
	role := "clusterrole.rbac.authorization.k8s.io/pxb-tenant\n"
	for flag, want := range map[string]bool{"": true, "--tenant-role=aggregate": true, "--tenant-role=none": false} {
		args := []string{"install", "--dry-run=client", "-o", "name"}
		if flag != "" {
			args = append(args, flag)
		}
		out, err := run(t, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		if got := strings.Contains(out, role); got != want {
			t.Errorf("%v prints ClusterRole pxb-tenant: %v, want %v", args, got, want)
		}
		if !strings.Contains(out, "validatingadmissionpolicy.admissionregistration.k8s.io/pxb-team-backups\n") {
			t.Errorf("%v does not print the admission policies:\n%s", args, out)
		}
	}
	if out, err := run(t, "install", "--dry-run=client", "--tenant-role=bind"); err == nil || !strings.Contains(err.Error(), `--tenant-role: tenant role "bind": want aggregate or none`) {
		t.Errorf("--tenant-role=bind: %v\n%s", err, out)
	}
}
