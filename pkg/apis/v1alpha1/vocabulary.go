package v1alpha1

import (
	"fmt"
	"strings"
)

// Condition types of a BackupLocation's status.
const (
	// ConditionAvailable is True when the last check could write, read, list and delete in the location.
	ConditionAvailable = "Available"
	// ConditionObjectLock is True when the bucket has object lock enabled.
	ConditionObjectLock = "ObjectLock"
	// ConditionRepository is True when the location's repository opens with its key and every key slot that
	// key opens wraps the same master key (or when there is no repository yet), False when it does not.
	ConditionRepository = "Repository"
	// ConditionSynced says how the last sync went: True when every backup in the location has its Backup in
	// the cluster, False when some could not be made or the location could not be read.
	ConditionSynced = "Synced"
	// ConditionMaintained says how the last maintenance went: True when the repository was verified and its
	// unused data removed, False when it is damaged, was busy, or could not be read.
	ConditionMaintained = "Maintained"
)

// Condition types of a Backup's status.
const (
	// ConditionDataVerified is False when a maintenance that read the location's data (--read-data) found a
	// pack the backup needs damaged (reason ConditionReasonDataDamaged; the message names the packs): the
	// backup cannot be restored whole.
	ConditionDataVerified = "DataVerified"
	// ConditionReasonDataDamaged is the reason of a False ConditionDataVerified.
	ConditionReasonDataDamaged = "DataDamaged"
)

// Condition types of a BackupSchedule's status.
const (
	// ConditionScheduled is True when the schedule's CronJobs follow its policy, False (with the reason)
	// when they could not be made: a missing policy or location, or a policy that cannot be scheduled.
	ConditionScheduled = "Scheduled"
)

// Final says whether a Backup in phase p has ended: its Job has nothing more to do.
func (p BackupPhase) Final() bool {
	return p == BackupCompleted || p == BackupPartiallySucceeded || p == BackupFailed
}

// Final says whether a Restore in phase p has ended.
func (p RestorePhase) Final() bool {
	return p == RestoreCompleted || p == RestorePartiallySucceeded || p == RestoreFailed
}

// Restorable says whether a Backup in phase p can be restored from.
func (p BackupPhase) Restorable() bool {
	return p == BackupCompleted || p == BackupPartiallySucceeded
}

// ParseVolumeMethod reads a volume method as users write it: snapshot, fs or none, or the API's names.
func ParseVolumeMethod(s string) (VolumeMethod, error) {
	switch strings.ToLower(s) {
	case "snapshot":
		return VolumeSnapshot, nil
	case "fs", "filesystem":
		return VolumeFileSystem, nil
	case "none":
		return VolumeNone, nil
	}
	return "", fmt.Errorf("volume method %q: want snapshot, fs or none", s)
}
