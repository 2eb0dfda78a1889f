package install

import (
	"strings"
	"testing"
)

func TestSkewNamesTheFix(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    Versions
		want []string
	}{
		{"in step", Versions{Plugin: "v1.2.0", Installed: "v1.2.0", JobImage: "r.example/pxb-job:v1.2.0", CRDs: []string{"v1.2.0"}}, nil},
		{"not installed", Versions{Plugin: "v1.2.0"}, nil},
		{"image by digest", Versions{Plugin: "v1.2.0", Installed: "v1.2.0", JobImage: "r.example:5000/pxb-job@sha256:abc", CRDs: []string{"v1.2.0"}}, nil},
		{"older cluster", Versions{Plugin: "v1.3.0", Installed: "v1.2.0", JobImage: "pxb-job:v1.2.0", CRDs: []string{"v1.2.0"}},
			[]string{"upgrade the cluster with kubectl pxb install"}},
		{"newer cluster", Versions{Plugin: "v1.2.0", Installed: "v1.10.0", JobImage: "pxb-job:v1.10.0", CRDs: []string{"v1.10.0"}},
			[]string{"upgrade the plugin (kubectl krew upgrade pxb)"}},
		{"development build", Versions{Plugin: "dev", Installed: "v1.2.0", JobImage: "pxb-job:v1.2.0", CRDs: []string{"v1.2.0"}},
			[]string{"run kubectl pxb install with this plugin, or use the plugin of v1.2.0"}},
		{"mixed CRDs and image", Versions{Plugin: "v1.2.0", Installed: "v1.2.0", JobImage: "r.example:5000/pxb-job:v1.1.0", CRDs: []string{"v1.1.0", "v1.2.0"}},
			[]string{"custom resource definitions of version v1.1.0", "the job image r.example:5000/pxb-job:v1.1.0 is not of version v1.2.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.v.Skew()
			if len(got) != len(tc.want) {
				t.Fatalf("Skew() = %q, want %d sentences containing %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("Skew()[%d] = %q, want it to contain %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}
