package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
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
schedule exists (after the policy changed, too). The template takes the flags of kubectl pxb backup create.
A user who may not read the SchedulePolicy or write CronJobs in pxb-system (a team member with edit in the
namespace) creates the schedule alone, and the reconciler makes its CronJobs within a minute.`,
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
// sets up a CronJob per schedule of its policy. A user who may not read the policy or write CronJobs in
// pxb-system (a team member) leaves the CronJobs to the reconciler, which makes them within a minute. With
// --dry-run=server the API server checks the schedule without storing it and no CronJob is touched; with -o
// the saved schedule is printed instead of a report.
func (o *ScheduleCreateOptions) Run(ctx context.Context) error {
	bs, err := o.Schedule()
	if err != nil {
		return err
	}
	if o.Create.clientOnly() {
		return o.Create.print(bs, "created", o.Out)
	}
	c := o.clients
	// SchedulePolicies are cluster-scoped and a team may not read them: the reconciler checks the policy
	// then, and reports a bad one in the schedule's Scheduled condition.
	policy, err := getPolicy(ctx, c, o.Policy)
	if apierrors.IsForbidden(err) {
		policy, err = nil, nil
	}
	if err != nil {
		return err
	}
	if policy != nil {
		if _, err := schedule.Runs(policy.Spec); err != nil {
			return fmt.Errorf("SchedulePolicy %s: %w", policy.Name, err)
		}
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
	runs, cronJobs, made, err := applyCronJobs(ctx, c, saved, policy)
	if err != nil {
		return fmt.Errorf("BackupSchedule %s/%s %s, but its CronJobs were not: %w", saved.Namespace, saved.Name, verb, err)
	}
	fmt.Fprintf(out, "BackupSchedule %s/%s %s", saved.Namespace, saved.Name, verb)
	if saved.Spec.Suspend {
		fmt.Fprint(out, " (suspended)")
	}
	if !made {
		fmt.Fprintf(out, "; you may not read its SchedulePolicy or write its CronJobs in %s, so the reconciler makes them within a minute.\n", v1alpha1.SystemNamespace)
		fmt.Fprintf(out, "Its %s condition says when they are made, or why not: kubectl describe backupschedule %s -n %s\n", v1alpha1.ConditionScheduled, saved.Name, saved.Namespace)
	} else {
		fmt.Fprintln(out)
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

// applyCronJobs makes the CronJobs of the saved schedule bs follow policy (nil when the user may not read
// it), with the user's own rights. It returns made false when the user may not read the schedule's location
// or pxb's configuration, or write CronJobs in pxb-system, and the reconciler must.
func applyCronJobs(ctx context.Context, c clients, bs *v1alpha1.BackupSchedule, policy *v1alpha1.SchedulePolicy) (runs []schedule.Run, cronJobs []*batchv1.CronJob, made bool, err error) {
	if policy == nil {
		return nil, nil, false, nil
	}
	loc, err := store.GetLocation(ctx, c.Dynamic, string(bs.Spec.Template.Location))
	var cfg jobspec.Config
	if err == nil {
		cfg, err = jobspec.LoadConfig(ctx, c.Kube)
	}
	if err == nil {
		runs, cronJobs, err = jobspec.ApplySchedule(ctx, c.Kube, bs, policy, cfg, loc)
	}
	if apierrors.IsForbidden(err) {
		return nil, nil, false, nil
	}
	return runs, cronJobs, err == nil, err
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
