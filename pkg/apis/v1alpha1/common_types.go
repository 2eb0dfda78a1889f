package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// SecretReference names a Secret in the namespace of the object that refers to it.
type SecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// NamespaceName is the name of a namespace.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type NamespaceName string

// NamespacePattern is a namespace name, or "*" for every namespace.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$`
type NamespacePattern string

// ResourcePattern names a resource type as kubectl does: "deployments", "deployments.apps",
// "certificates.cert-manager.io", or "*" for every type.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:Pattern=`^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$`
type ResourcePattern string

// ObjectName is the name of an object (a DNS subdomain).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
type ObjectName string

// ClusterResourcesPolicy says whether cluster-scoped objects go into a backup or a restore.
// The values are words rather than true/false because YAML would read an unquoted true as a boolean.
// +kubebuilder:validation:Enum=Auto;Include;Exclude
type ClusterResourcesPolicy string

const (
	// ClusterResourcesAuto takes the cluster-scoped objects that the selected namespaced objects use
	// (for example the PersistentVolumes of their claims, the CRDs of their custom resources), and all of
	// them when every namespace is selected.
	ClusterResourcesAuto ClusterResourcesPolicy = "Auto"
	// ClusterResourcesInclude takes every selected cluster-scoped object.
	ClusterResourcesInclude ClusterResourcesPolicy = "Include"
	// ClusterResourcesExclude takes no cluster-scoped object.
	ClusterResourcesExclude ClusterResourcesPolicy = "Exclude"
)

// Progress counts the work of a backup or a restore.
type Progress struct {
	// percent is the overall progress from 0 to 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent,omitempty"`
	// itemsTotal is the number of objects to process.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ItemsTotal int32 `json:"itemsTotal,omitempty"`
	// itemsDone is the number of objects processed so far.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ItemsDone int32 `json:"itemsDone,omitempty"`
	// volumesTotal is the number of volumes whose data is to be moved.
	// +optional
	// +kubebuilder:validation:Minimum=0
	VolumesTotal int32 `json:"volumesTotal,omitempty"`
	// volumesDone is the number of volumes whose data has been moved.
	// +optional
	// +kubebuilder:validation:Minimum=0
	VolumesDone int32 `json:"volumesDone,omitempty"`
	// bytesTotal is the number of volume bytes to move.
	// +optional
	// +kubebuilder:validation:Minimum=0
	BytesTotal int64 `json:"bytesTotal,omitempty"`
	// bytesDone is the number of volume bytes moved so far.
	// +optional
	// +kubebuilder:validation:Minimum=0
	BytesDone int64 `json:"bytesDone,omitempty"`
}

// VolumePhase is where the data of one volume stands.
// +kubebuilder:validation:Enum=Pending;InProgress;Completed;Failed;Skipped
type VolumePhase string

const (
	VolumePending    VolumePhase = "Pending"
	VolumeInProgress VolumePhase = "InProgress"
	VolumeCompleted  VolumePhase = "Completed"
	VolumeFailed     VolumePhase = "Failed"
	VolumeSkipped    VolumePhase = "Skipped"
)

// VolumeStatus is the progress of one volume's data.
type VolumeStatus struct {
	// namespace of the PersistentVolumeClaim.
	// +required
	Namespace NamespaceName `json:"namespace"`
	// pvc is the name of the PersistentVolumeClaim.
	// +required
	PVC ObjectName `json:"pvc"`
	// driver is the CSI driver of the volume, when it has one.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Driver string `json:"driver,omitempty"`
	// method by which the data is taken or written.
	// +optional
	Method VolumeMethod `json:"method,omitempty"`
	// phase of this volume.
	// +required
	Phase VolumePhase `json:"phase"`
	// bytesTotal is the size of the volume's data.
	// +optional
	// +kubebuilder:validation:Minimum=0
	BytesTotal int64 `json:"bytesTotal,omitempty"`
	// bytesDone is the number of bytes moved so far.
	// +optional
	// +kubebuilder:validation:Minimum=0
	BytesDone int64 `json:"bytesDone,omitempty"`
	// filesTotal is the number of files in the volume.
	// +optional
	// +kubebuilder:validation:Minimum=0
	FilesTotal int64 `json:"filesTotal,omitempty"`
	// filesDone is the number of files moved so far.
	// +optional
	// +kubebuilder:validation:Minimum=0
	FilesDone int64 `json:"filesDone,omitempty"`
	// uploadedBytes is what the volume added to the repository after deduplication and compression.
	// +optional
	// +kubebuilder:validation:Minimum=0
	UploadedBytes int64 `json:"uploadedBytes,omitempty"`
	// snapshot is the ID of the volume's snapshot in the location's repository.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Snapshot string `json:"snapshot,omitempty"`
	// message explains a failure or a skip.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// Bounds of status lists. Objects in etcd must stay far below 1.5 MiB, so status holds at most this many
// entries; the complete lists are written to the bucket.
const (
	MaxStatusVolumes  = 256
	MaxStatusMessages = 20
)

// Selection says which namespaces, objects and resource types an operation takes. A Backup selects from the
// cluster, a Restore from its backup.
type Selection struct {
	// includeNamespaces are the namespaces to take; "*" is every namespace. Left empty, a Backup takes its
	// own namespace and a Restore every namespace of its backup. A Backup outside pxb-system can only back
	// up its own namespace.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1024
	IncludeNamespaces []NamespacePattern `json:"includeNamespaces,omitempty"`
	// excludeNamespaces are left out even when included otherwise.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1024
	ExcludeNamespaces []NamespaceName `json:"excludeNamespaces,omitempty"`
	// labelSelector keeps only the objects with matching labels.
	// +optional
	LabelSelector *metav1.LabelSelector `json:"labelSelector,omitempty"`
	// includeResources are the resource types to take ("deployments", "deployments.apps", "*"); empty
	// means every type.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	IncludeResources []ResourcePattern `json:"includeResources,omitempty"`
	// excludeResources are resource types left out.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	ExcludeResources []ResourcePattern `json:"excludeResources,omitempty"`
	// clusterResources says which cluster-scoped objects to take: Auto those the selected namespaced objects
	// use (all of them when every namespace is selected), Include every selected one, Exclude none.
	// +optional
	// +kubebuilder:default=Auto
	ClusterResources ClusterResourcesPolicy `json:"clusterResources,omitempty"`
}

// OperationStatus is what the job of a Backup or a Restore reports besides its phase and stage. It stays
// small: the per-object list, the log and the full lists of errors and warnings are in the bucket.
type OperationStatus struct {
	// message explains the phase.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Message string `json:"message,omitempty"`
	// startTimestamp is when the job started.
	// +optional
	StartTimestamp *metav1.Time `json:"startTimestamp,omitempty"`
	// completionTimestamp is when the operation ended, successfully or not.
	// +optional
	CompletionTimestamp *metav1.Time `json:"completionTimestamp,omitempty"`
	// progress counts the work done.
	// +optional
	Progress *Progress `json:"progress,omitempty"`
	// volumes is the progress of each volume, at most 256; the full list is in the bucket.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	Volumes []VolumeStatus `json:"volumes,omitempty"`
	// errorCount is the number of errors, including those not listed in errors.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ErrorCount int32 `json:"errorCount,omitempty"`
	// errors are the first errors; all of them are in the bucket (a backup's log, a restore's summary).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=1024
	Errors []string `json:"errors,omitempty"`
	// warningCount is the number of warnings, including those not listed in warnings.
	// +optional
	// +kubebuilder:validation:Minimum=0
	WarningCount int32 `json:"warningCount,omitempty"`
	// warnings are the first warnings; all of them are in the bucket.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=1024
	Warnings []string `json:"warnings,omitempty"`
	// conditions of the operation.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
