package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/tenancy"
)

// NewCmdRestore returns `kubectl pxb restore` and its subcommands.
func NewCmdRestore(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore backups, and list, inspect and delete restores",
		Long: `Restore the objects of a Backup into the cluster, into the same namespaces or mapped ones.

A Restore lives in the namespace of its Backup. Existing objects are kept unless
--existing-resource-policy says otherwise; nothing else in the cluster is deleted.`,
	}
	cmd.AddCommand(
		newCmdRestoreCreate(f, streams),
		newCmdList(f, streams, "restore", "Restore", v1alpha1.RestoresResource),
		newCmdRestoreDescribe(f, streams),
		newCmdRestorePlan(f, streams),
		newCmdRestoreLogs(f, streams),
		newCmdRestoreDelete(f, streams),
	)
	return cmd
}

// RestoreCreateOptions are the options of `kubectl pxb restore create`.
type RestoreCreateOptions struct {
	Name string
	// Namespace is where the Backup is looked for, and the Restore created; NamespaceSet when -n was given.
	Namespace    string
	NamespaceSet bool

	FromBackup string
	selectionFlags
	NamespaceMappings      []string
	StorageClassMappings   []string
	ExistingResourcePolicy string
	DryRun                 bool
	RestoreVolumes         bool
	Labels                 map[string]string
	// Create are --dry-run and -o; a bare --dry-run (plan) sets DryRun.
	Create createFlags
	// planOutput is -o with a bare --dry-run: the plan is waited for and printed as diff, yaml or json.
	planOutput string
	Wait       bool
	Timeout    time.Duration

	clients clients
	now     func() time.Time
	genericiooptions.IOStreams
}

func newCmdRestoreCreate(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RestoreCreateOptions{IOStreams: streams, Create: newCreateFlags(), ExistingResourcePolicy: "retain", RestoreVolumes: true, Timeout: time.Hour, now: time.Now}
	cmd := &cobra.Command{
		Use:   "create [NAME] --from-backup BACKUP [--namespace-mappings FROM:TO,...] [--wait]",
		Short: "Restore a backup's objects",
		Long: `Create a Restore of a Backup and start the Job that carries it out. NAME defaults to BACKUP-TIMESTAMP.

Without -n the Backup is looked for in the current namespace, then in pxb-system. The Backup must be
Completed (or PartiallySucceeded); the selection and mappings are checked before anything is created.`,
		Example: `  # Restore everything of a backup and wait until it is done
  kubectl pxb restore create --from-backup shop-nightly --wait

  # Restore the namespace shop as shop-copy, replacing what exists
  kubectl pxb restore create --from-backup shop-nightly --namespace-mappings shop:shop-copy --existing-resource-policy replace

  # See what a restore would do, without changing the cluster: its job plans it and changes nothing
  kubectl pxb restore create --from-backup shop-nightly --dry-run --wait

  # Preview it as diffs of the live objects it would change; exits non-zero when anything would fail
  kubectl pxb restore create --from-backup shop-nightly --existing-resource-policy update --dry-run -o diff

  # The whole plan: every object's outcome and diff, every volume
  kubectl pxb restore create --from-backup shop-nightly --dry-run -o yaml

  # Print the Restore without creating it
  kubectl pxb restore create --from-backup shop-nightly --dry-run=client -o yaml

  # Have the API server check the Restore without storing it; no Job runs
  kubectl pxb restore create --from-backup shop-nightly --dry-run=server`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(f, o),
	}
	fl := cmd.Flags()
	fl.StringVar(&o.FromBackup, "from-backup", "", "Backup to restore from (required).")
	o.selectionFlags.AddFlags(fl, restoreSelectionHelp)
	fl.StringSliceVar(&o.NamespaceMappings, "namespace-mappings", nil, "Restore namespaces under other names, as FROM:TO,FROM2:TO2.")
	fl.StringSliceVar(&o.StorageClassMappings, "storage-class-mappings", nil, "Give restored claims other StorageClasses, as FROM:TO.")
	fl.StringVar(&o.ExistingResourcePolicy, "existing-resource-policy", o.ExistingResourcePolicy,
		"What to do with objects that exist: retain (keep them), replace (delete and recreate) or update (bring them to the backup's state).")
	fl.BoolVar(&o.RestoreVolumes, "restore-volumes", true, "Fill restored claims with the backed-up volume data; false restores the claims empty.")
	fl.StringToStringVar(&o.Labels, "labels", nil, "Labels of the Restore, as k=v,k2=v2.")
	o.Create.addPlanFlags(cmd)
	fl.BoolVar(&o.Wait, "wait", false, "Wait until the restore ends, showing its progress; exit non-zero unless it completed.")
	fl.DurationVar(&o.Timeout, "timeout", o.Timeout, "How long --wait waits.")
	return cmd
}

// Complete names the Restore, finds the namespace of the Backup and builds the clients.
func (o *RestoreCreateOptions) Complete(f cmdutil.Factory, _ *cobra.Command, args []string) error {
	var err error
	if o.Namespace, o.NamespaceSet, err = namespaceOf(f); err != nil {
		return err
	}
	if len(args) == 1 {
		o.Name = args[0]
	} else {
		o.defaultName()
	}
	_, plan, err := o.Create.dryRunStrategy()
	if err != nil || o.Create.clientOnly() {
		return err
	}
	if plan {
		o.DryRun = true
		if o.Create.printing() {
			// -o then asks for the plan, not for the Restore.
			o.planOutput = *o.Create.PrintFlags.OutputFormat
			*o.Create.PrintFlags.OutputFormat = ""
		}
	}
	if o.clients, err = newClients(f); err != nil {
		return err
	}
	if !o.NamespaceSet && o.FromBackup != "" {
		// Backups of several namespaces live in pxb-system.
		ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
		defer cancel()
		_, err := o.clients.Dynamic.Resource(v1alpha1.BackupsResource).Namespace(o.Namespace).Get(ctx, o.FromBackup, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			o.Namespace = v1alpha1.SystemNamespace
		}
	}
	return nil
}

// defaultName names the Restore BACKUP-TIMESTAMP when no NAME was given.
func (o *RestoreCreateOptions) defaultName() {
	if o.Name == "" && o.FromBackup != "" {
		o.Name = o.FromBackup + "-" + o.now().UTC().Format("20060102150405")
	}
}

// Validate checks the flags without the cluster (errors name the flag), and that a Restore outside
// pxb-system writes into its own namespace alone, as the API server's policy will.
func (o *RestoreCreateOptions) Validate() error {
	if o.FromBackup == "" {
		return errors.New("--from-backup is required")
	}
	if errs := validation.IsDNS1123Subdomain(o.FromBackup); len(errs) > 0 {
		return fmt.Errorf("--from-backup %q: %s", o.FromBackup, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(o.Name); len(errs) > 0 {
		return fmt.Errorf("NAME %q: %s", o.Name, strings.Join(errs, "; "))
	}
	if err := o.Create.Validate(o.Wait); err != nil {
		return err
	}
	if o.planOutput != "" {
		if err := validatePlanOutput(o.planOutput); err != nil {
			return fmt.Errorf("%w (with the bare --dry-run)", err)
		}
	}
	if o.Timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	r, err := o.Restore()
	if err != nil {
		return err
	}
	return tenancy.CheckRestore(r, nil, nil)
}

// Restore is the Restore the flags describe.
func (o *RestoreCreateOptions) Restore() (*v1alpha1.Restore, error) {
	r := &v1alpha1.Restore{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Restore"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: o.Labels},
		Spec:       v1alpha1.RestoreSpec{BackupName: v1alpha1.ObjectName(o.FromBackup), DryRun: o.DryRun},
	}
	if !o.RestoreVolumes {
		r.Spec.RestoreVolumes = ptr.To(false)
	}
	s := &r.Spec
	var err error
	if s.Selection, err = o.ToSelection(); err != nil {
		return nil, err
	}
	nsMap, err := parseMappings("--namespace-mappings", o.NamespaceMappings, validation.IsDNS1123Label)
	if err != nil {
		return nil, err
	}
	targets := map[string]string{}
	for _, from := range slices.Sorted(maps.Keys(nsMap)) {
		to := nsMap[from]
		if other, dup := targets[to]; dup {
			return nil, fmt.Errorf("--namespace-mappings: %s and %s both map to %s", other, from, to)
		}
		targets[to] = from
		if s.NamespaceMapping == nil {
			s.NamespaceMapping = map[string]v1alpha1.NamespaceName{}
		}
		s.NamespaceMapping[from] = v1alpha1.NamespaceName(to)
	}
	scMap, err := parseMappings("--storage-class-mappings", o.StorageClassMappings, validation.IsDNS1123Subdomain)
	if err != nil {
		return nil, err
	}
	for from, to := range scMap {
		if s.StorageClassMapping == nil {
			s.StorageClassMapping = map[string]v1alpha1.ObjectName{}
		}
		s.StorageClassMapping[from] = v1alpha1.ObjectName(to)
	}
	switch strings.ToLower(o.ExistingResourcePolicy) {
	case "retain", "":
		s.ExistingResourcePolicy = v1alpha1.ExistingRetain
	case "replace":
		s.ExistingResourcePolicy = v1alpha1.ExistingReplace
	case "update":
		s.ExistingResourcePolicy = v1alpha1.ExistingUpdate
	default:
		return nil, fmt.Errorf("--existing-resource-policy must be retain, replace or update, not %q", o.ExistingResourcePolicy)
	}
	if err := validateLabels("--labels", o.Labels); err != nil {
		return nil, err
	}
	return r, nil
}

// Run prints the Restore (--dry-run=client), or checks it against its Backup, creates it (on the server
// alone with --dry-run=server) and starts its Job.
func (o *RestoreCreateOptions) Run(ctx context.Context) error {
	r, err := o.Restore()
	if err != nil {
		return err
	}
	if o.Create.clientOnly() {
		return o.Create.print(r, "created", o.Out)
	}
	location, err := o.check(ctx, r)
	if err != nil {
		return err
	}
	if o.planOutput != "" {
		return o.runPlan(ctx, r, location)
	}
	return submit(ctx, o.clients, jobspec.KindRestore, r, location, &o.Create, o.Wait, o.Timeout, o.IOStreams)
}

// check validates the Restore before anything is created: the Backup exists and is Completed, and, when
// the location can be read with the user's permissions, the namespaces and types named are in the backup.
// It returns the Backup's location.
func (o *RestoreCreateOptions) check(ctx context.Context, r *v1alpha1.Restore) (string, error) {
	var b v1alpha1.Backup
	if err := getTyped(ctx, o.clients, v1alpha1.BackupsResource, "Backup", r.Namespace, o.FromBackup, &b); err != nil {
		return "", fmt.Errorf("--from-backup: %w", err)
	}
	if !b.Status.Phase.Restorable() {
		return "", fmt.Errorf("--from-backup: Backup %s/%s is %s, not Completed", b.Namespace, b.Name, orDefault(string(b.Status.Phase), string(v1alpha1.BackupPending)))
	}
	cctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	_, err := o.clients.Dynamic.Resource(v1alpha1.RestoresResource).Namespace(r.Namespace).Get(cctx, r.Name, metav1.GetOptions{})
	if err == nil {
		return "", fmt.Errorf("Restore %s/%s already exists: choose another NAME", r.Namespace, r.Name)
	}
	if !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("get Restore %s/%s: %w", r.Namespace, r.Name, err)
	}
	loc, err := openLocation(ctx, o.clients, string(b.Spec.Location))
	if err != nil {
		// The Job reads the backup with its own identity and checks the rest.
		return string(b.Spec.Location), nil
	}
	defer loc.Close()
	m, err := collect.ReadManifest(ctx, store.Prefixed(loc.Store, layout.BackupPrefix(b.Namespace, b.Name)))
	if err != nil {
		return "", fmt.Errorf("--from-backup: Backup %s/%s: %w", b.Namespace, b.Name, err)
	}
	return string(b.Spec.Location), checkAgainstManifest(r.Spec, m)
}

// checkAgainstManifest says which namespace or type of the Restore the backup does not hold.
func checkAgainstManifest(s v1alpha1.RestoreSpec, m *collect.Manifest) error {
	for _, fl := range []struct {
		flag  string
		names []string
	}{{"--include-namespaces", stringsOf(s.IncludeNamespaces)}, {"--namespace-mappings", slices.Sorted(maps.Keys(s.NamespaceMapping))}} {
		for _, n := range fl.names {
			if n != "*" && !slices.Contains(m.Namespaces, n) {
				return fmt.Errorf("%s: namespace %q is not in the backup (it holds %s)", fl.flag, n, strings.Join(m.Namespaces, ", "))
			}
		}
	}
	types := make([]collect.Type, len(m.Types))
	for i, t := range m.Types {
		types[i] = t.Type
	}
	for _, n := range stringsOf(s.IncludeResources) {
		if err := (collect.ResourceFilter{Include: []string{n}}).Resolve(types); err != nil {
			return fmt.Errorf("--include-resources: the backup holds no %q", n)
		}
	}
	return nil
}
