package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/spf13/cobra"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/install"
	"github.com/pxb-dev/pxb/pkg/version"
)

var (
	volumeSnapshotClassResource = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotclasses"}
)

const defaultSnapshotClassAnnotation = "snapshot.storage.kubernetes.io/is-default-class"

// InstallStatus is what `kubectl pxb status` reports.
type InstallStatus struct {
	ClientVersion string `json:"clientVersion"`
	// Installed is true when the pxb-config ConfigMap exists.
	Installed        bool   `json:"installed"`
	InstalledVersion string `json:"installedVersion,omitempty"`
	JobImage         string `json:"jobImage,omitempty"`
	DefaultLocation  string `json:"defaultLocation,omitempty"`
	// NamespacePhase is the phase of pxb-system, empty when it does not exist.
	NamespacePhase string      `json:"namespacePhase,omitempty"`
	CRDs           []CRDStatus `json:"crds"`
	// Skew says where the plugin, the installation, its CRDs and its job image disagree, and the fix.
	Skew    []string `json:"skew,omitempty"`
	Cluster Cluster  `json:"cluster"`
}

// CRDStatus is the state of one of pxb's CustomResourceDefinitions.
type CRDStatus struct {
	Name        string `json:"name"`
	Present     bool   `json:"present"`
	Established bool   `json:"established"`
	// Version is the pxb version install labelled the CRD with.
	Version string `json:"version,omitempty"`
}

// Cluster holds what the cluster offers to pxb.
type Cluster struct {
	// VolumeSnapshotAPI is true when snapshot.storage.k8s.io/v1 VolumeSnapshots are served.
	VolumeSnapshotAPI     bool                  `json:"volumeSnapshotAPI"`
	VolumeSnapshotClasses []VolumeSnapshotClass `json:"volumeSnapshotClasses,omitempty"`
	// KubeVirt is true when kubevirt.io/v1 VirtualMachines are served.
	KubeVirt bool `json:"kubevirt"`
}

// VolumeSnapshotClass is a snapshot class and the CSI driver it belongs to.
type VolumeSnapshotClass struct {
	Name    string `json:"name"`
	Driver  string `json:"driver"`
	Default bool   `json:"default,omitempty"`
}

// StatusOptions are the options of `kubectl pxb status`.
type StatusOptions struct {
	Output string

	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Discovery discovery.DiscoveryInterface
	genericiooptions.IOStreams
}

// NewCmdStatus returns `kubectl pxb status`.
func NewCmdStatus(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &StatusOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what of pxb is installed and what the cluster offers it",
		Long: `Show whether pxb is installed in the cluster, its version, job image and definitions, and whether the
cluster serves the VolumeSnapshot API, has a VolumeSnapshotClass, and runs KubeVirt.`,
		Example: `  # Check the installation in the current context
  kubectl pxb status

  # The same as YAML
  kubectl pxb status -o yaml`,
		Args: cobra.NoArgs,
		RunE: runE(f, o),
	}
	addReportOutputFlag(cmd, &o.Output)
	return cmd
}

// Complete builds the clients.
func (o *StatusOptions) Complete(f cmdutil.Factory, _ *cobra.Command, _ []string) error {
	var err error
	if o.Kube, err = f.KubernetesClientSet(); err != nil {
		return err
	}
	if o.Dynamic, err = f.DynamicClient(); err != nil {
		return err
	}
	// Uncached discovery: the point is to see what the cluster serves now.
	o.Discovery = o.Kube.Discovery()
	return nil
}

// Validate checks the flags.
func (o *StatusOptions) Validate() error {
	return validateReportOutput(o.Output)
}

// Run gathers and prints the status.
func (o *StatusOptions) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	st, err := o.gather(ctx)
	if err != nil {
		return err
	}
	if o.Output != "" {
		return printReport(o.Out, o.Output, st)
	}
	return printStatus(o, st)
}

func (o *StatusOptions) gather(ctx context.Context) (*InstallStatus, error) {
	st := &InstallStatus{ClientVersion: version.Version}
	data, err := install.InstalledConfig(ctx, o.Kube)
	if err != nil {
		return nil, err
	}
	if data != nil {
		st.Installed = true
		st.InstalledVersion = data[install.ConfigVersion]
		st.JobImage = data[install.ConfigJobImage]
		st.DefaultLocation = data[install.ConfigDefaultLocation]
	}
	ns, err := o.Kube.CoreV1().Namespaces().Get(ctx, v1alpha1.SystemNamespace, metav1.GetOptions{})
	switch {
	case err == nil:
		st.NamespacePhase = string(ns.Status.Phase)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("get namespace %s: %w", v1alpha1.SystemNamespace, err)
	}
	for _, gvr := range v1alpha1.AllResources {
		crd := CRDStatus{Name: gvr.Resource + "." + gvr.Group}
		obj, err := o.Dynamic.Resource(install.CRDResource).Get(ctx, crd.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			crd.Present = true
			crd.Established = install.Established(obj)
			crd.Version = obj.GetLabels()[install.VersionLabel]
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("get CRD %s: %w", crd.Name, err)
		}
		st.CRDs = append(st.CRDs, crd)
	}
	versions := install.Versions{Plugin: st.ClientVersion, Installed: st.InstalledVersion, JobImage: st.JobImage}
	for _, crd := range st.CRDs {
		if crd.Present {
			versions.AddCRD(crd.Version)
		}
	}
	st.Skew = versions.Skew()
	if st.Cluster.VolumeSnapshotAPI, err = o.serves(ctx, "snapshot.storage.k8s.io/v1", "volumesnapshots"); err != nil {
		return nil, err
	}
	if st.Cluster.VolumeSnapshotAPI {
		if st.Cluster.VolumeSnapshotClasses, err = o.snapshotClasses(ctx); err != nil {
			return nil, err
		}
	}
	if st.Cluster.KubeVirt, err = o.serves(ctx, "kubevirt.io/v1", "virtualmachines"); err != nil {
		return nil, err
	}
	return st, nil
}

// serves reports whether the API server serves resource in groupVersion.
func (o *StatusOptions) serves(ctx context.Context, groupVersion, resource string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return serves(o.Discovery, groupVersion, resource)
}

// serves reports whether the cluster serves resource in groupVersion.
func serves(d discovery.DiscoveryInterface, groupVersion, resource string) (bool, error) {
	list, err := d.ServerResourcesForGroupVersion(groupVersion)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", groupVersion, err)
	}
	return slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == resource }), nil
}

func (o *StatusOptions) snapshotClasses(ctx context.Context) ([]VolumeSnapshotClass, error) {
	list, err := o.Dynamic.Resource(volumeSnapshotClassResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list volumesnapshotclasses: %w", err)
	}
	var classes []VolumeSnapshotClass
	for _, item := range list.Items {
		driver, _ := item.Object["driver"].(string)
		classes = append(classes, VolumeSnapshotClass{
			Name:    item.GetName(),
			Driver:  driver,
			Default: item.GetAnnotations()[defaultSnapshotClassAnnotation] == "true",
		})
	}
	return classes, nil
}

func printStatus(o *StatusOptions, st *InstallStatus) error {
	w := tabwriter.NewWriter(o.Out, 0, 8, 2, ' ', 0)
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	fmt.Fprintf(w, "Client version:\t%s\n", st.ClientVersion)
	if st.Installed {
		fmt.Fprintf(w, "Installed version:\t%s\n", orNone(st.InstalledVersion))
		fmt.Fprintf(w, "Job image:\t%s\n", orNone(st.JobImage))
		fmt.Fprintf(w, "Default location:\t%s\n", orNone(st.DefaultLocation))
	} else {
		fmt.Fprintf(w, "Installed version:\tnot installed (run: kubectl pxb install)\n")
	}
	fmt.Fprintf(w, "Namespace %s:\t%s\n", v1alpha1.SystemNamespace, orValue(st.NamespacePhase, "absent"))
	var established int
	var missing, pending []string
	for _, crd := range st.CRDs {
		switch {
		case crd.Established:
			established++
		case crd.Present:
			pending = append(pending, crd.Name)
		default:
			missing = append(missing, crd.Name)
		}
	}
	crds := fmt.Sprintf("%d/%d established", established, len(st.CRDs))
	if len(pending) > 0 {
		crds += "; not established: " + strings.Join(pending, ", ")
	}
	// A partial installation names what is missing; a cluster without pxb needs no list.
	if len(missing) > 0 && len(missing) < len(st.CRDs) {
		crds += "; missing: " + strings.Join(missing, ", ")
	}
	fmt.Fprintf(w, "CRDs:\t%s\n", crds)
	for _, skew := range st.Skew {
		fmt.Fprintf(w, "Version skew:\t%s\n", skew)
	}
	fmt.Fprintf(w, "VolumeSnapshot API:\t%s\n", yesNo(st.Cluster.VolumeSnapshotAPI))
	var classes []string
	for _, c := range st.Cluster.VolumeSnapshotClasses {
		s := c.Name + " (" + c.Driver
		if c.Default {
			s += ", default"
		}
		classes = append(classes, s+")")
	}
	fmt.Fprintf(w, "VolumeSnapshotClasses:\t%s\n", orNone(strings.Join(classes, ", ")))
	fmt.Fprintf(w, "KubeVirt:\t%s\n", yesNo(st.Cluster.KubeVirt))
	return w.Flush()
}

func orNone(s string) string { return orValue(s, "<none>") }

func orValue(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}
