//go:build integration

package testbed_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
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
			// The child's data goes where this test cleans up: a killed child cannot remove it.
			cmd.Env = append(os.Environ(), "TESTBED_CHILD="+mode, "TMPDIR="+t.TempDir())
			out, err := cmd.StdoutPipe()
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
			_ = cmd.Wait()

			deadline := time.Now().Add(5 * time.Second)
			for {
				conn, err := net.Dial("tcp", endpoint)
				if err != nil {
					break
				}
				conn.Close()
				if time.Now().After(deadline) {
					t.Fatalf("server at %s still answers after its test process ended (%s)", endpoint, mode)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

func TestChildStartsS3(t *testing.T) {
	mode := os.Getenv("TESTBED_CHILD")
	if mode == "" {
		t.Skip("run by TestServersStopWithTheTestProcess")
	}
	st := testbed.S3(t)
	os.Stdout.WriteString("endpoint: " + st.Endpoint + "\n")
	if mode == "killed" {
		time.Sleep(time.Minute) // until the parent kills this process
	}
}
