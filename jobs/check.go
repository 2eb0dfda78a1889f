package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/store"
)

// checkTimeout bounds each step against the store, so an unreachable endpoint ends the check in plain words.
const checkTimeout = time.Minute

// CheckLocation checks BackupLocation name the way backups will use it (a probe object written, read, listed
// and deleted; S3 object lock looked up) and writes the outcome into its status. It returns the status
// written; an error means the status could not be written (or the location not read).
func CheckLocation(ctx context.Context, cfg *rest.Config, name string, opts Options) (*v1alpha1.BackupLocationStatus, error) {
	env, loc, err := locationEnv(ctx, cfg, name, jobspec.KindCheck)
	if err != nil {
		return nil, err
	}
	problem, lock := checkLocation(ctx, env, loc, opts)
	var keys metav1.Condition
	if problem == "" {
		keys = checkRepository(ctx, env, loc, opts)
		if unusableRepository(keys) {
			problem = keys.Message
		}
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
		if unusableRepository(keys) {
			avail.Reason = keys.Reason
		}
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
	var was v1alpha1.LocationPhase
	err = jobenv.UpdateStatusOf(ctx, env, target, func(l *v1alpha1.BackupLocation) error {
		was = l.Status.Phase
		l.Status.Phase, l.Status.Message, l.Status.LastValidationTime = st.Phase, st.Message, st.LastValidationTime
		for _, c := range st.Conditions {
			meta.SetStatusCondition(&l.Status.Conditions, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Unavailable is told at every check, as long as it lasts; Available only when it comes back or first.
	switch {
	case st.Phase == v1alpha1.LocationUnavailable:
		env.Events.Eventf(ctx, loc, corev1.EventTypeWarning, jobenv.EventLocationUnavailable, "Check", "%s", st.Message)
	case was != v1alpha1.LocationAvailable:
		env.Events.Eventf(ctx, loc, corev1.EventTypeNormal, jobenv.EventLocationAvailable, "Check", "%s", st.Message)
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
// slots that wrap another master key than its config's, with what was sealed with them. A key that does
// not open the repository, a repository of a newer format, and a prefix that holds something other than a
// pxb repository make the condition False with a reason naming it (WrongPassphrase, NewerFormat,
// NotARepository, ConfigMissing); those leave the location unusable (see unusableRepository).
func checkRepository(ctx context.Context, env *jobenv.Env, loc *v1alpha1.BackupLocation, opts Options) metav1.Condition {
	cond := metav1.Condition{Type: v1alpha1.ConditionRepository, Status: metav1.ConditionTrue}
	fail := func(status metav1.ConditionStatus, reason, msg string) metav1.Condition {
		cond.Status, cond.Reason, cond.Message = status, reason, truncate(msg, 4096)
		return cond
	}
	rctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	b, err := store.OpenBucket(rctx, env.Kube, loc, opts.Location)
	if err != nil {
		return fail(metav1.ConditionUnknown, "LookupFailed", err.Error())
	}
	defer b.Close()
	where := fmt.Sprintf("bucket %s, prefix %q", loc.Spec.Bucket, loc.Spec.Prefix)
	exists, err := repo.Exists(rctx, b)
	if err != nil {
		return fail(metav1.ConditionUnknown, "LookupFailed", location.Explain(err))
	}
	if !exists {
		return emptyPrefix(rctx, b, cond, where)
	}
	key := loc.Spec.EncryptionKey.Name
	secret, err := env.Kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Get(rctx, key, metav1.GetOptions{})
	if err != nil {
		return fail(metav1.ConditionUnknown, "LookupFailed", fmt.Sprintf("get encryption key Secret %s/%s: %v", v1alpha1.SystemNamespace, key, err))
	}
	passphrase := secret.Data[v1alpha1.EncryptionKeySecretKey]
	if len(passphrase) == 0 {
		return fail(metav1.ConditionFalse, "WrongPassphrase", fmt.Sprintf("encryption key Secret %s/%s has no %q key",
			v1alpha1.SystemNamespace, key, v1alpha1.EncryptionKeySecretKey))
	}
	r, err := repo.Open(rctx, b, passphrase, store.RepoOptions(loc.Spec, b))
	switch {
	case errors.Is(err, repo.ErrWrongPassphrase):
		return fail(metav1.ConditionFalse, "WrongPassphrase", fmt.Sprintf("wrong passphrase: the location's encryption key "+
			"(Secret %s/%s) does not open the repository in %s, which another passphrase made (another location on the "+
			"same bucket and prefix?). Put that repository's passphrase into the Secret, or give this location a prefix "+
			"of its own. (%v)", v1alpha1.SystemNamespace, key, where, err))
	case errors.Is(err, repo.ErrNewerFormat):
		return fail(metav1.ConditionFalse, "NewerFormat", fmt.Sprintf("the repository in %s has a newer format than this "+
			"pxb reads: upgrade pxb (kubectl pxb install with the newer version) before backing up or restoring here (%v)", where, err))
	case errors.Is(err, repo.ErrNotRepository):
		return fail(metav1.ConditionFalse, "NotARepository", fmt.Sprintf("%s holds something that is not a pxb repository: "+
			"give the location an empty prefix, or remove what is there if nothing needs it (%v)", where, err))
	case err != nil:
		return fail(metav1.ConditionFalse, "Unreadable", location.Explain(err))
	}
	strays, err := r.StrayKeys(rctx)
	if err != nil {
		return fail(metav1.ConditionUnknown, "LookupFailed", location.Explain(err))
	}
	var problems, notes []string
	for _, s := range strays {
		if len(s.Indexes)+len(s.Snapshots) > 0 {
			problems = append(problems, s.Problem())
		} else {
			notes = append(notes, s.Problem())
		}
	}
	for _, s := range r.SkippedKeySlots() {
		notes = append(notes, "key slot "+s.String()+" (skipped: the repository opens through another slot; "+
			"unless someone made it on purpose, delete that object from the bucket)")
	}
	switch {
	case len(problems) > 0:
		return fail(metav1.ConditionFalse, "StrayKeySlots", strings.Join(append(problems, notes...), "; "))
	case len(notes) > 0:
		return fail(metav1.ConditionTrue, "KeySlotNotes", strings.Join(notes, "; "))
	}
	cond.Reason, cond.Message = "Opens", "the repository opens with the location's key"
	return cond
}

// emptyPrefix is the Repository condition of a location whose prefix holds no config: no repository yet,
// which the first backup creates (the probe showed it can write there); unless the prefix holds a pxb
// repository's data without its config, or other objects.
func emptyPrefix(ctx context.Context, b *blob.Bucket, cond metav1.Condition, where string) metav1.Condition {
	it := b.List(&blob.ListOptions{})
	for n := 0; n < 1000; n++ {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, "LookupFailed", truncate(location.Explain(err), 4096)
			return cond
		}
		k := o.Key
		switch {
		case o.IsDir, layout.IsTemp(k), strings.HasPrefix(k, layout.KeysPrefix), strings.HasPrefix(k, layout.LockPrefix),
			strings.HasPrefix(k, layout.ProbePrefix):
			// a lost initialisation's key slot, leases, probe objects
		case strings.HasPrefix(k, layout.DataPrefix), strings.HasPrefix(k, layout.IndexPrefix), strings.HasPrefix(k, layout.SnapshotPrefix):
			cond.Status, cond.Reason = metav1.ConditionFalse, "ConfigMissing"
			cond.Message = fmt.Sprintf("%s holds a pxb repository's objects (%s) but not its %s object: the repository "+
				"cannot be opened, and a backup here would start another one over it. Restore %s from a copy or "+
				"versioning of the bucket; do not back up to this location until then", where, k, layout.Config, layout.Config)
			return cond
		default:
			cond.Status, cond.Reason = metav1.ConditionFalse, "NotARepository"
			cond.Message = fmt.Sprintf("%s holds objects that are not a pxb repository's (%s): give the location an empty "+
				"prefix of its own", where, k)
			return cond
		}
	}
	cond.Reason = "NoRepository"
	cond.Message = "no repository yet: the first backup creates it (the probe object written, read, listed and deleted shows it can)"
	return cond
}

// unusableRepository says whether the Repository condition c leaves the location unusable for backups and
// restores, so that the location is not Available.
func unusableRepository(c metav1.Condition) bool {
	if c.Status != metav1.ConditionFalse {
		return false
	}
	switch c.Reason {
	case "WrongPassphrase", "NewerFormat", "NotARepository", "ConfigMissing":
		return true
	}
	return false
}

// locationEnv builds the clients of a job of kind that works on BackupLocation name, and reads the location.
func locationEnv(ctx context.Context, cfg *rest.Config, name string, kind jobspec.Kind) (*jobenv.Env, *v1alpha1.BackupLocation, error) {
	env, err := jobenv.NewEnvForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	env.Events = jobenv.NewRecorder(env.Kube, kind)
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
