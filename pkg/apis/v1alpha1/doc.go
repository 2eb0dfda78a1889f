// Package v1alpha1 holds the pxb.dev/v1alpha1 API: the custom resources through which the kubectl plugin
// asks for backups and restores and the pxb-job runner reports what it did.
//
// +kubebuilder:object:generate=true
// +groupName=pxb.dev
package v1alpha1
