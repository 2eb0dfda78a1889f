package rules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// The real exec through a kubelet is driven by the e2e suite (TestBackupRules); these tests cover the
// runner's own logic with a scripted Exec.

func pod(ns, name, phase string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "db"}},
		Status: corev1.PodStatus{Phase: corev1.PodPhase(phase)}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	return p
}

// script records each command run as "ns/pod/container: command..." and answers through fn.
type script struct {
	mu  sync.Mutex
	ran []string
	fn  func(ctx context.Context, command []string, stdin io.Reader, stdout io.Writer) error
}

func (s *script) exec(ctx context.Context, p *corev1.Pod, container string, command []string, stdin io.Reader, stdout, stderr io.Writer) error {
	s.mu.Lock()
	s.ran = append(s.ran, fmt.Sprintf("%s/%s/%s: %s", p.Namespace, p.Name, container, strings.Join(command, " ")))
	s.mu.Unlock()
	if s.fn == nil {
		return nil
	}
	return s.fn(ctx, command, stdin, stdout)
}

func (s *script) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.ran)
	slices.Sort(out)
	return out
}

func rule(actions ...v1alpha1.RuleAction) *v1alpha1.Rule {
	return &v1alpha1.Rule{ObjectMeta: metav1.ObjectMeta{Namespace: "pxb-system", Name: "lock"}, Spec: v1alpha1.RuleSpec{Actions: actions}}
}

func action(cmd ...string) v1alpha1.RuleAction {
	return v1alpha1.RuleAction{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, Command: cmd, TimeoutSeconds: 5}
}

func newRunner(s *script, pods ...*corev1.Pod) *Runner {
	kube := fake.NewClientset()
	for _, p := range pods {
		if _, err := kube.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			panic(err)
		}
	}
	return &Runner{Kube: kube, Exec: s.exec, Logf: func(string, ...any) {}}
}

func TestRunSelectsRunningPodsAndContainers(t *testing.T) {
	annotated := pod("shop", "db-2", "Running", "sidecar", "db")
	annotated.Annotations = map[string]string{"kubectl.kubernetes.io/default-container": "db"}
	s := &script{}
	r := newRunner(s, pod("shop", "db-0", "Running", "db", "sidecar"), pod("shop", "db-1", "Pending", "db"), annotated,
		pod("blog", "db-0", "Running", "db"), pod("other", "db-0", "Running", "db"))
	single := action("flush")
	single.RunInSinglePod = true
	_, warnings, err := r.Run(context.Background(), "pre-exec rule", rule(action("sync"), single), []string{"shop", "blog"})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("Run: %v, warnings %q", err, warnings)
	}
	want := []string{"blog/db-0/db: flush", "blog/db-0/db: sync", "shop/db-0/db: sync", "shop/db-2/db: sync"}
	if got := s.commands(); !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q (running pods of the namespaces only, the default container, one pod for runInSinglePod)", got, want)
	}
}

func TestRunFailure(t *testing.T) {
	exit3 := func(ctx context.Context, command []string, stdin io.Reader, stdout io.Writer) error {
		if command[0] == "lock" {
			fmt.Fprintln(stdout, "ERROR 1045: access denied")
			return utilexec.CodeExitError{Err: errors.New("command terminated with exit code 3"), Code: 3}
		}
		return nil
	}
	t.Run("Fail stops the rule", func(t *testing.T) {
		s := &script{fn: exit3}
		r := newRunner(s, pod("shop", "db-0", "Running", "db"))
		_, _, err := r.Run(context.Background(), "pre-exec rule", rule(action("lock"), action("after")), []string{"shop"})
		want := `pre-exec rule pxb-system/lock action 1 in pod shop/db-0 (container db): ["lock"] failed: exit code 3: ERROR 1045: access denied`
		if err == nil || err.Error() != want {
			t.Errorf("error %v, want %s", err, want)
		}
		if got := s.commands(); !slices.Equal(got, []string{"shop/db-0/db: lock"}) {
			t.Errorf("ran %q: the action after a failed one ran", got)
		}
	})
	t.Run("Continue warns", func(t *testing.T) {
		s := &script{fn: exit3}
		r := newRunner(s, pod("shop", "db-0", "Running", "db"))
		a := action("lock")
		a.OnError = v1alpha1.RuleContinue
		_, warnings, err := r.Run(context.Background(), "pre-exec rule", rule(a, action("after")), []string{"shop"})
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "exit code 3") || !strings.HasSuffix(warnings[0], "(onError: Continue)") {
			t.Errorf("Run: %v, warnings %q; want no error and the failure as a warning", err, warnings)
		}
		if got := s.commands(); len(got) != 2 {
			t.Errorf("ran %q, want both actions", got)
		}
	})
	t.Run("missing container", func(t *testing.T) {
		s := &script{}
		r := newRunner(s, pod("shop", "db-0", "Running", "db"))
		a := action("lock")
		a.Container = "mysql"
		_, _, err := r.Run(context.Background(), "pre-exec rule", rule(a), []string{"shop"})
		if err == nil || !strings.Contains(err.Error(), `in pod shop/db-0: the pod has no container "mysql"`) {
			t.Errorf("error %v, want the missing container named", err)
		}
	})
	t.Run("no pod", func(t *testing.T) {
		r := newRunner(&script{})
		_, warnings, err := r.Run(context.Background(), "post-exec rule", rule(action("unlock")), []string{"shop"})
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "no running pod in shop matches podSelector app=db") {
			t.Errorf("Run: %v, warnings %q; want a warning that no pod matched", err, warnings)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		s := &script{fn: func(ctx context.Context, _ []string, _ io.Reader, _ io.Writer) error {
			<-ctx.Done()
			return ctx.Err()
		}}
		r := newRunner(s, pod("shop", "db-0", "Running", "db"))
		a := action("sleep")
		a.TimeoutSeconds = 1
		_, _, err := r.Run(context.Background(), "pre-exec rule", rule(a), []string{"shop"})
		if err == nil || !strings.Contains(err.Error(), `["sleep"] did not end within 1s (timeoutSeconds)`) {
			t.Errorf("error %v, want the timeout named", err)
		}
	})
}

// holdUntilEOF is a background command: it prints a line, then runs until its input closes.
func holdUntilEOF(released chan<- struct{}) func(context.Context, []string, io.Reader, io.Writer) error {
	return func(ctx context.Context, command []string, stdin io.Reader, stdout io.Writer) error {
		if stdin == nil {
			return nil // a foreground command
		}
		fmt.Fprintln(stdout, "locked")
		_, err := io.Copy(io.Discard, stdin)
		released <- struct{}{}
		return err
	}
}

func TestBackground(t *testing.T) {
	t.Run("held until Stop", func(t *testing.T) {
		released := make(chan struct{}, 2)
		s := &script{fn: holdUntilEOF(released)}
		r := newRunner(s, pod("shop", "db-0", "Running", "db"), pod("shop", "db-1", "Running", "db"))
		bg := action("lock")
		bg.Background = true
		held, _, err := r.Run(context.Background(), "pre-exec rule", rule(bg, action("snapshot-now")), []string{"shop"})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-released:
			t.Fatal("a background command's input closed before Stop")
		case <-time.After(100 * time.Millisecond):
		}
		if err := held.Stop(t.Logf); err != nil {
			t.Fatal(err)
		}
		if len(released) != 2 {
			t.Errorf("%d of 2 background commands saw their input close", len(released))
		}
	})
	t.Run("ended before Stop", func(t *testing.T) {
		s := &script{}
		s.fn = func(ctx context.Context, _ []string, stdin io.Reader, stdout io.Writer) error {
			fmt.Fprintln(stdout, "locked")
			return utilexec.CodeExitError{Err: errors.New("exit 137"), Code: 137}
		}
		r := newRunner(s, pod("shop", "db-0", "Running", "db"))
		bg := action("lock")
		bg.Background = true
		held, _, err := r.Run(context.Background(), "pre-exec rule", rule(bg), []string{"shop"})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		err = held.Stop(t.Logf)
		if err == nil || !strings.Contains(err.Error(), `in pod shop/db-0 (container db): background command ["lock"] ended (exit code 137: locked) before the snapshots were done`) {
			t.Errorf("Stop: %v, want the early end reported", err)
		}
	})
	t.Run("no line within the timeout", func(t *testing.T) {
		cancelled := make(chan struct{})
		s := &script{fn: func(ctx context.Context, _ []string, _ io.Reader, _ io.Writer) error {
			<-ctx.Done()
			close(cancelled)
			return ctx.Err()
		}}
		r := newRunner(s, pod("shop", "db-0", "Running", "db"))
		bg := action("lock")
		bg.Background, bg.TimeoutSeconds = true, 1
		held, _, err := r.Run(context.Background(), "pre-exec rule", rule(bg), []string{"shop"})
		if err == nil || !strings.Contains(err.Error(), `background command ["lock"] printed no line within 1s (timeoutSeconds)`) {
			t.Errorf("Run: %v, want the missing start named", err)
		}
		<-cancelled
		if err := held.Stop(t.Logf); err != nil {
			t.Errorf("Stop after a background command that never started: %v", err)
		}
	})
	t.Run("exits before its line", func(t *testing.T) {
		s := &script{fn: func(context.Context, []string, io.Reader, io.Writer) error { return nil }}
		r := newRunner(s, pod("shop", "db-0", "Running", "db"))
		bg := action("lock")
		bg.Background = true
		_, _, err := r.Run(context.Background(), "pre-exec rule", rule(bg), []string{"shop"})
		if err == nil || !strings.Contains(err.Error(), "ended before it printed a line") {
			t.Errorf("Run: %v, want the early exit named", err)
		}
	})
}
