// Package testbed starts real servers for integration tests (build tag integration): etcd, kube-apiserver and
// kube-controller-manager, and object stores (versitygw for S3, Azurite for Azure Blob, fake-gcs-server for
// GCS, plain directories). Each server starts at most once per test process, lazily, on free loopback ports,
// with its data and log under one temporary directory; every test gets a fresh namespace or bucket. Main stops
// every process this package started, by process group; a test process that dies takes its servers with it.
//
//	func TestMain(m *testing.M) { testbed.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		c := testbed.APIServer(t)            // c.Config and c.Kubeconfig are cluster-admin
//		ns := c.Namespace(t)                 // deleted when the test ends
//		alice := c.UserConfig(t, "alice")    // an ordinary user: RBAC decides
//		st := testbed.S3(t)                  // or S3Locked, Azure, GCS, Dir: a fresh bucket
//		bucket, err := st.Open(ctx)          // gocloud.dev blob, explicit credentials
//		...
//	}
//
// The binaries come from hack/tools.sh (pinned versions, cached outside the repository); hack/integration.sh
// builds them before the tests run.
package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Main runs the tests, stops every process started by this package, and exits with the tests' code. The data
// and logs are removed after a passing run and kept (their directory printed) after a failing one.
func Main(m *testing.M) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		stopAll()
		fmt.Fprintf(os.Stderr, "testbed: stopped servers on %v\n", s)
		os.Exit(2)
	}()
	code := m.Run()
	stopAll()
	if dir := rootIfCreated(); dir != "" {
		if code == 0 {
			_ = os.RemoveAll(dir)
		} else {
			fmt.Fprintf(os.Stderr, "testbed: server data and logs kept in %s\n", dir)
		}
	}
	os.Exit(code)
}

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
	rootMu   sync.Mutex
)

// root is the directory holding every server's data and logs for this test process.
func root() (string, error) {
	rootOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pxb-testbed-")
		rootMu.Lock()
		rootDir, rootErr = dir, err
		rootMu.Unlock()
	})
	return rootDir, rootErr
}

func rootIfCreated() string {
	rootMu.Lock()
	defer rootMu.Unlock()
	return rootDir
}

// subdir makes a fresh directory under the root.
func subdir(name string) (string, error) {
	r, err := root()
	if err != nil {
		return "", fmt.Errorf("testbed directory: %w", err)
	}
	d := filepath.Join(r, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("make %s: %w", d, err)
	}
	return d, nil
}

var (
	toolsMu    sync.Mutex
	toolsPaths = map[string]string{}
)

// Tool returns the path of a pinned external binary (a name hack/tools.sh knows, such as kubectl), building
// it first when missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := tool(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tool returns the path of a pinned external binary, building it with hack/tools.sh when missing.
func tool(name string) (string, error) {
	toolsMu.Lock()
	defer toolsMu.Unlock()
	if p, ok := toolsPaths[name]; ok {
		return p, nil
	}
	script, err := findToolsScript()
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.Command(script, name)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", script, name, err, lastLines(stderr.String(), 20))
	}
	p := strings.TrimSpace(string(out))
	toolsPaths[name] = p
	return p, nil
}

// findToolsScript looks for hack/tools.sh in the working directory and its parents (go test runs in the
// package's directory inside the repository).
func findToolsScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		p := filepath.Join(dir, "hack", "tools.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/tools.sh not found in the working directory or its parents")
		}
		dir = parent
	}
}

// process is one server started by this package.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // the exit status, valid after done
}

var (
	procsMu sync.Mutex
	procs   []*process
	stopped bool
)

// launches carries every exec.Cmd.Start to one goroutine locked to its OS thread for the life of the process:
// Pdeathsig fires when the thread that started the child exits, and that thread never does.
var (
	launchOnce sync.Once
	launches   = make(chan launch)
)

type launch struct {
	cmd   *exec.Cmd
	reply chan error
}

func startOnLauncher(cmd *exec.Cmd) error {
	launchOnce.Do(func() {
		go func() {
			runtime.LockOSThread()
			for l := range launches {
				l.reply <- l.cmd.Start()
			}
		}()
	})
	reply := make(chan error)
	launches <- launch{cmd: cmd, reply: reply}
	return <-reply
}

// start runs a server in its own process group (so a stop reaches its children), killed if this test process
// dies, with stdout and stderr appended to logPath.
func start(name, logPath, bin string, args ...string) (*process, error) {
	return startEnv(name, logPath, bin, nil, args...)
}

// startEnv is start with env added to the server's environment.
func startEnv(name, logPath, bin string, env []string, args ...string) (*process, error) {
	procsMu.Lock()
	if stopped {
		procsMu.Unlock()
		return nil, errors.New("testbed is stopped")
	}
	procsMu.Unlock()

	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "testbed: %s %s\n", bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startOnLauncher(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	procsMu.Lock()
	procs = append(procs, p)
	procsMu.Unlock()
	return p, nil
}

// exited reports whether the process has ended, and how, with the end of its log.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); log %s:\n%s", p.name, p.err, p.log, tailFile(p.log, 30))
	default:
		return nil
	}
}

// stop terminates the process group, politely first, and waits for the leader to exit.
func (p *process) stop() {
	p.signal(syscall.SIGTERM)
	p.awaitOrKill(time.Now().Add(5 * time.Second))
}

func (p *process) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// awaitOrKill waits for the process until the deadline, then kills its group; children that outlived their
// leader still belong to the group and go too.
func (p *process) awaitOrKill(deadline time.Time) {
	select {
	case <-p.done:
	case <-time.After(time.Until(deadline)):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stopAll stops every process at once: nothing is kept, so the order does not matter. Servers that wait for
// idle client connections to close (Azurite) are killed after a short grace period.
func stopAll() {
	procsMu.Lock()
	stopped = true
	ps := procs
	procs = nil
	procsMu.Unlock()
	for _, p := range ps {
		p.signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, p := range ps {
		p.awaitOrKill(deadline)
	}
}

// waitReady polls check until it succeeds, the process exits, or the timeout passes.
func waitReady(p *process, timeout time.Duration, check func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if err := p.exited(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = check(ctx)
		cancel()
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w; log %s:\n%s", p.name, timeout, last, p.log, tailFile(p.log, 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startWithRetry starts a server on fresh ports. A port taken by someone else between choosing and binding
// makes the server exit; another try picks other ports.
func startWithRetry(name string, try func() (*process, error)) (*process, error) {
	for attempt := 1; ; attempt++ {
		p, err := try()
		if err == nil {
			return p, nil
		}
		if p != nil {
			p.stop()
		}
		if attempt == 3 || p == nil || !strings.Contains(tailFile(p.log, 30), "address already in use") {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
	}
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// onFailureShowLog prints where a server's log is when the test fails.
func onFailureShowLog(t testing.TB, p *process) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log: %s", p.name, p.log)
		}
	})
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(b), n)
}

func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// uniqueName makes a DNS-1123 label from the test's name and a random suffix, at most max characters.
func uniqueName(t testing.TB, max int) string {
	var b strings.Builder
	dash := true
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	base := strings.Trim(b.String(), "-")
	suffix := randomSuffix(6)
	if limit := max - len(suffix) - 1; len(base) > limit {
		base = strings.TrimRight(base[:limit], "-")
	}
	if base == "" {
		base = "t"
	}
	return base + "-" + suffix
}

func randomSuffix(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	for i := range buf {
		buf[i] = letters[int(buf[i])%len(letters)]
	}
	return string(buf)
}
