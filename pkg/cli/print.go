package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/human"
)

// Scheme knows the built-in Kubernetes types and pxb's, so printers can name typed objects.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(v1alpha1.AddToScheme(Scheme))
}

// PrintFlags are the -o flags of every command that lists or shows objects. The default output and -o wide
// are tables: a *metav1.Table (as the API server returns it for a request with an "as=Table" Accept header,
// so a CRD's printer columns apply) prints as kubectl get prints it. Every format of cli-runtime's
// PrintFlags (json, yaml, name, jsonpath, go-template, ...) is available too.
type PrintFlags struct {
	*genericclioptions.PrintFlags
	NoHeaders bool
	// WithNamespace adds a NAMESPACE column, for lists across namespaces.
	WithNamespace bool
}

// NewPrintFlags returns PrintFlags with the table as the default output.
func NewPrintFlags() *PrintFlags {
	return &PrintFlags{PrintFlags: genericclioptions.NewPrintFlags("").WithTypeSetter(Scheme)}
}

// AddFlags adds -o and --no-headers to cmd.
func (f *PrintFlags) AddFlags(cmd *cobra.Command) {
	f.PrintFlags.AddFlags(cmd)
	cmd.Flags().Lookup("output").Usage = fmt.Sprintf("Output format. One of: (wide, %s).", strings.Join(f.AllowedFormats(), ", "))
	cmd.Flags().BoolVar(&f.NoHeaders, "no-headers", f.NoHeaders, "When using the default or wide output format, don't print headers.")
}

// IsTable reports whether the output is a table, in which case a command should fetch Tables rather than
// whole objects.
func (f *PrintFlags) IsTable() bool {
	return *f.OutputFormat == "" || *f.OutputFormat == "wide"
}

// ToPrinter returns the printer the flags ask for.
func (f *PrintFlags) ToPrinter() (printers.ResourcePrinter, error) {
	if f.IsTable() {
		return printers.NewTablePrinter(printers.PrintOptions{
			Wide:          *f.OutputFormat == "wide",
			NoHeaders:     f.NoHeaders,
			WithNamespace: f.WithNamespace,
		}), nil
	}
	return f.PrintFlags.ToPrinter()
}

// reportFormats are the -o values of commands that print a report rather than API objects.
var reportFormats = []string{"", "json", "yaml"}

func addReportOutputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", *output, "Output format. One of: (json, yaml); a readable summary when empty.")
}

func validateReportOutput(output string) error {
	for _, f := range reportFormats {
		if output == f {
			return nil
		}
	}
	return fmt.Errorf("--output must be json or yaml, not %q", output)
}

// printReport writes v as indented JSON or as YAML.
func printReport(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	case "yaml":
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	return fmt.Errorf("unknown output format %q", format)
}

// printVolumes lists the volumes of a Backup's or Restore's status; p says how many there are in all.
func printVolumes(out io.Writer, vols []v1alpha1.VolumeStatus, p *v1alpha1.Progress) {
	if len(vols) == 0 {
		return
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nVolumes:")
	fmt.Fprintln(w, "  CLAIM\tMETHOD\tPHASE\tSIZE\tFILES\tUPLOADED\tSNAPSHOT\tMESSAGE")
	for _, v := range vols {
		size := human.Bytes(v.BytesDone)
		if v.BytesTotal > v.BytesDone {
			size += "/" + human.Bytes(v.BytesTotal)
		}
		fmt.Fprintf(w, "  %s/%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", v.Namespace, v.PVC, orDefault(string(v.Method), "-"), v.Phase,
			size, v.FilesDone, human.Bytes(v.UploadedBytes), orDefault(v.Snapshot, "-"), v.Message)
	}
	if p != nil && int(p.VolumesTotal) > len(vols) {
		fmt.Fprintf(w, "  ... %d more volumes: the backup's volumes.json lists them all\n", int(p.VolumesTotal)-len(vols))
	}
	_ = w.Flush()
}
