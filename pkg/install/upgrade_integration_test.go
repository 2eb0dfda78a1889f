//go:build integration

package install_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/install"
)

// TestUpgradeKeepsEveryObject installs the CRDs of each earlier schema kept in testdata/upgrade, creates the
// objects that version wrote, with their status, upgrades to this version's manifests, and reads every object
// back unchanged and readable by this version's types.
func TestUpgradeKeepsEveryObject(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "upgrade", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no earlier schemas in testdata/upgrade: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { upgradeFrom(t, dir) })
	}
}

func upgradeFrom(t *testing.T, dir string) {
	c, _ := installed(t)
	client := newClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Put this version's definitions back for the other tests, whatever happens here.
	defer installed(t)

	// The earlier definitions, applied by pxb's field manager as that version's install did: fields this
	// version added to the schema go.
	old := readObjects(t, filepath.Join(dir, "crds.yaml"))
	if _, err := client.Apply(ctx, old, false); err != nil {
		t.Fatalf("install the earlier CRDs: %v", err)
	}
	if err := client.WaitForCRDs(ctx, install.CRDNames(old), time.Minute); err != nil {
		t.Fatal(err)
	}

	// The objects are an administrator's, in pxb-system, where the admission policies let them name any
	// namespace.
	fixtures := readObjects(t, filepath.Join(dir, "objects.yaml"))
	before := map[string]*unstructured.Unstructured{}
	for _, want := range fixtures {
		ri := resource(t, client, want)
		t.Cleanup(func() { _ = ri.Delete(context.Background(), want.GetName(), metav1.DeleteOptions{}) })
		obj := want.DeepCopy()
		delete(obj.Object, "status")
		created, err := ri.Create(ctx, obj, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create %s %s under the earlier CRDs: %v", want.GetKind(), want.GetName(), err)
		}
		if status, ok := want.Object["status"]; ok {
			created.Object["status"] = status
			if created, err = ri.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("set the status of %s %s: %v", want.GetKind(), want.GetName(), err)
			}
		}
		// The fixture must be what that version stored: a field its schema did not know would be pruned.
		for _, field := range []string{"spec", "status"} {
			if got, wantJSON := mustJSON(t, created.Object[field]), mustJSON(t, want.Object[field]); got != wantJSON {
				t.Fatalf("%s %s %s under the earlier CRDs = %s, want the fixture's %s", want.GetKind(), want.GetName(), field, got, wantJSON)
			}
		}
		before[want.GetKind()+"/"+want.GetName()] = created
	}

	current, err := install.Objects(install.Options{Image: "pxb-job:test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Apply(ctx, current, false); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if err := client.WaitForCRDs(ctx, install.CRDNames(current), time.Minute); err != nil {
		t.Fatal(err)
	}

	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for _, want := range fixtures {
		key := want.GetKind() + "/" + want.GetName()
		ri := resource(t, client, want)
		got, err := ri.Get(ctx, want.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Errorf("%s after the upgrade: %v", key, err)
			continue
		}
		for _, field := range []string{"spec", "status"} {
			if g, w := mustJSON(t, got.Object[field]), mustJSON(t, before[key].Object[field]); g != w {
				t.Errorf("%s %s after the upgrade = %s, want %s as before", key, field, g, w)
			}
		}
		if g, w := mustJSON(t, got.GetLabels()), mustJSON(t, before[key].GetLabels()); g != w {
			t.Errorf("%s labels after the upgrade = %s, want %s", key, g, w)
		}
		// This version's types read it, with no field they do not know.
		typed, err := scheme.New(got.GroupVersionKind())
		if err != nil {
			t.Fatal(err)
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(got.Object, typed, true); err != nil {
			t.Errorf("%s after the upgrade does not read as this version's %T: %v", key, typed, err)
		}
	}

	// The upgraded schema is in force for the objects that were there: a schedule's record of the Backups it
	// started, which the earlier schema lacked, is stored on the earlier schedule.
	ri := resource(t, client, fixtureOf(t, fixtures, "BackupSchedule"))
	schedule, err := ri.Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	record := []any{map[string]any{"name": "shop-20261206", "kind": "Backup", "startTime": "2026-12-06T01:30:00Z"}}
	if err := unstructured.SetNestedSlice(schedule.Object, record, "status", "backups"); err != nil {
		t.Fatal(err)
	}
	schedule, err = ri.UpdateStatus(ctx, schedule, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedSlice(schedule.Object, "status", "backups"); mustJSON(t, got) != mustJSON(t, record) {
		t.Errorf("status.backups of the upgraded schedule = %s, want %s", mustJSON(t, got), mustJSON(t, record))
	}
}

func fixtureOf(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	for _, obj := range objs {
		if obj.GetKind() == kind {
			return obj
		}
	}
	t.Fatalf("no %s in the fixture", kind)
	return nil
}

// resource is the client of obj's kind, in obj's namespace.
func resource(t *testing.T, client install.Client, obj *unstructured.Unstructured) dynamic.ResourceInterface {
	t.Helper()
	gvk := obj.GroupVersionKind()
	m, err := client.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatal(err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return client.Dynamic.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	return client.Dynamic.Resource(m.Resource)
}

func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("decode %s: %v", path, err)
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
