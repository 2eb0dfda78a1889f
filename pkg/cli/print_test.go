package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func printWith(t *testing.T, output string, obj runtime.Object) string {
	t.Helper()
	flags := NewPrintFlags()
	*flags.OutputFormat = output
	printer, err := flags.ToPrinter()
	if err != nil {
		t.Fatalf("-o %s: %v", output, err)
	}
	var out bytes.Buffer
	if err := printer.PrintObj(obj, &out); err != nil {
		t.Fatalf("-o %s: %v", output, err)
	}
	return out.String()
}

func backupTable() *metav1.Table {
	return &metav1.Table{
		ColumnDefinitions: []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string"},
			{Name: "Phase", Type: "string"},
			{Name: "Stage", Type: "string", Priority: 1},
		},
		Rows: []metav1.TableRow{{Cells: []any{"nightly", "Completed", "Done"}}},
	}
}

func TestTablePrinting(t *testing.T) {
	if got, want := printWith(t, "", backupTable()), "NAME      PHASE\nnightly   Completed\n"; got != want {
		t.Errorf("default output:\n%q\nwant\n%q", got, want)
	}
	if got, want := printWith(t, "wide", backupTable()), "NAME      PHASE       STAGE\nnightly   Completed   Done\n"; got != want {
		t.Errorf("-o wide:\n%q\nwant\n%q", got, want)
	}
	flags := NewPrintFlags()
	flags.NoHeaders = true
	printer, err := flags.ToPrinter()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printer.PrintObj(backupTable(), &out); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "nightly   Completed\n"; got != want {
		t.Errorf("--no-headers: %q, want %q", got, want)
	}
}

func TestObjectPrinting(t *testing.T) {
	b := &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "app"},
		Spec:       v1alpha1.BackupSpec{Location: "s3"},
		Status:     v1alpha1.BackupStatus{Phase: v1alpha1.BackupCompleted},
	}
	if got := printWith(t, "name", b.DeepCopy()); got != "backup.pxb.dev/nightly\n" {
		t.Errorf("-o name = %q", got)
	}
	var decoded map[string]any
	if err := json.Unmarshal([]byte(printWith(t, "json", b.DeepCopy())), &decoded); err != nil {
		t.Fatal(err)
	}
	// Typed objects come back from clients without apiVersion and kind; the printer fills them in.
	if decoded["apiVersion"] != "pxb.dev/v1alpha1" || decoded["kind"] != "Backup" {
		t.Errorf("-o json apiVersion/kind = %v/%v", decoded["apiVersion"], decoded["kind"])
	}
	if y := printWith(t, "yaml", b.DeepCopy()); !strings.Contains(y, "location: s3\n") || !strings.Contains(y, "phase: Completed\n") {
		t.Errorf("-o yaml lacks spec or status:\n%s", y)
	}
	if got := printWith(t, "jsonpath={.status.phase}", b.DeepCopy()); got != "Completed" {
		t.Errorf("-o jsonpath = %q", got)
	}
}

func TestUnknownOutputFormat(t *testing.T) {
	flags := NewPrintFlags()
	*flags.OutputFormat = "xml"
	if _, err := flags.ToPrinter(); err == nil || !strings.Contains(err.Error(), `unable to match a printer suitable for the output format "xml"`) {
		t.Errorf("-o xml: err = %v", err)
	}
}
