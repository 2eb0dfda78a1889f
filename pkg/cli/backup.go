package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/install"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/tenancy"
)

// NewCmdBackup returns `kubectl pxb backup` and its subcommands.
func NewCmdBackup(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Create, list, inspect and delete backups",
		Long: `Back up applications' Kubernetes objects into a BackupLocation.

A Backup in pxb-system may take any namespaces; a Backup in another namespace takes that namespace alone.
"kubectl pxb backup create" creates the Backup and the Job that carries it out, and returns (or follows it
with --wait).`,
	}
	cmd.AddCommand(
		newCmdBackupCreate(f, streams),
		newCmdBackupGet(f, streams),
		newCmdBackupDescribe(f, streams),
		newCmdBackupLogs(f, streams),
		newCmdBackupDelete(f, streams),
	)
	return cmd
}

// BackupCreateOptions are the options of `kubectl pxb backup create`.
type BackupCreateOptions struct {
	Name string
	// Namespace is where the Backup is created; NamespaceSet when -n was given.
	Namespace    string
	NamespaceSet bool

	selectionFlags
	NamespaceSelector string
	VolumeMethod      string
	SnapshotClasses   map[string]string
	VMs               []string
	VMSelector        string
	NoFreeze          bool
	PreExecRule       string
	PostExecRule      string
	Location          string
	Labels            map[string]string
	// Create are --dry-run and -o.
	Create  createFlags
	Wait    bool
	Timeout time.Duration

	clients clients
	genericiooptions.IOStreams
}

func newCmdBackupCreate(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &BackupCreateOptions{IOStreams: streams, Create: newCreateFlags(), Timeout: time.Hour}
	cmd := &cobra.Command{
		Use:   "create NAME [--include-namespaces NS,...] [--location LOCATION] [--wait]",
		Short: "Back up applications' objects",
		Long: `Create a Backup and start the Job that carries it out.

Without -n, a backup of other namespaces than the current one is created in pxb-system, where Backups may
span namespaces. Every selection is checked against the cluster before anything is created.`,
		Example: `  # Back up the namespace shop and wait until it is done
  kubectl pxb backup create shop-nightly --include-namespaces shop --wait

  # Back up the objects labelled app=web of every namespace but kube-system
  kubectl pxb backup create web --include-namespaces '*' --exclude-namespaces kube-system -l app=web

  # Back up the KubeVirt VMs db1 and db2 of the namespace vms, with their disks, their guests frozen meanwhile
  kubectl pxb backup create db-vms -n vms --vms db1,db2

  # Flush and lock the database while its volumes are snapshotted, with Rules in pxb-system
  kubectl pxb backup create shop-db --include-namespaces shop --pre-exec-rule db-lock --post-exec-rule db-unlock

  # Print the Backup without creating it
  kubectl pxb backup create shop-nightly --include-namespaces shop --dry-run=client -o yaml

  # Have the API server check the Backup without storing it; no Job runs
  kubectl pxb backup create shop-nightly --include-namespaces shop --dry-run=server`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	o.addSpecFlags(cmd.Flags())
	fl := cmd.Flags()
	o.Create.AddFlags(cmd)
	fl.BoolVar(&o.Wait, "wait", false, "Wait until the backup ends, showing its progress; exit non-zero unless it completed.")
	fl.DurationVar(&o.Timeout, "timeout", o.Timeout, "How long --wait waits.")
	return cmd
}

// addSpecFlags adds the flags that make a BackupSpec (and the Backup's labels), shared with schedules.
func (o *BackupCreateOptions) addSpecFlags(fl *pflag.FlagSet) {
	o.selectionFlags.AddFlags(fl, backupSelectionHelp)
	fl.StringVar(&o.NamespaceSelector, "namespace-selector", "", "Back up the namespaces matching this label selector (instead of --include-namespaces).")
	fl.StringVar(&o.VolumeMethod, "volume-method", "",
		"How volume data is taken: snapshot (CSI snapshot, then upload), fs (the live files, through the node of the pod using the volume) or none (claims' definitions only). Default: snapshot where the volume's CSI driver has a VolumeSnapshotClass, else fs. A claim's annotation "+v1alpha1.VolumeMethodAnnotation+" overrides it.")
	fl.StringToStringVar(&o.SnapshotClasses, "snapshot-class", nil, "VolumeSnapshotClass per CSI driver, as DRIVER=CLASS,DRIVER2=CLASS2 (default: the driver's default class).")
	fl.StringSliceVar(&o.VMs, "vms", nil, "Back up only these KubeVirt VirtualMachines (NAME or NAMESPACE/NAME), or '*' for all of the selected namespaces, with what they use: disks (DataVolumes and claims), Secrets, ConfigMaps, instance types.")
	fl.StringVar(&o.VMSelector, "vm-selector", "", "Back up only the KubeVirt VirtualMachines matching this label selector, with what they use (instead of --vms).")
	fl.BoolVar(&o.NoFreeze, "no-freeze", false, "Do not freeze the guest file systems of the running VMs while their disks are snapshotted (by default they are, through the QEMU guest agent): the disks are then crash-consistent.")
	fl.StringVar(&o.PreExecRule, "pre-exec-rule", "", "Rule, in the Backup's namespace, whose commands run in the application's pods before the volumes are snapshotted.")
	fl.StringVar(&o.PostExecRule, "post-exec-rule", "", "Rule, in the Backup's namespace, whose commands run in the application's pods once the volumes are snapshotted.")
	fl.StringVar(&o.Location, "location", "", "BackupLocation to store the backup in (default: pxb-config's defaultLocation).")
	fl.StringToStringVar(&o.Labels, "labels", nil, "Labels of the Backup, as k=v,k2=v2.")
}

// Complete reads the namespace and, unless only printing, builds the clients.
func (o *BackupCreateOptions) Complete(f cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	ns, set, err := namespaceOf(f)
	if err != nil {
		return err
	}
	o.setNamespace(ns, set)
	if _, _, err := o.Create.dryRunStrategy(); err != nil || o.Create.clientOnly() {
		return err
	}
	o.clients, err = newClients(f)
	return err
}

// setNamespace takes the namespace of the command (set when -n was given): without -n, a selection beyond
// it puts the Backup in pxb-system, where Backups may span namespaces.
func (o *BackupCreateOptions) setNamespace(ns string, set bool) {
	o.Namespace, o.NamespaceSet = ns, set
	if !set && o.spansNamespaces() {
		o.Namespace = v1alpha1.SystemNamespace
	}
}

// spansNamespaces reports whether the selection reaches beyond the current namespace.
func (o *BackupCreateOptions) spansNamespaces() bool {
	return o.NamespaceSelector != "" || len(o.IncludeNamespaces) > 1 ||
		(len(o.IncludeNamespaces) == 1 && o.IncludeNamespaces[0] != o.Namespace)
}

// Validate checks the flags without the cluster, and that a Backup outside pxb-system keeps to its
// namespace and carries none of the labels pxb alone sets, as the API server's policies will.
func (o *BackupCreateOptions) Validate() error {
	b, err := o.validateFlags()
	if err != nil {
		return err
	}
	if err := tenancy.CheckMarks(b.Labels, b.Annotations); err != nil {
		return fmt.Errorf("--labels: %w", err)
	}
	return tenancy.CheckBackup(b, nil)
}

// validateFlags checks the flags without the cluster, and returns the Backup they describe; errors name
// the flag.
func (o *BackupCreateOptions) validateFlags() (*v1alpha1.Backup, error) {
	if errs := validation.IsDNS1123Subdomain(o.Name); len(errs) > 0 {
		return nil, fmt.Errorf("NAME %q: %s", o.Name, strings.Join(errs, "; "))
	}
	if err := o.Create.Validate(o.Wait); err != nil {
		return nil, err
	}
	if len(o.IncludeNamespaces) > 0 && o.NamespaceSelector != "" {
		return nil, errors.New("--include-namespaces and --namespace-selector are mutually exclusive")
	}
	if o.Timeout <= 0 {
		return nil, errors.New("--timeout must be positive")
	}
	return o.Backup()
}

// Backup is the Backup the flags describe.
func (o *BackupCreateOptions) Backup() (*v1alpha1.Backup, error) {
	b := &v1alpha1.Backup{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: o.Labels},
		Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(o.Location)},
	}
	var err error
	s := &b.Spec
	if s.Selection, err = o.ToSelection(); err != nil {
		return nil, err
	}
	if s.NamespaceSelector, err = parseSelector("--namespace-selector", o.NamespaceSelector); err != nil {
		return nil, err
	}
	if o.VolumeMethod != "" {
		if s.VolumeMethod, err = v1alpha1.ParseVolumeMethod(o.VolumeMethod); err != nil {
			return nil, fmt.Errorf("--volume-method: %w", err)
		}
	}
	if len(o.SnapshotClasses) > 0 {
		if s.VolumeMethod != "" && s.VolumeMethod != v1alpha1.VolumeSnapshot {
			return nil, fmt.Errorf("--snapshot-class applies to --volume-method snapshot, not %s", o.VolumeMethod)
		}
		s.SnapshotClasses = map[string]v1alpha1.ObjectName{}
		for driver, class := range o.SnapshotClasses {
			if errs := validation.IsDNS1123Subdomain(class); len(errs) > 0 {
				return nil, fmt.Errorf("--snapshot-class %s=%s: %q is not a valid VolumeSnapshotClass name: %s", driver, class, class, strings.Join(errs, "; "))
			}
			if driver == "" {
				return nil, fmt.Errorf("--snapshot-class =%s: name the CSI driver, as DRIVER=CLASS", class)
			}
			s.SnapshotClasses[driver] = v1alpha1.ObjectName(class)
		}
	}
	if s.VirtualMachines, err = o.vmSelection(); err != nil {
		return nil, err
	}
	for _, r := range []struct {
		flag, name string
		into       *v1alpha1.ObjectName
	}{{"--pre-exec-rule", o.PreExecRule, &s.PreExecRule}, {"--post-exec-rule", o.PostExecRule, &s.PostExecRule}} {
		if r.name == "" {
			continue
		}
		if errs := validation.IsDNS1123Subdomain(r.name); len(errs) > 0 {
			return nil, fmt.Errorf("%s %q: %s", r.flag, r.name, strings.Join(errs, "; "))
		}
		*r.into = v1alpha1.ObjectName(r.name)
	}
	if err := validateLabels("--labels", o.Labels); err != nil {
		return nil, err
	}
	if o.Location != "" {
		if errs := validation.IsDNS1123Subdomain(o.Location); len(errs) > 0 {
			return nil, fmt.Errorf("--location %q: %s", o.Location, strings.Join(errs, "; "))
		}
	}
	return b, nil
}

// vmSelection is the VM selection of --vms, --vm-selector and --no-freeze.
func (o *BackupCreateOptions) vmSelection() (*v1alpha1.VirtualMachineSelection, error) {
	if len(o.VMs) == 0 && o.VMSelector == "" {
		if o.NoFreeze {
			return nil, errors.New("--no-freeze applies to the VMs of --vms or --vm-selector")
		}
		return nil, nil
	}
	if len(o.VMs) > 0 && o.VMSelector != "" {
		return nil, errors.New("--vms and --vm-selector are mutually exclusive")
	}
	sel := &v1alpha1.VirtualMachineSelection{}
	if o.NoFreeze {
		sel.Freeze = new(bool)
	}
	var err error
	if sel.LabelSelector, err = parseSelector("--vm-selector", o.VMSelector); err != nil {
		return nil, err
	}
	if len(o.VMs) == 1 && o.VMs[0] == "*" {
		return sel, nil
	}
	for _, n := range o.VMs {
		ns, name, qualified := strings.Cut(n, "/")
		if !qualified {
			name, ns = ns, ""
		}
		if qualified {
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				return nil, fmt.Errorf("--vms %q: namespace %q: %s", n, ns, strings.Join(errs, "; "))
			}
		}
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return nil, fmt.Errorf("--vms %q: %s (give NAME or NAMESPACE/NAME, or '*' alone for every VM)", n, strings.Join(errs, "; "))
		}
		sel.Names = append(sel.Names, n)
	}
	return sel, nil
}

// Run prints the Backup (--dry-run=client), or checks it against the cluster, creates it (on the server
// alone with --dry-run=server) and starts its Job.
func (o *BackupCreateOptions) Run(ctx context.Context) error {
	b, err := o.Backup()
	if err != nil {
		return err
	}
	if o.Create.clientOnly() {
		return o.Create.print(b, "created", o.Out)
	}
	if err := o.check(ctx, b); err != nil {
		return err
	}
	return submit(ctx, o.clients, jobspec.KindBackup, b, string(b.Spec.Location), &o.Create, o.Wait, o.Timeout, o.IOStreams)
}

// check validates the Backup against the cluster before anything is created: its spec passes checkSpec,
// and the name is free.
func (o *BackupCreateOptions) check(ctx context.Context, b *v1alpha1.Backup) error {
	if err := o.checkSpec(ctx, b.Namespace, &b.Spec); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	_, err := o.clients.Dynamic.Resource(v1alpha1.BackupsResource).Namespace(b.Namespace).Get(ctx, b.Name, metav1.GetOptions{})
	if err == nil {
		return fmt.Errorf("Backup %s/%s already exists: choose another NAME", b.Namespace, b.Name)
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("get Backup %s/%s: %w", b.Namespace, b.Name, err)
	}
	return nil
}

// checkSpec validates the spec of a Backup in namespace against the cluster: the location (pxb-config's
// default when unset, which it fills in) and the rules exist, the named namespaces exist, the resource
// types are served.
func (o *BackupCreateOptions) checkSpec(ctx context.Context, namespace string, spec *v1alpha1.BackupSpec) error {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	c := o.clients
	if spec.Location == "" {
		data, err := install.InstalledConfig(ctx, c.Kube)
		if err != nil {
			return err
		}
		if data == nil {
			return errors.New("pxb is not installed in this cluster: run kubectl pxb install")
		}
		if data[install.ConfigDefaultLocation] == "" {
			return fmt.Errorf("--location is required: pxb-config names no defaultLocation")
		}
		spec.Location = v1alpha1.ObjectName(data[install.ConfigDefaultLocation])
	}
	// A team may not read the locations in pxb-system; the API server's policy says whether the location is
	// open to the namespace.
	if _, err := store.GetLocation(ctx, c.Dynamic, string(spec.Location)); err != nil && !apierrors.IsForbidden(err) {
		return fmt.Errorf("--location: %w", err)
	}
	for _, r := range []struct {
		flag string
		name v1alpha1.ObjectName
	}{{"--pre-exec-rule", spec.PreExecRule}, {"--post-exec-rule", spec.PostExecRule}} {
		if r.name == "" {
			continue
		}
		_, err := c.Dynamic.Resource(v1alpha1.RulesResource).Namespace(namespace).Get(ctx, string(r.name), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%s: Rule %s/%s not found (a Backup's rules must be in its own namespace)", r.flag, namespace, r.name)
		} else if err != nil && !apierrors.IsForbidden(err) {
			return fmt.Errorf("%s: Rule %s/%s: %w", r.flag, namespace, r.name, err)
		}
	}
	for _, n := range spec.IncludeNamespaces {
		if n == "*" {
			continue
		}
		if _, err := c.Kube.CoreV1().Namespaces().Get(ctx, string(n), metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return fmt.Errorf("--include-namespaces: namespace %q not found", n)
		} else if err != nil && !apierrors.IsForbidden(err) {
			return fmt.Errorf("--include-namespaces: namespace %s: %w", n, err)
		}
	}
	if spec.VirtualMachines != nil {
		ok, err := serves(c.Kube.Discovery(), "kubevirt.io/v1", "virtualmachines")
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("--vms, --vm-selector: this cluster does not serve KubeVirt's VirtualMachines (kubevirt.io/v1): is KubeVirt installed?")
		}
	}
	if len(spec.IncludeResources)+len(spec.ExcludeResources) > 0 {
		types, _, err := collect.Discover(c.Kube.Discovery())
		if err != nil {
			return err
		}
		for _, fl := range []struct {
			flag  string
			names []v1alpha1.ResourcePattern
		}{{"--include-resources", spec.IncludeResources}, {"--exclude-resources", spec.ExcludeResources}} {
			if err := (collect.ResourceFilter{Include: stringsOf(fl.names)}).Resolve(types); err != nil {
				return fmt.Errorf("%s: unknown resource type%s", fl.flag, strings.TrimPrefix(err.Error(), "IncludeResources: unknown resource type"))
			}
		}
	}
	return nil
}

func newCmdBackupGet(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdList(f, streams, "backup", "Backup", v1alpha1.BackupsResource)
}
