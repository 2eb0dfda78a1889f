package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/console"
)

// UIOptions are the options of `kubectl pxb ui`.
type UIOptions struct {
	Address string
	// AddressSet is true when --address was given: only then may the console listen beyond loopback.
	AddressSet bool
	Port       int
	NoBrowser  bool
	// Contexts are the kubeconfig's contexts to show (--context, comma-separated); empty means all.
	Contexts []string
	Timeout  time.Duration
	// ActionTimeout bounds a backup's creation or deletion from the console.
	ActionTimeout time.Duration

	warning  string
	raw      clientcmdapi.Config
	access   clientcmd.ConfigAccess
	clusters []console.Cluster
	clients  map[string]clients
	genericiooptions.IOStreams
}

// NewCmdUI returns `kubectl pxb ui`.
func NewCmdUI(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &UIOptions{IOStreams: streams, Address: "127.0.0.1", Timeout: 5 * time.Second, ActionTimeout: 2 * time.Minute}
	cmd := &cobra.Command{
		Use:   "ui [--port PORT] [--no-browser]",
		Short: "Open a web console over every cluster of your kubeconfig",
		Long: `Serve a web console on this machine and open it in the browser: every context of the kubeconfig (or those of
--context, comma-separated), whether it answers and runs pxb, its backups and locations, updated live, and
forms to create and delete backups.

The console speaks to each cluster with your kubeconfig's own credentials, so it shows and does what you may
do. It listens on 127.0.0.1 and prints a URL with a secret token; a request without the token is refused.
Ctrl-C stops it.`,
		Example: `  # Open the console over every context
  kubectl pxb ui

  # Two contexts, on a fixed port, without opening a browser
  kubectl pxb ui --context prod,staging --port 8765 --no-browser`,
		Args: cobra.NoArgs,
		RunE: runE(f, o),
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Address, "address", o.Address, "Address to listen on; one other than loopback makes the console reachable from the network.")
	fl.IntVar(&o.Port, "port", 0, "Port to listen on (default: a free port).")
	fl.BoolVar(&o.NoBrowser, "no-browser", false, "Print the URL without opening a browser.")
	fl.DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for each cluster's answer.")
	return cmd
}

// Complete reads the kubeconfig and builds the clients of each context shown.
func (o *UIOptions) Complete(f cmdutil.Factory, cmd *cobra.Command, _ []string) error {
	o.AddressSet = cmd.Flags().Changed("address")
	// kubectl's --context names one context; the console takes a comma-separated list.
	if ctxs, err := cmd.Flags().GetString("context"); err == nil && ctxs != "" {
		o.Contexts = strings.Split(ctxs, ",")
	}
	loader := f.ToRawKubeConfigLoader()
	var err error
	if o.raw, err = loader.RawConfig(); err != nil {
		return fmt.Errorf("read kubeconfig: %w", err)
	}
	o.access = loader.ConfigAccess()
	names := o.Contexts
	if len(names) == 0 {
		for n := range o.raw.Contexts {
			names = append(names, n)
		}
		slices.Sort(names)
	}
	o.clients = map[string]clients{}
	for _, n := range names {
		kc, ok := o.raw.Contexts[n]
		if !ok {
			return fmt.Errorf("--context: the kubeconfig has no context %q", n)
		}
		c := console.Cluster{Name: n, Namespace: orDefault(kc.Namespace, "default")}
		cl, err := o.newClients(n)
		if err != nil {
			c.ConfigError = err.Error()
		} else {
			c.Config = cl.Config
			o.clients[n] = cl
		}
		o.clusters = append(o.clusters, c)
	}
	return nil
}

func (o *UIOptions) clientConfig(name string) clientcmd.ClientConfig {
	return clientcmd.NewNonInteractiveClientConfig(o.raw, name, &clientcmd.ConfigOverrides{}, o.access)
}

func (o *UIOptions) newClients(name string) (clients, error) {
	cfg, err := o.clientConfig(name).ClientConfig()
	if err != nil {
		return clients{}, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return clients{}, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return clients{}, err
	}
	return clients{Config: cfg, Kube: kube, Dynamic: dyn}, nil
}

// Validate checks the port, the timeouts and that the address is loopback unless given explicitly.
func (o *UIOptions) Validate() error {
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("--port %d: give a port from 1 to 65535, or 0 for a free one", o.Port)
	}
	if o.Timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	if len(o.clusters) == 0 {
		return errors.New("the kubeconfig has no context to show")
	}
	var err error
	o.warning, err = console.CheckAddress(o.Address, o.AddressSet)
	return err
}

// Run serves the console until Ctrl-C or the context ends.
func (o *UIOptions) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	token, err := console.NewToken()
	if err != nil {
		return err
	}
	srv, err := console.New(console.Options{Token: token, Host: o.Address, Clusters: o.clusters, Backend: o,
		Timeout: o.Timeout, ActionTimeout: o.ActionTimeout})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(o.Address, strconv.Itoa(o.Port)))
	if err != nil {
		return fmt.Errorf("--address, --port: %w", err)
	}
	if o.warning != "" {
		fmt.Fprintln(o.ErrOut, o.warning)
	}
	url := "http://" + l.Addr().String() + "/?token=" + token
	fmt.Fprintf(o.Out, "pxb console: %s\nPress Ctrl-C to stop it.\n", url)
	if !o.NoBrowser {
		if err := openBrowser(url); err != nil {
			fmt.Fprintf(o.ErrOut, "could not open a browser (%v): open the URL above\n", err)
		}
	}
	return srv.Serve(ctx, l)
}

// openBrowser opens url in the desktop's browser, without waiting for it.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// Inspect reads a context as `kubectl pxb cluster list` does.
func (o *UIOptions) Inspect(ctx context.Context, name string) console.Status {
	info := (&ClusterListOptions{Timeout: o.Timeout}).inspect(ctx, o.clientConfig(name), name)
	return console.Status{Reachable: info.Reachable, Installed: info.Installed, Version: info.Version, Error: info.Error}
}

// CreateBackup runs `kubectl pxb backup create` with the form's values in context name.
func (o *UIOptions) CreateBackup(ctx context.Context, name string, req console.BackupRequest) (string, error) {
	c, ok := o.clients[name]
	if !ok {
		return "", fmt.Errorf("context %s: no client could be made of it", name)
	}
	var out bytes.Buffer
	b := &BackupCreateOptions{
		Name:      req.Name,
		Location:  req.Location,
		Create:    newCreateFlags(),
		Timeout:   o.ActionTimeout,
		clients:   c,
		IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out},
	}
	b.IncludeNamespaces, b.Selector = req.IncludeNamespaces, req.Selector
	if req.Namespace != "" {
		b.setNamespace(req.Namespace, true)
	} else {
		b.setNamespace(orDefault(o.raw.Contexts[name].Namespace, "default"), false)
	}
	if err := b.Validate(); err != nil {
		return "", err
	}
	err := b.Run(ctx)
	return out.String(), err
}

// RestoreBackup runs `kubectl pxb restore create --from-backup` with the form's values in context name; the
// Restore lives in its Backup's namespace.
func (o *UIOptions) RestoreBackup(ctx context.Context, name, namespace, backup string, req console.RestoreRequest) (string, error) {
	c, ok := o.clients[name]
	if !ok {
		return "", fmt.Errorf("context %s: no client could be made of it", name)
	}
	var out bytes.Buffer
	r := &RestoreCreateOptions{
		Name:                   req.Name,
		Namespace:              namespace,
		NamespaceSet:           true,
		FromBackup:             backup,
		NamespaceMappings:      req.NamespaceMappings,
		ExistingResourcePolicy: orDefault(req.ExistingResourcePolicy, "retain"),
		RestoreVolumes:         true,
		Create:                 newCreateFlags(),
		Timeout:                o.ActionTimeout,
		clients:                c,
		now:                    time.Now,
		IOStreams:              genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out},
	}
	r.defaultName()
	if err := r.Validate(); err != nil {
		return "", err
	}
	err := r.Run(ctx)
	return out.String(), err
}

// SuspendSchedule sets spec.suspend of a BackupSchedule in context name, as schedule create --suspend does:
// its CronJobs go on starting, and their job takes no backup while the schedule is suspended.
func (o *UIOptions) SuspendSchedule(ctx context.Context, name, namespace, schedule string, suspend bool) (string, error) {
	c, ok := o.clients[name]
	if !ok {
		return "", fmt.Errorf("context %s: no client could be made of it", name)
	}
	var cur v1alpha1.BackupSchedule
	if err := getTyped(ctx, c, v1alpha1.BackupSchedulesResource, "BackupSchedule", namespace, schedule, &cur); err != nil {
		return "", err
	}
	bs := &v1alpha1.BackupSchedule{TypeMeta: cur.TypeMeta, ObjectMeta: metav1.ObjectMeta{Name: cur.Name, Namespace: cur.Namespace, Labels: cur.Labels}, Spec: cur.Spec}
	bs.Spec.Suspend = suspend
	saved, verb, err := applySchedule(ctx, c, bs, nil)
	if err != nil {
		return "", err
	}
	state := "resumed"
	if saved.Spec.Suspend {
		state = "suspended"
	}
	return fmt.Sprintf("BackupSchedule %s/%s %s (%s)", saved.Namespace, saved.Name, verb, state), nil
}

// DeleteBackup runs `kubectl pxb backup delete --yes` in context name.
func (o *UIOptions) DeleteBackup(ctx context.Context, name, namespace, backup string) (string, error) {
	c, ok := o.clients[name]
	if !ok {
		return "", fmt.Errorf("context %s: no client could be made of it", name)
	}
	var out bytes.Buffer
	d := &DeleteOptions{
		ObjectOptions: ObjectOptions{Name: backup, Namespace: namespace, clients: c,
			IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}},
		Yes:     true,
		Timeout: o.ActionTimeout,
	}
	if err := d.Validate(); err != nil {
		return "", err
	}
	err := d.Run(ctx)
	return out.String(), err
}
