package cli

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/pxb-dev/pxb/pkg/install"
)

// run executes `kubectl pxb args...` without a cluster: the kubeconfig points nowhere.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs(append(args, "--kubeconfig", t.TempDir()+"/none"))
	err := cmd.Execute()
	return out.String(), err
}

func TestInstallClientDryRunPrintsEveryObject(t *testing.T) {
	out, err := run(t, "install", "--dry-run=client", "-o", "yaml", "--image", "example.com/pxb-job:v1")
	if err != nil {
		t.Fatalf("install --dry-run=client: %v\n%s", err, out)
	}
	want, err := installObjects(install.Options{Image: "example.com/pxb-job:v1"})
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(out, "\n---\n")
	if len(docs) != len(want) {
		t.Fatalf("printed %d documents, want %d", len(docs), len(want))
	}
	for i, doc := range docs {
		var got unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &got.Object); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if got.GetKind() != want[i].GetKind() || got.GetName() != want[i].GetName() {
			t.Errorf("document %d is %s %s, want %s %s", i, got.GetKind(), got.GetName(), want[i].GetKind(), want[i].GetName())
		}
	}
	if !strings.Contains(docs[len(docs)-2], "jobImage: example.com/pxb-job:v1\n") {
		t.Errorf("pxb-config lacks the image:\n%s", docs[len(docs)-2])
	}
	// The reconciler runs the same image, every minute, as its own ServiceAccount.
	if last := docs[len(docs)-1]; !strings.Contains(last, "kind: CronJob\n") || !strings.Contains(last, "image: example.com/pxb-job:v1\n") ||
		!strings.Contains(last, "schedule: '* * * * *'\n") || !strings.Contains(last, "serviceAccountName: pxb-reconciler\n") {
		t.Errorf("the reconciler's CronJob:\n%s", last)
	}
}

func TestInstallDryRunNames(t *testing.T) {
	out, err := run(t, "install", "--dry-run=client")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "namespace/pxb-system serverside-applied (dry run)\n") ||
		!strings.Contains(out, "customresourcedefinition.apiextensions.k8s.io/backups.pxb.dev serverside-applied (dry run)\n") {
		t.Errorf("install --dry-run=client printed:\n%s", out)
	}
}

func TestInstallRejectsBadImage(t *testing.T) {
	if _, err := run(t, "install", "--dry-run=client", "--image", "two words"); err == nil || !strings.Contains(err.Error(), `--image must be an image reference, not "two words"`) {
		t.Errorf("err = %v", err)
	}
}

func TestVersionClient(t *testing.T) {
	out, err := run(t, "version", "--client")
	if err != nil || out != "Client Version: dev\n" {
		t.Errorf("version --client = %q, %v", out, err)
	}
	out, err = run(t, "version", "--client", "-o", "yaml")
	if err != nil || out != "clientVersion: dev\n" {
		t.Errorf("version --client -o yaml = %q, %v", out, err)
	}
	if _, err := run(t, "version", "--client", "-o", "xml"); err == nil || !strings.Contains(err.Error(), `--output must be json or yaml, not "xml"`) {
		t.Errorf("version -o xml: err = %v", err)
	}
}

func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash":       "complete -o default -F __start_kubectl-pxb kubectl-pxb",
		"zsh":        "#compdef kubectl-pxb",
		"fish":       "complete -c kubectl-pxb",
		"powershell": "Register-ArgumentCompleter -CommandName 'kubectl-pxb'",
	} {
		out, err := run(t, "completion", shell)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("completion %s: err %v, output lacks %q", shell, err, want)
		}
	}
	if _, err := run(t, "completion", "tcsh"); err == nil || !strings.Contains(err.Error(), `invalid argument "tcsh"`) {
		t.Errorf("completion tcsh: err = %v", err)
	}
}

func TestUsageReadsKubectlPxb(t *testing.T) {
	var buf bytes.Buffer
	cmd := NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &buf, ErrOut: &buf})
	cmd.SetArgs([]string{"--help"})
	err := cmd.Execute()
	if out := buf.String(); err != nil || !strings.Contains(out, "Usage:\n  kubectl pxb [command]\n") {
		t.Errorf("--help: %v\n%s", err, out)
	}
}
