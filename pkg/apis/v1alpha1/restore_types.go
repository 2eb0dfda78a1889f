package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ExistingResourcePolicy says what a restore does with an object that already exists.
// +kubebuilder:validation:Enum=Retain;Replace;Update
type ExistingResourcePolicy string

const (
	// ExistingRetain leaves the existing object alone and reports it as skipped.
	ExistingRetain ExistingResourcePolicy = "Retain"
	// ExistingReplace deletes the existing object and creates the backed-up one.
	ExistingReplace ExistingResourcePolicy = "Replace"
	// ExistingUpdate applies the backed-up object over the existing one.
	ExistingUpdate ExistingResourcePolicy = "Update"
)

// RestoreSpec says which backup to restore, what of it, and where to.
type RestoreSpec struct {
	// backupName names the Backup, in the Restore's namespace, to restore from.
	// +required
	BackupName ObjectName `json:"backupName"`
	Selection  `json:",inline"`
	// namespaceMapping restores the objects of a backed-up namespace (key) into another namespace (value).
	// +optional
	// +kubebuilder:validation:MaxProperties=1024
	NamespaceMapping map[string]NamespaceName `json:"namespaceMapping,omitempty"`
	// storageClassMapping gives restored PersistentVolumeClaims another storage class (value) than the one
	// they had (key).
	// +optional
	// +kubebuilder:validation:MaxProperties=256
	StorageClassMapping map[string]ObjectName `json:"storageClassMapping,omitempty"`
	// existingResourcePolicy says what to do with objects that already exist.
	// +optional
	// +kubebuilder:default=Retain
	ExistingResourcePolicy ExistingResourcePolicy `json:"existingResourcePolicy,omitempty"`
	// restoreVolumes writes the backed-up data into the restored PersistentVolumeClaims; when false they
	// are created empty.
	// +optional
	// +kubebuilder:default=true
	RestoreVolumes *bool `json:"restoreVolumes,omitempty"`
	// dryRun computes what the restore would do and reports it without changing the cluster.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
}

// RestorePhase is where a restore stands.
// +kubebuilder:validation:Enum=Pending;InProgress;Completed;PartiallySucceeded;Failed
type RestorePhase string

const (
	RestorePending            RestorePhase = "Pending"
	RestoreInProgress         RestorePhase = "InProgress"
	RestoreCompleted          RestorePhase = "Completed"
	RestorePartiallySucceeded RestorePhase = "PartiallySucceeded"
	RestoreFailed             RestorePhase = "Failed"
)

// RestoreStage is the step a running restore is in.
// +kubebuilder:validation:Enum=Volumes;Resources;Finalizing;Done
type RestoreStage string

const (
	RestoreStageVolumes    RestoreStage = "Volumes"
	RestoreStageResources  RestoreStage = "Resources"
	RestoreStageFinalizing RestoreStage = "Finalizing"
	RestoreStageDone       RestoreStage = "Done"
)

// RestoreCounts counts what happened to the backup's objects.
type RestoreCounts struct {
	// created objects.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Created int32 `json:"created,omitempty"`
	// updated existing objects (existingResourcePolicy Update or Replace).
	// +optional
	// +kubebuilder:validation:Minimum=0
	Updated int32 `json:"updated,omitempty"`
	// skipped objects: existing ones kept, or ones a restore never writes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Skipped int32 `json:"skipped,omitempty"`
	// failed objects.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Failed int32 `json:"failed,omitempty"`
}

// RestoreStatus is what the restore job reports. The per-object summary is in the bucket.
type RestoreStatus struct {
	// phase of the restore.
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`
	// stage the restore is in.
	// +optional
	Stage           RestoreStage `json:"stage,omitempty"`
	OperationStatus `json:",inline"`
	// counts of objects by outcome.
	// +optional
	Counts *RestoreCounts `json:"counts,omitempty"`
}

// Restore recreates objects and volume data from a Backup. Its spec cannot change once created.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pxbrs,categories=pxb
// +kubebuilder:printcolumn:name="Backup",type=string,JSONPath=`.spec.backupName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=`.status.stage`,priority=1
// +kubebuilder:printcolumn:name="Progress",type=integer,JSONPath=`.status.progress.percent`,description="percent done"
// +kubebuilder:printcolumn:name="Created",type=integer,JSONPath=`.status.counts.created`,priority=1
// +kubebuilder:printcolumn:name="Errors",type=integer,JSONPath=`.status.errorCount`
// +kubebuilder:printcolumn:name="Started",type=date,JSONPath=`.status.startTimestamp`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Restore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable"
	Spec RestoreSpec `json:"spec"`
	// +optional
	Status RestoreStatus `json:"status,omitempty"`
}

// RestoreList is a list of Restores.
// +kubebuilder:object:root=true
type RestoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Restore `json:"items"`
}
