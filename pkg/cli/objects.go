package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/store"
)

// clients are what the backup and restore commands talk to the cluster with.
type clients struct {
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

func newClients(f cmdutil.Factory) (clients, error) {
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return clients{}, err
	}
	kube, err := f.KubernetesClientSet()
	if err != nil {
		return clients{}, err
	}
	dyn, err := f.DynamicClient()
	if err != nil {
		return clients{}, err
	}
	return clients{Config: cfg, Kube: kube, Dynamic: dyn}, nil
}

// namespaceOf returns the namespace of the command: -n, else the kubeconfig context's, and whether -n was
// given.
func namespaceOf(f cmdutil.Factory) (string, bool, error) {
	return f.ToRawKubeConfigLoader().Namespace()
}

// parseSelector turns a -l style selector into the API's LabelSelector; errors name the flag.
func parseSelector(flag, s string) (*metav1.LabelSelector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", flag, s, err)
	}
	reqs, _ := sel.Requirements()
	out := &metav1.LabelSelector{}
	for _, r := range reqs {
		values := r.Values().List()
		var op metav1.LabelSelectorOperator
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals:
			if out.MatchLabels == nil {
				out.MatchLabels = map[string]string{}
			}
			out.MatchLabels[r.Key()] = values[0]
			continue
		case selection.NotEquals, selection.NotIn:
			op = metav1.LabelSelectorOpNotIn
		case selection.In:
			op = metav1.LabelSelectorOpIn
		case selection.Exists:
			op = metav1.LabelSelectorOpExists
		case selection.DoesNotExist:
			op = metav1.LabelSelectorOpDoesNotExist
		default:
			return nil, fmt.Errorf("%s %q: operator %s cannot be stored in a label selector", flag, s, r.Operator())
		}
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{Key: r.Key(), Operator: op, Values: values})
	}
	return out, nil
}

// namespacePatterns checks namespace names for flag; "*" is allowed when star is.
func namespacePatterns(flag string, names []string, star bool) ([]v1alpha1.NamespacePattern, error) {
	var out []v1alpha1.NamespacePattern
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "*" && star {
			out = append(out, "*")
			continue
		}
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			return nil, fmt.Errorf("%s: %q is not a namespace name: %s", flag, n, strings.Join(errs, "; "))
		}
		out = append(out, v1alpha1.NamespacePattern(n))
	}
	return out, nil
}

func namespaceNames(flag string, names []string) ([]v1alpha1.NamespaceName, error) {
	ps, err := namespacePatterns(flag, names, false)
	if err != nil {
		return nil, err
	}
	var out []v1alpha1.NamespaceName
	for _, p := range ps {
		out = append(out, v1alpha1.NamespaceName(p))
	}
	return out, nil
}

// resourcePatterns checks resource type names for flag: "deployments", "deployments.apps", "deploy", "*".
func resourcePatterns(flag string, names []string) ([]v1alpha1.ResourcePattern, error) {
	var out []v1alpha1.ResourcePattern
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n != "*" {
			if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
				return nil, fmt.Errorf("%s: %q is not a resource type (write configmaps or deployments.apps)", flag, n)
			}
		}
		out = append(out, v1alpha1.ResourcePattern(n))
	}
	return out, nil
}

// parseMappings reads "a:b,c:d" for flag; check validates each side.
func parseMappings(flag string, pairs []string, check func(string) []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, p := range pairs {
		from, to, ok := strings.Cut(strings.TrimSpace(p), ":")
		if !ok || from == "" || to == "" {
			return nil, fmt.Errorf("%s: %q is not FROM:TO", flag, p)
		}
		for _, n := range []string{from, to} {
			if errs := check(n); len(errs) > 0 {
				return nil, fmt.Errorf("%s %s: %q is not a valid name: %s", flag, p, n, strings.Join(errs, "; "))
			}
		}
		if prev, dup := out[from]; dup && prev != to {
			return nil, fmt.Errorf("%s: %s is mapped twice (to %s and %s)", flag, from, prev, to)
		}
		out[from] = to
	}
	return out, nil
}

// printObject prints obj as -o yaml or json would, without sending it anywhere.
func printObject(w io.Writer, format string, obj any, gvk schema.GroupVersionKind) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	var p printers.ResourcePrinter
	switch format {
	case "yaml":
		p = &printers.YAMLPrinter{}
	case "json":
		p = &printers.JSONPrinter{}
	default:
		return fmt.Errorf("--output must be yaml or json, not %q", format)
	}
	return p.PrintObj(u, w)
}

// createObject creates a pxb object from its typed form, with opts (a server dry run, say).
func createObject(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, kind string, obj metav1.Object, opts metav1.CreateOptions) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(v1alpha1.SchemeGroupVersion.WithKind(kind))
	unstructured.RemoveNestedField(u.Object, "status")
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	opts.FieldManager = "kubectl-pxb"
	out, err := dyn.Resource(gvr).Namespace(obj.GetNamespace()).Create(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("create %s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return out, nil
}

// getTable lists (or gets, with names) objects of gvr as a server-side Table, so the CRD's printer columns
// apply as in kubectl get.
func getTable(ctx context.Context, kube kubernetes.Interface, gvr schema.GroupVersionResource, ns string, names []string, selector string) (*metav1.Table, error) {
	base := path.Join("/apis", gvr.Group, gvr.Version)
	if ns != "" {
		base = path.Join(base, "namespaces", ns)
	}
	base = path.Join(base, gvr.Resource)
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	var out *metav1.Table
	fetch := func(p string, sel string) error {
		req := kube.Discovery().RESTClient().Get().AbsPath(p).
			SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
		if sel != "" {
			req = req.Param("labelSelector", sel)
		}
		raw, err := req.DoRaw(ctx)
		if err != nil {
			return err
		}
		var t metav1.Table
		if err := json.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("decode table: %w", err)
		}
		for i := range t.Rows {
			if r := t.Rows[i].Object.Raw; len(r) > 0 {
				u := &unstructured.Unstructured{}
				if err := u.UnmarshalJSON(r); err == nil {
					t.Rows[i].Object.Object = u
				}
			}
		}
		if out == nil {
			out = &t
		} else {
			out.Rows = append(out.Rows, t.Rows...)
		}
		return nil
	}
	if len(names) == 0 {
		return out, fetch(base, selector)
	}
	for _, n := range names {
		if err := fetch(path.Join(base, n), ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// confirm asks a yes/no question on the terminal; anything but y or yes is no.
func confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprintf(out, "%s [y/N]: ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

// openLocation opens a location with the user's own permissions (reading its Secrets in pxb-system).
func openLocation(ctx context.Context, c clients, name string) (*store.Location, error) {
	return store.OpenLocation(ctx, c.Kube, c.Dynamic, name, location.Options{}, false)
}

// submit creates a checked Backup or Restore, starts the Job that carries it out with BackupLocation
// location and, with wait, follows it until it ends. A user who may not launch Jobs in pxb-system (a team
// member) leaves that to the reconciler, which launches it within a minute; wait follows either way. With
// --dry-run=server the API server checks the object without storing it, and no Job starts. With -o the
// created object is printed, and the progress of --wait goes to ErrOut.
func submit(ctx context.Context, c clients, kind jobspec.Kind, obj metav1.Object, location string, cf *createFlags, wait bool, timeout time.Duration, streams genericiooptions.IOStreams) error {
	gvr, title := v1alpha1.BackupsResource, "Backup"
	if kind == jobspec.KindRestore {
		gvr, title = v1alpha1.RestoresResource, "Restore"
	}
	ns, name := obj.GetNamespace(), obj.GetName()
	loc, err := store.GetLocation(ctx, c.Dynamic, location)
	if apierrors.IsForbidden(err) {
		loc, err = nil, nil
	}
	if err != nil {
		return err
	}
	created, err := createObject(ctx, c.Dynamic, gvr, title, obj, cf.createOptions())
	if err != nil {
		return err
	}
	if cf.serverDryRun() {
		return cf.print(created, "created", streams.Out)
	}
	out := streams.Out
	if cf.printing() {
		if err := cf.print(created, "created", streams.Out); err != nil {
			return err
		}
		out = streams.ErrOut
	}
	t := jobspec.Target{Kind: kind, Namespace: ns, Name: name, UID: created.GetUID()}
	runs := "Job " + v1alpha1.SystemNamespace + "/" + jobspec.Name(t) + " runs it"
	launched, err := launch(ctx, c, t, loc)
	if err != nil {
		return fmt.Errorf("%s %s/%s created, but its Job was not: %w", title, ns, name, err)
	}
	if !launched {
		runs = "the reconciler in " + v1alpha1.SystemNamespace + " launches its Job within a minute (you may not launch Jobs there)"
	}
	if !cf.printing() {
		fmt.Fprintf(out, "%s %s/%s created; %s.\n", title, ns, name, runs)
	}
	if !wait {
		if !cf.printing() {
			fmt.Fprintf(out, "Follow it with: kubectl pxb %s describe %s -n %s\n", kind, name, ns)
		}
		return nil
	}
	return follow(ctx, c, gvr, title, ns, name, jobspec.Name(t), out, timeout)
}

// launch starts the Job of target with location loc (nil when the user may not read it), with the user's
// own rights. It returns false when the user may not, and the reconciler must.
func launch(ctx context.Context, c clients, t jobspec.Target, loc *v1alpha1.BackupLocation) (bool, error) {
	if loc == nil {
		return false, nil
	}
	cfg, err := jobspec.LoadConfig(ctx, c.Kube)
	if err == nil {
		_, err = jobspec.Launch(ctx, c.Kube, t, cfg, loc)
	}
	if apierrors.IsForbidden(err) {
		return false, nil
	}
	return err == nil, err
}

// validateLabels checks the labels given with flag.
func validateLabels(flag string, labels map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("%s: key %q: %s", flag, k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(labels[k]); len(errs) > 0 {
			return fmt.Errorf("%s: value %q of %s: %s", flag, labels[k], k, strings.Join(errs, "; "))
		}
	}
	return nil
}

// jobLogs copies the logs of the pods of Job name in pxb-system, the latest first, for objects whose log
// is not in the location yet.
func jobLogs(ctx context.Context, kube kubernetes.Interface, name string, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	pods, err := kube.CoreV1().Pods(v1alpha1.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + name})
	if err != nil {
		return fmt.Errorf("list pods of Job %s: %w", name, err)
	}
	if len(pods.Items) == 0 {
		return fmt.Errorf("no log yet: Job %s/%s has no pod", v1alpha1.SystemNamespace, name)
	}
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return b.CreationTimestamp.Compare(a.CreationTimestamp.Time) })
	rc, err := kube.CoreV1().Pods(v1alpha1.SystemNamespace).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("log of pod %s: %w", pods.Items[0].Name, err)
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

func stringsOf[T ~string](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}
