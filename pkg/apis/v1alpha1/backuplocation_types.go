package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provider is the kind of storage behind a BackupLocation.
// +kubebuilder:validation:Enum=s3;azure;gcs;nfs
type Provider string

const (
	ProviderS3    Provider = "s3"
	ProviderAzure Provider = "azure"
	ProviderGCS   Provider = "gcs"
	ProviderNFS   Provider = "nfs"
)

// BackupLocationSpec says where a repository of backups is stored and how to reach it.
//
// A credential is optional for s3, azure and gcs: without one the job uses the provider's ambient identity
// (the standard environment variables, IRSA or EKS pod identity, Azure or GCP workload identity, instance
// metadata), which must then be granted to the pxb-job ServiceAccount.
//
// +kubebuilder:validation:XValidation:rule="self.provider == 'nfs' || has(self.bucket)",message="bucket is required when provider is s3, azure or gcs",fieldPath=".bucket",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="self.provider != 'nfs' || has(self.nfs)",message="nfs (server and path) is required when provider is nfs",fieldPath=".nfs",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="self.provider == 'nfs' || !has(self.nfs)",message="nfs may only be set when provider is nfs",fieldPath=".nfs",reason="FieldValueForbidden"
// +kubebuilder:validation:XValidation:rule="self.provider != 'nfs' || !has(self.bucket)",message="bucket may not be set when provider is nfs",fieldPath=".bucket",reason="FieldValueForbidden"
// +kubebuilder:validation:XValidation:rule="self.provider != 'nfs' || !has(self.credential)",message="credential may not be set when provider is nfs",fieldPath=".credential",reason="FieldValueForbidden"
// +kubebuilder:validation:XValidation:rule="self.provider != 'nfs' || !has(self.endpoint)",message="endpoint may not be set when provider is nfs",fieldPath=".endpoint",reason="FieldValueForbidden"
// +kubebuilder:validation:XValidation:rule="self.provider == 's3' || !has(self.s3ForcePathStyle)",message="s3ForcePathStyle may only be set when provider is s3",fieldPath=".s3ForcePathStyle",reason="FieldValueForbidden"
// +kubebuilder:validation:XValidation:rule="self.provider == 'azure' || !has(self.storageAccount)",message="storageAccount may only be set when provider is azure",fieldPath=".storageAccount",reason="FieldValueForbidden"
// +kubebuilder:validation:XValidation:rule="self.provider != 'azure' || has(self.storageAccount)",message="storageAccount is required when provider is azure",fieldPath=".storageAccount",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="self.provider != 'nfs' || !has(self.objectLockDays)",message="objectLockDays is not supported when provider is nfs",fieldPath=".objectLockDays",reason="FieldValueForbidden"
// +kubebuilder:validation:XValidation:rule="!has(self.caCert) || !(has(self.insecureSkipTLSVerify) && self.insecureSkipTLSVerify)",message="caCert and insecureSkipTLSVerify are mutually exclusive",fieldPath=".insecureSkipTLSVerify",reason="FieldValueForbidden"
// +kubebuilder:validation:XValidation:rule="has(self.prefix) == has(oldSelf.prefix) && (!has(self.prefix) || self.prefix == oldSelf.prefix)",message="prefix is immutable",fieldPath=".prefix"
type BackupLocationSpec struct {
	// provider of the storage. Immutable: the repository stays where it was created.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="provider is immutable"
	Provider Provider `json:"provider"`

	// bucket is the S3 or GCS bucket, or the Azure blob container. Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=222
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9._-]*[a-z0-9]$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="bucket is immutable"
	Bucket string `json:"bucket,omitempty"`

	// prefix is the path inside the bucket (or the NFS export) under which the repository lives, so that
	// several locations can share one bucket. Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[^/](.*[^/])?$`
	Prefix string `json:"prefix,omitempty"`

	// region of the bucket (s3, gcs).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]+$`
	Region string `json:"region,omitempty"`

	// endpoint is the URL of an S3-compatible server, an Azure blob service or a GCS emulator, when it is not
	// the provider's public endpoint.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	Endpoint string `json:"endpoint,omitempty"`

	// s3ForcePathStyle addresses the bucket as a path (https://host/bucket) rather than a host name; most
	// S3-compatible servers need it.
	// +optional
	S3ForcePathStyle bool `json:"s3ForcePathStyle,omitempty"`

	// storageAccount is the Azure storage account that holds the container.
	// +optional
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=24
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+$`
	StorageAccount string `json:"storageAccount,omitempty"`

	// insecureSkipTLSVerify turns off verification of the endpoint's certificate. For tests only.
	// +optional
	InsecureSkipTLSVerify bool `json:"insecureSkipTLSVerify,omitempty"`

	// caCert is a PEM bundle of certificate authorities trusted for the endpoint.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	CACert string `json:"caCert,omitempty"`

	// credential names a Secret in pxb-system, labelled pxb.dev/credential, with the provider's credential
	// (keys: s3 accessKeyID, secretAccessKey, optional sessionToken; azure accountKey, or tenantID, clientID,
	// clientSecret; gcs serviceAccount.json). Without it the job uses the provider's ambient identity.
	// +optional
	Credential *SecretReference `json:"credential,omitempty"`

	// encryptionKey names a Secret in pxb-system, labelled pxb.dev/encryption-key, whose "passphrase" key
	// unlocks the repository's encryption key. Every repository is encrypted; losing the passphrase loses
	// the backups.
	// +required
	EncryptionKey SecretReference `json:"encryptionKey"`

	// objectLockDays keeps every object written to the bucket undeletable for this many days (S3 object
	// lock in compliance mode, GCS object retention in Locked mode, Azure locked immutability policies);
	// the bucket or container must have the feature enabled (Azure: version-level immutability).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=36500
	ObjectLockDays int32 `json:"objectLockDays,omitempty"`

	// allowedNamespaces lists the namespaces whose own Backups and Restores may use this location; "*"
	// allows every namespace. Backups in pxb-system may always use it.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1024
	AllowedNamespaces []NamespacePattern `json:"allowedNamespaces,omitempty"`

	// nfs is the export that holds the repository when provider is nfs.
	// +optional
	NFS *NFSLocation `json:"nfs,omitempty"`
}

// NFSLocation is an NFS export mounted by the jobs.
type NFSLocation struct {
	// server is the NFS server's host name or IP address.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9.:\[\]-]+$`
	Server string `json:"server"`
	// path is the exported path.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path"`
	// subPath is a directory inside the export.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^[^/]`
	SubPath string `json:"subPath,omitempty"`
	// mountOptions are passed to the mount, for example "nfsvers=4.1".
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=256
	MountOptions []string `json:"mountOptions,omitempty"`
}

// LocationPhase says whether a location can be used.
// +kubebuilder:validation:Enum=Pending;Available;Unavailable
type LocationPhase string

const (
	LocationPending     LocationPhase = "Pending"
	LocationAvailable   LocationPhase = "Available"
	LocationUnavailable LocationPhase = "Unavailable"
)

// BackupLocationStatus is what the last validation, sync and maintenance found.
type BackupLocationStatus struct {
	// phase is the result of the last validation.
	// +optional
	Phase LocationPhase `json:"phase,omitempty"`
	// message explains the phase.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Message string `json:"message,omitempty"`
	// lastValidationTime is when the location was last checked.
	// +optional
	LastValidationTime *metav1.Time `json:"lastValidationTime,omitempty"`
	// lastSyncTime is when the backups in the location were last listed into the cluster.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// lastMaintenanceTime is when the location's repository was last verified and its unused data removed.
	// +optional
	LastMaintenanceTime *metav1.Time `json:"lastMaintenanceTime,omitempty"`
	// lastDataReadTime is when a maintenance last read and verified the data of some or all packs; a
	// rotating read (scheduled maintenance) continues from it.
	// +optional
	LastDataReadTime *metav1.Time `json:"lastDataReadTime,omitempty"`
	// conditions of the location.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BackupLocation is a place where backups are stored: a bucket (S3, Azure Blob, GCS) or an NFS export.
// BackupLocations live in pxb-system next to their Secrets.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pxbbl,categories=pxb
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="Bucket",type=string,JSONPath=`.spec.bucket`
// +kubebuilder:printcolumn:name="Prefix",type=string,JSONPath=`.spec.prefix`,priority=1
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.endpoint`,priority=1
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Last Validated",type=date,JSONPath=`.status.lastValidationTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupLocation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BackupLocationSpec `json:"spec"`
	// +optional
	Status BackupLocationStatus `json:"status,omitempty"`
}

// BackupLocationList is a list of BackupLocations.
// +kubebuilder:object:root=true
type BackupLocationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupLocation `json:"items"`
}
