package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobrun"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/runjob"
)

// terminationLog is read by the kubelet into the pod's status when the container ends, so that a failed
// Job's reason reaches `kubectl pxb ... --wait` without reading logs.
const terminationLog = "/dev/termination-log"

func newBackupCmd(target *jobrun.Target) *cobra.Command {
	return newObjectCmd(target, "backup", v1alpha1.BackupsResource.Resource,
		"Back up the objects a Backup selects into its location", runjob.Backup)
}

func newRestoreCmd(target *jobrun.Target) *cobra.Command {
	return newObjectCmd(target, "restore", v1alpha1.RestoresResource.Resource,
		"Restore the objects of a Backup as a Restore says", runjob.Restore)
}

// newObjectCmd is a job kind that carries out one Backup or Restore, named by --namespace and --name.
func newObjectCmd(target *jobrun.Target, use, resource, short string,
	run func(ctx context.Context, cfg *rest.Config, ns, name string, opts runjob.Options) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, opts, err := prepare(target, use, resource)
			if err != nil {
				return report(err)
			}
			return report(run(cmd.Context(), env.Config, target.Namespace, target.Name, opts))
		},
	}
}

// prepare checks the target of job kind use, which works on resource, and builds the job's clients and
// options.
func prepare(target *jobrun.Target, use, resource string) (*jobrun.Env, runjob.Options, error) {
	opts := runjob.Options{Location: location.Options{NFSMountPath: jobspec.NFSMountPath}}
	if target.Resource == "" {
		target.Resource = resource
	}
	if target.Resource != resource {
		return nil, opts, fmt.Errorf("pxb-job %s works on %s, not %s", use, resource, target.Resource)
	}
	if err := target.Validate(); err != nil {
		return nil, opts, err
	}
	env, err := jobrun.NewEnv()
	return env, opts, err
}

// report writes a failure's reason where the kubelet picks it up, and returns it.
func report(err error) error {
	if err != nil {
		// Outside a pod the file does not exist; the error is printed anyway.
		_ = os.WriteFile(terminationLog, []byte(err.Error()), 0o644)
	}
	return err
}
