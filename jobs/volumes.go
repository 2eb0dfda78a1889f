package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
)

// VolumeRecord is what a backup keeps of one claim: enough to make the claim again and fill it.
type VolumeRecord struct {
	Namespace    string                              `json:"namespace"`
	PVC          string                              `json:"pvc"`
	UID          string                              `json:"uid,omitempty"`
	PV           string                              `json:"pv,omitempty"`
	StorageClass string                              `json:"storageClass,omitempty"`
	Driver       string                              `json:"driver,omitempty"`
	Capacity     string                              `json:"capacity,omitempty"`
	AccessModes  []corev1.PersistentVolumeAccessMode `json:"accessModes,omitempty"`
	Method       v1alpha1.VolumeMethod               `json:"method,omitempty"`
	// VolumeMode Block is a raw block volume: its snapshot holds the device's bytes (mover.DeviceFile).
	VolumeMode corev1.PersistentVolumeMode `json:"volumeMode,omitempty"`
	Phase      v1alpha1.VolumePhase        `json:"phase"`
	// Snapshot is the repository snapshot holding the claim's files.
	Snapshot      string `json:"snapshot,omitempty"`
	Files         int64  `json:"files,omitempty"`
	Bytes         int64  `json:"bytes,omitempty"`
	UploadedBytes int64  `json:"uploadedBytes,omitempty"`
	Message       string `json:"message,omitempty"`
}

// Key is "namespace/pvc".
func (v *VolumeRecord) Key() string { return v.Namespace + "/" + v.PVC }

// MoverResult is what an upload or download Job reports, as its termination message.
type MoverResult struct {
	Snapshot    string  `json:"snapshot,omitempty"`
	Files       int64   `json:"files"`
	Bytes       int64   `json:"bytes"`
	NewBytes    int64   `json:"newBytes,omitempty"`
	StoredBytes int64   `json:"storedBytes,omitempty"`
	Reused      int64   `json:"reusedFiles,omitempty"`
	Seconds     float64 `json:"seconds"`
}

// ReadVolumes reads the VolumeRecords of a backup from its store; a backup made without volume data has
// none.
func ReadVolumes(ctx context.Context, s collect.Store) ([]VolumeRecord, error) {
	r, err := s.Get(ctx, layout.VolumesKey)
	if errors.Is(err, collect.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []VolumeRecord
	if err := json.NewDecoder(r).Decode(&out); err != nil {
		return nil, fmt.Errorf("read %s: %w", layout.VolumesKey, err)
	}
	return out, nil
}

// volumeStatus is the status entry of v.
func volumeStatus(v *VolumeRecord, done, total, filesDone, filesTotal int64) v1alpha1.VolumeStatus {
	return v1alpha1.VolumeStatus{
		Namespace: v1alpha1.NamespaceName(v.Namespace), PVC: v1alpha1.ObjectName(v.PVC), Driver: v.Driver,
		Method: v.Method, Phase: v.Phase, BytesDone: done, BytesTotal: total, FilesDone: filesDone, FilesTotal: filesTotal,
		UploadedBytes: v.UploadedBytes, Snapshot: v.Snapshot, Message: truncate(v.Message, 1024),
	}
}

// setVolume replaces the entry of list for the same claim with s; it reports false when list has none.
func setVolume(list []v1alpha1.VolumeStatus, s v1alpha1.VolumeStatus) bool {
	for i := range list {
		if list[i].Namespace == s.Namespace && list[i].PVC == s.PVC {
			list[i] = s
			return true
		}
	}
	return false
}

// parallelism is how many data-mover Jobs run at once: pxb-config's volumeParallelism, else two per
// schedulable node, between 1 and 16.
func parallelism(ctx context.Context, kube kubernetes.Interface, c jobspec.Config) int {
	if c.VolumeParallelism > 0 {
		return c.VolumeParallelism
	}
	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	nodes, err := kube.CoreV1().Nodes().List(lctx, metav1.ListOptions{})
	if err != nil {
		return 2
	}
	n := 0
	for _, node := range nodes.Items {
		if !node.Spec.Unschedulable {
			n++
		}
	}
	return min(max(2*n, 1), 16)
}

// runMover launches the Job of m and waits until it ends; it returns what the Job reported, or, when the
// Job succeeded but its report is gone with its pod, what lost finds (lost may be nil). The Job is deleted
// afterwards, whatever its outcome: the reason of a failure is in the error.
func runMover(ctx context.Context, kube kubernetes.Interface, m jobspec.Mover, c jobspec.Config, loc *v1alpha1.BackupLocation,
	lost func(context.Context) (*MoverResult, error)) (*MoverResult, error) {
	job, err := jobspec.LaunchMover(ctx, kube, m, c, loc)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = jobspec.Delete(context.WithoutCancel(ctx), kube, job.Namespace, job.Name)
	}()
	for {
		st, err := jobspec.Get(ctx, kube, job.Namespace, job.Name)
		if err != nil {
			return nil, err
		}
		if st.Failed {
			return nil, fmt.Errorf("%s Job %s: %s", m.Kind, job.Name, st.Reason)
		}
		if st.Done {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	out, err := jobspec.Output(ctx, kube, job.Namespace, job.Name)
	if err != nil && lost != nil {
		res, lerr := lost(ctx)
		if lerr != nil {
			return nil, fmt.Errorf("%w; looked for its result instead: %v", err, lerr)
		}
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	var res MoverResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return nil, fmt.Errorf("%s Job %s reported %q, not a result: %w", m.Kind, job.Name, truncate(out, 200), err)
	}
	return &res, nil
}

// eachPending runs fn for every volume of vols that is Pending, at most n at once, and waits for them.
func eachPending(ctx context.Context, n int, vols []*VolumeRecord, fn func(*VolumeRecord)) {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, v := range vols {
		if v.Phase != v1alpha1.VolumePending {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			fn(v)
		}()
	}
	wg.Wait()
}

// tracker keeps the volumes of a backup or restore and writes their state into its status.
type tracker struct {
	env    *jobenv.Env
	target jobspec.Ref
	log    *jobLog

	mu   sync.Mutex
	vols []*VolumeRecord
}

// publish writes v's entry (when it is among the listed ones) and the volume counts into the status.
func (t *tracker) publish(ctx context.Context, v *VolumeRecord) {
	t.mu.Lock()
	s := volumeStatus(v, v.Bytes, v.Bytes, v.Files, v.Files)
	if v.Phase != v1alpha1.VolumeCompleted {
		s.BytesDone, s.FilesDone = 0, 0
	}
	done, bytesDone := int32(0), int64(0)
	for _, o := range t.vols {
		if o.Phase != v1alpha1.VolumePending && o.Phase != v1alpha1.VolumeInProgress {
			done++
			bytesDone += o.Bytes
		}
	}
	total := int32(len(t.vols))
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	err := t.env.UpdateStatus(ctx, t.target, func(u *unstructured.Unstructured) error {
		return mutateVolumes(u, func(list *[]v1alpha1.VolumeStatus, p **v1alpha1.Progress) {
			setVolume(*list, s)
			if *p == nil {
				*p = &v1alpha1.Progress{}
			}
			(*p).VolumesTotal, (*p).VolumesDone, (*p).BytesDone = total, done, bytesDone
			if total > 0 {
				// 100 is for the end, once everything is sealed.
				(*p).Percent = min(99, done*100/total)
			}
		})
	})
	if err != nil {
		t.log.Printf("report volume %s: %v", v.Key(), err)
	}
}

// mutateVolumes lets fn change the volume list and the progress of a Backup's or a Restore's status.
func mutateVolumes(u *unstructured.Unstructured, fn func(list *[]v1alpha1.VolumeStatus, p **v1alpha1.Progress)) error {
	var st struct {
		Volumes  []v1alpha1.VolumeStatus `json:"volumes,omitempty"`
		Progress *v1alpha1.Progress      `json:"progress,omitempty"`
	}
	raw, _, _ := unstructured.NestedMap(u.Object, "status")
	if raw == nil {
		raw = map[string]any{}
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &st); err != nil {
		return fmt.Errorf("decode status: %w", err)
	}
	fn(&st.Volumes, &st.Progress)
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	delete(raw, "volumes")
	delete(raw, "progress")
	for k, v := range m {
		raw[k] = v
	}
	return unstructured.SetNestedMap(u.Object, raw, "status")
}

// failVolume marks v Failed because of err, and reports it.
func (t *tracker) failVolume(ctx context.Context, v *VolumeRecord, err error) {
	t.mu.Lock()
	v.Phase, v.Message = v1alpha1.VolumeFailed, fmt.Sprintf("volume %s: %v", v.Key(), err)
	t.mu.Unlock()
	t.log.Printf("%s", v.Message)
	t.publish(ctx, v)
}
