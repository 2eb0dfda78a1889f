package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VolumeMethod is how a backup takes the data of a volume.
// +kubebuilder:validation:Enum=Snapshot;FileSystem;None
type VolumeMethod string

const (
	// VolumeSnapshot takes a CSI VolumeSnapshot and copies the files of a volume made from it into the
	// repository: consistent at one instant, and the application keeps running.
	VolumeSnapshot VolumeMethod = "Snapshot"
	// VolumeFileSystem copies the files of the live volume into the repository, for volumes whose driver
	// cannot take snapshots.
	VolumeFileSystem VolumeMethod = "FileSystem"
	// VolumeNone keeps the PersistentVolumeClaims' definitions only, not their data.
	VolumeNone VolumeMethod = "None"
)

// VirtualMachineSelection selects KubeVirt VirtualMachines.
// +kubebuilder:validation:XValidation:rule="!(has(self.names) && has(self.labelSelector))",message="virtualMachines.names and virtualMachines.labelSelector are mutually exclusive"
type VirtualMachineSelection struct {
	// names of VirtualMachines, as "name" (in every selected namespace) or "namespace/name".
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=317
	// +kubebuilder:validation:items:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Names []string `json:"names,omitempty"`
	// labelSelector selects VirtualMachines by their labels.
	// +optional
	LabelSelector *metav1.LabelSelector `json:"labelSelector,omitempty"`
	// freeze freezes the guests' file systems (through the QEMU guest agent) while their volumes are
	// snapshotted, so that the snapshot is consistent for the guest.
	// +optional
	// +kubebuilder:default=true
	Freeze *bool `json:"freeze,omitempty"`
}

// BackupSpec says what to back up, how, and where to.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.includeNamespaces) && has(self.namespaceSelector))",message="includeNamespaces and namespaceSelector are mutually exclusive",fieldPath=".namespaceSelector"
// +kubebuilder:validation:XValidation:rule="!has(self.snapshotClasses) || !has(self.volumeMethod) || self.volumeMethod == 'Snapshot'",message="snapshotClasses may only be set when volumeMethod is Snapshot or unset",fieldPath=".snapshotClasses",reason="FieldValueForbidden"
type BackupSpec struct {
	Selection `json:",inline"`
	// namespaceSelector selects the namespaces to back up by their labels.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// virtualMachines, when set, narrows the backup to the selected KubeVirt VirtualMachines of the selected
	// namespaces and the objects they use (DataVolumes, PersistentVolumeClaims, Secrets, ConfigMaps).
	// +optional
	VirtualMachines *VirtualMachineSelection `json:"virtualMachines,omitempty"`

	// volumeMethod is how volume data is taken. Unset, each volume is snapshotted when its CSI driver has a
	// VolumeSnapshotClass and read live (FileSystem) otherwise. The annotation pxb.dev/volume-method on a
	// PersistentVolumeClaim (snapshot, fs or none) overrides it for that claim.
	// +optional
	VolumeMethod VolumeMethod `json:"volumeMethod,omitempty"`
	// snapshotClasses maps a CSI driver name to the VolumeSnapshotClass used for its volumes; a driver not
	// listed uses its class annotated snapshot.storage.kubernetes.io/is-default-class.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	SnapshotClasses map[string]ObjectName `json:"snapshotClasses,omitempty"`

	// preExecRule names a Rule, in the Backup's namespace, run before the volumes are snapshotted.
	// +optional
	PreExecRule ObjectName `json:"preExecRule,omitempty"`
	// postExecRule names a Rule, in the Backup's namespace, run after the volumes are snapshotted (when a
	// volume is read live, with volumeMethod FileSystem, after its data is uploaded). It also runs when the
	// pre-exec rule or the snapshots fail, to undo what the pre-exec rule did.
	// +optional
	PostExecRule ObjectName `json:"postExecRule,omitempty"`

	// location names the BackupLocation, in pxb-system, that stores the backup.
	// +required
	Location ObjectName `json:"location"`
}

// BackupPhase is where a backup stands.
// +kubebuilder:validation:Enum=Pending;InProgress;Completed;PartiallySucceeded;Failed;Deleting
type BackupPhase string

const (
	BackupPending            BackupPhase = "Pending"
	BackupInProgress         BackupPhase = "InProgress"
	BackupCompleted          BackupPhase = "Completed"
	BackupPartiallySucceeded BackupPhase = "PartiallySucceeded"
	BackupFailed             BackupPhase = "Failed"
	BackupDeleting           BackupPhase = "Deleting"
)

// BackupStage is the step a running backup is in.
// +kubebuilder:validation:Enum=PreExecRules;Snapshots;PostExecRules;Resources;Volumes;Finalizing;Done
type BackupStage string

const (
	BackupStagePreExecRules  BackupStage = "PreExecRules"
	BackupStageSnapshots     BackupStage = "Snapshots"
	BackupStagePostExecRules BackupStage = "PostExecRules"
	BackupStageResources     BackupStage = "Resources"
	BackupStageVolumes       BackupStage = "Volumes"
	BackupStageFinalizing    BackupStage = "Finalizing"
	BackupStageDone          BackupStage = "Done"
)

// BackupStatus is what the backup job reports. It stays small; the per-object list and the logs are in the
// bucket.
type BackupStatus struct {
	// phase of the backup.
	// +optional
	Phase BackupPhase `json:"phase,omitempty"`
	// stage the backup is in.
	// +optional
	Stage           BackupStage `json:"stage,omitempty"`
	OperationStatus `json:",inline"`
	// totalBytes is the size of the volume data in the backup.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TotalBytes int64 `json:"totalBytes,omitempty"`
	// uploadedBytes is what the backup added to the repository after deduplication and compression.
	// +optional
	// +kubebuilder:validation:Minimum=0
	UploadedBytes int64 `json:"uploadedBytes,omitempty"`
	// size is totalBytes for people ("1.5 GiB"), shown by kubectl get.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Size string `json:"size,omitempty"`
}

// Backup is one backup of a set of namespaces, objects and volumes into a BackupLocation. Its spec cannot
// change once created: it records what was asked for.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pxbbk,categories=pxb
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=`.status.stage`,priority=1
// +kubebuilder:printcolumn:name="Progress",type=integer,JSONPath=`.status.progress.percent`,description="percent done"
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.status.size`
// +kubebuilder:printcolumn:name="Location",type=string,JSONPath=`.spec.location`
// +kubebuilder:printcolumn:name="Items",type=integer,JSONPath=`.status.progress.itemsDone`,priority=1
// +kubebuilder:printcolumn:name="Errors",type=integer,JSONPath=`.status.errorCount`
// +kubebuilder:printcolumn:name="Started",type=date,JSONPath=`.status.startTimestamp`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Backup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable"
	Spec BackupSpec `json:"spec"`
	// +optional
	Status BackupStatus `json:"status,omitempty"`
}

// BackupList is a list of Backups.
// +kubebuilder:object:root=true
type BackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Backup `json:"items"`
}
