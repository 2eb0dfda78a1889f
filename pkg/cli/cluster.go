package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/install"
)

// NewCmdCluster returns `kubectl pxb cluster`.
func NewCmdCluster(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Look across the clusters of your kubeconfig",
	}
	cmd.AddCommand(newCmdClusterList(f, streams))
	return cmd
}

// ClusterInfo is one kubeconfig context as `kubectl pxb cluster list` reports it.
type ClusterInfo struct {
	Context   string `json:"context"`
	Cluster   string `json:"cluster"`
	Reachable bool   `json:"reachable"`
	// Error says why the cluster could not be read; empty when it was.
	Error string `json:"error,omitempty"`
	// Installed is true when pxb is installed (pxb-config exists in pxb-system).
	Installed bool   `json:"installed"`
	Version   string `json:"version,omitempty"`
	Backups   int    `json:"backups"`
	// LastBackup is the most recently created Backup, in any namespace the identity can list.
	LastBackup *LastBackup `json:"lastBackup,omitempty"`
}

// LastBackup is the outcome of a cluster's latest Backup.
type LastBackup struct {
	Namespace   string       `json:"namespace"`
	Name        string       `json:"name"`
	Phase       string       `json:"phase,omitempty"`
	Created     metav1.Time  `json:"created"`
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// ClusterListOptions are the options of `kubectl pxb cluster list`.
type ClusterListOptions struct {
	Timeout time.Duration
	Output  string

	loader clientcmd.ClientConfig
	genericiooptions.IOStreams
}

func newCmdClusterList(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ClusterListOptions{IOStreams: streams, Timeout: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the kubeconfig's clusters: reachable, pxb installed and its version, their backups",
		Long: `For every context of the kubeconfig, in parallel: whether the cluster answers, whether pxb is installed and
which version, how many Backups it holds and how its latest Backup went. A cluster that does not answer
within --timeout is shown as unreachable.`,
		Example: `  kubectl pxb cluster list
  kubectl pxb cluster list -o yaml --timeout 10s`,
		Args: cobra.NoArgs,
		RunE: runE(f, o),
	}
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for each cluster.")
	addReportOutputFlag(cmd, &o.Output)
	return cmd
}

// Complete takes the kubeconfig's loader, whose contexts Run reads.
func (o *ClusterListOptions) Complete(f cmdutil.Factory, _ *cobra.Command, _ []string) error {
	o.loader = f.ToRawKubeConfigLoader()
	return nil
}

// Validate checks -o.
func (o *ClusterListOptions) Validate() error {
	if o.Output != "" {
		return validateReportOutput(o.Output)
	}
	return nil
}

// Run reads every context at once and prints them in the kubeconfig's order (sorted by name).
func (o *ClusterListOptions) Run(ctx context.Context) error {
	raw, err := o.loader.RawConfig()
	if err != nil {
		return fmt.Errorf("read kubeconfig: %w", err)
	}
	names := make([]string, 0, len(raw.Contexts))
	for n := range raw.Contexts {
		names = append(names, n)
	}
	slices.Sort(names)
	infos := make([]ClusterInfo, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			infos[i] = o.inspect(ctx, clientcmd.NewNonInteractiveClientConfig(raw, n, &clientcmd.ConfigOverrides{}, o.loader.ConfigAccess()), n)
			infos[i].Cluster = raw.Contexts[n].Cluster
		}()
	}
	wg.Wait()
	if o.Output != "" {
		return printReport(o.Out, o.Output, infos)
	}
	w := newTabWriter(o.Out)
	fmt.Fprintln(w, "CONTEXT\tCLUSTER\tREACHABLE\tPXB\tBACKUPS\tLAST BACKUP\tPHASE\tCOMPLETED")
	for _, c := range infos {
		reach, pxbVersion, backups, last, phase, done := "yes", "not installed", "-", "-", "-", "-"
		switch {
		case !c.Reachable:
			reach, pxbVersion = "no: "+c.Error, "-"
		case !c.Installed && c.Error != "":
			pxbVersion = "unknown: " + c.Error
		case c.Installed:
			pxbVersion = c.Version
			backups = fmt.Sprint(c.Backups)
		}
		if b := c.LastBackup; b != nil {
			last, phase = b.Namespace+"/"+b.Name, orDefault(b.Phase, "-")
			if b.CompletedAt != nil {
				done = b.CompletedAt.UTC().Format("2006-01-02 15:04:05 MST")
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Context, c.Cluster, reach, pxbVersion, backups, last, phase, done)
	}
	return w.Flush()
}

// inspect reads one cluster within the timeout; every failure ends up in the returned info.
func (o *ClusterListOptions) inspect(ctx context.Context, cc clientcmd.ClientConfig, name string) ClusterInfo {
	info := ClusterInfo{Context: name}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	cfg, err := cc.ClientConfig()
	if err != nil {
		info.Error = err.Error()
		return info
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		info.Error = err.Error()
		return info
	}
	data, err := install.InstalledConfig(ctx, kube)
	if err != nil {
		info.Error = err.Error()
		// The server answered, refusing (Unauthorized, Forbidden): reachable, but nothing more is known.
		var status apierrors.APIStatus
		info.Reachable = errors.As(err, &status)
		var netErr net.Error
		if ctx.Err() != nil || errors.As(err, &netErr) && netErr.Timeout() {
			info.Error = fmt.Sprintf("no answer within %s", o.Timeout)
		}
		return info
	}
	info.Reachable = true
	if data == nil {
		return info
	}
	info.Installed, info.Version = true, orDefault(data[install.ConfigVersion], "unknown")
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		info.Error = err.Error()
		return info
	}
	list, err := dyn.Resource(v1alpha1.BackupsResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		info.Error = fmt.Sprintf("list backups: %v", err)
		return info
	}
	info.Backups = len(list.Items)
	for _, u := range list.Items {
		var b v1alpha1.Backup
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
			continue
		}
		if l := info.LastBackup; l != nil && !l.Created.Before(&b.CreationTimestamp) {
			continue
		}
		info.LastBackup = &LastBackup{Namespace: b.Namespace, Name: b.Name, Phase: string(b.Status.Phase),
			Created: b.CreationTimestamp, CompletedAt: b.Status.CompletionTimestamp}
	}
	return info
}
