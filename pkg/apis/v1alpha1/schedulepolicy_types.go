package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TimeOfDay is a wall-clock time "HH:MM" (24-hour) in the policy's time zone.
// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
type TimeOfDay string

// Weekday is a day of the week.
// +kubebuilder:validation:Enum=Sunday;Monday;Tuesday;Wednesday;Thursday;Friday;Saturday
type Weekday string

// IntervalPolicy takes a backup every few minutes.
type IntervalPolicy struct {
	// minutes between two backups.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1440
	Minutes int32 `json:"minutes"`
	// retain is how many backups of this kind to keep.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	Retain int32 `json:"retain"`
}

// DailyPolicy takes a backup every day.
type DailyPolicy struct {
	// time of day of the backup.
	// +required
	Time TimeOfDay `json:"time"`
	// retain is how many daily backups to keep.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	Retain int32 `json:"retain"`
}

// WeeklyPolicy takes a backup every week.
type WeeklyPolicy struct {
	// day of the week of the backup.
	// +required
	Day Weekday `json:"day"`
	// time of day of the backup.
	// +required
	Time TimeOfDay `json:"time"`
	// retain is how many weekly backups to keep.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	Retain int32 `json:"retain"`
}

// MonthlyPolicy takes a backup every month.
type MonthlyPolicy struct {
	// date is the day of the month of the backup; in shorter months a date past the month's end falls on
	// its last day.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=31
	Date int32 `json:"date"`
	// time of day of the backup.
	// +required
	Time TimeOfDay `json:"time"`
	// retain is how many monthly backups to keep.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	Retain int32 `json:"retain"`
}

// SchedulePolicySpec says when backups are taken and how many of each kind are kept.
// +kubebuilder:validation:XValidation:rule="has(self.interval) || has(self.daily) || has(self.weekly) || has(self.monthly)",message="at least one of interval, daily, weekly or monthly is required"
type SchedulePolicySpec struct {
	// interval takes a backup every few minutes.
	// +optional
	Interval *IntervalPolicy `json:"interval,omitempty"`
	// daily takes a backup every day.
	// +optional
	Daily *DailyPolicy `json:"daily,omitempty"`
	// weekly takes a backup every week.
	// +optional
	Weekly *WeeklyPolicy `json:"weekly,omitempty"`
	// monthly takes a backup every month.
	// +optional
	Monthly *MonthlyPolicy `json:"monthly,omitempty"`
	// timeZone is the IANA time zone of the policy's times, for example "Europe/Berlin".
	// +optional
	// +kubebuilder:default=UTC
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$`
	TimeZone string `json:"timeZone,omitempty"`
}

// SchedulePolicy is a reusable schedule with retention, referred to by BackupSchedules.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=pxbsp,categories=pxb
// +kubebuilder:printcolumn:name="Interval",type=integer,JSONPath=`.spec.interval.minutes`,description="minutes between backups"
// +kubebuilder:printcolumn:name="Daily",type=string,JSONPath=`.spec.daily.time`
// +kubebuilder:printcolumn:name="Weekly",type=string,JSONPath=`.spec.weekly.day`
// +kubebuilder:printcolumn:name="Monthly",type=integer,JSONPath=`.spec.monthly.date`
// +kubebuilder:printcolumn:name="Time Zone",type=string,JSONPath=`.spec.timeZone`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SchedulePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec SchedulePolicySpec `json:"spec"`
}

// SchedulePolicyList is a list of SchedulePolicies.
// +kubebuilder:object:root=true
type SchedulePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SchedulePolicy `json:"items"`
}
