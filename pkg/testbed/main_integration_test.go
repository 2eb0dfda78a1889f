//go:build integration

package testbed_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestServersStopWithTheTestProcess runs a test process that starts a server, and checks that the server is
// gone once that process ends: through Main when it exits, and through the kernel when it is killed.
func TestServersStopWithTheTestProcess(t *testing.T) {
	for _, mode := range []string{"exit", "killed"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildStartsS3$")
			// The child's data goes where this test cleans up: a killed child cannot remove it. Its servers
			// name that directory in their arguments, which is how this test tells them from servers of
			// other test processes that may have taken the same port since.
			tmp := t.TempDir()
			cmd.Env = append(os.Environ(), "TESTBED_CHILD="+mode, "TMPDIR="+tmp)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			// The child holds its server until this test has seen it answer: it ends when its input closes.
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			endpoint := ""
			lines := bufio.NewScanner(out)
			for endpoint == "" && lines.Scan() {
				if e, ok := strings.CutPrefix(lines.Text(), "endpoint: http://"); ok {
					endpoint = e
				}
			}
			if endpoint == "" {
				t.Fatal("child printed no endpoint")
			}
			if conn, err := net.Dial("tcp", endpoint); err != nil {
				t.Fatalf("server at %s not up while its test runs: %v", endpoint, err)
			} else {
				conn.Close()
			}
			if mode == "killed" {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
			}
			in.Close()
			_ = cmd.Wait()

			deadline := time.Now().Add(5 * time.Second)
			for {
				left, err := processesNaming(tmp)
				if err != nil {
					t.Fatal(err)
				}
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("server still running after its test process ended (%s): %s", mode, strings.Join(left, "; "))
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// processesNaming lists the command lines of running processes that mention s.
func processesNaming(s string) ([]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var found []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		// A process may end between the listing and this read; it is then not running.
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if cmdline := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmdline, s) {
			found = append(found, e.Name()+": "+cmdline)
		}
	}
	return found, nil
}

func TestChildStartsS3(t *testing.T) {
	mode := os.Getenv("TESTBED_CHILD")
	if mode == "" {
		t.Skip("run by TestServersStopWithTheTestProcess")
	}
	st := testbed.S3(t)
	os.Stdout.WriteString("endpoint: " + st.Endpoint + "\n")
	// Until the parent closes this process's input ("exit") or kills it ("killed").
	_, _ = io.Copy(io.Discard, os.Stdin)
}
