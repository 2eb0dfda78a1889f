package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// selectionFlags are the flags that make a v1alpha1.Selection, which Backups (and schedules' templates)
// and Restores share: which namespaces, objects and resource types the operation takes.
type selectionFlags struct {
	IncludeNamespaces []string
	ExcludeNamespaces []string
	Selector          string
	IncludeResources  []string
	ExcludeResources  []string
	// ClusterResources is --include-cluster-resources: auto, true or false.
	ClusterResources string
}

// selectionHelp is the help of the selection flags, in the words of a backup or of a restore.
type selectionHelp struct {
	includeNamespaces, excludeNamespaces, selector, includeResources, excludeResources string
}

var (
	backupSelectionHelp = selectionHelp{
		includeNamespaces: "Namespaces to back up, or '*' for all (default: the Backup's own namespace).",
		excludeNamespaces: "Namespaces to leave out.",
		selector:          "Back up only objects matching this label selector.",
		includeResources:  "Resource types to back up (deployments, deployments.apps, cm), or '*' (default: all).",
		excludeResources:  "Resource types to leave out.",
	}
	restoreSelectionHelp = selectionHelp{
		includeNamespaces: "Namespaces of the backup to restore, or '*' (default: all).",
		excludeNamespaces: "Namespaces of the backup not to restore.",
		selector:          "Restore only objects matching this label selector.",
		includeResources:  "Resource types to restore (default: all in the backup).",
		excludeResources:  "Resource types not to restore.",
	}
)

// AddFlags adds the selection flags to fs, with help in the words of h.
func (s *selectionFlags) AddFlags(fs *pflag.FlagSet, h selectionHelp) {
	if s.ClusterResources == "" {
		s.ClusterResources = "auto"
	}
	fs.StringSliceVar(&s.IncludeNamespaces, "include-namespaces", nil, h.includeNamespaces)
	fs.StringSliceVar(&s.ExcludeNamespaces, "exclude-namespaces", nil, h.excludeNamespaces)
	fs.StringVarP(&s.Selector, "selector", "l", "", h.selector)
	fs.StringSliceVar(&s.IncludeResources, "include-resources", nil, h.includeResources)
	fs.StringSliceVar(&s.ExcludeResources, "exclude-resources", nil, h.excludeResources)
	fs.StringVar(&s.ClusterResources, "include-cluster-resources", s.ClusterResources,
		"Cluster-scoped objects: auto (those the selected objects use), true (all of the selected types) or false (none).")
}

// Validate checks the selection flags without the cluster; errors name the flag.
func (s *selectionFlags) Validate() error {
	_, err := s.ToSelection()
	return err
}

// ToSelection is the Selection the flags describe.
func (s *selectionFlags) ToSelection() (v1alpha1.Selection, error) {
	var sel v1alpha1.Selection
	var err error
	if sel.IncludeNamespaces, err = namespacePatterns("--include-namespaces", s.IncludeNamespaces, true); err != nil {
		return sel, err
	}
	if sel.ExcludeNamespaces, err = namespaceNames("--exclude-namespaces", s.ExcludeNamespaces); err != nil {
		return sel, err
	}
	if sel.LabelSelector, err = parseSelector("--selector", s.Selector); err != nil {
		return sel, err
	}
	if sel.IncludeResources, err = resourcePatterns("--include-resources", s.IncludeResources); err != nil {
		return sel, err
	}
	if sel.ExcludeResources, err = resourcePatterns("--exclude-resources", s.ExcludeResources); err != nil {
		return sel, err
	}
	switch strings.ToLower(s.ClusterResources) {
	case "auto", "":
		sel.ClusterResources = v1alpha1.ClusterResourcesAuto
	case "true", "include":
		sel.ClusterResources = v1alpha1.ClusterResourcesInclude
	case "false", "exclude":
		sel.ClusterResources = v1alpha1.ClusterResourcesExclude
	default:
		return sel, fmt.Errorf("--include-cluster-resources must be auto, true or false, not %q", s.ClusterResources)
	}
	return sel, nil
}
