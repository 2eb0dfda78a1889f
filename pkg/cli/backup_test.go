package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"sigs.k8s.io/yaml"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func TestBackupFlagsToSpec(t *testing.T) {
	o := &BackupCreateOptions{
		Name: "nightly", Namespace: "pxb-system",
		selectionFlags: selectionFlags{IncludeNamespaces: []string{"shop", "db"}, ExcludeNamespaces: []string{"shop-old"},
			Selector: "app=web,tier!=cache", IncludeResources: []string{"Deployments.apps", "cm"}, ExcludeResources: []string{"events"},
			ClusterResources: "false"},
		Location: "s3-main", Labels: map[string]string{"team": "a"}, Timeout: time.Minute,
		PreExecRule: "db-lock", PostExecRule: "db-unlock",
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := o.Backup()
	if err != nil {
		t.Fatal(err)
	}
	s := b.Spec
	if strings.Join(stringsOf(s.IncludeNamespaces), ",") != "shop,db" || strings.Join(stringsOf(s.ExcludeNamespaces), ",") != "shop-old" {
		t.Errorf("namespaces %v, excluded %v", s.IncludeNamespaces, s.ExcludeNamespaces)
	}
	if len(s.LabelSelector.MatchLabels) != 1 || s.LabelSelector.MatchLabels["app"] != "web" || len(s.LabelSelector.MatchExpressions) != 1 {
		t.Errorf("label selector %+v", s.LabelSelector)
	}
	if strings.Join(stringsOf(s.IncludeResources), ",") != "deployments.apps,cm" || s.ClusterResources != v1alpha1.ClusterResourcesExclude {
		t.Errorf("resources %v cluster resources %q", s.IncludeResources, s.ClusterResources)
	}
	if s.Location != "s3-main" || b.Labels["team"] != "a" || b.Namespace != "pxb-system" {
		t.Errorf("location %q labels %v namespace %q", s.Location, b.Labels, b.Namespace)
	}
	if s.PreExecRule != "db-lock" || s.PostExecRule != "db-unlock" {
		t.Errorf("rules %q, %q", s.PreExecRule, s.PostExecRule)
	}
	if s.VirtualMachines != nil {
		t.Errorf("virtualMachines %+v without --vms", s.VirtualMachines)
	}
}

func TestBackupVMFlags(t *testing.T) {
	for _, tc := range []struct {
		vms      []string
		selector string
		noFreeze bool
		want     string
	}{
		{vms: []string{"db1", "shop/web"}, want: `{"names":["db1","shop/web"]}`},
		{vms: []string{"*"}, noFreeze: true, want: `{"freeze":false}`},
		{selector: "os=linux", want: `{"labelSelector":{"matchLabels":{"os":"linux"}}}`},
	} {
		o := &BackupCreateOptions{Name: "vms", selectionFlags: selectionFlags{ClusterResources: "auto"}, Timeout: time.Minute, VMs: tc.vms, VMSelector: tc.selector, NoFreeze: tc.noFreeze}
		if err := o.Validate(); err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		b, _ := o.Backup()
		got, _ := json.Marshal(b.Spec.VirtualMachines)
		if string(got) != tc.want {
			t.Errorf("--vms %v --vm-selector %q --no-freeze=%v: virtualMachines %s, want %s", tc.vms, tc.selector, tc.noFreeze, got, tc.want)
		}
	}
}

func TestBackupValidateNamesTheFlag(t *testing.T) {
	for flag, mutate := range map[string]func(*BackupCreateOptions){
		"NAME":                        func(o *BackupCreateOptions) { o.Name = "Bad_Name" },
		"--include-namespaces":        func(o *BackupCreateOptions) { o.IncludeNamespaces = []string{"shop*"} },
		"--exclude-namespaces":        func(o *BackupCreateOptions) { o.ExcludeNamespaces = []string{"*"} },
		"--selector":                  func(o *BackupCreateOptions) { o.Selector = "app in (web" },
		"--namespace-selector":        func(o *BackupCreateOptions) { o.NamespaceSelector = "a==b==c" },
		"--include-resources":         func(o *BackupCreateOptions) { o.IncludeResources = []string{"deployments/scale"} },
		"--include-cluster-resources": func(o *BackupCreateOptions) { o.ClusterResources = "maybe" },
		"--labels":                    func(o *BackupCreateOptions) { o.Labels = map[string]string{"a": "not valid!"} },
		"--location":                  func(o *BackupCreateOptions) { o.Location = "Not_A_Name" },
		"--pre-exec-rule":             func(o *BackupCreateOptions) { o.PreExecRule = "Lock!" },
		"--post-exec-rule":            func(o *BackupCreateOptions) { o.PostExecRule = "-unlock" },
		"--output":                    func(o *BackupCreateOptions) { o.Create = newCreateFlags(); *o.Create.PrintFlags.OutputFormat = "table" },
		"--namespace-selector and":    func(o *BackupCreateOptions) { o.IncludeNamespaces = []string{"a"}; o.NamespaceSelector = "x=y" },
		"--vms":                       func(o *BackupCreateOptions) { o.VMs = []string{"shop/Web_1"} },
		"--vm-selector":               func(o *BackupCreateOptions) { o.VMSelector = "os in (linux" },
		"--vms and --vm-selector":     func(o *BackupCreateOptions) { o.VMs = []string{"db"}; o.VMSelector = "os=linux" },
		"--no-freeze":                 func(o *BackupCreateOptions) { o.NoFreeze = true },
	} {
		o := &BackupCreateOptions{Name: "ok", selectionFlags: selectionFlags{ClusterResources: "auto"}, Timeout: time.Minute}
		mutate(o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), strings.TrimSuffix(flag, " and")) {
			t.Errorf("%s: Validate() = %v, want an error naming it", flag, err)
		}
	}
}

func TestBackupNamespaceDefaultsToSystemWhenSpanning(t *testing.T) {
	for _, tc := range []struct {
		include  []string
		selector string
		want     bool
	}{
		{nil, "", false},
		{[]string{"team-a"}, "", false},
		{[]string{"shop"}, "", true},
		{[]string{"team-a", "shop"}, "", true},
		{[]string{"*"}, "", true},
		{nil, "env=prod", true},
	} {
		o := &BackupCreateOptions{Namespace: "team-a", selectionFlags: selectionFlags{IncludeNamespaces: tc.include}, NamespaceSelector: tc.selector}
		if got := o.spansNamespaces(); got != tc.want {
			t.Errorf("include %v selector %q: spans = %v, want %v", tc.include, tc.selector, got, tc.want)
		}
	}
}

func TestBackupCreatePrintsWithoutCreating(t *testing.T) {
	streams, _, out, _ := genericiooptions.NewTestIOStreams()
	o := &BackupCreateOptions{Name: "nightly", Namespace: "pxb-system", selectionFlags: selectionFlags{IncludeNamespaces: []string{"shop"}, ClusterResources: "auto"},
		Location: "main", Create: clientDryRun("yaml"), Timeout: time.Minute, IOStreams: streams}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	// No clients: printing must not reach for the cluster.
	if err := o.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, out)
	}
	want := `apiVersion: pxb.dev/v1alpha1
kind: Backup
metadata:
  name: nightly
  namespace: pxb-system
spec:
  clusterResources: Auto
  includeNamespaces:
  - shop
  location: main
`
	if out.String() != want {
		t.Errorf("-o yaml printed:\n%s\nwant:\n%s", out, want)
	}
}

func TestRestoreFlagsToSpec(t *testing.T) {
	o := &RestoreCreateOptions{
		Name: "back", Namespace: "pxb-system", FromBackup: "nightly",
		NamespaceMappings: []string{"shop:shop-copy", "db:db-copy"}, StorageClassMappings: []string{"fast:standard"},
		ExistingResourcePolicy: "Update", selectionFlags: selectionFlags{IncludeResources: []string{"configmaps"}, Selector: "app=web"}, DryRun: true, Timeout: time.Minute,
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := o.Restore()
	if err != nil {
		t.Fatal(err)
	}
	s := r.Spec
	if s.BackupName != "nightly" || s.NamespaceMapping["shop"] != "shop-copy" || s.NamespaceMapping["db"] != "db-copy" ||
		s.StorageClassMapping["fast"] != "standard" || s.ExistingResourcePolicy != v1alpha1.ExistingUpdate || !s.DryRun ||
		s.LabelSelector.MatchLabels["app"] != "web" {
		t.Errorf("restore spec %+v", s)
	}
}

func TestRestoreValidateNamesTheFlag(t *testing.T) {
	for flag, mutate := range map[string]func(*RestoreCreateOptions){
		"--from-backup":              func(o *RestoreCreateOptions) { o.FromBackup = "" },
		"--namespace-mappings":       func(o *RestoreCreateOptions) { o.NamespaceMappings = []string{"shop:Shop_Copy"} },
		"--namespace-mappings both":  func(o *RestoreCreateOptions) { o.NamespaceMappings = []string{"a:c", "b:c"} },
		"--namespace-mappings FROM":  func(o *RestoreCreateOptions) { o.NamespaceMappings = []string{"shop"} },
		"--storage-class-mappings":   func(o *RestoreCreateOptions) { o.StorageClassMappings = []string{"fast:"} },
		"--existing-resource-policy": func(o *RestoreCreateOptions) { o.ExistingResourcePolicy = "overwrite" },
		"--selector":                 func(o *RestoreCreateOptions) { o.Selector = "=x" },
		"--include-namespaces":       func(o *RestoreCreateOptions) { o.IncludeNamespaces = []string{"UPPER"} },
	} {
		o := &RestoreCreateOptions{Name: "r", FromBackup: "b", ExistingResourcePolicy: "retain", Timeout: time.Minute}
		mutate(o)
		err := o.Validate()
		name := strings.Fields(flag)[0]
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Validate() = %v, want an error naming %s", flag, err, name)
		}
	}
}

func TestRestoreNameDefaultsFromBackup(t *testing.T) {
	o := &RestoreCreateOptions{FromBackup: "nightly", Create: clientDryRun("yaml"), now: func() time.Time { return time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC) }}
	if err := o.Complete(fakeFactory(t), nil, nil); err != nil {
		t.Fatal(err)
	}
	if o.Name != "nightly-20250304050607" {
		t.Errorf("name %q, want nightly-20250304050607", o.Name)
	}
}

func TestProgressLines(t *testing.T) {
	p := progress{Phase: "InProgress", Stage: "Resources", Percent: 40, Done: 4, Total: 10}
	if got := p.bar(10); got != "[====      ]  40%  InProgress  Resources  4/10 objects" {
		t.Errorf("bar = %q", got)
	}
	p = progress{Phase: "Failed", Message: "location unreachable", Errors: []string{"location unreachable"}}
	if err := p.failure("Backup", "ns", "b"); err == nil || err.Error() != "Backup ns/b Failed: location unreachable" {
		t.Errorf("failure = %v", err)
	}
	var buf bytes.Buffer
	if isTerminal(&buf) {
		t.Error("a buffer is not a terminal")
	}
}

// fakeFactory is a factory whose kubeconfig's context is in namespace team-a, with no server behind it.
func fakeFactory(t *testing.T) cmdutil.Factory {
	path := nowhereKubeconfig(t)
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &path
	return cmdutil.NewFactory(flags)
}

// nowhereKubeconfig writes a kubeconfig whose context is in namespace team-a, with no server behind it.
func nowhereKubeconfig(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: team-a}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseSelectorKeepsMeaning(t *testing.T) {
	for _, s := range []string{"app=web", "app=web,tier!=cache", "env in (a,b),!gone,present", "x notin (y)"} {
		sel, err := parseSelector("--selector", s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		back, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		want, _ := labels.Parse(s)
		for _, set := range []labels.Set{
			{}, {"app": "web"}, {"app": "web", "tier": "cache"}, {"app": "web", "tier": "db"}, {"env": "a", "present": ""},
			{"env": "b", "gone": "", "present": ""}, {"x": "y"}, {"x": "z"},
		} {
			if back.Matches(set) != want.Matches(set) {
				t.Errorf("%q became %q, which decides %v differently", s, back, set)
			}
		}
	}
	if _, err := parseSelector("--selector", "replicas>2"); err == nil || !strings.Contains(err.Error(), "--selector") {
		t.Errorf("a selector with > = %v, want an error naming --selector", err)
	}
}

func TestScheduleFlags(t *testing.T) {
	o := &ScheduleCreateOptions{BackupCreateOptions: BackupCreateOptions{Name: "shop", Namespace: "pxb-system",
		selectionFlags: selectionFlags{IncludeNamespaces: []string{"shop"}, ClusterResources: "auto"}, Location: "prod", Timeout: time.Minute}}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--policy is required") {
		t.Errorf("Validate without --policy: %v", err)
	}
	o.Policy = "Not A Name"
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--policy") {
		t.Errorf("Validate with a bad --policy: %v", err)
	}
	o.Policy, o.Suspend = "standard", true
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	bs, err := o.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	if bs.Spec.Policy != "standard" || !bs.Spec.Suspend || bs.Spec.Template.Location != "prod" ||
		len(bs.Spec.Template.IncludeNamespaces) != 1 || bs.Namespace != "pxb-system" || bs.Name != "shop" {
		t.Errorf("BackupSchedule %s/%s spec %+v", bs.Namespace, bs.Name, bs.Spec)
	}
}
