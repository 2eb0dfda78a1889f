package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/human"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/store"
)

func newCmdBackupDescribe(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &BackupDescribeOptions{ObjectOptions{IOStreams: streams}}
	return &cobra.Command{
		Use:     "describe NAME",
		Short:   "Show a backup: what it takes, how it went, what it holds and where",
		Example: "  kubectl pxb backup describe shop-nightly -n pxb-system",
		Args:    cobra.ExactArgs(1),
		RunE:    runE(f, o),
	}
}

// BackupDescribeOptions are the options of `backup describe`.
type BackupDescribeOptions struct{ ObjectOptions }

// Run prints the Backup: its spec, its status and, once it is restorable, what it holds.
func (o *BackupDescribeOptions) Run(ctx context.Context) error {
	b, err := o.getBackup(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	s, st := b.Spec, b.Status
	fmt.Fprintf(w, "Name:\t%s\n", b.Name)
	fmt.Fprintf(w, "Namespace:\t%s\n", b.Namespace)
	fmt.Fprintf(w, "Labels:\t%s\n", joinMap(b.Labels))
	fmt.Fprintf(w, "Location:\t%s\n", s.Location)
	fmt.Fprintf(w, "Synced:\t%s\n", syncedText(b))
	if b.Labels[v1alpha1.SyncedLabel] == "true" {
		fmt.Fprintf(w, "Origin cluster:\t%s\n", orDefault(b.Annotations[v1alpha1.OriginClusterAnnotation], "<unknown: the backup has no record of it>"))
	}
	printSelection(w, s.Selection, b.Namespace, s.NamespaceSelector)
	fmt.Fprintf(w, "Volume method:\t%s\n", orDefault(string(s.VolumeMethod), "Snapshot where the driver has a VolumeSnapshotClass, else FileSystem"))
	if len(s.SnapshotClasses) > 0 {
		classes := map[string]string{}
		for k, v := range s.SnapshotClasses {
			classes[k] = string(v)
		}
		fmt.Fprintf(w, "Snapshot classes:\t%s\n", joinMap(classes))
	}
	if v := s.VirtualMachines; v != nil {
		vms := "every VirtualMachine of the namespaces"
		if len(v.Names) > 0 {
			vms = strings.Join(v.Names, ", ")
		} else if v.LabelSelector != nil {
			vms = "those matching " + selectorText(v.LabelSelector)
		}
		fmt.Fprintf(w, "Virtual machines:\t%s\n", vms)
		freeze := "yes, through the QEMU guest agent of the running ones"
		if v.Freeze != nil && !*v.Freeze {
			freeze = "no (crash-consistent)"
		}
		fmt.Fprintf(w, "Guest freeze:\t%s\n", freeze)
	}
	if s.PreExecRule != "" || s.PostExecRule != "" {
		fmt.Fprintf(w, "Pre-exec rule:\t%s\n", orDefault(string(s.PreExecRule), "<none>"))
		fmt.Fprintf(w, "Post-exec rule:\t%s\n", orDefault(string(s.PostExecRule), "<none>"))
	}
	_ = w.Flush()
	printOperationStatus(o.Out, orDefault(string(st.Phase), string(v1alpha1.BackupPending)), string(st.Stage), st.OperationStatus, func(w io.Writer) {
		if st.Size != "" {
			fmt.Fprintf(w, "Size:\t%s (%s added to the repository)\n", st.Size, human.Bytes(st.UploadedBytes))
		}
	})
	if !st.Phase.Restorable() {
		return nil
	}
	loc, err := openLocation(ctx, o.clients, string(s.Location))
	if err != nil {
		fmt.Fprintf(o.Out, "\nContents: not read (%v)\n", err)
		return nil
	}
	defer loc.Close()
	prefix := layout.BackupPrefix(b.Namespace, b.Name)
	m, err := collect.ReadManifest(ctx, store.Prefixed(loc.Store, prefix))
	w = tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "\nData:\t%s (encrypted repository)\n", loc.URL(prefix))
	if err != nil {
		fmt.Fprintf(w, "Contents:\tnot read (%v)\n", err)
		return w.Flush()
	}
	fmt.Fprintf(w, "Contents:\t%d objects, %s, namespaces %s\n", m.Total, human.Bytes(m.Bytes), strings.Join(m.Namespaces, ", "))
	fmt.Fprintln(w, "  RESOURCE\tCOUNT")
	for _, t := range m.Types {
		fmt.Fprintf(w, "  %s\t%d\n", t.String(), t.Count)
	}
	return w.Flush()
}

// printSelection prints what a Backup or a Restore takes. emptyNamespaces is what an empty includeNamespaces
// means for it; a Backup's namespaceSelector, when passed, is printed too.
func printSelection(w io.Writer, s v1alpha1.Selection, emptyNamespaces string, namespaceSelector ...*metav1.LabelSelector) {
	fmt.Fprintf(w, "Namespaces:\t%s\n", orDefault(strings.Join(stringsOf(s.IncludeNamespaces), ", "), emptyNamespaces))
	fmt.Fprintf(w, "Excluded namespaces:\t%s\n", orDefault(strings.Join(stringsOf(s.ExcludeNamespaces), ", "), "<none>"))
	for _, sel := range namespaceSelector {
		fmt.Fprintf(w, "Namespace selector:\t%s\n", selectorText(sel))
	}
	fmt.Fprintf(w, "Label selector:\t%s\n", selectorText(s.LabelSelector))
	fmt.Fprintf(w, "Resources:\t%s\n", orDefault(strings.Join(stringsOf(s.IncludeResources), ", "), "*"))
	fmt.Fprintf(w, "Excluded resources:\t%s\n", orDefault(strings.Join(stringsOf(s.ExcludeResources), ", "), "<none>"))
	fmt.Fprintf(w, "Cluster resources:\t%s\n", orDefault(string(s.ClusterResources), string(v1alpha1.ClusterResourcesAuto)))
}

// printOperationStatus prints how a Backup or a Restore went: its phase and stage, then its OperationStatus.
// details prints, after the progress, what only one of them reports.
func printOperationStatus(out io.Writer, phase, stage string, st v1alpha1.OperationStatus, details func(w io.Writer)) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "\nPhase:\t%s\n", phase)
	if stage != "" {
		fmt.Fprintf(w, "Stage:\t%s\n", stage)
	}
	if st.Message != "" {
		fmt.Fprintf(w, "Message:\t%s\n", st.Message)
	}
	fmt.Fprintf(w, "Started:\t%s\n", timeText(st.StartTimestamp))
	fmt.Fprintf(w, "Completed:\t%s\n", timeText(st.CompletionTimestamp))
	if p := st.Progress; p != nil {
		fmt.Fprintf(w, "Objects:\t%d of %d (%d%%)\n", p.ItemsDone, p.ItemsTotal, p.Percent)
	}
	details(w)
	printMessages(w, "Warnings", st.WarningCount, st.Warnings)
	printMessages(w, "Errors", st.ErrorCount, st.Errors)
	_ = w.Flush()
	printVolumes(out, st.Volumes, st.Progress)
	printConditions(out, st.Conditions)
}

// printConditions lists the conditions of a status.
func printConditions(out io.Writer, conds []metav1.Condition) {
	if len(conds) == 0 {
		return
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nConditions:")
	fmt.Fprintln(w, "  TYPE\tSTATUS\tREASON\tSINCE\tMESSAGE")
	for _, c := range conds {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, timeText(&c.LastTransitionTime), c.Message)
	}
	_ = w.Flush()
}

// syncedText says whether b was made in this cluster or brought in by a sync of its location.
func syncedText(b *v1alpha1.Backup) string {
	if b.Labels[v1alpha1.SyncedLabel] != "true" {
		return "no (made in this cluster)"
	}
	return "yes (found in location " + string(b.Spec.Location) + " by a sync; deleting the Backup keeps its data unless --delete-data)"
}

func newCmdRestoreDescribe(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RestoreDescribeOptions{ObjectOptions{IOStreams: streams}}
	return &cobra.Command{
		Use:     "describe NAME",
		Short:   "Show a restore and its summary: what happened to every object",
		Example: "  kubectl pxb restore describe shop-nightly-20250101120000 -n pxb-system",
		Args:    cobra.ExactArgs(1),
		RunE:    runE(f, o),
	}
}

// RestoreDescribeOptions are the options of `restore describe`.
type RestoreDescribeOptions struct{ ObjectOptions }

// Run prints the Restore: its spec, its status and, once it has ended, its summary.
func (o *RestoreDescribeOptions) Run(ctx context.Context) error {
	r, err := o.getRestore(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	s, st := r.Spec, r.Status
	fmt.Fprintf(w, "Name:\t%s\n", r.Name)
	fmt.Fprintf(w, "Namespace:\t%s\n", r.Namespace)
	fmt.Fprintf(w, "Backup:\t%s\n", s.BackupName)
	printSelection(w, s.Selection, "*")
	nsMap := map[string]string{}
	for k, v := range s.NamespaceMapping {
		nsMap[k] = string(v)
	}
	scMap := map[string]string{}
	for k, v := range s.StorageClassMapping {
		scMap[k] = string(v)
	}
	fmt.Fprintf(w, "Namespace mappings:\t%s\n", joinMap(nsMap))
	fmt.Fprintf(w, "Storage class mappings:\t%s\n", joinMap(scMap))
	fmt.Fprintf(w, "Existing objects:\t%s\n", orDefault(string(s.ExistingResourcePolicy), string(v1alpha1.ExistingRetain)))
	if s.DryRun {
		fmt.Fprintf(w, "Dry run:\ttrue (nothing was changed)\n")
	}
	_ = w.Flush()
	printOperationStatus(o.Out, orDefault(string(st.Phase), string(v1alpha1.RestorePending)), string(st.Stage), st.OperationStatus, func(w io.Writer) {
		if c := st.Counts; c != nil {
			fmt.Fprintf(w, "Outcomes:\t%d created, %d updated, %d skipped, %d failed\n", c.Created, c.Updated, c.Skipped, c.Failed)
		}
	})
	if st.CompletionTimestamp == nil || st.Phase == v1alpha1.RestoreFailed && st.Counts == nil {
		return nil
	}
	locName, err := o.restoreLocation(ctx, r)
	if err != nil {
		fmt.Fprintf(o.Out, "\nSummary: not read (%v)\n", err)
		return nil
	}
	loc, err := openLocation(ctx, o.clients, locName)
	if err != nil {
		fmt.Fprintf(o.Out, "\nSummary: not read (%v)\n", err)
		return nil
	}
	defer loc.Close()
	fmt.Fprintln(o.Out, "\nSummary:")
	w = tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  OUTCOME\tRESOURCE\tNAME\tREASON")
	err = apply.ReadSummary(ctx, store.Prefixed(loc.Store, layout.RestorePrefix(r.Namespace, r.Name)), func(e apply.SummaryEntry) error {
		name := e.Name
		if e.Namespace != "" {
			name = e.Namespace + "/" + e.Name
		}
		if e.SourceNamespace != "" && e.SourceNamespace != e.Namespace {
			name += " (from " + e.SourceNamespace + ")"
		}
		_, err := fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", e.Outcome, e.Resource, name, e.Reason)
		return err
	})
	_ = w.Flush()
	if err != nil {
		fmt.Fprintf(o.Out, "  not read: %v\n", err)
	}
	return nil
}

func printMessages(w io.Writer, title string, count int32, msgs []string) {
	if count == 0 {
		return
	}
	fmt.Fprintf(w, "%s:\t%d\n", title, count)
	for _, m := range msgs {
		fmt.Fprintf(w, "  %s\n", m)
	}
	if int(count) > len(msgs) {
		fmt.Fprintf(w, "  ... and %d more in the job log\n", int(count)-len(msgs))
	}
}

func joinMap(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func selectorText(s *metav1.LabelSelector) string {
	if s == nil {
		return "<none>"
	}
	return metav1.FormatLabelSelector(s)
}

func timeText(t *metav1.Time) string {
	if t == nil {
		return "<none>"
	}
	return t.UTC().Format(time.RFC3339)
}
