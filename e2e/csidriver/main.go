// Command csidriver is the e2e cluster's CSI driver: volumes are directories on the node, snapshots and
// clones are full copies (so a snapshot keeps its bytes while the source changes), node publish is a bind
// mount. It registers with the kubelet through the plugins registry and, with -kubeconfig, also runs the
// dynamic provisioner for its StorageClasses in the same process. Single node only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

func main() {
	var (
		d          driver
		endpoint   = flag.String("endpoint", "", "unix socket path of the CSI services")
		registry   = flag.String("registry-dir", "", "the kubelet's plugins_registry directory (empty: do not register)")
		kubeconfig = flag.String("kubeconfig", "", "kubeconfig for the provisioner (empty: no provisioner)")
	)
	flag.StringVar(&d.name, "name", "", "driver name")
	flag.StringVar(&d.nodeID, "node-id", "", "node name")
	flag.StringVar(&d.dataDir, "data-dir", "", "directory holding volumes and snapshots")
	flag.BoolVar(&d.snapshots, "snapshots", true, "offer snapshots (CreateSnapshot/DeleteSnapshot)")
	klog.InitFlags(nil)
	flag.Parse()
	if d.name == "" || d.nodeID == "" || d.dataDir == "" || *endpoint == "" {
		klog.Error("-name, -node-id, -data-dir and -endpoint are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, &d, *endpoint, *registry, *kubeconfig); err != nil {
		klog.ErrorS(err, "csidriver failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, d *driver, endpoint, registry, kubeconfig string) error {
	for _, dir := range []string{d.volumesDir(), d.snapshotsDir()} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	csiSrv := grpc.NewServer(grpc.UnaryInterceptor(logCalls))
	csi.RegisterIdentityServer(csiSrv, d)
	csi.RegisterControllerServer(csiSrv, d)
	csi.RegisterNodeServer(csiSrv, d)
	errc := make(chan error, 3)
	if err := serve(csiSrv, endpoint, errc); err != nil {
		return err
	}
	defer csiSrv.Stop()

	if registry != "" {
		regSrv := grpc.NewServer()
		registerapi.RegisterRegistrationServer(regSrv, &registration{name: d.name, endpoint: endpoint})
		if err := serve(regSrv, filepath.Join(registry, d.name+"-reg.sock"), errc); err != nil {
			return err
		}
		defer regSrv.Stop()
	}
	if kubeconfig != "" {
		p, err := newProvisioner(ctx, d, kubeconfig)
		if err != nil {
			return err
		}
		go func() { p.Run(ctx); errc <- nil }()
	}
	klog.InfoS("csidriver running", "name", d.name, "endpoint", endpoint)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// serve listens on a fresh unix socket at path; a stale socket from a crashed run is removed first.
func serve(srv *grpc.Server, path string, errc chan<- error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("create socket dir: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen %s: %w", path, err)
	}
	go func() { errc <- srv.Serve(l) }()
	return nil
}

func logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		klog.ErrorS(err, "call failed", "method", info.FullMethod)
	} else {
		klog.V(2).InfoS("call", "method", info.FullMethod)
	}
	return resp, err
}

// registration answers the kubelet's plugin watcher, which finds our socket in plugins_registry.
type registration struct {
	registerapi.UnimplementedRegistrationServer
	name, endpoint string
}

func (r *registration) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{Type: registerapi.CSIPlugin, Name: r.name, Endpoint: r.endpoint, SupportedVersions: []string{"1.0.0"}}, nil
}

func (r *registration) NotifyRegistrationStatus(_ context.Context, s *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if !s.PluginRegistered {
		klog.ErrorS(errors.New(s.Error), "kubelet refused the plugin registration")
	} else {
		klog.InfoS("registered with the kubelet", "name", r.name)
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}
