//go:build integration

package console_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/cli"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

const chromium = "/usr/bin/chromium"

// pxb runs `kubectl pxb args...` to its end.
func pxb(t *testing.T, kubeconfig string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := cli.NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs(append(args, "--kubeconfig", kubeconfig))
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("kubectl pxb %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
}

// startUI runs `kubectl pxb ui` until ctx ends and returns the URL it prints and the command's outcome.
func startUI(t *testing.T, ctx context.Context, kubeconfig string) (string, <-chan error) {
	t.Helper()
	r, w := io.Pipe()
	var errOut bytes.Buffer
	cmd := cli.NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: w, ErrOut: &errOut})
	cmd.SetArgs([]string{"ui", "--no-browser", "--kubeconfig", kubeconfig, "--timeout", "3s"})
	done := make(chan error, 1)
	go func() {
		err := cmd.ExecuteContext(ctx)
		_ = w.Close()
		done <- err
	}()
	lines := bufio.NewScanner(r)
	for lines.Scan() {
		if url, ok := strings.CutPrefix(lines.Text(), "pxb console: "); ok {
			go func() { _, _ = io.Copy(io.Discard, r) }()
			return url, done
		}
	}
	t.Fatalf("kubectl pxb ui printed no URL: %v\n%s", <-done, errOut.String())
	return "", nil
}

// TestConsole opens the console in headless Chromium over a kubeconfig of two contexts, the test bed and
// a server that refuses connections, and uses it as a person would: both clusters are listed, a Backup
// created through the API appears without a reload, and the form creates a Backup and its Job.
func TestConsole(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI (apt-get install chromium): %v", chromium, err)
		}
		t.Skipf("%s is not installed (apt-get install chromium): the console's browser test needs it", chromium)
	}
	c := testbed.APIServer(t)
	pxb(t, c.Kubeconfig, "install")
	// The apiserver is this test binary's own and goes with it: pxb is left installed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dyn := c.Dynamic(t)
	ns := c.Namespace(t)
	if _, err := dyn.Resource(v1alpha1.BackupLocationsResource).Namespace(v1alpha1.SystemNamespace).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "BackupLocation",
		"metadata": map[string]any{"name": "lab", "namespace": v1alpha1.SystemNamespace},
		"spec":     map[string]any{"provider": "s3", "bucket": "backups", "encryptionKey": map[string]any{"name": "lab-key"}, "allowedNamespaces": []any{ns}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A port nothing listens on: its context is unreachable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	bed := cfg.Contexts[cfg.CurrentContext]
	// Alice may edit the test's namespace alone: a team.
	aliceCfg, err := clientcmd.LoadFromFile(c.UserKubeconfig(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.AuthInfos["alice"] = aliceCfg.AuthInfos[aliceCfg.Contexts[aliceCfg.CurrentContext].AuthInfo]
	cfg.Contexts = map[string]*clientcmdapi.Context{
		"bed":  bed,
		"down": {Cluster: "down", AuthInfo: bed.AuthInfo},
		"team": {Cluster: bed.Cluster, AuthInfo: "alice", Namespace: ns},
	}
	cfg.Clusters["down"] = &clientcmdapi.Cluster{Server: "https://" + closed, InsecureSkipTLSVerify: true}
	if _, err := c.Clientset(t).RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-edit"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "alice"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The aggregation controller gives edit pxb's roles in a moment.
	alice, err := dynamic.NewForConfig(c.UserConfig(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := alice.Resource(v1alpha1.BackupsResource).Namespace(ns).List(ctx, metav1.ListOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("alice cannot list the Backups of %s: %v", ns, err)
	}
	cfg.CurrentContext = "bed"
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}

	uiCtx, stopUI := context.WithCancel(ctx)
	defer stopUI()
	url, done := startUI(t, uiCtx, kubeconfig)
	base, _, _ := strings.Cut(url, "/?token=")

	t.Run("refused without the token", func(t *testing.T) {
		for _, path := range []string{"/", "/backups", "/events?page=/"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s without the token: %s, want 401", path, resp.Status)
			}
		}
		resp, err := http.Get(base + "/?token=guess")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET / with a wrong token: %s, want 401", resp.Status)
		}
	})

	alloc, stopAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()))
	defer stopAlloc()
	browser, stopBrowser := chromedp.NewContext(alloc)
	defer stopBrowser()
	text := func(t *testing.T, css string) string {
		t.Helper()
		s, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(css)))
		if err != nil {
			t.Fatalf("text of %s: %v", css, err)
		}
		return s
	}
	// Screenshots of the main pages are kept as the test's artifacts.
	shots := filepath.Join("..", "..", "_out", "console")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	screenshot := func(t *testing.T, name string) {
		t.Helper()
		img, err := chromedp.Run(browser, chromedp.FullScreenshot(90))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".jpg"), img, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(browser, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	t.Run("clusters", func(t *testing.T) {
		do(t, "open the console's URL", chromedp.Navigate(url))
		loc, err := chromedp.Run(browser, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		if loc != base+"/" {
			t.Errorf("the page is at %s, want %s/: the token stays out of the address bar", loc, base)
		}
		if got := text(t, `[id="cluster/bed"]`); !strings.Contains(got, "reachable") || !strings.Contains(got, "dev") || !strings.Contains(got, "lab") {
			t.Errorf("the bed's row says %q, want reachable, pxb dev and location lab", got)
		}
		if got := text(t, `[id="cluster/team"]`); !strings.Contains(got, "namespace "+ns+" only") {
			t.Errorf("the team's row says %q, want that it shows namespace %s only", got, ns)
		}
		screenshot(t, "clusters")
		if got := text(t, `[id="cluster/down"]`); !strings.Contains(got, "unreachable") || !strings.Contains(got, "connection refused") {
			t.Errorf("the unreachable context's row says %q, want unreachable: ... connection refused", got)
		}
	})

	t.Run("a Backup appears live", func(t *testing.T) {
		do(t, "open the backups", chromedp.Navigate(base+"/backups"),
			chromedp.WaitReady(chromedp.CSS(`body[data-live="on"]`)),
			// Kept until the page reloads.
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := chromedp.Evaluate[any](`window.notReloaded = true`)(ctx, tg)
				return err
			}))
		b, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "Backup",
			"metadata": map[string]any{"name": "live", "namespace": ns},
			"spec":     map[string]any{"location": "lab"},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		row := `[id="backup/bed/` + ns + `/live"]`
		do(t, "wait for the new Backup's row", chromedp.WaitReady(chromedp.CSS(row)))
		b.Object["status"] = map[string]any{"phase": "Completed", "size": "1.5 KiB"}
		if _, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		do(t, "wait for the row to say Completed", chromedp.WaitReady(chromedp.CSS(row+` .phase.Completed`)),
			// The team sees it too, in its namespace.
			chromedp.WaitReady(chromedp.CSS(`[id="backup/team/`+ns+`/live"] .phase.Completed`)))
		if got := text(t, row); !strings.Contains(got, "1.5 KiB") || !strings.Contains(got, "lab") {
			t.Errorf("the row says %q, want its location and size", got)
		}
		screenshot(t, "backups")
		still, err := chromedp.Run(browser, chromedp.Evaluate[bool](`window.notReloaded === true`))
		if err != nil || !still {
			t.Errorf("the page was reloaded (%v): the row must come without", err)
		}
	})

	t.Run("create a backup in the form", func(t *testing.T) {
		do(t, "fill in and send the form",
			chromedp.SetValue(chromedp.CSS(`#create select[name=cluster]`), "bed"),
			chromedp.SetValue(chromedp.CSS(`#create input[name=name]`), "from-form"),
			chromedp.SetValue(chromedp.CSS(`#create input[name=includeNamespaces]`), ns),
			chromedp.SetValue(chromedp.CSS(`#create input[name=selector]`), "app=web"),
			chromedp.SetValue(chromedp.CSS(`#create input[name=location]`), "lab"),
			chromedp.Click(chromedp.CSS(`#create button`)),
			chromedp.WaitReady(chromedp.CSS(`#note`)))
		screenshot(t, "backup")
		if got := text(t, "#note"); !strings.Contains(got, "Backup pxb-system/from-form created; Job pxb-system/") {
			t.Errorf("the page after the form says %q, want what backup create prints", got)
		}
		u, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(v1alpha1.SystemNamespace).Get(ctx, "from-form", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the form's Backup: %v", err)
		}
		var b v1alpha1.Backup
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
			t.Fatal(err)
		}
		if s := b.Spec; s.Location != "lab" || len(s.IncludeNamespaces) != 1 || string(s.IncludeNamespaces[0]) != ns ||
			s.LabelSelector == nil || s.LabelSelector.MatchLabels["app"] != "web" || s.ClusterResources != v1alpha1.ClusterResourcesAuto {
			t.Errorf("the form's Backup spec = %+v, want location lab, includeNamespaces [%s], labelSelector app=web, clusterResources Auto", s, ns)
		}
		job := jobspec.Name(jobspec.Target{Kind: jobspec.KindBackup, Namespace: b.Namespace, Name: b.Name})
		if _, err := c.Clientset(t).BatchV1().Jobs(v1alpha1.SystemNamespace).Get(ctx, job, metav1.GetOptions{}); err != nil {
			t.Errorf("the Job of the form's Backup: %v", err)
		}
		if got := text(t, "#detail"); !strings.Contains(got, "lab") || !strings.Contains(got, ns) {
			t.Errorf("the Backup's page says %q, want its location and namespace", got)
		}
	})

	t.Run("the team is refused outside its namespace", func(t *testing.T) {
		do(t, "send the form as the team, for a Backup in pxb-system",
			chromedp.Navigate(base+"/backups"),
			chromedp.SetValue(chromedp.CSS(`#create select[name=cluster]`), "team"),
			chromedp.SetValue(chromedp.CSS(`#create input[name=name]`), "team-try"),
			chromedp.SetValue(chromedp.CSS(`#create input[name=includeNamespaces]`), ns),
			chromedp.SetValue(chromedp.CSS(`#create input[name=location]`), "lab"),
			chromedp.Click(chromedp.CSS(`#create button`)),
			chromedp.WaitReady(chromedp.CSS(`#form-error`)))
		if got := text(t, "#form-error"); !strings.Contains(got, `User "alice" cannot get resource "backups"`) {
			t.Errorf("the form's error says %q, want the API server's refusal of alice", got)
		}
		if _, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(v1alpha1.SystemNamespace).Get(ctx, "team-try", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the refused Backup: %v, want it never created", err)
		}
	})

	t.Run("restores, schedules and locations", func(t *testing.T) {
		sys := v1alpha1.SystemNamespace
		if _, err := dyn.Resource(v1alpha1.SchedulePoliciesResource).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "SchedulePolicy",
			"metadata": map[string]any{"name": "nightly"},
			"spec":     map[string]any{"daily": map[string]any{"time": "01:30", "retain": int64(7)}},
		}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(v1alpha1.BackupSchedulesResource).Namespace(sys).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "BackupSchedule",
			"metadata": map[string]any{"name": "shop", "namespace": sys},
			"spec":     map[string]any{"policy": "nightly", "template": map[string]any{"location": "lab", "includeNamespaces": []any{ns}}},
		}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		do(t, "open the schedules", chromedp.Navigate(base+"/schedules"), chromedp.WaitReady(chromedp.CSS(`[id="schedule/bed/`+sys+`/shop"]`)))
		screenshot(t, "schedules")
		if got := text(t, `[id="schedule/bed/`+sys+`/shop"]`); !strings.Contains(got, "nightly") || !strings.Contains(got, "daily, in ") || !strings.Contains(got, "01:30 UTC") {
			t.Errorf("the schedule's row says %q, want policy nightly and its next daily run at 01:30 UTC", got)
		}

		do(t, "open the restores", chromedp.Navigate(base+"/restores"), chromedp.WaitReady(chromedp.CSS(`body[data-live="on"]`)))
		r, err := dyn.Resource(v1alpha1.RestoresResource).Namespace(sys).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "Restore",
			"metadata": map[string]any{"name": "back", "namespace": sys},
			"spec":     map[string]any{"backupName": "live"},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r.Object["status"] = map[string]any{"phase": "Completed", "counts": map[string]any{"created": int64(3), "skipped": int64(1)}}
		if _, err := dyn.Resource(v1alpha1.RestoresResource).Namespace(sys).UpdateStatus(ctx, r, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		row := `[id="restore/bed/` + sys + `/back"]`
		do(t, "wait for the Restore's counts", chromedp.WaitReady(chromedp.CSS(row+` .phase.Completed`)))
		screenshot(t, "restores")
		if got := text(t, row); !strings.Contains(got, "3 created, 0 updated, 1 skipped, 0 failed") {
			t.Errorf("the restore's row says %q, want its counts", got)
		}

		do(t, "open the locations", chromedp.Navigate(base+"/locations"))
		if got := text(t, `[id="location/bed/`+sys+`/lab"]`); !strings.Contains(got, "s3 backups") {
			t.Errorf("the location's row says %q, want its provider and bucket", got)
		}
	})

	t.Run("suspend a schedule", func(t *testing.T) {
		sys := v1alpha1.SystemNamespace
		row := `[id="schedule/bed/` + sys + `/shop"]`
		do(t, "suspend the schedule from its row", chromedp.Navigate(base+"/schedules"),
			chromedp.Click(chromedp.CSS(row+` button`)), chromedp.WaitReady(chromedp.CSS(`pre.note`)))
		if got := text(t, "main"); !strings.Contains(got, "BackupSchedule pxb-system/shop updated (suspended)") {
			t.Errorf("the page after suspend says %q", got)
		}
		u, err := dyn.Resource(v1alpha1.BackupSchedulesResource).Namespace(sys).Get(ctx, "shop", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if suspended, _, _ := unstructured.NestedBool(u.Object, "spec", "suspend"); !suspended {
			t.Errorf("the schedule's spec.suspend is false after Suspend")
		}
		do(t, "back to the schedules", chromedp.Navigate(base+"/schedules"))
		if got := text(t, row); !strings.Contains(got, "suspended") || !strings.Contains(got, "Resume") {
			t.Errorf("the schedule's row says %q, want suspended and a Resume button", got)
		}
	})

	t.Run("restore a backup into another namespace", func(t *testing.T) {
		sys := v1alpha1.SystemNamespace
		b, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(sys).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "Backup",
			"metadata": map[string]any{"name": "done", "namespace": sys},
			"spec":     map[string]any{"location": "lab", "includeNamespaces": []any{ns}},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b.Object["status"] = map[string]any{"phase": "Completed"}
		if _, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(sys).UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		do(t, "restore from the Backup's page", chromedp.Navigate(base+"/backups/bed/"+sys+"/done"),
			chromedp.WaitReady(chromedp.CSS(`#detail .phase.Completed`)),
			chromedp.SetValue(chromedp.CSS(`#restore input[name=name]`), "done-copy"),
			chromedp.SetValue(chromedp.CSS(`#restore input[name=namespaceMappings]`), ns+":"+ns+"-copy"),
			chromedp.SetValue(chromedp.CSS(`#restore select[name=existingResourcePolicy]`), "update"),
			chromedp.Click(chromedp.CSS(`#restore button`)), chromedp.WaitReady(chromedp.CSS(`pre.note`)))
		if got := text(t, "main"); !strings.Contains(got, "Restore pxb-system/done-copy created; Job pxb-system/") {
			t.Errorf("the page after restore says %q, want what restore create prints", got)
		}
		u, err := dyn.Resource(v1alpha1.RestoresResource).Namespace(sys).Get(ctx, "done-copy", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the form's Restore: %v", err)
		}
		var r v1alpha1.Restore
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r); err != nil {
			t.Fatal(err)
		}
		if s := r.Spec; s.BackupName != "done" || string(s.NamespaceMapping[ns]) != ns+"-copy" || !strings.EqualFold(string(s.ExistingResourcePolicy), "update") {
			t.Errorf("the form's Restore spec = %+v, want backupName done, namespaceMapping %s: %s-copy, existingResourcePolicy update", s, ns, ns)
		}
		job := jobspec.Name(jobspec.Target{Kind: jobspec.KindRestore, Namespace: sys, Name: "done-copy"})
		if _, err := c.Clientset(t).BatchV1().Jobs(sys).Get(ctx, job, metav1.GetOptions{}); err != nil {
			t.Errorf("the Job of the form's Restore: %v", err)
		}
	})

	t.Run("delete a backup", func(t *testing.T) {
		do(t, "delete the form's Backup from its page", chromedp.Navigate(base+"/backups/bed/"+v1alpha1.SystemNamespace+"/from-form"),
			chromedp.Click(chromedp.CSS(`form.danger button`)), chromedp.WaitReady(chromedp.CSS(`pre.note`)))
		if got := text(t, "main"); !strings.Contains(got, "Backup pxb-system/from-form deleted") || strings.Contains(got, "error") {
			t.Errorf("the page after delete says %q, want what backup delete prints", got)
		}
		if _, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(v1alpha1.SystemNamespace).Get(ctx, "from-form", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the deleted Backup: %v, want NotFound", err)
		}
	})

	stopUI()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("kubectl pxb ui after its context ended: %v, want a clean stop", err)
	}
}
