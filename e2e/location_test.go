//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxb-dev/pxb/e2e/framework"
)

// TestLocationCheck runs `kubectl pxb location check` for real: a Job in pxb-system probes the shared S3
// server over the pods' network, writes the outcome into the location's status, and the command prints it.
func TestLocationCheck(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		if _, err := kubectlPxb(t, c, 3*time.Minute, "install", "--image", c.Image); err != nil {
			t.Fatalf("install: %v", err)
		}
		name := c.Namespace(t) // unique, and a valid bucket and object name
		s3Bucket(t, c, name)
		dir := t.TempDir()
		write := func(file, content string) string {
			p := filepath.Join(dir, file)
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		good := write("good", "[default]\naws_access_key_id = "+c.S3.AccessKey+"\naws_secret_access_key = "+c.S3.SecretKey+"\n")
		bad := write("bad", "[default]\naws_access_key_id = "+c.S3.AccessKey+"\naws_secret_access_key = not-the-secret\n")
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = c.KubectlCmd(ctx, "delete", "-n", "pxb-system", "backuplocation/"+name, "backuplocation/"+name+"-bad",
				"secret/"+name, "secret/"+name+"-bad", "secret/"+name+"-encryption-key", "secret/"+name+"-bad-encryption-key",
				"--ignore-not-found").Run()
		})
		for _, l := range []struct{ name, file string }{{name, good}, {name + "-bad", bad}} {
			if out, err := kubectlPxb(t, c, time.Minute, "credential", "create", l.name, "--provider", "aws", "--from-file", l.file); err != nil {
				t.Fatalf("credential create: %v\n%s", err, out)
			}
			if out, err := kubectlPxb(t, c, time.Minute, "location", "create", l.name, "--provider", "s3", "--bucket", name,
				"--endpoint", c.S3.Endpoint, "--s3-force-path-style", "--credential", l.name); err != nil {
				t.Fatalf("location create: %v\n%s", err, out)
			}
		}

		out, err := kubectlPxb(t, c, 4*time.Minute, "location", "check", name, "--timeout", "3m")
		if err != nil || !strings.Contains(out, "Phase:") || !strings.Contains(out, "Available") ||
			!strings.Contains(out, "probe object succeeded") {
			t.Fatalf("check of a working location: %v\n%s", err, out)
		}
		out, err = kubectlPxb(t, c, 4*time.Minute, "location", "check", name+"-bad", "--timeout", "3m")
		if err == nil || !strings.Contains(out, "Unavailable") || !strings.Contains(out, "access denied") || strings.Contains(out, "not-the-secret") {
			t.Fatalf("check with a wrong secret: %v\n%s", err, out)
		}
		out, err = kubectlPxb(t, c, time.Minute, "location", "describe", name+"-bad")
		if err != nil || !strings.Contains(out, "Unavailable") || !strings.Contains(out, "Last checked") {
			t.Fatalf("describe after the check: %v\n%s", err, out)
		}
	})
}
