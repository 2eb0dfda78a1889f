package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// FreezeTimeout is how long KubeVirt keeps a guest frozen before thawing it by itself: a backup that dies
// with guests frozen leaves them so no longer than this.
const FreezeTimeout = 5 * time.Minute

// callTimeout bounds each request to the API server; a freeze waits for the guest agent.
const callTimeout = time.Minute

// Freezer freezes and thaws the file systems of guests through KubeVirt's subresource API, which has the
// QEMU guest agent in each guest do it.
type Freezer struct {
	Dyn dynamic.Interface
	// REST sends requests to absolute API paths (the discovery client's REST client does).
	REST rest.Interface
	Logf func(format string, args ...any)

	frozen []types.NamespacedName // the instances frozen, in order
	since  time.Time
}

// Freeze freezes the guests of the running vms. A VM that is not running needs no freeze (its disks are at
// rest). A running guest without a connected guest agent cannot be frozen: that is a warning, and its
// volumes are crash-consistent. A failed freeze thaws the guests frozen before it and is an error.
func (f *Freezer) Freeze(ctx context.Context, vms []kubevirtv1.VirtualMachine) (warnings []string, err error) {
	f.since = time.Now()
	for _, vm := range vms {
		key := vm.Namespace + "/" + vm.Name
		vmi, err := f.instance(ctx, vm.Namespace, vm.Name)
		if err != nil {
			return warnings, errors.Join(err, f.Thaw(ctx))
		}
		if vmi == nil || vmi.Status.Phase != kubevirtv1.Running {
			f.Logf("VirtualMachine %s is not running: nothing to freeze", key)
			continue
		}
		if !agentConnected(vmi) {
			warnings = append(warnings, fmt.Sprintf("VirtualMachine %s was not frozen: its guest has no connected QEMU guest agent, "+
				"so its volumes are crash-consistent", key))
			continue
		}
		body, _ := json.Marshal(kubevirtv1.FreezeUnfreezeTimeout{UnfreezeTimeout: &metav1.Duration{Duration: FreezeTimeout}})
		if err := f.put(ctx, vm.Namespace, vm.Name, "freeze", body); err != nil {
			return warnings, errors.Join(fmt.Errorf("freeze the guest of VirtualMachine %s: %w", key, explain(err)), f.Thaw(ctx))
		}
		f.frozen = append(f.frozen, types.NamespacedName{Namespace: vm.Namespace, Name: vm.Name})
		f.Logf("VirtualMachine %s: guest file systems frozen (KubeVirt thaws them after %s if pxb does not)", key, FreezeTimeout)
	}
	return warnings, nil
}

// Thaw thaws every guest Freeze froze, all of them even when one fails.
func (f *Freezer) Thaw(ctx context.Context) error {
	var errs []error
	for _, key := range f.frozen {
		if err := f.put(ctx, key.Namespace, key.Name, "unfreeze", nil); err != nil {
			errs = append(errs, fmt.Errorf("thaw the guest of VirtualMachine %s: %w", key, explain(err)))
			continue
		}
		f.Logf("VirtualMachine %s: guest file systems thawed", key)
	}
	f.frozen = nil
	return errors.Join(errs...)
}

// Expired reports whether guests were frozen longer than KubeVirt keeps them so, in which case KubeVirt
// may have thawed them before their volumes were snapshotted.
func (f *Freezer) Expired() (time.Duration, bool) {
	held := time.Since(f.since)
	return held, len(f.frozen) > 0 && held > FreezeTimeout
}

func (f *Freezer) instance(ctx context.Context, ns, name string) (*kubevirtv1.VirtualMachineInstance, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	u, err := f.Dyn.Resource(VirtualMachineInstances).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read VirtualMachineInstance %s/%s: %w", ns, name, err)
	}
	var vmi kubevirtv1.VirtualMachineInstance
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &vmi); err != nil {
		return nil, fmt.Errorf("VirtualMachineInstance %s/%s: %w", ns, name, err)
	}
	return &vmi, nil
}

func (f *Freezer) put(ctx context.Context, ns, name, subresource string, body []byte) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	req := f.REST.Put().AbsPath("/apis/subresources.kubevirt.io/v1/namespaces", ns, "virtualmachineinstances", name, subresource)
	if body != nil {
		req = req.SetHeader("Content-Type", "application/json").Body(body)
	}
	return req.Do(ctx).Error()
}

func agentConnected(vmi *kubevirtv1.VirtualMachineInstance) bool {
	for _, c := range vmi.Status.Conditions {
		if c.Type == kubevirtv1.VirtualMachineInstanceAgentConnected {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// explain says what a 404 from the subresource API means: KubeVirt's API server (virt-api) is not serving.
func explain(err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w (KubeVirt's subresources.kubevirt.io API is not served: is virt-api running?)", err)
	}
	return err
}
