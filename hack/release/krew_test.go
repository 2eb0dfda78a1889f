//go:build release

// Package release tests the release that `make release-snapshot` writes into dist/ as a user takes it: Krew
// installs the plugin from the manifest and the archive, and kubectl finds and runs it.
package release

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/pxb-dev/pxb/pkg/testbed"
)

// krewManifest is the part of a Krew plugin manifest this test reads.
type krewManifest struct {
	Spec struct {
		Version   string `json:"version"`
		Platforms []struct {
			URI      string `json:"uri"`
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
		} `json:"platforms"`
	} `json:"spec"`
}

func TestKrewInstallsSnapshot(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dist := filepath.Join(root, "dist")
	version := snapshotVersion(t, dist)
	manifestPath := filepath.Join(dist, "krew", "pxb.yaml")
	manifest := readManifest(t, manifestPath)
	if manifest.Spec.Version != version {
		t.Errorf("%s: spec.version %q, want the snapshot's %q", manifestPath, manifest.Spec.Version, version)
	}
	archive := archiveFor(t, manifest, dist, runtime.GOOS, runtime.GOARCH)

	// kubectl-krew on PATH, as a user who installed Krew has it; the plugin goes into a KREW_ROOT of its own.
	bin, krewRoot := t.TempDir(), t.TempDir()
	run(t, 10*time.Minute, root, nil, "go", "build", "-modfile=hack/tools/krew/go.mod",
		"-o", filepath.Join(bin, "kubectl-krew"), "sigs.k8s.io/krew/cmd/krew")
	kubectl := testbed.Tool(t, "kubectl")
	env := []string{
		"KREW_ROOT=" + krewRoot,
		"KREW_NO_UPGRADE_CHECK=1", // Krew would ask GitHub for a newer Krew
		"PATH=" + filepath.Join(krewRoot, "bin") + string(os.PathListSeparator) + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		// The version below needs no cluster; no kubeconfig of the machine is read.
		"KUBECONFIG=" + filepath.Join(t.TempDir(), "absent"),
	}

	// Krew refuses an archive whose sha256 is not the manifest's.
	run(t, time.Minute, root, env, kubectl, "krew", "install", "--manifest="+manifestPath, "--archive="+archive)
	// What `kubectl krew list` reads (which also wants the krew-index, out of reach here).
	receipt := readManifest(t, filepath.Join(krewRoot, "receipts", "pxb.yaml"))
	if receipt.Spec.Version != version {
		t.Errorf("Krew's receipt of pxb says version %q, want %q", receipt.Spec.Version, version)
	}

	// kubectl finds kubectl-pxb in $KREW_ROOT/bin.
	out := run(t, time.Minute, root, env, kubectl, "pxb", "version", "--client")
	if want := "Client Version: " + version + "\n"; out != want {
		t.Errorf("kubectl pxb version --client printed %q, want %q", out, want)
	}
	out = run(t, time.Minute, root, env, kubectl, "plugin", "list")
	if want := filepath.Join(krewRoot, "bin", "kubectl-pxb"); !strings.Contains(out, want) {
		t.Errorf("kubectl plugin list does not show %s:\n%s", want, out)
	}
}

// snapshotVersion returns the version the release was built as, with the "v" its binaries and manifest carry.
func snapshotVersion(t *testing.T, dist string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dist, "metadata.json"))
	if err != nil {
		t.Fatalf("%v: run make release-snapshot first", err)
	}
	var meta struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &meta); err != nil || meta.Version == "" {
		t.Fatalf("dist/metadata.json: no version (%v)", err)
	}
	return "v" + meta.Version
}

func readManifest(t *testing.T, file string) krewManifest {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m krewManifest
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return m
}

// archiveFor returns the file in dist that the manifest's platform for goos/goarch downloads.
func archiveFor(t *testing.T, m krewManifest, dist, goos, goarch string) string {
	t.Helper()
	for _, p := range m.Spec.Platforms {
		if l := p.Selector.MatchLabels; l["os"] == goos && l["arch"] == goarch {
			return filepath.Join(dist, path.Base(p.URI))
		}
	}
	t.Fatalf("the manifest has no platform %s/%s", goos, goarch)
	return ""
}

// run runs a command in dir with env added to the test's environment and returns its standard output.
func run(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	t.Logf("%s %s:\n%s%s", filepath.Base(name), strings.Join(args, " "), stdout.String(), stderr.String())
	return stdout.String()
}
