package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/store"
)

// checkTimeout bounds each step against the store, so an unreachable endpoint ends the check in plain words.
const checkTimeout = time.Minute

// CheckLocation checks BackupLocation name the way backups will use it (a probe object written, read, listed
// and deleted; S3 object lock looked up) and writes the outcome into its status. It returns the status
// written; an error means the status could not be written (or the location not read).
func CheckLocation(ctx context.Context, cfg *rest.Config, name string, opts Options) (*v1alpha1.BackupLocationStatus, error) {
	env, loc, err := locationEnv(ctx, cfg, name)
	if err != nil {
		return nil, err
	}
	problem, lock := checkLocation(ctx, env, loc, opts)
	var keys metav1.Condition
	if problem == "" {
		keys = checkRepository(ctx, env, loc, opts)
	}
	now := metav1.Now()
	st := loc.Status.DeepCopy()
	st.LastValidationTime = &now
	avail := metav1.Condition{Type: v1alpha1.ConditionAvailable}
	if problem == "" {
		st.Phase = v1alpha1.LocationAvailable
		st.Message = "write, read, list and delete of a probe object succeeded; " + lock.Message
		avail.Status, avail.Reason, avail.Message = metav1.ConditionTrue, "ProbeSucceeded", st.Message
	} else {
		st.Phase = v1alpha1.LocationUnavailable
		st.Message = problem
		avail.Status, avail.Reason, avail.Message = metav1.ConditionFalse, "ProbeFailed", problem
	}
	if len(st.Message) > 4096 {
		st.Message = st.Message[:4093] + "..."
		avail.Message = st.Message
	}
	avail.ObservedGeneration, lock.ObservedGeneration, keys.ObservedGeneration = loc.Generation, loc.Generation, loc.Generation
	meta.SetStatusCondition(&st.Conditions, avail)
	for _, c := range []metav1.Condition{lock, keys} {
		if c.Type != "" {
			meta.SetStatusCondition(&st.Conditions, c)
		}
	}
	target := jobspec.Ref{Resource: v1alpha1.BackupLocationsResource.Resource, Namespace: v1alpha1.SystemNamespace, Name: name}
	err = jobenv.UpdateStatusOf(ctx, env, target, func(l *v1alpha1.BackupLocation) error {
		l.Status.Phase, l.Status.Message, l.Status.LastValidationTime = st.Phase, st.Message, st.LastValidationTime
		for _, c := range st.Conditions {
			meta.SetStatusCondition(&l.Status.Conditions, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// checkLocation returns what makes the location unusable ("" when nothing does), and its object lock
// condition (Type empty when the provider was not asked).
func checkLocation(ctx context.Context, env *jobenv.Env, loc *v1alpha1.BackupLocation, opts Options) (string, metav1.Condition) {
	octx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	b, err := store.OpenBucket(octx, env.Kube, loc, opts.Location)
	if err != nil {
		return err.Error(), metav1.Condition{}
	}
	defer b.Close()
	if err := location.Probe(octx, b); err != nil {
		return err.Error(), metav1.Condition{}
	}
	lock := objectLock(octx, b, loc.Spec)
	if loc.Spec.ObjectLockDays > 0 && lock.Status != metav1.ConditionTrue {
		return fmt.Sprintf("objectLockDays is %d but %s", loc.Spec.ObjectLockDays, lock.Message), lock
	}
	return "", lock
}

// checkRepository opens the location's repository with its key, when it holds one, and names the key
// slots that wrap another master key than its config's, with what was sealed with them.
func checkRepository(ctx context.Context, env *jobenv.Env, loc *v1alpha1.BackupLocation, opts Options) metav1.Condition {
	cond := metav1.Condition{Type: v1alpha1.ConditionRepository, Status: metav1.ConditionTrue}
	empty, err := holdsNoRepository(ctx, env, loc, opts)
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, "LookupFailed", truncate(err.Error(), 4096)
		return cond
	}
	if empty {
		cond.Reason, cond.Message = "NoRepository", "no repository yet: the first backup creates it"
		return cond
	}
	l, err := store.OpenLocation(ctx, env.Kube, env.Dynamic, loc.Name, opts.Location, false)
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Unreadable", truncate(err.Error(), 4096)
		return cond
	}
	defer l.Close()
	rctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	strays, err := l.Repository().StrayKeys(rctx)
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, "LookupFailed", truncate(location.Explain(err), 4096)
		return cond
	}
	var problems, notes []string
	for _, s := range strays {
		if len(s.Indexes)+len(s.Snapshots) > 0 {
			problems = append(problems, s.Problem())
		} else {
			notes = append(notes, s.Problem())
		}
	}
	switch {
	case len(problems) > 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, "StrayKeySlots"
		cond.Message = truncate(strings.Join(append(problems, notes...), "; "), 4096)
	case len(notes) > 0:
		cond.Reason, cond.Message = "StrayKeySlotsUnused", truncate(strings.Join(notes, "; "), 4096)
	default:
		cond.Reason, cond.Message = "Opens", "the repository opens with the location's key"
	}
	return cond
}

// locationEnv builds the clients of a job that works on BackupLocation name, and reads the location.
func locationEnv(ctx context.Context, cfg *rest.Config, name string) (*jobenv.Env, *v1alpha1.BackupLocation, error) {
	env, err := jobenv.NewEnvForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	loc, err := store.GetLocation(ctx, env.Dynamic, name)
	if err != nil {
		return nil, nil, err
	}
	return env, loc, nil
}

// objectLock says whether the bucket has S3 object lock enabled. Other providers' retention features are
// not looked up.
func objectLock(ctx context.Context, b *blob.Bucket, spec v1alpha1.BackupLocationSpec) metav1.Condition {
	cond := metav1.Condition{Type: v1alpha1.ConditionObjectLock, Status: metav1.ConditionUnknown, Reason: "NotChecked"}
	var client *s3.Client
	if spec.Provider != v1alpha1.ProviderS3 || !b.As(&client) {
		cond.Message = fmt.Sprintf("object lock: not checked on %s locations", spec.Provider)
		return cond
	}
	out, err := client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(spec.Bucket)})
	var apiErr smithy.APIError
	switch {
	case err == nil && out.ObjectLockConfiguration != nil && out.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled:
		cond.Status, cond.Reason = metav1.ConditionTrue, "Enabled"
		cond.Message = "object lock: enabled on bucket " + spec.Bucket
	case err == nil, errors.As(err, &apiErr) && apiErr.ErrorCode() == "ObjectLockConfigurationNotFoundError":
		cond.Status, cond.Reason = metav1.ConditionFalse, "NotEnabled"
		cond.Message = "object lock: not enabled on bucket " + spec.Bucket + " (it can only be turned on when a bucket is created)"
	default:
		cond.Reason = "LookupFailed"
		cond.Message = "object lock: could not be looked up: " + location.Explain(err)
	}
	return cond
}
