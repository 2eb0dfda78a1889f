//go:build integration

package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/cli"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestClusterList lists a kubeconfig of two contexts: the test bed with pxb and a backup, and a server that
// accepts connections but never answers. It installs pxb and uninstalls it at the end.
func TestClusterList(t *testing.T) {
	c := testbed.APIServer(t)
	mustPxb(t, c, "install")
	t.Cleanup(func() { _, _ = pxb(t, c, "uninstall", "--purge", "--force") })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A Backup that completed, as its Job leaves it.
	ns := c.Namespace(t)
	dyn := c.Dynamic(t)
	b := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "Backup",
		"metadata": map[string]any{"name": "nightly", "namespace": ns},
		"spec":     map[string]any{"location": "lab"},
	}}
	created, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).Create(ctx, b, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	created.Object["status"] = map[string]any{"phase": "Completed", "completionTimestamp": done.Format(time.RFC3339)}
	if _, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A server that takes the connection and then says nothing: only the timeout ends the wait.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	bed := cfg.Contexts[cfg.CurrentContext]
	cfg.Contexts = map[string]*clientcmdapi.Context{
		"bed":  bed,
		"down": {Cluster: "silent", AuthInfo: bed.AuthInfo},
		// The server answers, but refuses this identity.
		"stranger": {Cluster: bed.Cluster, AuthInfo: "stranger"},
	}
	cfg.AuthInfos["stranger"] = &clientcmdapi.AuthInfo{Token: "not-a-token"}
	cfg.Clusters["silent"] = &clientcmdapi.Cluster{Server: "https://" + silent.Addr().String(), InsecureSkipTLSVerify: true}
	cfg.CurrentContext = "bed"
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	list := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		cmd := cli.NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
		cmd.SetArgs(append([]string{"cluster", "list", "--timeout", "2s", "--kubeconfig", kubeconfig}, args...))
		// A hang would end here, failing the command, rather than at the test binary's timeout.
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := cmd.ExecuteContext(lctx); err != nil {
			t.Fatalf("kubectl pxb cluster list: %v\n%s", err, out.String())
		}
		return out.String()
	}

	table := list()
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(table), "\n")[1:] {
		f := strings.Fields(line)
		rows[f[0]] = f
	}
	if got := strings.Join(rows["bed"], " "); !strings.HasPrefix(got, "bed "+bed.Cluster+" yes dev 1 "+ns+"/nightly Completed 2026-01-02 03:04:05 UTC") {
		t.Errorf("bed row %q:\n%s", got, table)
	}
	if got := strings.Join(rows["down"], " "); !strings.HasPrefix(got, "down silent no: no answer within 2s") {
		t.Errorf("down row %q:\n%s", got, table)
	}

	if got := strings.Join(rows["stranger"], " "); !strings.HasPrefix(got, "stranger "+bed.Cluster+" yes unknown: read pxb-system/pxb-config: Unauthorized") {
		t.Errorf("stranger row %q:\n%s", got, table)
	}

	var infos []cli.ClusterInfo
	if err := json.Unmarshal([]byte(list("-o", "json")), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 {
		t.Fatalf("%d clusters: %+v", len(infos), infos)
	}
	got, down := infos[0], infos[1]
	if !got.Reachable || !got.Installed || got.Version != "dev" || got.Backups != 1 || got.LastBackup == nil ||
		got.LastBackup.Name != "nightly" || got.LastBackup.Phase != "Completed" || !got.LastBackup.CompletedAt.Time.Equal(done) {
		t.Errorf("bed: %+v %+v", got, got.LastBackup)
	}
	if down.Context != "down" || down.Reachable || down.Installed || down.Error == "" {
		t.Errorf("down: %+v", down)
	}
	wantLines(t, list("-o", "yaml"), "context: down", "reachable: false", "phase: Completed")
}
