// Package rules runs a backup's pre-exec and post-exec Rules: commands executed in the application's pods
// (through the pods/exec subresource, as kubectl exec does) so that its volumes are snapshotted while it is
// quiet, for example with its tables flushed and locked.
package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Exec runs command in a container of pod, streaming stdin (when not nil), stdout and stderr, until the
// command exits or ctx ends. A command that exits non-zero returns an error with its exit status
// (k8s.io/client-go/util/exec.ExitError).
type Exec func(ctx context.Context, pod *corev1.Pod, container string, command []string, stdin io.Reader, stdout, stderr io.Writer) error

// Runner runs Rules.
type Runner struct {
	Kube kubernetes.Interface
	Exec Exec
	// Logf receives a line per command run and its output.
	Logf func(format string, args ...any)
}

const (
	// defaultTimeout applies to an action without timeoutSeconds (the API server fills in the same).
	defaultTimeout = 300 * time.Second
	// stopGrace is how long a background command may take to end once its input is closed.
	stopGrace = 30 * time.Second
	// parallelPods bounds the pods one action runs in at once.
	parallelPods = 16
	// outputTail is how much of a command's output is kept for the log and for an error.
	outputTail  = 2048
	listTimeout = time.Minute
)

// Held are the background commands of a rule run, running until Stop.
type Held struct {
	cmds []*background
}

// Run runs the actions of rule, in order, in the running pods of namespaces that each action selects.
// what names the rule in messages ("pre-exec rule"). A failed action whose onError is Fail ends the run
// with an error naming the rule, the action, the pod and what went wrong; with Continue it becomes a
// warning. Background commands that started stay running in the returned Held, also when Run fails, so
// that the caller stops them either way.
func (r *Runner) Run(ctx context.Context, what string, rule *v1alpha1.Rule, namespaces []string) (*Held, []string, error) {
	held := &Held{}
	var warnings []string
	for i := range rule.Spec.Actions {
		a := &rule.Spec.Actions[i]
		name := fmt.Sprintf("%s %s/%s action %d", what, rule.Namespace, rule.Name, i+1)
		pods, err := r.pods(ctx, a, namespaces)
		if err != nil {
			return held, warnings, fmt.Errorf("%s: %w", name, err)
		}
		if len(pods) == 0 {
			warnings = append(warnings, fmt.Sprintf("%s: no running pod in %s matches podSelector %s",
				name, strings.Join(namespaces, ", "), metav1.FormatLabelSelector(&a.PodSelector)))
			continue
		}
		errs := r.runAction(ctx, name, a, pods, held)
		if len(errs) == 0 {
			continue
		}
		if a.OnError == v1alpha1.RuleContinue {
			for _, err := range errs {
				warnings = append(warnings, err.Error()+" (onError: Continue)")
			}
			continue
		}
		return held, warnings, errors.Join(errs...)
	}
	return held, warnings, nil
}

// pods are the running pods an action selects, in namespace and name order; one when it runs in a single
// pod.
func (r *Runner) pods(ctx context.Context, a *v1alpha1.RuleAction, namespaces []string) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(&a.PodSelector)
	if err != nil {
		return nil, fmt.Errorf("podSelector: %w", err)
	}
	var pods []corev1.Pod
	for _, ns := range namespaces {
		lctx, cancel := context.WithTimeout(ctx, listTimeout)
		list, err := r.Kube.CoreV1().Pods(ns).List(lctx, metav1.ListOptions{LabelSelector: sel.String()})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list pods in %s: %w", ns, err)
		}
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				pods = append(pods, p)
			}
		}
	}
	slices.SortFunc(pods, func(a, b corev1.Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	if a.RunInSinglePod && len(pods) > 1 {
		pods = pods[:1]
	}
	return pods, nil
}

// runAction runs one action in each of pods at once (a bounded number at a time) and returns its failures.
func (r *Runner) runAction(ctx context.Context, name string, a *v1alpha1.RuleAction, pods []corev1.Pod, held *Held) []error {
	timeout := time.Duration(a.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, parallelPods)
	)
	for i := range pods {
		pod := &pods[i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			container, err := containerOf(pod, a.Container)
			where := fmt.Sprintf("%s in pod %s/%s", name, pod.Namespace, pod.Name)
			if err == nil {
				where += fmt.Sprintf(" (container %s)", container)
				if a.Background {
					var bg *background
					if bg, err = r.startBackground(ctx, where, pod, container, a.Command, timeout); bg != nil {
						mu.Lock()
						held.cmds = append(held.cmds, bg)
						mu.Unlock()
					}
				} else {
					err = r.runForeground(ctx, where, pod, container, a.Command, timeout)
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// containerOf is the container to run in: the one named, else the pod's default container as kubectl
// chooses it (its kubectl.kubernetes.io/default-container annotation, else the first).
func containerOf(pod *corev1.Pod, name string) (string, error) {
	if name == "" {
		name = pod.Annotations["kubectl.kubernetes.io/default-container"]
	}
	if name == "" && len(pod.Spec.Containers) > 0 {
		return pod.Spec.Containers[0].Name, nil
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return name, nil
		}
	}
	return "", fmt.Errorf("the pod has no container %q", name)
}

func (r *Runner) runForeground(ctx context.Context, where string, pod *corev1.Pod, container string, command []string, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out tail
	start := time.Now()
	err := r.Exec(cctx, pod, container, command, nil, &out, &out)
	r.Logf("%s: ran %s in %s%s", where, quote(command), time.Since(start).Round(time.Millisecond), out.logSuffix())
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case cctx.Err() != nil:
		return fmt.Errorf("%s did not end within %s (timeoutSeconds)%s", quote(command), timeout, out.errSuffix())
	}
	return commandError(command, err, &out)
}

// commandError says how a command failed.
func commandError(command []string, err error, out *tail) error {
	return fmt.Errorf("%s failed: %s", quote(command), failure(err, out))
}

// failure is a command's exit code (or the error of its session) and the end of its output.
func failure(err error, out *tail) string {
	var exit utilexec.ExitError
	msg := err.Error()
	if errors.As(err, &exit) {
		msg = fmt.Sprintf("exit code %d", exit.ExitStatus())
	}
	return msg + out.errSuffix()
}

// A background command runs with its standard input held open, from when it printed its first line until
// Stop closes that input.
type background struct {
	where   string
	command []string
	stdin   *io.PipeWriter
	cancel  context.CancelFunc
	done    chan error
	out     *tail
}

// startBackground starts command and waits until it prints its first line of output, its sign that it
// holds what it was run for (a lock, say). A command that exits first, or prints nothing within timeout,
// has failed; it is not returned.
func (r *Runner) startBackground(ctx context.Context, where string, pod *corev1.Pod, container string, command []string, timeout time.Duration) (*background, error) {
	bctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	line := make(chan struct{})
	bg := &background{where: where, command: command, stdin: pw, cancel: cancel, done: make(chan error, 1),
		out: &tail{line: line}}
	go func() {
		err := r.Exec(bctx, pod, container, command, pr, bg.out, bg.out)
		_ = pr.CloseWithError(io.EOF)
		bg.done <- err
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-line:
		r.Logf("%s: started %s in the background: %s", where, quote(command), bg.out.String())
		return bg, nil
	case err := <-bg.done:
		cancel()
		if err == nil {
			return nil, fmt.Errorf("background command %s ended before it printed a line (it must keep running until its input closes)%s",
				quote(command), bg.out.errSuffix())
		}
		return nil, commandError(command, err, bg.out)
	case <-timer.C:
	case <-ctx.Done():
	}
	_ = pw.Close()
	cancel()
	<-bg.done
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return nil, fmt.Errorf("background command %s printed no line within %s (timeoutSeconds)%s", quote(command), timeout, bg.out.errSuffix())
}

// Stop ends the background commands: it closes their input, on which each should exit, and ends their
// sessions. A command that ended before Stop gave up what it held while the volumes were snapshotted; that
// is returned as an error naming it.
func (h *Held) Stop(logf func(string, ...any)) error {
	if h == nil {
		return nil
	}
	var errs []error
	for _, bg := range h.cmds {
		select {
		case err := <-bg.done:
			bg.cancel()
			msg := "ended"
			if err != nil {
				msg = "ended (" + failure(err, bg.out) + ")"
			}
			errs = append(errs, fmt.Errorf("%s: background command %s %s before the snapshots were done", bg.where, quote(bg.command), msg))
			continue
		default:
		}
		_ = bg.stdin.Close()
		timer := time.NewTimer(stopGrace)
		select {
		case <-bg.done:
			logf("%s: background command %s ended%s", bg.where, quote(bg.command), bg.out.logSuffix())
		case <-timer.C:
			bg.cancel()
			<-bg.done
			logf("%s: background command %s did not end within %s of its input closing; its session was closed", bg.where, quote(bg.command), stopGrace)
		}
		timer.Stop()
		bg.cancel()
	}
	h.cmds = nil
	return errors.Join(errs...)
}

// tail keeps the last outputTail bytes written to it, and signals its first complete line.
type tail struct {
	mu   sync.Mutex
	buf  []byte
	line chan struct{} // closed at the first newline, when not nil
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > outputTail {
		t.buf = t.buf[len(t.buf)-outputTail:]
	}
	if t.line != nil && bytes.IndexByte(p, '\n') >= 0 {
		close(t.line)
		t.line = nil
	}
	return len(p), nil
}

// String is the output kept, trimmed, on one line.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(t.buf), "?")), " ")
}

func (t *tail) logSuffix() string {
	if s := t.String(); s != "" {
		return "; output: " + s
	}
	return ""
}

func (t *tail) errSuffix() string {
	if s := t.String(); s != "" {
		return ": " + s
	}
	return ""
}

func quote(command []string) string { return fmt.Sprintf("%q", command) }
