//go:build e2e

package framework

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

var (
	pluginOnce sync.Once
	pluginDir  string
	pluginErr  error
)

// Pxb runs `kubectl pxb ARGS...` against the cluster, through kubectl's plugin mechanism with the plugin
// built from this checkout, and returns the combined output.
func (c *Cluster) Pxb(t testing.TB, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	return c.PxbEnv(t, timeout, nil, args...)
}

// PxbEnv is Pxb with env ("KEY=value") added to the plugin's environment, for that one command: tests run in
// parallel, so the test process's own environment must stay as it is.
func (c *Cluster) PxbEnv(t testing.TB, timeout time.Duration, env []string, args ...string) (string, error) {
	t.Helper()
	pluginOnce.Do(func() {
		// In the checkout's git-ignored bin/, replaced by every run.
		pluginDir = filepath.Join(repoRoot(), "bin", "e2e")
		cmd := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "kubectl-pxb"), "./cmd/kubectl-pxb")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			pluginErr = &buildError{err: err, out: string(out)}
		}
	})
	if pluginErr != nil {
		t.Fatalf("build kubectl-pxb: %v", pluginErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// kubectl refuses global flags before a plugin's name: the cluster comes from KUBECONFIG.
	cmd := exec.CommandContext(ctx, c.Kubectl, append([]string{"pxb"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "PATH="+pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Install runs `kubectl pxb install` with the locally built pxb-job image.
func (c *Cluster) Install(t testing.TB) string {
	t.Helper()
	out, err := c.Pxb(t, 3*time.Minute, "install", "--image", c.Image)
	if err != nil {
		t.Fatalf("kubectl pxb install: %v\n%s", err, out)
	}
	return out
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// repoRoot is the module root, two directories above this file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}
