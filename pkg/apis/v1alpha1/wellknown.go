package v1alpha1

// Names that the plugin, the installer and the job runner agree on.
const (
	// SystemNamespace holds BackupLocations, their Secrets, pxb-config and every Job pxb launches.
	SystemNamespace = "pxb-system"
	// ConfigMapName is the ConfigMap in SystemNamespace with the installation's defaults.
	ConfigMapName = "pxb-config"
	// The identities pxb's Jobs run as, one per kind of work, each bound to what that work needs
	// (manifests/rbac.yaml).
	//
	// BackupServiceAccount runs backup Jobs: it reads whatever is backed up.
	BackupServiceAccount = "pxb-backup"
	// RestoreServiceAccount runs the restore Jobs of teams' Restores, which write as RestoreWriterServiceAccount
	// of the Restore's namespace.
	RestoreServiceAccount = "pxb-restore"
	// ClusterRestoreServiceAccount runs the restore Jobs of Restores in SystemNamespace, which write as
	// ClusterWriterServiceAccount.
	ClusterRestoreServiceAccount = "pxb-cluster-restore"
	// RestoreWriterServiceAccount, in a team's namespace, is who a team's restore writes as: it holds `edit`
	// there (or what the namespace's admin bound it to), so the API server refuses what that does not allow.
	RestoreWriterServiceAccount = "pxb-restore-writer"
	// ClusterWriterServiceAccount, in SystemNamespace, is who an administrator's restore writes as: it may
	// write anything. No pod runs as it.
	ClusterWriterServiceAccount = "pxb-cluster-writer"
	// MoverServiceAccount runs upload and download Jobs: it reports their progress and writes nothing else.
	MoverServiceAccount = "pxb-mover"
	// LocationServiceAccount runs the check, sync, maintenance and delete Jobs of a BackupLocation.
	LocationServiceAccount = "pxb-location"
	// ScheduleServiceAccount runs the Jobs of BackupSchedules' CronJobs.
	ScheduleServiceAccount = "pxb-schedule"
	// ReconcilerServiceAccount is the identity of the reconciler, which launches the Jobs of objects applied
	// without the plugin.
	ReconcilerServiceAccount = "pxb-reconciler"

	// CredentialLabel marks a Secret in SystemNamespace that holds cloud credentials for a BackupLocation.
	CredentialLabel = "pxb.dev/credential"
	// EncryptionKeyLabel marks a Secret in SystemNamespace that holds a location's encryption passphrase.
	EncryptionKeyLabel = "pxb.dev/encryption-key"
	// EncryptionKeySecretKey is the Secret data key that holds the passphrase.
	EncryptionKeySecretKey = "passphrase"
)

// Secret data keys of a BackupLocation's credential Secret, per provider.
const (
	// S3: static access keys; the session token is optional.
	S3AccessKeyID     = "accessKeyID"
	S3SecretAccessKey = "secretAccessKey"
	S3SessionToken    = "sessionToken"
	// Azure: either the storage account's shared key, or a service principal.
	AzureAccountKey   = "accountKey"
	AzureTenantID     = "tenantID"
	AzureClientID     = "clientID"
	AzureClientSecret = "clientSecret"
	// GCS: a service account's JSON key.
	GCSServiceAccountJSON = "serviceAccount.json"
)

// VolumeMethodAnnotation on a PersistentVolumeClaim overrides its Backup's volumeMethod for that claim:
// "snapshot", "fs" or "none" (the long names Snapshot, FileSystem and None are accepted too).
const VolumeMethodAnnotation = "pxb.dev/volume-method"

// Marks of a Backup that a sync created from what it found in a location (kubectl pxb location sync).
const (
	// SyncedLabel ("true") marks a synced Backup: its data belongs to the location, so deleting the Backup
	// leaves the data there unless asked otherwise.
	SyncedLabel = "pxb.dev/synced"
	// OriginClusterAnnotation on a synced Backup is the ID of the cluster that made the backup: the UID of
	// that cluster's kube-system namespace.
	OriginClusterAnnotation = "pxb.dev/origin-cluster"
)

// Labels of the Backups a BackupSchedule creates, by which its retention finds them.
const (
	// ScheduleLabel is the name of the BackupSchedule (shortened with a hash past 63 characters).
	ScheduleLabel = "pxb.dev/schedule"
	// ScheduleKindLabel is the policy's schedule that took the backup: interval, daily, weekly or monthly.
	ScheduleKindLabel = "pxb.dev/schedule-kind"
	// ScheduledTimeAnnotation is when the schedule's job started the backup (RFC 3339), for those who read the
	// Backup. Retention and the next due time go by the time the schedule's status records instead, which
	// only pxb writes.
	ScheduledTimeAnnotation = "pxb.dev/scheduled-time"
)
