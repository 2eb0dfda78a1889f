package jobenv

import (
	"strings"
	"testing"
)

// TestKubeletRootFromMountinfo: the kubelet's root directory is read from the mount of /etc/hosts when the
// kubelet's directory is on the host's root file system; a directory that is a file system of its own, or no
// kubelet mount at all, tells nothing.
func TestKubeletRootFromMountinfo(t *testing.T) {
	const uid = "1c3c6f5e-2f1e-4c55-9a43-5b3f0e2d9a10"
	line := func(root, point string) string {
		return "1201 1190 254:1 " + root + " " + point + " rw,relatime - ext4 /dev/vda rw\n"
	}
	for _, tc := range []struct {
		name, mountinfo, want string
	}{
		{"default", line("/", "/") + line("/var/lib/kubelet/pods/"+uid+"/etc-hosts", "/etc/hosts"), "/var/lib/kubelet"},
		{"k0s", line("/var/lib/k0s/kubelet/pods/"+uid+"/etc-hosts", "/etc/hosts"), "/var/lib/k0s/kubelet"},
		{"own file system", line("/pods/"+uid+"/etc-hosts", "/etc/hosts"), ""},
		{"escaped path", line(`/data/kube\040let/pods/`+uid+"/etc-hosts", "/etc/hosts"), ""},
		{"termination log only", line("/var/lib/kubelet/pods/"+uid+"/containers/job/abc", "/dev/termination-log"), ""},
		{"not in a pod", line("/", "/"), ""},
	} {
		if got := kubeletRootFromMountinfo(strings.NewReader(tc.mountinfo)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
