//go:build integration

package jobs_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// freePort is a TCP port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sample is the value of the series of metric whose labels include every one of labels ("" when there is
// none) in a Prometheus text exposition.
func sample(exposition, metric string, labels ...string) string {
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(line, l)
		}
		if all {
			return line[strings.LastIndex(line, " ")+1:]
		}
	}
	return ""
}

// TestKubeStateMetricsReadsPxbObjects runs the real kube-state-metrics (pinned in hack/tools.sh) with
// manifests/monitoring/kube-state-metrics.yaml against the test bed's API server, after a backup that
// completed and one that failed, and reads the series the alert rules use from its /metrics.
func TestKubeStateMetricsReadsPxbObjects(t *testing.T) {
	c := testbed.APIServer(t)
	locName, ns := completedAndFailed(t, c)
	var b v1alpha1.Backup
	get(t, c, v1alpha1.BackupsResource, ns, "nightly", &b)

	bin, err := exec.Command("../hack/tools.sh", "kube-state-metrics").Output()
	if err != nil {
		t.Fatalf("hack/tools.sh kube-state-metrics: %v", err)
	}
	port := freePort(t)
	ksm := exec.Command(strings.TrimSpace(string(bin)), "--kubeconfig", c.UserKubeconfig(t, "monitoring", "system:masters"),
		"--custom-resource-state-only", "--custom-resource-state-config-file", "../manifests/monitoring/kube-state-metrics.yaml",
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--telemetry-host", "127.0.0.1", "--telemetry-port", strconv.Itoa(freePort(t)))
	ksm.Stdout, ksm.Stderr = os.Stderr, os.Stderr
	if err := ksm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ksm.Process.Kill(); _ = ksm.Wait() })

	// kube-state-metrics serves once it has listed the resources; wait until the failed backup is there.
	ctx := ctxT(t, 2*time.Minute)
	var body string
	for !strings.Contains(body, `name="nowhere"`) {
		select {
		case <-ctx.Done():
			t.Fatalf("kube-state-metrics never showed the Backups; last /metrics:\n%s", body)
		case <-time.After(500 * time.Millisecond):
		}
		body = scrape(ctx, "http://127.0.0.1:"+strconv.Itoa(port)+"/metrics")
	}
	nightly, nowhere := `name="nightly"`, `name="nowhere"`
	inNS := `namespace="` + ns + `"`
	checks := []struct {
		metric string
		labels []string
		want   string
	}{
		{"pxb_backup_status_phase", []string{inNS, nightly, `phase="Completed"`, `location="` + locName + `"`}, "1"},
		{"pxb_backup_status_phase", []string{inNS, nightly, `phase="Failed"`}, "0"},
		{"pxb_backup_status_phase", []string{inNS, nowhere, `phase="Failed"`}, "1"},
		{"pxb_backup_start_time_seconds", []string{inNS, nightly}, strconv.FormatInt(b.Status.StartTimestamp.Unix(), 10)},
		{"pxb_backup_completion_time_seconds", []string{inNS, nightly}, strconv.FormatInt(b.Status.CompletionTimestamp.Unix(), 10)},
		{"pxb_backup_bytes", []string{inNS, nightly}, strconv.FormatInt(b.Status.TotalBytes, 10)},
		{"pxb_backup_items", []string{inNS, nightly}, strconv.Itoa(int(b.Status.Progress.ItemsDone))},
		{"pxb_backup_errors", []string{inNS, nowhere}, "1"},
		{"pxb_backuplocation_condition", []string{`name="` + locName + `"`, `type="Synced"`}, "1"},
	}
	for _, ch := range checks {
		// Values are floats, large ones in exponent form.
		got := sample(body, ch.metric, ch.labels...)
		g, gerr := strconv.ParseFloat(got, 64)
		w, _ := strconv.ParseFloat(ch.want, 64)
		if gerr != nil || g != w {
			t.Errorf("%s%v = %q, want %s", ch.metric, ch.labels, got, ch.want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// scrape is the body of url, or "" when it cannot be read yet.
func scrape(ctx context.Context, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(data)
}
