// Package vm is what pxb knows about KubeVirt virtual machines: which VirtualMachines a Backup selects, the
// objects each one needs to run again, and freezing their guests' file systems while their volumes are
// snapshotted.
package vm

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Resources of KubeVirt and CDI, as the backup's object types name them.
var (
	VirtualMachines         = schema.GroupVersionResource{Group: "kubevirt.io", Version: "v1", Resource: "virtualmachines"}
	VirtualMachineInstances = schema.GroupVersionResource{Group: "kubevirt.io", Version: "v1", Resource: "virtualmachineinstances"}
)

const (
	typeVM           = "virtualmachines.kubevirt.io"
	typeDataVolume   = "datavolumes.cdi.kubevirt.io"
	typeClaim        = "persistentvolumeclaims"
	typeSecret       = "secrets"
	typeConfigMap    = "configmaps"
	typeSA           = "serviceaccounts"
	typeInstancetype = "virtualmachineinstancetypes.instancetype.kubevirt.io"
	typePreference   = "virtualmachinepreferences.instancetype.kubevirt.io"
	typeRevision     = "controllerrevisions.apps"
	// persistentStateLabel marks the claim KubeVirt keeps a VM's persistent TPM and EFI state in.
	persistentStateLabel = "persistent-state-for"
)

// ObjectSet is a set of namespaced objects by type (as "resource.group", "persistentvolumeclaims" for the
// core group) and "namespace/name".
type ObjectSet map[string]map[string]bool

func (s ObjectSet) add(typ, namespace, name string) {
	if name == "" {
		return
	}
	if s[typ] == nil {
		s[typ] = map[string]bool{}
	}
	s[typ][namespace+"/"+name] = true
}

// Select returns the VirtualMachines in namespaces that sel selects, sorted by namespace and name: those
// named (a bare name in every namespace), those matching its label selector, or all of them. A name that
// matches no VirtualMachine, or a selection that matches none, is an error naming the field.
func Select(ctx context.Context, dyn dynamic.Interface, namespaces []string, sel *v1alpha1.VirtualMachineSelection) ([]kubevirtv1.VirtualMachine, error) {
	selector := ""
	if sel.LabelSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(sel.LabelSelector)
		if err != nil {
			return nil, fmt.Errorf("spec.virtualMachines.labelSelector: %w", err)
		}
		selector = s.String()
	}
	inBackup := map[string]bool{}
	for _, ns := range namespaces {
		inBackup[ns] = true
	}
	for _, n := range sel.Names {
		if ns, _, ok := strings.Cut(n, "/"); ok && !inBackup[ns] {
			return nil, fmt.Errorf("spec.virtualMachines.names: %s is in namespace %s, which the backup does not include", n, ns)
		}
	}
	var vms []kubevirtv1.VirtualMachine
	found := map[string]bool{}
	for _, ns := range namespaces {
		list, err := dyn.Resource(VirtualMachines).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("spec.virtualMachines: the cluster does not serve KubeVirt's VirtualMachines (%s): is KubeVirt installed?", VirtualMachines.GroupVersion())
		}
		if err != nil {
			return nil, fmt.Errorf("list VirtualMachines in namespace %s: %w", ns, err)
		}
		for _, item := range list.Items {
			if len(sel.Names) > 0 {
				key := ""
				for _, k := range []string{item.GetName(), ns + "/" + item.GetName()} {
					if slices.Contains(sel.Names, k) {
						key = k
					}
				}
				if key == "" {
					continue
				}
				found[key] = true
			}
			var vm kubevirtv1.VirtualMachine
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(item.Object, &vm); err != nil {
				return nil, fmt.Errorf("VirtualMachine %s/%s: %w", ns, item.GetName(), err)
			}
			vms = append(vms, vm)
		}
	}
	where := strings.Join(namespaces, ", ")
	for _, n := range sel.Names {
		if !found[n] {
			return nil, fmt.Errorf("spec.virtualMachines.names: no VirtualMachine %s in namespaces %s", n, where)
		}
	}
	if len(vms) == 0 {
		what := "no VirtualMachine"
		if selector != "" {
			what = fmt.Sprintf("no VirtualMachine matches labelSelector %q", selector)
		}
		return nil, fmt.Errorf("spec.virtualMachines: %s in namespaces %s", what, where)
	}
	slices.SortFunc(vms, func(a, b kubevirtv1.VirtualMachine) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return vms, nil
}

// Uses returns the VirtualMachines and the namespaced objects they need to run again: their DataVolumes and
// claims, the Secrets, ConfigMaps and ServiceAccounts their volumes and access credentials name, and their
// namespaced instance types and preferences with the revisions the VMs were started from. A VM's running
// instance is not among them: the VM starts a new one when restored.
func Uses(vms []kubevirtv1.VirtualMachine) ObjectSet {
	s := ObjectSet{}
	for i := range vms {
		vm := &vms[i]
		ns := vm.Namespace
		s.add(typeVM, ns, vm.Name)
		for _, t := range vm.Spec.DataVolumeTemplates {
			s.add(typeDataVolume, ns, t.Name)
			s.add(typeClaim, ns, t.Name)
		}
		if it := vm.Spec.Instancetype; it != nil {
			if strings.EqualFold(it.Kind, "VirtualMachineInstancetype") {
				s.add(typeInstancetype, ns, it.Name)
			}
			s.add(typeRevision, ns, it.RevisionName)
		}
		if p := vm.Spec.Preference; p != nil {
			if strings.EqualFold(p.Kind, "VirtualMachinePreference") {
				s.add(typePreference, ns, p.Name)
			}
			s.add(typeRevision, ns, p.RevisionName)
		}
		if vm.Spec.Template == nil {
			continue
		}
		spec := &vm.Spec.Template.Spec
		for _, v := range spec.Volumes {
			volumeUses(s, ns, &v.VolumeSource)
		}
		for _, ac := range spec.AccessCredentials {
			if k := ac.SSHPublicKey; k != nil && k.Source.Secret != nil {
				s.add(typeSecret, ns, k.Source.Secret.SecretName)
			}
			if p := ac.UserPassword; p != nil && p.Source.Secret != nil {
				s.add(typeSecret, ns, p.Source.Secret.SecretName)
			}
		}
	}
	return s
}

func volumeUses(s ObjectSet, ns string, v *kubevirtv1.VolumeSource) {
	switch {
	case v.PersistentVolumeClaim != nil:
		s.add(typeClaim, ns, v.PersistentVolumeClaim.ClaimName)
	case v.DataVolume != nil:
		s.add(typeDataVolume, ns, v.DataVolume.Name)
		s.add(typeClaim, ns, v.DataVolume.Name)
	case v.MemoryDump != nil:
		s.add(typeClaim, ns, v.MemoryDump.ClaimName)
	case v.CloudInitNoCloud != nil:
		secretRefs(s, ns, v.CloudInitNoCloud.UserDataSecretRef, v.CloudInitNoCloud.NetworkDataSecretRef)
	case v.CloudInitConfigDrive != nil:
		secretRefs(s, ns, v.CloudInitConfigDrive.UserDataSecretRef, v.CloudInitConfigDrive.NetworkDataSecretRef)
	case v.Secret != nil:
		s.add(typeSecret, ns, v.Secret.SecretName)
	case v.ConfigMap != nil:
		s.add(typeConfigMap, ns, v.ConfigMap.Name)
	case v.ServiceAccount != nil:
		s.add(typeSA, ns, v.ServiceAccount.ServiceAccountName)
	case v.Sysprep != nil:
		if v.Sysprep.Secret != nil {
			s.add(typeSecret, ns, v.Sysprep.Secret.Name)
		}
		if v.Sysprep.ConfigMap != nil {
			s.add(typeConfigMap, ns, v.Sysprep.ConfigMap.Name)
		}
	}
}

func secretRefs(s ObjectSet, ns string, refs ...*corev1.LocalObjectReference) {
	for _, r := range refs {
		if r != nil {
			s.add(typeSecret, ns, r.Name)
		}
	}
}

// AddStateClaims adds to s the claims in which KubeVirt keeps the persistent TPM and EFI state of vms.
func AddStateClaims(ctx context.Context, kube kubernetes.Interface, vms []kubevirtv1.VirtualMachine, s ObjectSet) error {
	byNamespace := map[string][]string{}
	for _, vm := range vms {
		byNamespace[vm.Namespace] = append(byNamespace[vm.Namespace], vm.Name)
	}
	for ns, names := range byNamespace {
		sel := fmt.Sprintf("%s in (%s)", persistentStateLabel, strings.Join(names, ","))
		list, err := kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return fmt.Errorf("list the persistent-state claims of VirtualMachines in namespace %s: %w", ns, err)
		}
		for _, c := range list.Items {
			s.add(typeClaim, ns, c.Name)
		}
	}
	return nil
}
