package vm

import (
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	kubevirtv1 "kubevirt.io/api/core/v1"
)

func TestUses(t *testing.T) {
	var vms []kubevirtv1.VirtualMachine
	for _, doc := range []string{`
metadata: {name: db, namespace: shop}
spec:
  instancetype: {kind: VirtualMachineInstancetype, name: medium, revisionName: db-medium-1}
  preference: {name: fedora, revisionName: db-fedora-1}
  dataVolumeTemplates:
  - metadata: {name: db-root}
  template:
    spec:
      accessCredentials:
      - sshPublicKey: {source: {secret: {secretName: db-ssh}}, propagationMethod: {noCloud: {}}}
      - userPassword: {source: {secret: {secretName: db-password}}, propagationMethod: {qemuGuestAgent: {}}}
      volumes:
      - {name: root, dataVolume: {name: db-root}}
      - {name: data, persistentVolumeClaim: {claimName: db-data}}
      - {name: ci, cloudInitNoCloud: {secretRef: {name: db-userdata}, networkDataSecretRef: {name: db-net}}}
      - {name: cfg, configMap: {name: db-config}}
      - {name: sa, serviceAccount: {serviceAccountName: db-sa}}
      - {name: tmp, emptyDisk: {capacity: 1Gi}}
      - {name: boot, containerDisk: {image: example/boot}}
`, `
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      volumes:
      - {name: sysprep, sysprep: {secret: {name: web-unattend}}}
      - {name: data, persistentVolumeClaim: {claimName: db-data}}
`} {
		var vm kubevirtv1.VirtualMachine
		if err := yaml.UnmarshalStrict([]byte(doc), &vm); err != nil {
			t.Fatal(err)
		}
		vms = append(vms, vm)
	}
	got := Uses(vms)
	want := map[string][]string{
		"virtualmachines.kubevirt.io": {"shop/db", "shop/web"},
		"datavolumes.cdi.kubevirt.io": {"shop/db-root"},
		"persistentvolumeclaims":      {"shop/db-data", "shop/db-root"},
		"secrets":                     {"shop/db-net", "shop/db-password", "shop/db-ssh", "shop/db-userdata", "shop/web-unattend"},
		"configmaps":                  {"shop/db-config"},
		"serviceaccounts":             {"shop/db-sa"},
		"virtualmachineinstancetypes.instancetype.kubevirt.io": {"shop/medium"},
		// The preference is a cluster-scoped VirtualMachineClusterPreference (the default kind): not here.
		"controllerrevisions.apps": {"shop/db-fedora-1", "shop/db-medium-1"},
	}
	for typ, names := range want {
		var have []string
		for k := range got[typ] {
			have = append(have, k)
		}
		slices.Sort(have)
		if strings.Join(have, " ") != strings.Join(names, " ") {
			t.Errorf("%s: %v, want %v", typ, have, names)
		}
	}
	for typ := range got {
		if _, ok := want[typ]; !ok {
			t.Errorf("unexpected %s: %v", typ, got[typ])
		}
	}
}
