//go:build integration

package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/cli"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestServerDryRun shows that --dry-run=server gets the API server's verdict on an object (its schema and
// CEL rules) without storing it, and starts no Job.
func TestServerDryRun(t *testing.T) {
	c := testbed.APIServer(t)
	kube := c.Clientset(t)
	dyn := c.Dynamic(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mustPxb(t, c, "install")
	t.Cleanup(func() { _, _ = pxb(t, c, "uninstall", "--purge", "--force") })

	// A location checked by the server is not stored, nor is its key.
	out := mustPxb(t, c, "location", "create", "dry-lab", "--provider", "nfs", "--nfs-server", "filer", "--nfs-path", "/x", "--dry-run=server")
	wantLines(t, out, "backuplocation.pxb.dev/dry-lab created (server dry run)\n")
	if _, err := dyn.Resource(v1alpha1.BackupLocationsResource).Namespace(v1alpha1.SystemNamespace).Get(ctx, "dry-lab", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("BackupLocation after --dry-run=server: %v", err)
	}
	if _, err := kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Get(ctx, "dry-lab-encryption-key", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("key Secret after --dry-run=server: %v", err)
	}
	// The server's schema rejects what the CLI lets through: an nfs location with a bucket.
	if out, err := pxb(t, c, "location", "create", "dry-bad", "--provider", "nfs", "--nfs-server", "filer", "--nfs-path", "/x", "--bucket", "b", "--dry-run=server"); err == nil ||
		!strings.Contains(err.Error(), "bucket may not be set when provider is nfs") {
		t.Fatalf("nfs location with a bucket, --dry-run=server: %v\n%s", err, out)
	}
	mustPxb(t, c, "location", "create", "lab", "--provider", "nfs", "--nfs-server", "filer", "--nfs-path", "/x")

	// A Backup the CRD's CEL rule rejects fails with the server's message. The CLI refuses this spec itself,
	// so it is built past the CLI's checks.
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &c.Kubeconfig
	o := &cli.BackupCreateOptions{IOStreams: genericiooptions.NewTestIOStreamsDiscard(), Location: "lab", NamespaceSelector: "env=prod", Timeout: time.Minute}
	o.IncludeNamespaces = []string{"default"}
	o.Create.DryRun = "server"
	if err := o.Complete(cmdutil.NewFactory(flags), nil, []string{"cel"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Run(ctx); err == nil || !strings.Contains(err.Error(), "includeNamespaces and namespaceSelector are mutually exclusive") ||
		strings.Contains(err.Error(), "--include-namespaces") {
		t.Fatalf("Backup with includeNamespaces and namespaceSelector, --dry-run=server: %v, want the API server's message", err)
	}

	// A valid Backup is printed as the server would store it, defaults filled in, and is not stored.
	out = mustPxb(t, c, "backup", "create", "dry", "-n", v1alpha1.SystemNamespace, "--include-namespaces", "default", "--location", "lab", "--dry-run=server", "-o", "yaml")
	wantLines(t, out, "kind: Backup\n", "  name: dry\n", "  clusterResources: Auto\n", "  location: lab\n")
	wantLines(t, mustPxb(t, c, "backup", "create", "dry", "-n", v1alpha1.SystemNamespace, "--include-namespaces", "default", "--location", "lab", "--dry-run=server"),
		"backup.pxb.dev/dry created (server dry run)\n")
	if _, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(v1alpha1.SystemNamespace).Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Backup after --dry-run=server: %v", err)
	}
	wantLines(t, mustPxb(t, c, "backup", "get", "-A"), "No Backups found in the cluster.")
	jobs, err := kube.BatchV1().Jobs("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 0 {
		t.Fatalf("%d Jobs after --dry-run=server, first %s/%s", len(jobs.Items), jobs.Items[0].Namespace, jobs.Items[0].Name)
	}
}
