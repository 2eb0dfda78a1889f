package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/schedule"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/tenancy"
)

// NewCmdSchedule is `kubectl pxb schedule`: backups taken by a SchedulePolicy.
func NewCmdSchedule(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Take backups on a schedule, and keep as many as a SchedulePolicy says",
		Long: `A BackupSchedule takes Backups from a template at the times of a SchedulePolicy (every few minutes,
daily, weekly, monthly) and deletes the oldest past each one's retention. CronJobs in pxb-system carry it
out; each start creates a Backup (named SCHEDULE-KIND-TIMESTAMP, labelled pxb.dev/schedule) and its Job, and
deletes the backups older than the newest completed ones the policy keeps.`,
	}
	cmd.AddCommand(
		newCmdScheduleCreate(f, streams),
		newCmdList(f, streams, "schedule", "BackupSchedule", v1alpha1.BackupSchedulesResource),
		newCmdScheduleDelete(f, streams),
	)
	return cmd
}

// ScheduleCreateOptions are the options of `kubectl pxb schedule create`: a policy, and the flags of
// `backup create` for the template.
type ScheduleCreateOptions struct {
	BackupCreateOptions
	Policy  string
	Suspend bool
}

func newCmdScheduleCreate(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ScheduleCreateOptions{BackupCreateOptions: BackupCreateOptions{IOStreams: streams, Create: newCreateFlags(), Timeout: time.Hour}}
	cmd := &cobra.Command{
		Use:   "create NAME --policy POLICY [backup create flags]",
		Short: "Create or update a schedule of backups",
		Long: `Create a BackupSchedule and the CronJobs that carry out its SchedulePolicy, or update them when the
schedule exists (after the policy changed, too). The template takes the flags of kubectl pxb backup create.`,
		Example: `  # A SchedulePolicy: every 4 hours, keep 6; daily at 01:30 Berlin time, keep 7
  kubectl apply -f - <<EOF
  apiVersion: pxb.dev/v1alpha1
  kind: SchedulePolicy
  metadata: {name: standard}
  spec:
    interval: {minutes: 240, retain: 6}
    daily: {time: "01:30", retain: 7}
    timeZone: Europe/Berlin
  EOF

  # Back up the namespace shop by it
  kubectl pxb schedule create shop --policy standard --include-namespaces shop --location prod

  # Print the BackupSchedule without creating it
  kubectl pxb schedule create shop --policy standard --include-namespaces shop --dry-run=client -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	o.addSpecFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.Policy, "policy", "", "SchedulePolicy that says when to back up and how many backups to keep.")
	cmd.Flags().BoolVar(&o.Suspend, "suspend", false, "Create the schedule suspended: no backups until spec.suspend is false.")
	o.Create.AddFlags(cmd)
	return cmd
}

// Validate checks the flags, and that a schedule outside pxb-system keeps its backups to its namespace.
func (o *ScheduleCreateOptions) Validate() error {
	if o.Policy == "" {
		return errors.New("--policy is required: name a SchedulePolicy")
	}
	if errs := validation.IsDNS1123Subdomain(o.Policy); len(errs) > 0 {
		return fmt.Errorf("--policy %q: %s", o.Policy, strings.Join(errs, "; "))
	}
	if _, err := o.validateFlags(); err != nil {
		return err
	}
	bs, err := o.Schedule()
	if err != nil {
		return err
	}
	return tenancy.CheckSchedule(bs, nil)
}

// Schedule is the BackupSchedule the flags describe.
func (o *ScheduleCreateOptions) Schedule() (*v1alpha1.BackupSchedule, error) {
	b, err := o.Backup()
	if err != nil {
		return nil, err
	}
	return &v1alpha1.BackupSchedule{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "BackupSchedule"},
		ObjectMeta: metav1.ObjectMeta{Name: b.Name, Namespace: b.Namespace, Labels: b.Labels},
		Spec:       v1alpha1.BackupScheduleSpec{Policy: v1alpha1.ObjectName(o.Policy), Template: b.Spec, Suspend: o.Suspend},
	}, nil
}

// Run prints the schedule (--dry-run=client), or checks it against the cluster, creates or updates it, and
// sets up a CronJob per schedule of its policy. With --dry-run=server the API server checks the schedule
// without storing it and no CronJob is touched; with -o the saved schedule is printed instead of a report.
func (o *ScheduleCreateOptions) Run(ctx context.Context) error {
	bs, err := o.Schedule()
	if err != nil {
		return err
	}
	if o.Create.clientOnly() {
		return o.Create.print(bs, "created", o.Out)
	}
	c := o.clients
	policy, err := getPolicy(ctx, c, o.Policy)
	if err != nil {
		return err
	}
	if _, err := schedule.Runs(policy.Spec); err != nil {
		return fmt.Errorf("SchedulePolicy %s: %w", policy.Name, err)
	}
	if err := o.checkSpec(ctx, bs.Namespace, &bs.Spec.Template); err != nil {
		return err
	}
	saved, verb, err := applySchedule(ctx, c, bs, o.Create.createOptions().DryRun)
	if err != nil {
		return err
	}
	if o.Create.serverDryRun() {
		return o.Create.print(saved, verb, o.Out)
	}
	out := o.Out
	if o.Create.printing() {
		out = io.Discard
	}
	loc, err := store.GetLocation(ctx, c.Dynamic, string(saved.Spec.Template.Location))
	if err != nil {
		return err
	}
	cfg, err := jobspec.LoadConfig(ctx, c.Kube)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "BackupSchedule %s/%s %s", saved.Namespace, saved.Name, verb)
	if saved.Spec.Suspend {
		fmt.Fprint(out, " (suspended)")
	}
	fmt.Fprintln(out)
	runs, cronJobs, err := jobspec.ApplySchedule(ctx, c.Kube, saved, policy, cfg, loc)
	if err != nil {
		return err
	}
	for i, r := range runs {
		fmt.Fprintf(out, "  %s: CronJob %s/%s at %q (%s), keeps %d\n", r.Kind, cronJobs[i].Namespace, cronJobs[i].Name, r.Cron,
			orDefault(policy.Spec.TimeZone, "UTC"), r.Retain)
	}
	if !o.Create.printing() {
		return nil
	}
	return o.Create.print(saved, verb, o.Out)
}

// getPolicy reads SchedulePolicy name.
func getPolicy(ctx context.Context, c clients, name string) (*v1alpha1.SchedulePolicy, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	u, err := c.Dynamic.Resource(v1alpha1.SchedulePoliciesResource).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("--policy: SchedulePolicy %q not found: create it first (kubectl pxb schedule create --help shows one)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("--policy: %w", err)
	}
	var p v1alpha1.SchedulePolicy
	return &p, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p)
}

// applySchedule creates bs, or updates the spec and labels of the one that exists (on the server alone,
// with dryRun); it returns it as saved and what was done.
func applySchedule(ctx context.Context, c clients, bs *v1alpha1.BackupSchedule, dryRun []string) (*v1alpha1.BackupSchedule, string, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(bs)
	if err != nil {
		return nil, "", err
	}
	unstructured.RemoveNestedField(m, "status")
	ri := c.Dynamic.Resource(v1alpha1.BackupSchedulesResource).Namespace(bs.Namespace)
	u, err := ri.Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{FieldManager: "kubectl-pxb", DryRun: dryRun})
	verb := "created"
	if apierrors.IsAlreadyExists(err) {
		var cur *unstructured.Unstructured
		if cur, err = ri.Get(ctx, bs.Name, metav1.GetOptions{}); err == nil {
			cur.Object["spec"] = m["spec"]
			cur.SetLabels(bs.Labels)
			u, err = ri.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "kubectl-pxb", DryRun: dryRun})
			verb = "updated"
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("save BackupSchedule %s/%s: %w", bs.Namespace, bs.Name, err)
	}
	var saved v1alpha1.BackupSchedule
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &saved); err != nil {
		return nil, "", err
	}
	return &saved, verb, nil
}

// ScheduleDeleteOptions are the options of `kubectl pxb schedule delete`.
type ScheduleDeleteOptions struct {
	ObjectOptions
	Yes bool
}

func newCmdScheduleDelete(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ScheduleDeleteOptions{ObjectOptions: ObjectOptions{IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "delete NAME [--yes]",
		Short: "Delete a schedule and its CronJobs; the backups it took stay",
		Args:  cobra.ExactArgs(1),
		RunE:  runE(f, o),
	}
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "Delete without asking.")
	return cmd
}

// Run deletes the BackupSchedule and its CronJobs, once confirmed; its backups stay.
func (o *ScheduleDeleteOptions) Run(ctx context.Context) error {
	c, ns, name := o.clients, o.Namespace, o.Name
	var bs v1alpha1.BackupSchedule
	if err := getTyped(ctx, c, v1alpha1.BackupSchedulesResource, "BackupSchedule", ns, name, &bs); err != nil {
		return err
	}
	if !o.Yes && !confirm(o.In, o.Out, fmt.Sprintf("Delete BackupSchedule %s/%s? Its backups stay.", ns, name)) {
		return errors.New("not deleted")
	}
	deleted, err := jobspec.DeleteScheduleCronJobs(ctx, c.Kube, ns, name)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	if err := c.Dynamic.Resource(v1alpha1.BackupSchedulesResource).Namespace(ns).Delete(dctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete BackupSchedule %s/%s: %w", ns, name, err)
	}
	fmt.Fprintf(o.Out, "BackupSchedule %s/%s deleted with its CronJobs (%s); its backups stay (kubectl pxb backup get -l %s=%s)\n",
		ns, name, strings.Join(deleted, ", "), v1alpha1.ScheduleLabel, jobspec.LabelValue(name))
	return nil
}
