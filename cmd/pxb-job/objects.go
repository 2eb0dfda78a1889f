package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/location"
)

// terminationLog is read by the kubelet into the pod's status when the container ends, so that a failed
// Job's reason reaches `kubectl pxb ... --wait` without reading logs.
const terminationLog = "/dev/termination-log"

func newBackupCmd(target *jobspec.Ref) *cobra.Command {
	return newObjectCmd(target, jobspec.KindBackup, v1alpha1.BackupsResource.Resource,
		"Back up the objects a Backup selects into its location", jobs.Backup)
}

func newRestoreCmd(target *jobspec.Ref) *cobra.Command {
	return newObjectCmd(target, jobspec.KindRestore, v1alpha1.RestoresResource.Resource,
		"Restore the objects of a Backup as a Restore says", jobs.Restore)
}

// newObjectCmd is a job kind that carries out one Backup or Restore, named by --namespace and --name.
func newObjectCmd(target *jobspec.Ref, kind jobspec.Kind, resource, short string,
	run func(ctx context.Context, cfg *rest.Config, ns, name string, opts jobs.Options) error) *cobra.Command {
	return &cobra.Command{
		Use:   string(kind),
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, opts, err := prepare(target, kind, resource)
			if err != nil {
				return report(err)
			}
			return report(run(cmd.Context(), env.Config, target.Namespace, target.Name, opts))
		},
	}
}

// prepare checks the target of job kind kind, which works on resource, and builds the job's clients and
// options.
func prepare(target *jobspec.Ref, kind jobspec.Kind, resource string) (*jobenv.Env, jobs.Options, error) {
	opts := jobs.Options{Location: location.Options{NFSMountPath: jobspec.NFSMountPath}}
	if target.Resource == "" {
		target.Resource = resource
	}
	if target.Resource != resource {
		return nil, opts, fmt.Errorf("pxb-job %s works on %s, not %s", kind, resource, target.Resource)
	}
	if err := target.Validate(); err != nil {
		return nil, opts, err
	}
	env, err := jobenv.NewEnv()
	if err != nil {
		return nil, opts, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return env, opts, env.CheckUID(ctx, *target)
}

// report writes a failure's reason where the kubelet picks it up, and returns it.
func report(err error) error {
	if err != nil {
		// Outside a pod the file does not exist; the error is printed anyway.
		_ = os.WriteFile(terminationLog, []byte(err.Error()), 0o644)
	}
	return err
}
