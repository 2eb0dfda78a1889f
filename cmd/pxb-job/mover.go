package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
)

func newUploadCmd(target *jobspec.Ref) *cobra.Command {
	return newMoverCmd(target, jobspec.KindUpload, v1alpha1.BackupsResource.Resource,
		"Copy one volume's files into the repository of a Backup's location", jobs.Upload)
}

func newDownloadCmd(target *jobspec.Ref) *cobra.Command {
	return newMoverCmd(target, jobspec.KindDownload, v1alpha1.RestoresResource.Resource,
		"Write one volume snapshot's files into a new volume for a Restore", jobs.Download)
}

// newMoverCmd is a data-mover job kind: it moves one volume of a Backup or Restore and reports the outcome
// as its termination message, where the job that launched it reads it.
func newMoverCmd(target *jobspec.Ref, kind jobspec.Kind, resource, short string,
	run func(ctx context.Context, cfg *rest.Config, req jobs.MoverRequest, opts jobs.Options) (*jobs.MoverResult, error)) *cobra.Command {
	var req jobs.MoverRequest
	var method string
	var uploadLimit int64
	cmd := &cobra.Command{
		Use:   string(kind),
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, opts, err := prepare(target, kind, resource)
			if err != nil {
				return report(err)
			}
			req.Namespace, req.Name, req.Method = target.Namespace, target.Name, v1alpha1.VolumeMethod(method)
			opts.Location.UploadLimit = uploadLimit
			res, err := run(cmd.Context(), env.Config, req, opts)
			if err != nil {
				return report(err)
			}
			return writeResult(res)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Volume, "volume", "", "The claim whose data moves, as namespace/name in the backup.")
	fl.StringVar(&req.Path, "path", jobspec.MoverPath, "Where the volume is mounted (its device, with --block).")
	fl.BoolVar(&req.Block, "block", false, "The volume is a raw block device: its bytes move, not files.")
	fl.StringVar(&req.SecretsDir, "secrets-dir", "", "Where the location's Secrets are mounted, one directory each; empty reads them through the API.")
	if kind == jobspec.KindUpload {
		fl.StringVar(&method, "method", string(v1alpha1.VolumeSnapshot), "How the volume is mounted: Snapshot (a volume made from a snapshot) or FileSystem (the live volume).")
		fl.Int64Var(&uploadLimit, "upload-limit", 0, "Bytes per second written into the repository, at most; 0 is no limit.")
	} else {
		fl.StringVar(&req.Snapshot, "snapshot", "", "The repository snapshot to write.")
	}
	return cmd
}

// writeResult prints a job's result as JSON and makes it the termination message, where whoever launched the
// Job reads it (jobspec.Output).
func writeResult(res any) error {
	data, err := json.Marshal(res)
	if err != nil {
		return report(err)
	}
	fmt.Println(string(data))
	// Outside a pod the file does not exist; the result is printed anyway.
	if _, err := os.Stat(terminationLog); err == nil {
		return os.WriteFile(terminationLog, data, 0o644)
	}
	return nil
}
