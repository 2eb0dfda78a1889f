package jobspec

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/pxb-dev/pxb/pkg/install"
)

func TestNameIsStableShortAndDistinct(t *testing.T) {
	a := Target{Kind: KindBackup, Namespace: "shop", Name: "nightly"}
	if got, again := Name(a), Name(a); got != again {
		t.Fatalf("Name is not stable: %q then %q", got, again)
	}
	if got := Name(a); !strings.HasPrefix(got, "pxb-backup-shop-nightly-") {
		t.Errorf("Name(%v) = %q, want it to start with pxb-backup-shop-nightly-", a, got)
	}
	long := strings.Repeat("a", 200)
	names := map[string]Target{}
	for _, tg := range []Target{
		a,
		{Kind: KindRestore, Namespace: "shop", Name: "nightly"},
		{Kind: KindBackup, Namespace: "shop", Name: long + "x"},
		{Kind: KindBackup, Namespace: "shop", Name: long + "y"},
		{Kind: KindBackup, Namespace: "sh", Name: "op-nightly"},
		{Kind: KindBackup, Namespace: "shop", Name: "with.dots.in"},
	} {
		n := Name(tg)
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			t.Errorf("Name(%v) = %q is not a DNS label: %v", tg, n, errs)
		}
		if other, dup := names[n]; dup {
			t.Errorf("Name(%v) = Name(%v) = %q", tg, other, n)
		}
		names[n] = tg
	}
}

func TestJobRendering(t *testing.T) {
	cfg, err := ParseConfig(map[string]string{
		ConfigImage: "registry.example/pxb-job:v1", ConfigImagePullPolicy: "Never", ConfigMemoryLimit: "2Gi",
		ConfigBackoffLimit: "5", ConfigActiveDeadlineSeconds: "600", ConfigTTLSecondsAfterFinish: "60", ConfigDNSPolicy: "Default",
	})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("b", 100)
	job := Job(Target{Kind: KindBackup, Namespace: "shop", Name: long, UID: "u-1"}, cfg)
	if job.Namespace != "pxb-system" {
		t.Errorf("namespace %q, want pxb-system", job.Namespace)
	}
	if got := job.Labels[LabelBackup]; len(got) > 63 || !strings.HasPrefix(got, "bbbb") {
		t.Errorf("label %s=%q: want a shortened name of at most 63 characters", LabelBackup, got)
	}
	if job.Annotations[AnnotationOwnerUID] != "u-1" {
		t.Errorf("owner UID annotation %q, want u-1", job.Annotations[AnnotationOwnerUID])
	}
	s := job.Spec
	if *s.BackoffLimit != 5 || *s.ActiveDeadlineSeconds != 600 || *s.TTLSecondsAfterFinished != 60 {
		t.Errorf("backoffLimit %d, activeDeadlineSeconds %d, ttl %d; want 5, 600, 60", *s.BackoffLimit, *s.ActiveDeadlineSeconds, *s.TTLSecondsAfterFinished)
	}
	pod := s.Template.Spec
	if pod.ServiceAccountName != "pxb-backup" || pod.RestartPolicy != corev1.RestartPolicyNever || pod.DNSPolicy != corev1.DNSDefault {
		t.Errorf("pod: serviceAccount %q restartPolicy %q dnsPolicy %q", pod.ServiceAccountName, pod.RestartPolicy, pod.DNSPolicy)
	}
	if pod.SecurityContext == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("pod must run as non-root")
	}
	c := pod.Containers[0]
	if c.Image != "registry.example/pxb-job:v1" || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("image %q pull %q", c.Image, c.ImagePullPolicy)
	}
	if want := "backup --resource backups --namespace shop --name " + long + " --uid u-1"; strings.Join(c.Args, " ") != want {
		t.Errorf("args %q, want %q", c.Args, want)
	}
	if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		t.Errorf("terminationMessagePolicy %q, want FallbackToLogsOnError", c.TerminationMessagePolicy)
	}
	if got := c.Resources.Limits.Memory().String(); got != "2Gi" {
		t.Errorf("memory limit %s, want 2Gi", got)
	}
	if !*c.SecurityContext.ReadOnlyRootFilesystem || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Error("container must have a read-only root and no privilege escalation")
	}
	if job.Spec.Template.Labels[LabelJob] != "backup" {
		t.Errorf("pod labels %v lack %s=backup", job.Spec.Template.Labels, LabelJob)
	}
}

func TestParseConfigErrorsNameTheKey(t *testing.T) {
	for key, v := range map[string]string{
		ConfigImagePullPolicy: "Sometimes", ConfigMemoryLimit: "lots", ConfigBackoffLimit: "-1", ConfigDNSPolicy: "None",
	} {
		_, err := ParseConfig(map[string]string{key: v})
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("ParseConfig(%s=%s) = %v, want an error naming %s", key, v, err, key)
		}
	}
	c, err := ParseConfig(nil)
	if err != nil || c.Image != install.DefaultImage() || c.ActiveDeadline != 6*time.Hour {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}
