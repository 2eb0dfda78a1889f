package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackupScheduleSpec takes backups by a SchedulePolicy.
type BackupScheduleSpec struct {
	// policy names the SchedulePolicy that says when to take backups and how many to keep.
	// +required
	Policy ObjectName `json:"policy"`
	// template is the spec of every Backup the schedule creates.
	// +required
	Template BackupSpec `json:"template"`
	// suspend stops new backups without deleting the schedule or its backups.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// BackupScheduleStatus is what the schedule's jobs report.
type BackupScheduleStatus struct {
	// lastScheduleTime is when the schedule last created a Backup.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// lastBackupName names the Backup created last.
	// +optional
	LastBackupName ObjectName `json:"lastBackupName,omitempty"`
	// lastSuccessfulBackupName names the newest Backup that completed.
	// +optional
	LastSuccessfulBackupName ObjectName `json:"lastSuccessfulBackupName,omitempty"`
	// lastSuccessfulBackupTime is when the newest Backup that completed (or partially succeeded) was started,
	// of any of the policy's runs.
	// +optional
	LastSuccessfulBackupTime *metav1.Time `json:"lastSuccessfulBackupTime,omitempty"`
	// intervalSeconds is the time between two backups of the policy's most frequent run (a month counts 28
	// days), as the schedule's last run found it: pxb's alert rules expect a successful backup within two.
	// +optional
	// +kubebuilder:validation:Minimum=0
	IntervalSeconds int64 `json:"intervalSeconds,omitempty"`
	// backups are the Backups this schedule created, each with the time it was started, recorded before the
	// Backup is created. Retention counts and deletes these alone, newest first by that time: a Backup that
	// merely carries the schedule's labels or annotations is never counted, nor deleted.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=2048
	Backups []ScheduledBackup `json:"backups,omitempty"`
	// message explains the last failure to schedule or to apply retention.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Message string `json:"message,omitempty"`
	// conditions of the schedule.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ScheduledBackup is a Backup a BackupSchedule created.
type ScheduledBackup struct {
	// name of the Backup, in the schedule's namespace.
	// +required
	Name ObjectName `json:"name"`
	// kind of run that created it: interval, daily, weekly or monthly.
	// +required
	// +kubebuilder:validation:MaxLength=16
	Kind string `json:"kind"`
	// startTime is when the run started it.
	// +required
	StartTime metav1.Time `json:"startTime"`
}

// BackupSchedule takes Backups from a template at the times of a SchedulePolicy and deletes those past the
// policy's retention. It owns the CronJobs that run it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pxbbs,categories=pxb
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.policy`
// +kubebuilder:printcolumn:name="Location",type=string,JSONPath=`.spec.template.location`
// +kubebuilder:printcolumn:name="Suspend",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Last Backup",type=string,JSONPath=`.status.lastBackupName`
// +kubebuilder:printcolumn:name="Last Scheduled",type=date,JSONPath=`.status.lastScheduleTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupSchedule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BackupScheduleSpec `json:"spec"`
	// +optional
	Status BackupScheduleStatus `json:"status,omitempty"`
}

// BackupScheduleList is a list of BackupSchedules.
// +kubebuilder:object:root=true
type BackupScheduleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupSchedule `json:"items"`
}
