package install

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilversion "k8s.io/apimachinery/pkg/util/version"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Versions are the versions of the parts of pxb a cluster runs, beside the plugin's.
type Versions struct {
	// Plugin is the version of this kubectl-pxb.
	Plugin string `json:"clientVersion"`
	// Installed is the version pxb-config records; empty when pxb is not installed.
	Installed string `json:"installedVersion,omitempty"`
	// JobImage is the image pxb's Jobs run.
	JobImage string `json:"jobImage,omitempty"`
	// CRDs are the versions that install labelled pxb's custom resource definitions with, each once.
	CRDs []string `json:"crdVersions,omitempty"`
}

// ReadVersions reads the installed versions: pxb-config's and the labels of the CRDs.
func (c Client) ReadVersions(ctx context.Context, plugin string, config map[string]string) (Versions, error) {
	v := Versions{Plugin: plugin, Installed: config[ConfigVersion], JobImage: config[ConfigJobImage]}
	crds, err := c.crdVersions(ctx)
	if err != nil {
		return v, err
	}
	for _, crd := range crds {
		v.AddCRD(crd.version)
	}
	return v, nil
}

// AddCRD records the version label of one CRD ("" when it has none).
func (v *Versions) AddCRD(label string) {
	if label == "" {
		label = "unknown"
	}
	if !slices.Contains(v.CRDs, label) {
		v.CRDs = append(v.CRDs, label)
		slices.Sort(v.CRDs)
	}
}

// crdVersion is the version label of one of pxb's CRDs ("" when it has none).
type crdVersion struct{ name, version string }

// crdVersions returns the version labels of pxb's CRDs in the cluster, in the order of v1alpha1.AllResources.
func (c Client) crdVersions(ctx context.Context) ([]crdVersion, error) {
	var out []crdVersion
	for _, r := range v1alpha1.AllResources {
		name := r.Resource + "." + r.Group
		crd, err := c.Dynamic.Resource(CRDResource).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get CRD %s: %w", name, err)
		}
		out = append(out, crdVersion{name: name, version: crd.GetLabels()[VersionLabel]})
	}
	return out, nil
}

// Skew says, one sentence each, where the parts disagree and what to run to bring them together. A version
// that is not a semantic version (a development build) is compared for equality only.
func (v Versions) Skew() []string {
	if v.Installed == "" {
		return nil
	}
	var out []string
	switch c, ok := compare(v.Installed, v.Plugin); {
	case !ok:
		out = append(out, fmt.Sprintf("this plugin is %s and the cluster runs pxb %s: run kubectl pxb install with this plugin, or use the plugin of %s", v.Plugin, v.Installed, v.Installed))
	case c > 0:
		out = append(out, fmt.Sprintf("the cluster runs pxb %s, newer than this plugin (%s): upgrade the plugin (kubectl krew upgrade pxb)", v.Installed, v.Plugin))
	case c < 0:
		out = append(out, fmt.Sprintf("this plugin is %s and the cluster runs pxb %s: upgrade the cluster with kubectl pxb install", v.Plugin, v.Installed))
	}
	for _, crd := range v.CRDs {
		if crd != v.Installed {
			out = append(out, fmt.Sprintf("custom resource definitions of version %s are installed beside pxb %s: run kubectl pxb install to bring them to one version", crd, v.Installed))
		}
	}
	if tag := imageTag(v.JobImage); tag != "" && tag != v.Installed {
		out = append(out, fmt.Sprintf("the job image %s is not of version %s: run kubectl pxb install without --image, or with an image tagged %s", v.JobImage, v.Installed, v.Installed))
	}
	return out
}

// compare compares a and b: 1 when a is newer, -1 when older, 0 when the same; ok is false when they
// differ and are not both semantic versions.
func compare(a, b string) (c int, ok bool) {
	if a == b {
		return 0, true
	}
	va, err := utilversion.ParseSemantic(a)
	if err != nil {
		return 0, false
	}
	if _, err := utilversion.ParseSemantic(b); err != nil {
		return 0, false
	}
	c, err = va.Compare(b)
	return c, err == nil
}

// imageTag is the tag of an image reference, "" when it has none or is pinned by digest only.
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash {
		return ""
	}
	return image[colon+1:]
}

// ErrDowngrade is returned by CheckDowngrade when the cluster's CRDs are newer than the version to install.
var ErrDowngrade = errors.New("would downgrade pxb's custom resource definitions")

// CheckDowngrade refuses to install version to over CRDs of a newer version: an older schema would prune
// the fields newer objects use. Versions that are not semantic (development builds) are not compared.
func (c Client) CheckDowngrade(ctx context.Context, to string) error {
	target, err := utilversion.ParseSemantic(to)
	if err != nil {
		return nil
	}
	crds, err := c.crdVersions(ctx)
	if err != nil {
		return err
	}
	for _, crd := range crds {
		have, err := utilversion.ParseSemantic(crd.version)
		if err != nil {
			continue
		}
		if have.GreaterThan(target) {
			return fmt.Errorf("%w: CRD %s is of pxb %s, this plugin installs %s; upgrade the plugin (kubectl krew upgrade pxb), or pass --force to install the older definitions anyway", ErrDowngrade, crd.name, crd.version, to)
		}
	}
	return nil
}
