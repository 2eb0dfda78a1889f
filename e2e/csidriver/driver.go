package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const version = "0.1.0"

// driver implements the CSI identity, controller and node services on a data directory:
// volumes/<id>/ holds a volume's files, snapshots/<id>/ a snapshot's copy and snapshots/<id>.json its record.
// A raw block volume is the sparse image file volumes/<id>/disk.img, published as a loop device over it.
type driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	name, nodeID, dataDir string
	snapshots             bool
	mu                    sync.Mutex // serialises controller operations: copies must not race deletes
}

type snapshotRecord struct {
	Source  string    `json:"source"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
}

// Volume and snapshot names come from Kubernetes object names; anything else is refused so that an ID can
// never walk out of the data directory.
var validID = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,252}$`)

func (d *driver) volumesDir() string   { return filepath.Join(d.dataDir, "volumes") }
func (d *driver) snapshotsDir() string { return filepath.Join(d.dataDir, "snapshots") }

func (d *driver) volumePath(id string) (string, error) {
	if !validID.MatchString(id) {
		return "", status.Errorf(codes.InvalidArgument, "invalid volume id %q", id)
	}
	return filepath.Join(d.volumesDir(), id), nil
}

func (d *driver) snapshotPath(id string) (string, error) {
	if !validID.MatchString(id) {
		return "", status.Errorf(codes.InvalidArgument, "invalid snapshot id %q", id)
	}
	return filepath.Join(d.snapshotsDir(), id), nil
}

// Identity.

func (d *driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: d.name, VendorVersion: version}, nil
}

func (d *driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{{
		Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: csi.PluginCapability_Service_CONTROLLER_SERVICE}},
	}}}, nil
}

func (d *driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

// Controller.

func (d *driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	types := []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	}
	if d.snapshots {
		types = append(types, csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT)
	}
	var caps []*csi.ControllerServiceCapability
	for _, t := range types {
		caps = append(caps, &csi.ControllerServiceCapability{
			Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: t}},
		})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

func (d *driver) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	dir, err := d.volumePath(req.GetName())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	vol := &csi.Volume{VolumeId: req.GetName(), CapacityBytes: req.GetCapacityRange().GetRequiredBytes(), ContentSource: req.GetVolumeContentSource()}
	if _, err := os.Stat(dir); err == nil {
		return &csi.CreateVolumeResponse{Volume: vol}, nil // idempotent retry
	}
	var src string
	switch {
	case req.GetVolumeContentSource().GetSnapshot() != nil:
		if !d.snapshots {
			return nil, status.Error(codes.InvalidArgument, "this driver offers no snapshots")
		}
		if src, err = d.snapshotPath(req.GetVolumeContentSource().GetSnapshot().GetSnapshotId()); err != nil {
			return nil, err
		}
	case req.GetVolumeContentSource().GetVolume() != nil:
		if src, err = d.volumePath(req.GetVolumeContentSource().GetVolume().GetVolumeId()); err != nil {
			return nil, err
		}
	}
	if src == "" {
		if err := os.Mkdir(dir, 0o777); err != nil {
			return nil, status.Errorf(codes.Internal, "create volume %s: %v", req.GetName(), err)
		}
		if isBlock(req.GetVolumeCapabilities()) {
			if err := createImage(filepath.Join(dir, diskImage), req.GetCapacityRange().GetRequiredBytes()); err != nil {
				_ = os.RemoveAll(dir)
				return nil, status.Errorf(codes.Internal, "create block volume %s: %v", req.GetName(), err)
			}
			return &csi.CreateVolumeResponse{Volume: vol}, nil
		}
		// Mkdir applies the umask; pods of any user must be able to write a fresh volume.
		if err := os.Chmod(dir, 0o777); err != nil {
			return nil, status.Errorf(codes.Internal, "chmod volume %s: %v", req.GetName(), err)
		}
		return &csi.CreateVolumeResponse{Volume: vol}, nil
	}
	if _, err := os.Stat(src); err != nil {
		return nil, status.Errorf(codes.NotFound, "content source %s: %v", filepath.Base(src), err)
	}
	if err := copyTree(src, dir); err != nil {
		return nil, status.Errorf(codes.Internal, "create volume %s from %s: %v", req.GetName(), filepath.Base(src), err)
	}
	return &csi.CreateVolumeResponse{Volume: vol}, nil
}

func (d *driver) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	dir, err := d.volumePath(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.RemoveAll(dir); err != nil {
		return nil, status.Errorf(codes.Internal, "delete volume %s: %v", req.GetVolumeId(), err)
	}
	return &csi.DeleteVolumeResponse{}, nil
}

func (d *driver) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	dir, err := d.volumePath(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %s: %v", req.GetVolumeId(), err)
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeCapabilities: req.GetVolumeCapabilities(),
	}}, nil
}

func (d *driver) CreateSnapshot(_ context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if !d.snapshots {
		return nil, status.Error(codes.Unimplemented, "this driver offers no snapshots")
	}
	dir, err := d.snapshotPath(req.GetName())
	if err != nil {
		return nil, err
	}
	src, err := d.volumePath(req.GetSourceVolumeId())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if rec, err := readRecord(dir + ".json"); err == nil {
		if rec.Source != req.GetSourceVolumeId() {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %s exists for another volume", req.GetName())
		}
		return snapshotResponse(req.GetName(), rec), nil
	}
	if _, err := os.Stat(src); err != nil {
		return nil, status.Errorf(codes.NotFound, "source volume %s: %v", req.GetSourceVolumeId(), err)
	}
	if err := copyTree(src, dir); err != nil {
		return nil, status.Errorf(codes.Internal, "snapshot %s: %v", req.GetName(), err)
	}
	rec := snapshotRecord{Source: req.GetSourceVolumeId(), Size: treeSize(dir), Created: time.Now()}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode snapshot record: %v", err)
	}
	// The record is written last: its presence means the copy is complete.
	if err := os.WriteFile(dir+".json", data, 0o640); err != nil {
		return nil, status.Errorf(codes.Internal, "write snapshot record: %v", err)
	}
	return snapshotResponse(req.GetName(), rec), nil
}

func snapshotResponse(id string, rec snapshotRecord) *csi.CreateSnapshotResponse {
	return &csi.CreateSnapshotResponse{Snapshot: &csi.Snapshot{
		SnapshotId: id, SourceVolumeId: rec.Source, SizeBytes: rec.Size,
		CreationTime: timestamppb.New(rec.Created), ReadyToUse: true,
	}}
}

func (d *driver) DeleteSnapshot(_ context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	dir, err := d.snapshotPath(req.GetSnapshotId())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.Remove(dir + ".json"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "delete snapshot %s: %v", req.GetSnapshotId(), err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, status.Errorf(codes.Internal, "delete snapshot %s: %v", req.GetSnapshotId(), err)
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// Node.

func (d *driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: d.nodeID}, nil
}

func (d *driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil
}

func (d *driver) NodePublishVolume(_ context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	src, err := d.volumePath(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	target := req.GetTargetPath()
	if target == "" {
		return nil, status.Error(codes.InvalidArgument, "target path is required")
	}
	if _, err := os.Stat(src); err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %s: %v", req.GetVolumeId(), err)
	}
	if req.GetVolumeCapability().GetBlock() != nil {
		return d.publishBlock(filepath.Join(src, diskImage), target)
	}
	if mounted, err := isMountPoint(target); err != nil {
		return nil, status.Errorf(codes.Internal, "inspect %s: %v", target, err)
	} else if mounted {
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "create target: %v", err)
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return nil, status.Errorf(codes.Internal, "bind mount %s: %v", req.GetVolumeId(), err)
	}
	if req.GetReadonly() {
		// A read-only bind needs a remount: the first mount ignores MS_RDONLY.
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			_ = unix.Unmount(target, 0)
			return nil, status.Errorf(codes.Internal, "remount read-only %s: %v", req.GetVolumeId(), err)
		}
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

func (d *driver) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	target := req.GetTargetPath()
	if target == "" {
		return nil, status.Error(codes.InvalidArgument, "target path is required")
	}
	// A published block volume is its loop device, bound onto the target file: detached once unmounted.
	var loop string
	var st unix.Stat_t
	if err := unix.Stat(target, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && unix.Major(st.Rdev) == 7 {
		loop = fmt.Sprintf("/dev/loop%d", unix.Minor(st.Rdev))
	}
	for {
		mounted, err := isMountPoint(target)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "inspect %s: %v", target, err)
		}
		if !mounted {
			break
		}
		if err := unix.Unmount(target, 0); err != nil {
			return nil, status.Errorf(codes.Internal, "unmount %s: %v", target, err)
		}
	}
	if loop != "" {
		if out, err := exec.Command("losetup", "--detach", loop).CombinedOutput(); err != nil {
			return nil, status.Errorf(codes.Internal, "detach %s: %v: %s", loop, err, out)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "remove target: %v", err)
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// diskImage is the file of a raw block volume in its directory.
const diskImage = "disk.img"

func isBlock(caps []*csi.VolumeCapability) bool {
	for _, c := range caps {
		if c.GetBlock() != nil {
			return true
		}
	}
	return false
}

// createImage makes the sparse image file of a block volume of size bytes (64 MiB when unspecified).
func createImage(path string, size int64) error {
	if size <= 0 {
		size = 64 << 20
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// publishBlock attaches a loop device to a block volume's image and binds it onto target, a file the
// kubelet then hands to the pod as a device.
func (d *driver) publishBlock(image, target string) (*csi.NodePublishVolumeResponse, error) {
	if _, err := os.Stat(image); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "not a block volume: %v", err)
	}
	if mounted, err := isMountPoint(target); err != nil {
		return nil, status.Errorf(codes.Internal, "inspect %s: %v", target, err)
	} else if mounted {
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "create target directory: %v", err)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "create target: %v", err)
	}
	f.Close()
	out, err := exec.Command("losetup", "--find", "--show", image).CombinedOutput()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "attach a loop device to %s: %v: %s", image, err, out)
	}
	loop := strings.TrimSpace(string(out))
	if err := unix.Mount(loop, target, "", unix.MS_BIND, ""); err != nil {
		_ = exec.Command("losetup", "--detach", loop).Run()
		return nil, status.Errorf(codes.Internal, "bind %s onto %s: %v", loop, target, err)
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

// copyTree copies src into a new directory dst, keeping owners, modes, links and times. cp -a does all of it
// correctly; the copy goes to a temporary name first so that a crash never leaves a partial dst behind.
func copyTree(src, dst string) error {
	tmp := dst + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", "--", src, tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %v: %s", err, out)
	}
	return os.Rename(tmp, dst)
}

func treeSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func readRecord(path string) (snapshotRecord, error) {
	var rec snapshotRecord
	data, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	return rec, json.Unmarshal(data, &rec)
}
