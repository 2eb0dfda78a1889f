package main

import (
	"context"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v11/controller"
)

// provisioner turns PVCs of the driver's StorageClasses into volumes and PVs, calling the driver in-process.
type provisioner struct {
	d     *driver
	kube  kubernetes.Interface
	snaps snapclient.Interface
}

func newProvisioner(ctx context.Context, d *driver, kubeconfig string) (*controller.ProvisionController, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	snaps, err := snapclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("snapshot client: %w", err)
	}
	p := &provisioner{d: d, kube: kube, snaps: snaps}
	return controller.NewProvisionController(ctx, kube, d.name, p,
		controller.LeaderElection(false),
		controller.FailedProvisionThreshold(0),
		controller.ExponentialBackOffOnError(false),
	), nil
}

func (p *provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*corev1.PersistentVolume, controller.ProvisioningState, error) {
	pvc := opts.PVC
	mode := corev1.PersistentVolumeFilesystem
	access := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}}
	if pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		mode = corev1.PersistentVolumeBlock
		access = &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}}
	}
	capacity := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	req := &csi.CreateVolumeRequest{
		Name:               opts.PVName,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: capacity.Value()},
		Parameters:         opts.StorageClass.Parameters,
		VolumeCapabilities: []*csi.VolumeCapability{access},
	}
	if src := pvc.Spec.DataSource; src != nil {
		cs, err := p.contentSource(ctx, pvc.Namespace, src)
		if err != nil {
			return nil, controller.ProvisioningNoChange, err
		}
		req.VolumeContentSource = cs
	}
	resp, err := p.d.CreateVolume(ctx, req)
	if err != nil {
		return nil, controller.ProvisioningInBackground, err
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if opts.StorageClass.ReclaimPolicy != nil {
		reclaim = *opts.StorageClass.ReclaimPolicy
	}
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: opts.PVName},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: capacity},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              opts.StorageClass.Name,
			MountOptions:                  opts.StorageClass.MountOptions,
			VolumeMode:                    &mode,
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver:       p.d.name,
				VolumeHandle: resp.GetVolume().GetVolumeId(),
			}},
		},
	}, controller.ProvisioningFinished, nil
}

// contentSource resolves a PVC's dataSource (a VolumeSnapshot or another PVC) to the driver's IDs.
func (p *provisioner) contentSource(ctx context.Context, ns string, src *corev1.TypedLocalObjectReference) (*csi.VolumeContentSource, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch {
	case src.Kind == "VolumeSnapshot" && src.APIGroup != nil && *src.APIGroup == "snapshot.storage.k8s.io":
		vs, err := p.snaps.SnapshotV1().VolumeSnapshots(ns).Get(ctx, src.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get VolumeSnapshot %s/%s: %w", ns, src.Name, err)
		}
		if vs.Status == nil || vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse || vs.Status.BoundVolumeSnapshotContentName == nil {
			return nil, fmt.Errorf("VolumeSnapshot %s/%s is not ready", ns, src.Name)
		}
		vsc, err := p.snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, *vs.Status.BoundVolumeSnapshotContentName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get VolumeSnapshotContent %s: %w", *vs.Status.BoundVolumeSnapshotContentName, err)
		}
		if vsc.Spec.Driver != p.d.name || vsc.Status == nil || vsc.Status.SnapshotHandle == nil {
			return nil, fmt.Errorf("VolumeSnapshotContent %s has no snapshot of driver %s", vsc.Name, p.d.name)
		}
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: *vsc.Status.SnapshotHandle},
		}}, nil
	case src.Kind == "PersistentVolumeClaim" && (src.APIGroup == nil || *src.APIGroup == ""):
		claim, err := p.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, src.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get PVC %s/%s: %w", ns, src.Name, err)
		}
		if claim.Spec.VolumeName == "" {
			return nil, fmt.Errorf("PVC %s/%s is not bound", ns, src.Name)
		}
		pv, err := p.kube.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get PV %s: %w", claim.Spec.VolumeName, err)
		}
		if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != p.d.name {
			return nil, fmt.Errorf("PVC %s/%s is not a volume of driver %s", ns, src.Name, p.d.name)
		}
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: pv.Spec.CSI.VolumeHandle},
		}}, nil
	default:
		return nil, fmt.Errorf("unsupported dataSource %s", src.Kind)
	}
}

// SupportsBlock says the driver offers raw block volumes (a loop device over an image file).
func (p *provisioner) SupportsBlock(context.Context) bool { return true }

func (p *provisioner) Delete(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != p.d.name {
		return &controller.IgnoredError{Reason: "not a volume of this driver"}
	}
	_, err := p.d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: pv.Spec.CSI.VolumeHandle})
	return err
}
