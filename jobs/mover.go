package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/mover"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/store"
)

// Tags of a volume's snapshot in the repository.
const (
	tagVolume    = "pxb.dev/volume"     // the claim, "namespace/name"
	tagPVCUID    = "pxb.dev/pvc-uid"    // the claim's UID: the next backup of the same claim builds on it
	tagBackup    = "pxb.dev/backup"     // "namespace/name" of the Backup
	tagBackupUID = "pxb.dev/backup-uid" // and its UID: a Backup made again under the same name is another
)

// moverProgressInterval is how often a data-mover Job reports its progress into the status.
const moverProgressInterval = 5 * time.Second

// MoverRequest is one upload or download: the volume (claim "namespace/name", as in the backup) of a
// Backup or Restore, mounted at Path.
type MoverRequest struct {
	Namespace, Name string // the Backup or Restore
	Volume          string
	Path            string
	// Method (uploads) is how Path was mounted: a volume made from a snapshot, or the live one.
	Method v1alpha1.VolumeMethod
	// Snapshot (downloads) is the repository snapshot to write.
	Snapshot string
	// Block says Path is a raw block device, whose bytes move rather than files.
	Block bool
	// SecretsDir is where the kubelet mounted the location's Secrets (jobspec.MoverSecretsPath), which the
	// mover's identity may not read through the API; empty reads them through the API.
	SecretsDir string
}

// openMoverLocation opens location name with the Secrets of req.
func openMoverLocation(ctx context.Context, env *jobenv.Env, req MoverRequest, name string, opts Options) (*store.Location, error) {
	secrets := store.APISecrets(env.Kube)
	if req.SecretsDir != "" {
		secrets = store.DirSecrets(req.SecretsDir)
	}
	return store.OpenLocationWith(ctx, secrets, env.Dynamic, name, opts.Location, false)
}

func splitVolume(v string) (string, string, error) {
	ns, name, ok := strings.Cut(v, "/")
	if !ok || ns == "" || name == "" {
		return "", "", fmt.Errorf("--volume %q: want namespace/claim", v)
	}
	return ns, name, nil
}

// Upload copies the files of a backup's volume into its location, building on the last snapshot of the
// same claim, and returns what it stored. Its progress goes into the Backup's status. A killed upload
// leaves no snapshot behind (a snapshot is written last), and the Job's next attempt starts over, finding
// the data already stored; an attempt that died after writing its snapshot has done the upload.
func Upload(ctx context.Context, cfg *rest.Config, req MoverRequest, opts Options) (*MoverResult, error) {
	ns, pvc, err := splitVolume(req.Volume)
	if err != nil {
		return nil, err
	}
	env, err := jobenv.NewEnvForConfig(cfg)
	if err != nil {
		return nil, err
	}
	target := jobspec.Ref{Resource: v1alpha1.BackupsResource.Resource, Namespace: req.Namespace, Name: req.Name}
	var b v1alpha1.Backup
	if err := get(ctx, env, "Backup", target, &b); err != nil {
		return nil, err
	}
	loc, err := openMoverLocation(ctx, env, req, string(b.Spec.Location), opts)
	if err != nil {
		return nil, err
	}
	defer loc.Close()
	gctx, cancel := context.WithTimeout(ctx, callTimeout)
	claim, err := env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(gctx, pvc, metav1.GetOptions{})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", req.Volume, err)
	}
	r := loc.Repository()
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("find the last backup of %s: %s", req.Volume, location.Explain(err))
	}
	// An earlier attempt that wrote its snapshot and died before reporting has done this upload: its
	// snapshot is the result, and it must not become the parent (that would report nothing stored).
	if id := uploadOf(snaps, &b, req.Volume); id != "" {
		if err := r.LoadIndex(ctx); err != nil {
			return nil, fmt.Errorf("upload %s: %s", req.Volume, location.Explain(err))
		}
		res, err := uploadResult(ctx, r, id)
		if err != nil {
			return nil, fmt.Errorf("upload %s: %s", req.Volume, location.Explain(err))
		}
		return res, nil
	}
	parent := lastSnapshot(snaps, string(claim.UID))
	report := progressReporter(ctx, env, target, req.Volume)
	backup := mover.Backup
	if req.Block {
		backup = mover.BackupDevice
	}
	id, st, err := backup(ctx, r, req.Path, mover.Options{
		Parent:           parent,
		MTimeOnly:        req.Method == v1alpha1.VolumeSnapshot,
		Progress:         report,
		ProgressInterval: moverProgressInterval,
		Host:             req.Volume,
		Source:           layout.VolumeSource(req.Namespace, req.Name, req.Volume),
		Tags: map[string]string{tagVolume: req.Volume, tagPVCUID: string(claim.UID),
			tagBackup: req.Namespace + "/" + req.Name, tagBackupUID: string(b.UID)},
	})
	if err != nil {
		return nil, fmt.Errorf("upload %s: %s", req.Volume, location.Explain(err))
	}
	res, err := uploadResult(ctx, r, id)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %s", req.Volume, location.Explain(err))
	}
	res.NewBytes, res.Reused, res.Seconds = st.NewBytes, st.ReusedFiles, st.Duration.Seconds()
	return res, nil
}

// uploadResult describes volume snapshot id. Its stored bytes are what it added over its parent, which
// includes what an interrupted earlier attempt of the same upload stored.
func uploadResult(ctx context.Context, r *repo.Repository, id string) (*MoverResult, error) {
	snap, err := r.LoadSnapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	var parent *repo.Snapshot
	if snap.Parent != "" {
		if parent, err = r.LoadSnapshot(ctx, snap.Parent); err != nil {
			return nil, fmt.Errorf("parent of snapshot %s: %w", id, err)
		}
	}
	added, err := r.AddedBytes(ctx, snap, parent)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return &MoverResult{Snapshot: id, Files: snap.Stats.Files, Bytes: snap.Stats.Bytes, StoredBytes: added}, nil
}

// findUpload finds the snapshot an upload of volume for Backup b wrote, when the Job's own report was lost
// (its pod deleted after it succeeded).
func findUpload(ctx context.Context, r *repo.Repository, b *v1alpha1.Backup, volume string) (*MoverResult, error) {
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	id := uploadOf(snaps, b, volume)
	if id == "" {
		return nil, fmt.Errorf("the repository holds no snapshot of it")
	}
	if err := r.LoadIndex(ctx); err != nil {
		return nil, err
	}
	return uploadResult(ctx, r, id)
}

// uploadOf is the latest of snaps that an upload of volume for Backup b wrote, or "".
func uploadOf(snaps []*repo.Snapshot, b *v1alpha1.Backup, volume string) string {
	for i := len(snaps) - 1; i >= 0; i-- {
		if t := snaps[i].Tags; t[tagBackupUID] == string(b.UID) && t[tagVolume] == volume {
			return snaps[i].ID
		}
	}
	return ""
}

// lastSnapshot is the latest of snaps of the claim with UID uid, or "".
func lastSnapshot(snaps []*repo.Snapshot, uid string) string {
	for i := len(snaps) - 1; i >= 0; i-- {
		if snaps[i].Tags[tagPVCUID] == uid {
			return snaps[i].ID
		}
	}
	return ""
}

// progressReporter writes a mover's progress into the volume's entry of the target's status.
func progressReporter(ctx context.Context, env *jobenv.Env, target jobspec.Ref, volume string) func(mover.Progress) {
	ns, pvc, _ := strings.Cut(volume, "/")
	return func(p mover.Progress) {
		uctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		err := env.UpdateStatus(uctx, target, func(u *unstructured.Unstructured) error {
			return mutateVolumes(u, func(list *[]v1alpha1.VolumeStatus, _ **v1alpha1.Progress) {
				for i := range *list {
					s := &(*list)[i]
					if string(s.Namespace) == ns && string(s.PVC) == pvc && s.Phase == v1alpha1.VolumeInProgress {
						s.BytesDone, s.BytesTotal, s.FilesDone, s.FilesTotal = p.BytesDone, p.BytesTotal, p.FilesDone, p.FilesTotal
					}
				}
			})
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "report progress: %v\n", err)
		}
	}
}

// Download writes a volume snapshot of a restore's backup into the new volume mounted at req.Path. The
// volume is pxb's own until the restore hands it to the claim, so whatever an earlier attempt left in it
// is removed first.
func Download(ctx context.Context, cfg *rest.Config, req MoverRequest, opts Options) (*MoverResult, error) {
	env, err := jobenv.NewEnvForConfig(cfg)
	if err != nil {
		return nil, err
	}
	target := jobspec.Ref{Resource: v1alpha1.RestoresResource.Resource, Namespace: req.Namespace, Name: req.Name}
	var rs v1alpha1.Restore
	if err := get(ctx, env, "Restore", target, &rs); err != nil {
		return nil, err
	}
	var b v1alpha1.Backup
	if err := get(ctx, env, "Backup", jobspec.Ref{Resource: v1alpha1.BackupsResource.Resource, Namespace: rs.Namespace, Name: string(rs.Spec.BackupName)}, &b); err != nil {
		return nil, err
	}
	loc, err := openMoverLocation(ctx, env, req, string(b.Spec.Location), opts)
	if err != nil {
		return nil, err
	}
	defer loc.Close()
	ro := mover.RestoreOptions{Progress: progressReporter(ctx, env, target, req.Volume), ProgressInterval: moverProgressInterval}
	var st mover.Stats
	if req.Block {
		st, err = mover.RestoreDevice(ctx, loc.Repository(), req.Snapshot, req.Path, ro)
	} else {
		if err := emptyDir(req.Path); err != nil {
			return nil, err
		}
		st, err = mover.Restore(ctx, loc.Repository(), req.Snapshot, "", req.Path, ro)
	}
	if err != nil {
		return nil, fmt.Errorf("download %s: %s", req.Volume, location.Explain(err))
	}
	return &MoverResult{Snapshot: req.Snapshot, Files: st.Files, Bytes: st.Bytes, Seconds: st.Duration.Seconds()}, nil
}

// emptyDir removes everything in dir but lost+found.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read the new volume: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if e.Name() != "lost+found" {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("empty the new volume of an earlier attempt: %w", err)
	}
	return nil
}
