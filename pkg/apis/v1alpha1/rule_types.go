package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RuleOnError says what a failed action does to the backup.
// +kubebuilder:validation:Enum=Fail;Continue
type RuleOnError string

const (
	RuleFail     RuleOnError = "Fail"
	RuleContinue RuleOnError = "Continue"
)

// RuleAction is one command run in the application's pods.
type RuleAction struct {
	// podSelector selects the running pods, in the namespaces being backed up, that run the command.
	// +required
	PodSelector metav1.LabelSelector `json:"podSelector"`
	// container runs the command; when empty, the pod's default container (its annotation
	// kubectl.kubernetes.io/default-container), else its first.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Container string `json:"container,omitempty"`
	// command is executed without a shell; use ["/bin/sh", "-c", "..."] for one.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Command []string `json:"command"`
	// background keeps the command running (for example a session holding a table lock) while the
	// snapshots are taken. The command signals that it holds what it was run for by printing its first line
	// of output; its standard input stays open until the snapshots are taken, and is then closed, before the
	// post-exec rule runs. It must exit when its input closes (as a database client reading its statements
	// from standard input does).
	// +optional
	Background bool `json:"background,omitempty"`
	// runInSinglePod runs the command in one of the selected pods rather than in each of them.
	// +optional
	RunInSinglePod bool `json:"runInSinglePod,omitempty"`
	// timeoutSeconds bounds the command; for a background command, the time until it prints its first line.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
	// onError says whether a failed command fails the backup.
	// +optional
	// +kubebuilder:default=Fail
	OnError RuleOnError `json:"onError,omitempty"`
}

// RuleSpec is an ordered list of actions.
type RuleSpec struct {
	// actions run in order.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Actions []RuleAction `json:"actions"`
}

// Rule holds commands run in application pods before (pre-exec) or after (post-exec) the volumes of a
// backup are snapshotted, for example to flush and lock a database.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=pxbrule,categories=pxb
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Rule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RuleSpec `json:"spec"`
}

// RuleList is a list of Rules.
// +kubebuilder:object:root=true
type RuleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Rule `json:"items"`
}
