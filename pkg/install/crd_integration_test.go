//go:build integration

package install_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

type crdCase struct {
	name string
	spec map[string]any
	// wantErr are substrings of the apiserver's error; none means the object is accepted.
	wantErr []string
}

var (
	key         = map[string]any{"name": "repo-key"}
	s3Location  = map[string]any{"provider": "s3", "bucket": "backups", "encryptionKey": key}
	podSelector = map[string]any{"matchLabels": map[string]any{"app": "db"}}
)

// with returns a copy of base with the given fields set (a nil value removes the field).
func with(base map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestCRDValidation(t *testing.T) {
	c, dyn := installed(t)
	ns := c.Namespace(t)
	groups := []struct {
		kind  string
		gvr   schema.GroupVersionResource
		cases []crdCase
	}{
		{"BackupLocation", v1alpha1.BackupLocationsResource, []crdCase{
			{name: "s3", spec: with(s3Location, "region", "us-east-1", "endpoint", "http://10.0.0.1:7070",
				"s3ForcePathStyle", true, "credential", map[string]any{"name": "s3-creds"}, "objectLockDays", int64(30),
				"allowedNamespaces", []any{"team-a", "*"})},
			{name: "nfs", spec: map[string]any{"provider": "nfs", "encryptionKey": key,
				"nfs": map[string]any{"server": "10.0.0.2", "path": "/exports/pxb", "mountOptions": []any{"nfsvers=4.1"}}}},
			{name: "azure", spec: map[string]any{"provider": "azure", "bucket": "backups", "storageAccount": "pxbstore", "encryptionKey": key}},
			{name: "unknown provider", spec: with(s3Location, "provider", "ftp"),
				wantErr: []string{`spec.provider: Unsupported value: "ftp"`, `"s3", "azure", "gcs", "nfs"`}},
			{name: "s3 without bucket", spec: with(s3Location, "bucket", nil),
				wantErr: []string{"spec.bucket: Required value: bucket is required when provider is s3, azure or gcs"}},
			{name: "nfs without export", spec: map[string]any{"provider": "nfs", "encryptionKey": key},
				wantErr: []string{"spec.nfs: Required value: nfs (server and path) is required when provider is nfs"}},
			{name: "nfs without path", spec: map[string]any{"provider": "nfs", "encryptionKey": key, "nfs": map[string]any{"server": "nfs"}},
				wantErr: []string{"spec.nfs.path: Required value"}},
			{name: "nfs with a credential", spec: map[string]any{"provider": "nfs", "encryptionKey": key,
				"nfs": map[string]any{"server": "nfs", "path": "/x"}, "credential": map[string]any{"name": "c"}},
				wantErr: []string{"spec.credential: Forbidden: credential may not be set when provider is nfs"}},
			{name: "azure without storage account", spec: with(s3Location, "provider", "azure"),
				wantErr: []string{"spec.storageAccount: Required value: storageAccount is required when provider is azure"}},
			{name: "path style on gcs", spec: with(s3Location, "provider", "gcs", "s3ForcePathStyle", true),
				wantErr: []string{"spec.s3ForcePathStyle: Forbidden"}},
			{name: "without encryption key", spec: with(s3Location, "encryptionKey", nil),
				wantErr: []string{"spec.encryptionKey: Required value"}},
			{name: "endpoint not a URL", spec: with(s3Location, "endpoint", "ftp://x"),
				wantErr: []string{"spec.endpoint: Invalid value", "should match"}},
			{name: "gcs with object lock", spec: with(s3Location, "provider", "gcs", "objectLockDays", int64(7))},
			{name: "azure with object lock", spec: map[string]any{"provider": "azure", "bucket": "backups", "storageAccount": "pxbstore",
				"encryptionKey": key, "objectLockDays": int64(7)}},
			{name: "zero object lock days", spec: with(s3Location, "objectLockDays", int64(0)),
				wantErr: []string{"spec.objectLockDays: Invalid value: 0", "greater than or equal to 1"}},
			{name: "prefix with leading slash", spec: with(s3Location, "prefix", "/pxb"),
				wantErr: []string{"spec.prefix: Invalid value"}},
			{name: "CA and insecure", spec: with(s3Location, "caCert", "PEM", "insecureSkipTLSVerify", true),
				wantErr: []string{"spec.insecureSkipTLSVerify: Forbidden: caCert and insecureSkipTLSVerify are mutually exclusive"}},
		}},
		{"SchedulePolicy", v1alpha1.SchedulePoliciesResource, []crdCase{
			{name: "all kinds", spec: map[string]any{
				"interval": map[string]any{"minutes": int64(15), "retain": int64(4)},
				"daily":    map[string]any{"time": "01:30", "retain": int64(7)},
				"weekly":   map[string]any{"day": "Sunday", "time": "02:00", "retain": int64(4)},
				"monthly":  map[string]any{"date": int64(31), "time": "03:00", "retain": int64(12)},
				"timeZone": "Europe/Berlin"}},
			{name: "negative retain", spec: map[string]any{"daily": map[string]any{"time": "01:30", "retain": int64(-1)}},
				wantErr: []string{"spec.daily.retain: Invalid value: -1", "greater than or equal to 1"}},
			{name: "zero interval", spec: map[string]any{"interval": map[string]any{"minutes": int64(0), "retain": int64(1)}},
				wantErr: []string{"spec.interval.minutes: Invalid value: 0"}},
			{name: "no schedule", spec: map[string]any{"timeZone": "UTC"},
				wantErr: []string{"at least one of interval, daily, weekly or monthly is required"}},
			{name: "bad time", spec: map[string]any{"daily": map[string]any{"time": "25:00", "retain": int64(1)}},
				wantErr: []string{`spec.daily.time: Invalid value: "25:00"`}},
			{name: "bad day", spec: map[string]any{"weekly": map[string]any{"day": "Funday", "time": "01:00", "retain": int64(1)}},
				wantErr: []string{`spec.weekly.day: Unsupported value: "Funday"`}},
			{name: "date 32", spec: map[string]any{"monthly": map[string]any{"date": int64(32), "time": "01:00", "retain": int64(1)}},
				wantErr: []string{"spec.monthly.date: Invalid value: 32"}},
		}},
		{"Rule", v1alpha1.RulesResource, []crdCase{
			{name: "flush", spec: map[string]any{"actions": []any{map[string]any{"podSelector": podSelector,
				"container": "db", "command": []any{"/bin/sh", "-c", "sync"}, "background": true, "runInSinglePod": true, "timeoutSeconds": int64(30)}}}},
			{name: "no actions", spec: map[string]any{"actions": []any{}},
				wantErr: []string{"spec.actions: Invalid value", "at least 1 items"}},
			{name: "no command", spec: map[string]any{"actions": []any{map[string]any{"podSelector": podSelector}}},
				wantErr: []string{"spec.actions[0].command: Required value"}},
			{name: "zero timeout", spec: map[string]any{"actions": []any{map[string]any{"podSelector": podSelector, "command": []any{"true"}, "timeoutSeconds": int64(0)}}},
				wantErr: []string{"spec.actions[0].timeoutSeconds: Invalid value: 0"}},
			{name: "bad onError", spec: map[string]any{"actions": []any{map[string]any{"podSelector": podSelector, "command": []any{"true"}, "onError": "Ignore"}}},
				wantErr: []string{`spec.actions[0].onError: Unsupported value: "Ignore"`}},
		}},
		{"Backup", v1alpha1.BackupsResource, []crdCase{
			{name: "namespaces", spec: map[string]any{"location": "s3", "includeNamespaces": []any{"app", "db"},
				"excludeResources": []any{"events", "events.events.k8s.io"}, "labelSelector": podSelector,
				"volumeMethod": "Snapshot", "snapshotClasses": map[string]any{"hostpath.csi.k8s.io": "csi-hostpath-snapclass"},
				"preExecRule": "flush", "postExecRule": "unflush", "clusterResources": "Include",
				"virtualMachines": map[string]any{"names": []any{"vm1", "app/vm2"}}}},
			{name: "without location", spec: map[string]any{"includeNamespaces": []any{"app"}},
				wantErr: []string{"spec.location: Required value"}},
			{name: "unknown volume method", spec: map[string]any{"location": "s3", "volumeMethod": "Copy"},
				wantErr: []string{`spec.volumeMethod: Unsupported value: "Copy"`}},
			{name: "cluster resources as bool word", spec: map[string]any{"location": "s3", "clusterResources": "true"},
				wantErr: []string{`spec.clusterResources: Unsupported value: "true"`}},
			{name: "snapshot classes without snapshots", spec: map[string]any{"location": "s3", "volumeMethod": "FileSystem",
				"snapshotClasses": map[string]any{"d": "c"}},
				wantErr: []string{"spec.snapshotClasses: Forbidden: snapshotClasses may only be set when volumeMethod is Snapshot"}},
			{name: "namespaces and selector", spec: map[string]any{"location": "s3", "includeNamespaces": []any{"a"}, "namespaceSelector": podSelector},
				wantErr: []string{"spec.namespaceSelector: Invalid value", "includeNamespaces and namespaceSelector are mutually exclusive"}},
			{name: "bad namespace", spec: map[string]any{"location": "s3", "includeNamespaces": []any{"Bad_NS"}},
				wantErr: []string{`spec.includeNamespaces[0]: Invalid value: "Bad_NS"`}},
			{name: "duplicate namespace", spec: map[string]any{"location": "s3", "includeNamespaces": []any{"a", "a"}},
				wantErr: []string{"spec.includeNamespaces[1]: Duplicate value"}},
		}},
		{"Restore", v1alpha1.RestoresResource, []crdCase{
			{name: "mapped", spec: map[string]any{"backupName": "nightly", "namespaceMapping": map[string]any{"app": "app-copy"},
				"storageClassMapping": map[string]any{"fast": "standard"}, "existingResourcePolicy": "Update",
				"restoreVolumes": false, "dryRun": true, "includeResources": []any{"deployments.apps"}}},
			{name: "without backup", spec: map[string]any{"namespaceMapping": map[string]any{"a": "b"}},
				wantErr: []string{"spec.backupName: Required value"}},
			{name: "unknown policy", spec: map[string]any{"backupName": "b", "existingResourcePolicy": "Overwrite"},
				wantErr: []string{`spec.existingResourcePolicy: Unsupported value: "Overwrite"`, `"Retain", "Replace", "Update"`}},
			{name: "bad target namespace", spec: map[string]any{"backupName": "b", "namespaceMapping": map[string]any{"a": "Not OK"}},
				wantErr: []string{`spec.namespaceMapping.a: Invalid value: "Not OK"`}},
		}},
		{"BackupSchedule", v1alpha1.BackupSchedulesResource, []crdCase{
			{name: "nightly", spec: map[string]any{"policy": "nightly", "suspend": true,
				"template": map[string]any{"location": "s3", "includeNamespaces": []any{"app"}}}},
			{name: "template without location", spec: map[string]any{"policy": "nightly", "template": map[string]any{}},
				wantErr: []string{"spec.template.location: Required value"}},
			{name: "without policy", spec: map[string]any{"template": map[string]any{"location": "s3"}},
				wantErr: []string{"spec.policy: Required value"}},
		}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, g := range groups {
		for i, tc := range g.cases {
			t.Run(g.kind+"/"+tc.name, func(t *testing.T) {
				objNS := ns
				switch g.kind {
				case "SchedulePolicy":
					objNS = ""
				case "Backup", "Restore", "BackupSchedule":
					// The valid cases span namespaces: an administrator's, which live in pxb-system.
					objNS = v1alpha1.SystemNamespace
				}
				name := strings.ToLower(g.kind) + "-" + string(rune('a'+i))
				u := obj(g.kind, objNS, name, tc.spec)
				ri := dyn.Resource(g.gvr).Namespace(objNS)
				_, err := ri.Create(ctx, u, metav1.CreateOptions{})
				if len(tc.wantErr) == 0 {
					if err != nil {
						t.Fatalf("valid %s rejected: %v", g.kind, err)
					}
					t.Cleanup(func() { ri.Delete(context.Background(), name, metav1.DeleteOptions{}) })
					return
				}
				if err == nil {
					ri.Delete(ctx, name, metav1.DeleteOptions{})
					t.Fatalf("invalid %s accepted, want error with %q", g.kind, tc.wantErr)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q\ndoes not contain %q", err, want)
					}
				}
			})
		}
	}
}

func TestCRDDefaults(t *testing.T) {
	c, dyn := installed(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).Create(ctx, obj("Backup", ns, "defaults", map[string]any{"location": "s3"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// volumeMethod stays unset: each volume then gets a snapshot when its driver can take one.
	for field, want := range map[string]string{"volumeMethod": "", "clusterResources": "Auto"} {
		if got, _, _ := unstructured.NestedString(b.Object, "spec", field); got != want {
			t.Errorf("backup spec.%s = %q, want %q", field, got, want)
		}
	}
	r, err := dyn.Resource(v1alpha1.RestoresResource).Namespace(ns).Create(ctx, obj("Restore", ns, "defaults", map[string]any{"backupName": "defaults"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedString(r.Object, "spec", "existingResourcePolicy"); got != "Retain" {
		t.Errorf("restore spec.existingResourcePolicy = %q, want Retain", got)
	}
	if got, found, _ := unstructured.NestedBool(r.Object, "spec", "restoreVolumes"); !found || !got {
		t.Errorf("restore spec.restoreVolumes = %v (set: %v), want true", got, found)
	}
}

func TestCRDImmutability(t *testing.T) {
	c, dyn := installed(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	loc, err := dyn.Resource(v1alpha1.BackupLocationsResource).Namespace(ns).Create(ctx, obj("BackupLocation", ns, "loc", s3Location), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for field, value := range map[string]any{"provider": "gcs", "bucket": "other", "prefix": "moved"} {
		changed := loc.DeepCopy()
		if err := unstructured.SetNestedField(changed.Object, value, "spec", field); err != nil {
			t.Fatal(err)
		}
		_, err := dyn.Resource(v1alpha1.BackupLocationsResource).Namespace(ns).Update(ctx, changed, metav1.UpdateOptions{})
		if err == nil || !strings.Contains(err.Error(), field+" is immutable") {
			t.Errorf("changing spec.%s: err = %v, want %q", field, err, field+" is immutable")
		}
	}

	b, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).Create(ctx, obj("Backup", ns, "b", map[string]any{"location": "s3"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(b.Object, "other", "spec", "location"); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).Update(ctx, b, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "spec: Invalid value") || !strings.Contains(err.Error(), "spec is immutable") {
		t.Errorf("changing a Backup's spec: err = %v, want spec is immutable", err)
	}
}

func TestBackupStatusIsBounded(t *testing.T) {
	c, dyn := installed(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ri := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns)
	b, err := ri.Create(ctx, obj("Backup", ns, "bounded", map[string]any{"location": "s3"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]any, 21)
	for i := range errs {
		errs[i] = "failed"
	}
	b.Object["status"] = map[string]any{"phase": "Failed", "errors": errs}
	if _, err := ri.UpdateStatus(ctx, b, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "status.errors: Too many: 21: must have at most 20 items") {
		t.Errorf("21 errors in status: err = %v, want Too many", err)
	}
	b.Object["status"] = map[string]any{"phase": "Done"}
	if _, err := ri.UpdateStatus(ctx, b, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), `status.phase: Unsupported value: "Done"`) {
		t.Errorf("phase Done: err = %v, want Unsupported value", err)
	}
	b.Object["status"] = map[string]any{"phase": "InProgress", "stage": "Volumes", "progress": map[string]any{"percent": int64(40)}, "size": "1.5 GiB"}
	if _, err := ri.UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Errorf("valid status rejected: %v", err)
	}
}
