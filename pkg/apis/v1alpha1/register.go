package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of every pxb resource.
const GroupName = "pxb.dev"

// SchemeGroupVersion is the group and version of this package's types.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// Resources of this group version, for dynamic clients and RBAC.
var (
	BackupLocationsResource  = SchemeGroupVersion.WithResource("backuplocations")
	SchedulePoliciesResource = SchemeGroupVersion.WithResource("schedulepolicies")
	RulesResource            = SchemeGroupVersion.WithResource("rules")
	BackupsResource          = SchemeGroupVersion.WithResource("backups")
	RestoresResource         = SchemeGroupVersion.WithResource("restores")
	BackupSchedulesResource  = SchemeGroupVersion.WithResource("backupschedules")
)

// AllResources lists every resource of the group, in the order an installer creates their definitions.
var AllResources = []schema.GroupVersionResource{
	BackupLocationsResource,
	SchedulePoliciesResource,
	RulesResource,
	BackupsResource,
	RestoresResource,
	BackupSchedulesResource,
}

var (
	// SchemeBuilder collects the functions that add this package's types to a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this package's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Resource turns an unqualified resource name into a group-qualified one.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&BackupLocation{}, &BackupLocationList{},
		&SchedulePolicy{}, &SchedulePolicyList{},
		&Rule{}, &RuleList{},
		&Backup{}, &BackupList{},
		&Restore{}, &RestoreList{},
		&BackupSchedule{}, &BackupScheduleList{},
	)
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
