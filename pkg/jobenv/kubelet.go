package jobenv

import (
	"bufio"
	"io"
	"os"
	"regexp"
	"strings"
)

// podHostsFile is where the kubelet keeps a pod's /etc/hosts: <root-dir>/pods/<pod UID>/etc-hosts.
var podHostsFile = regexp.MustCompile(`^(/.+)/pods/[0-9a-f-]{36}/etc-hosts$`)

// KubeletRootDir is the kubelet's --root-dir on the node this job's pod runs on, as this pod's own /etc/hosts
// mount tells it, or "" when that cannot be told (outside a pod, or when the kubelet's directory is a file
// system of its own, whose mounts name paths inside it only).
func KubeletRootDir() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	return kubeletRootFromMountinfo(f)
}

// kubeletRootFromMountinfo reads mountinfo (proc(5)): of the line that mounts /etc/hosts, field 4 is the
// path of the mounted file within its file system, which is the host's path when that file system is the
// host's root.
func kubeletRootFromMountinfo(r io.Reader) string {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 5 || f[4] != "/etc/hosts" {
			continue
		}
		// Spaces and other characters in paths are octal escapes ("\040").
		if m := podHostsFile.FindStringSubmatch(f[3]); m != nil && !strings.Contains(m[1], `\`) {
			return m[1]
		}
	}
	return ""
}
