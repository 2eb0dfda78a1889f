package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/version"
)

// A backup's record: the Backup object as it ended, kept next to its data, so that another cluster (or this
// one, rebuilt) can recreate the Backup from the location alone (see SyncLocation).
// recordFormatVersion is bumped when BackupRecord changes incompatibly.
const recordFormatVersion = 1

// BackupRecord is what layout.RecordKey holds.
type BackupRecord struct {
	FormatVersion int `json:"formatVersion"`
	// PxbVersion is the version of pxb-job that made the backup.
	PxbVersion string `json:"pxbVersion"`
	// ClusterID identifies the cluster that made the backup; empty when it could not be read.
	ClusterID string `json:"clusterID,omitempty"`
	// Backup is the Backup with its spec and final status; of its metadata, only what means something in
	// another cluster is kept.
	Backup v1alpha1.Backup `json:"backup"`
}

// SaveBackupRecord writes the record of b (its spec and final status) into s, the backup's Store
// (Prefixed(loc.Store, layout.BackupPrefix(b.Namespace, b.Name))). It must be written before the backup is sealed:
// what is written under a backup's prefix after its Commit is not part of it.
func SaveBackupRecord(ctx context.Context, s collect.Store, b *v1alpha1.Backup, clusterID string) error {
	rec := BackupRecord{
		FormatVersion: recordFormatVersion,
		PxbVersion:    version.Version,
		ClusterID:     clusterID,
		Backup: v1alpha1.Backup{
			TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Backup"},
			ObjectMeta: metav1.ObjectMeta{
				Name: b.Name, Namespace: b.Namespace, Labels: b.Labels, CreationTimestamp: b.CreationTimestamp,
			},
			Spec:   b.Spec,
			Status: b.Status,
		},
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the record of Backup %s/%s: %w", b.Namespace, b.Name, err)
	}
	if err := s.Put(ctx, layout.RecordKey, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("write the record of Backup %s/%s: %w", b.Namespace, b.Name, err)
	}
	return nil
}

// ReadBackupRecord reads the record kept in a backup's Store; a backup made before records were kept has
// none, and the error then wraps collect.ErrNotFound.
func ReadBackupRecord(ctx context.Context, s collect.Store) (*BackupRecord, error) {
	r, err := s.Get(ctx, layout.RecordKey)
	if err != nil {
		return nil, fmt.Errorf("backup record: %w", err)
	}
	defer r.Close()
	var rec BackupRecord
	if err := json.NewDecoder(r).Decode(&rec); err != nil {
		return nil, fmt.Errorf("decode backup record: %w", err)
	}
	if rec.FormatVersion != recordFormatVersion {
		return nil, fmt.Errorf("backup record: format version %d, this pxb reads %d", rec.FormatVersion, recordFormatVersion)
	}
	return &rec, nil
}

// ClusterID identifies the cluster kube talks to: the UID of its kube-system namespace, which is made once
// with the cluster and never changes (the same ID other tools use for the purpose).
func ClusterID(ctx context.Context, kube kubernetes.Interface) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ns, err := kube.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("cluster ID: namespace %s not found", metav1.NamespaceSystem)
	}
	if err != nil {
		return "", fmt.Errorf("cluster ID: get namespace %s: %w", metav1.NamespaceSystem, err)
	}
	return string(ns.UID), nil
}

// LockedUntil is when the data of Backup b, kept in a location with objectLockDays lockDays, can be
// deleted; the zero time when it can be now. Every object a backup writes is locked for lockDays from when
// it was written, so the last ones unlock lockDays after the backup ended; a backup still running writes
// more, locked from now. A backup that never started wrote nothing.
func LockedUntil(b *v1alpha1.Backup, lockDays int32, now time.Time) time.Time {
	if lockDays <= 0 {
		return time.Time{}
	}
	var last time.Time
	switch {
	case b.Status.CompletionTimestamp != nil:
		last = b.Status.CompletionTimestamp.Time
	case b.Status.StartTimestamp != nil:
		last = now
	default:
		return time.Time{}
	}
	until := last.Add(time.Duration(lockDays) * 24 * time.Hour)
	if !until.After(now) {
		return time.Time{}
	}
	return until
}
