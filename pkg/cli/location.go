package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/store"
)

// NewCmdLocation returns `kubectl pxb location`.
func NewCmdLocation(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "location",
		Aliases: []string{"locations", "bl"},
		Short:   "Manage backup locations: where backups are stored",
	}
	cmd.AddCommand(newCmdLocationCreate(f, streams), newCmdLocationGet(f, streams), newCmdLocationDescribe(f, streams),
		newCmdLocationDelete(f, streams), newCmdLocationExportKey(f, streams), newCmdLocationRotateKey(f, streams),
		newCmdLocationCheck(f, streams), newCmdLocationSync(f, streams), newCmdLocationMaintain(f, streams))
	return cmd
}

// LocationCreateOptions are the options of `kubectl pxb location create`.
type LocationCreateOptions struct {
	Name              string
	Spec              v1alpha1.BackupLocationSpec
	Credential        string
	EncryptionKey     string
	PassphraseFile    string
	CACertFile        string
	AllowedNamespaces []string
	// Create are --dry-run and -o.
	Create createFlags

	// provider is --provider, made Spec.Provider by Complete.
	provider   string
	passphrase []byte
	client     clients
	genericiooptions.IOStreams
}

func newCmdLocationCreate(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &LocationCreateOptions{IOStreams: streams, Create: newCreateFlags()}
	o.Spec.NFS = &v1alpha1.NFSLocation{}
	cmd := &cobra.Command{
		Use:   "create NAME --provider s3|azure|gcs|nfs",
		Short: "Create a backup location, with its own encryption key",
		Long: `Create a BackupLocation in pxb-system.

Every location encrypts what it stores under its own random key, wrapped by a passphrase kept in a Secret.
Without --encryption-passphrase-file a strong passphrase is generated. Keep a copy of it (kubectl pxb
location export-key): without it, nobody can read the backups, pxb included.`,
		Example: `  kubectl pxb location create prod --provider s3 --bucket backups --region eu-west-1 --credential s3-prod
  kubectl pxb location create lab --provider s3 --bucket pxb --endpoint http://minio.lab:9000 --s3-force-path-style --credential lab
  kubectl pxb location create blob --provider azure --bucket backups --storage-account acme --credential azure-prod
  kubectl pxb location create gcs --provider gcs --bucket acme-backups --credential gcs-prod
  kubectl pxb location create filer --provider nfs --nfs-server filer.lab --nfs-path /export/backups

  # Have the API server check the BackupLocation without storing it
  kubectl pxb location create prod --provider s3 --bucket backups --region eu-west-1 --credential s3-prod --dry-run=server`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	fl := cmd.Flags()
	fl.StringVar(&o.provider, "provider", o.provider, "Where the data goes: s3, azure, gcs or nfs.")
	fl.StringVar(&o.Spec.Bucket, "bucket", "", "The S3 or GCS bucket, or the Azure container.")
	fl.StringVar(&o.Spec.Prefix, "prefix", "", "Path inside the bucket or export under which backups are stored.")
	fl.StringVar(&o.Spec.Region, "region", "", "S3 region.")
	fl.StringVar(&o.Spec.Endpoint, "endpoint", "", "Service URL of an S3-compatible store, an Azure service URL, or a GCS endpoint.")
	fl.BoolVar(&o.Spec.S3ForcePathStyle, "s3-force-path-style", false, "Address S3 buckets in the path (most S3-compatible stores need this).")
	fl.StringVar(&o.Spec.StorageAccount, "storage-account", "", "Azure storage account.")
	fl.BoolVar(&o.Spec.InsecureSkipTLSVerify, "insecure-skip-tls-verify", false, "Do not verify the endpoint's TLS certificate (tests only).")
	fl.StringVar(&o.CACertFile, "cacert", "", "PEM file of the CA that signed the endpoint's certificate.")
	fl.StringVar(&o.Credential, "credential", "", "Credential (kubectl pxb credential create) to use; none means the cluster's workload identity.")
	fl.StringVar(&o.EncryptionKey, "encryption-key-secret", "", "Existing Secret in pxb-system holding the passphrase (key \"passphrase\"), e.g. to read another cluster's location.")
	fl.StringVar(&o.PassphraseFile, "encryption-passphrase-file", "", "File (- for standard input) holding the passphrase; a new Secret is made from it.")
	fl.Int32Var(&o.Spec.ObjectLockDays, "object-lock-days", 0, "Keep every object written immutable for this many days (S3 buckets with object lock, GCS buckets with object retention, Azure containers with version-level immutability).")
	fl.StringSliceVar(&o.AllowedNamespaces, "allowed-namespaces", nil, "Namespaces whose own Backups may use this location (\"*\" for all); admins in pxb-system always may.")
	fl.StringVar(&o.Spec.NFS.Server, "nfs-server", "", "NFS server.")
	fl.StringVar(&o.Spec.NFS.Path, "nfs-path", "", "Exported path on the NFS server.")
	fl.StringVar(&o.Spec.NFS.SubPath, "nfs-sub-path", "", "Directory inside the export.")
	fl.StringSliceVar(&o.Spec.NFS.MountOptions, "nfs-mount-options", nil, "NFS mount options, e.g. nfsvers=4.1,hard.")
	o.Create.AddFlags(cmd)
	return cmd
}

// Complete reads files and fills defaults.
func (o *LocationCreateOptions) Complete(f cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Spec.Provider = v1alpha1.Provider(o.provider)
	o.Name = args[0]
	if o.Spec.Provider != v1alpha1.ProviderNFS {
		o.Spec.NFS = nil
	}
	if o.CACertFile != "" {
		pem, err := os.ReadFile(o.CACertFile)
		if err != nil {
			return fmt.Errorf("--cacert: %w", err)
		}
		o.Spec.CACert = string(pem)
	}
	var err error
	if o.AllowedNamespaces != nil {
		if o.Spec.AllowedNamespaces, err = namespacePatterns("--allowed-namespaces", o.AllowedNamespaces, true); err != nil {
			return err
		}
	}
	if o.Credential != "" {
		o.Spec.Credential = &v1alpha1.SecretReference{Name: o.Credential}
	}
	switch {
	case o.EncryptionKey != "" && o.PassphraseFile != "":
		return fmt.Errorf("--encryption-key-secret and --encryption-passphrase-file are mutually exclusive")
	case o.EncryptionKey != "":
		o.Spec.EncryptionKey = v1alpha1.SecretReference{Name: o.EncryptionKey}
	default:
		o.Spec.EncryptionKey = v1alpha1.SecretReference{Name: o.Name + "-encryption-key"}
		if o.passphrase, err = readPassphrase(o.PassphraseFile, o.In); err != nil {
			return err
		}
	}
	if _, _, err := o.Create.dryRunStrategy(); err != nil || o.Create.clientOnly() {
		return err
	}
	o.client, err = newClients(f)
	return err
}

// readPassphrase reads a passphrase from file (- is stdin), or makes a new random one.
func readPassphrase(file string, in io.Reader) ([]byte, error) {
	if file == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("generate passphrase: %w", err)
		}
		return []byte(base64.RawURLEncoding.EncodeToString(b)), nil
	}
	r := in
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("--encryption-passphrase-file: %w", err)
		}
		defer fh.Close()
		r = fh
	}
	raw, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return nil, fmt.Errorf("--encryption-passphrase-file: %w", err)
	}
	p := strings.TrimRight(string(raw), "\r\n")
	if len(p) < 12 {
		return nil, fmt.Errorf("--encryption-passphrase-file: the passphrase has %d characters; use at least 12", len(p))
	}
	return []byte(p), nil
}

// Validate checks what the API server's schema cannot: that referenced Secrets exist.
func (o *LocationCreateOptions) Validate() error {
	if errs := validation.IsDNS1123Subdomain(o.Name); len(errs) > 0 {
		return fmt.Errorf("NAME %q: %s", o.Name, strings.Join(errs, "; "))
	}
	if o.Spec.Provider == "" {
		return fmt.Errorf("--provider is required: s3, azure, gcs or nfs")
	}
	return o.Create.Validate(false)
}

// Run creates the encryption key Secret (when pxb makes it) and the BackupLocation.
func (o *LocationCreateOptions) Run(ctx context.Context) error {
	loc := &v1alpha1.BackupLocation{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "BackupLocation"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: v1alpha1.SystemNamespace},
		Spec:       o.Spec,
	}
	if o.Create.clientOnly() {
		return o.Create.print(loc, "created", o.Out)
	}
	if o.Credential != "" {
		if _, err := listCredentials(ctx, o.client, []string{o.Credential}); err != nil {
			return fmt.Errorf("--credential: %w", err)
		}
	}
	secrets := o.client.Kube.CoreV1().Secrets(v1alpha1.SystemNamespace)
	if o.passphrase == nil {
		gctx, cancel := context.WithTimeout(ctx, clusterTimeout)
		defer cancel()
		s, err := secrets.Get(gctx, o.EncryptionKey, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("--encryption-key-secret %s: %w", o.EncryptionKey, err)
		}
		if len(s.Data[v1alpha1.EncryptionKeySecretKey]) == 0 {
			return fmt.Errorf("--encryption-key-secret %s has no %q key", o.EncryptionKey, v1alpha1.EncryptionKeySecretKey)
		}
	}
	// The location first, so that a rejected spec leaves no orphaned key behind.
	out, err := createObject(ctx, o.client.Dynamic, v1alpha1.BackupLocationsResource, "BackupLocation", loc, o.Create.createOptions())
	if err != nil {
		return err
	}
	if o.passphrase != nil {
		key := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: o.Spec.EncryptionKey.Name, Namespace: v1alpha1.SystemNamespace,
				Labels: map[string]string{v1alpha1.EncryptionKeyLabel: o.Name},
				// Owned by nothing on purpose: deleting the location must not delete the only key to its data.
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{v1alpha1.EncryptionKeySecretKey: o.passphrase},
		}
		cctx, cancel := context.WithTimeout(ctx, clusterTimeout)
		defer cancel()
		if _, err := secrets.Create(cctx, key, o.Create.createOptions()); err != nil {
			if apierrors.IsAlreadyExists(err) {
				err = fmt.Errorf("Secret %s already exists: pass --encryption-key-secret %s to use it", key.Name, key.Name)
			}
			if !o.Create.serverDryRun() {
				_ = o.client.Dynamic.Resource(v1alpha1.BackupLocationsResource).Namespace(v1alpha1.SystemNamespace).
					Delete(context.WithoutCancel(ctx), out.GetName(), metav1.DeleteOptions{})
			}
			return fmt.Errorf("encryption key of location %s: %w", o.Name, err)
		}
		msgs := o.Out
		if o.Create.printing() {
			msgs = o.ErrOut
		}
		if !o.Create.serverDryRun() {
			fmt.Fprintf(msgs, "encryption passphrase stored in Secret %s/%s: keep a copy somewhere safe\n", v1alpha1.SystemNamespace, key.Name)
		}
	}
	return o.Create.print(out, "created", o.Out)
}

// systemObjectOptions are the options of the commands that act on one named object of pxb-system: a
// BackupLocation, a credential.
type systemObjectOptions struct {
	Name string

	client clients
	genericiooptions.IOStreams
}

// Complete names the object and builds the clients.
func (o *systemObjectOptions) Complete(f cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	var err error
	o.client, err = newClients(f)
	return err
}

// Validate has nothing to check: the object is looked up by the name given.
func (o *systemObjectOptions) Validate() error { return nil }

// LocationGetOptions are the options of `kubectl pxb location get`.
type LocationGetOptions struct {
	Names      []string
	PrintFlags *PrintFlags

	client clients
	genericiooptions.IOStreams
}

func newCmdLocationGet(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &LocationGetOptions{PrintFlags: NewPrintFlags(), IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "get [NAME...]",
		Short: "List backup locations",
		RunE:  runE(f, o),
	}
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Complete names the locations and builds the clients.
func (o *LocationGetOptions) Complete(f cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Names = args
	var err error
	o.client, err = newClients(f)
	return err
}

// Validate has nothing to check: Run's printer refuses an unknown -o.
func (o *LocationGetOptions) Validate() error { return nil }

// Run prints the locations as a table, or in the -o format.
func (o *LocationGetOptions) Run(ctx context.Context) error {
	c, args := o.client, o.Names
	p, err := o.PrintFlags.ToPrinter()
	if err != nil {
		return err
	}
	if o.PrintFlags.IsTable() {
		t, err := getTable(ctx, c.Kube, v1alpha1.BackupLocationsResource, v1alpha1.SystemNamespace, args, "")
		if err != nil {
			return fmt.Errorf("get backup locations: %w", err)
		}
		return p.PrintObj(t, o.Out)
	}
	locs, err := listLocations(ctx, c)
	if err != nil {
		return err
	}
	list := &v1alpha1.BackupLocationList{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "BackupLocationList"}}
	for _, l := range locs {
		if len(args) == 0 || slices.Contains(args, l.Name) {
			l.SetGroupVersionKind(v1alpha1.SchemeGroupVersion.WithKind("BackupLocation"))
			list.Items = append(list.Items, l)
		}
	}
	return p.PrintObj(list, o.Out)
}

// listLocations reads every BackupLocation in pxb-system.
func listLocations(ctx context.Context, c clients) ([]v1alpha1.BackupLocation, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	ul, err := c.Dynamic.Resource(v1alpha1.BackupLocationsResource).Namespace(v1alpha1.SystemNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list backup locations: %w", err)
	}
	var out []v1alpha1.BackupLocation
	for _, u := range ul.Items {
		var l v1alpha1.BackupLocation
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &l); err != nil {
			return nil, fmt.Errorf("decode BackupLocation %s: %w", u.GetName(), err)
		}
		out = append(out, l)
	}
	return out, nil
}

// backupsUsing lists "namespace/name" of the Backups, in every namespace, stored in location name.
func backupsUsing(ctx context.Context, c clients, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	ul, err := c.Dynamic.Resource(v1alpha1.BackupsResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []string
	for _, u := range ul.Items {
		if loc, _, _ := unstructured.NestedString(u.Object, "spec", "location"); loc == name {
			out = append(out, u.GetNamespace()+"/"+u.GetName())
		}
	}
	return out, nil
}

// LocationDescribeOptions are the options of `kubectl pxb location describe`.
type LocationDescribeOptions struct{ systemObjectOptions }

func newCmdLocationDescribe(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &LocationDescribeOptions{systemObjectOptions{IOStreams: streams}}
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a backup location: where, how, its state and the backups it holds",
		Args:  cobra.ExactArgs(1),
		RunE:  runE(f, o),
	}
}

// Run prints the location: where, how, its state and the number of backups it holds.
func (o *LocationDescribeOptions) Run(ctx context.Context) error {
	c := o.client
	l, err := store.GetLocation(ctx, c.Dynamic, o.Name)
	if err != nil {
		return err
	}
	backups, err := backupsUsing(ctx, c, l.Name)
	if err != nil {
		return err
	}
	w := newTabWriter(o.Out)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%s:\t%s\n", k, v)
		}
	}
	row("Name", l.Name)
	row("Provider", string(l.Spec.Provider))
	row("Bucket", l.Spec.Bucket)
	row("Prefix", l.Spec.Prefix)
	row("Region", l.Spec.Region)
	row("Endpoint", l.Spec.Endpoint)
	row("Storage account", l.Spec.StorageAccount)
	if l.Spec.NFS != nil {
		row("NFS", l.Spec.NFS.Server+":"+l.Spec.NFS.Path)
		row("NFS sub-path", l.Spec.NFS.SubPath)
	}
	if l.Spec.Credential != nil {
		row("Credential", l.Spec.Credential.Name)
	} else {
		row("Credential", "<workload identity>")
	}
	row("Encryption key", "Secret "+v1alpha1.SystemNamespace+"/"+l.Spec.EncryptionKey.Name)
	if l.Spec.ObjectLockDays > 0 {
		row("Object lock", fmt.Sprintf("%d days", l.Spec.ObjectLockDays))
	}
	if l.Spec.CACert != "" {
		row("TLS", "custom CA")
	} else if l.Spec.InsecureSkipTLSVerify {
		row("TLS", "NOT VERIFIED")
	}
	phase := string(l.Status.Phase)
	if phase == "" {
		phase = "Unchecked"
	}
	row("Phase", phase)
	row("Message", l.Status.Message)
	if t := l.Status.LastValidationTime; t != nil {
		row("Last checked", t.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	if c := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionSynced); c != nil {
		row("Synced", c.Message)
	}
	if t := l.Status.LastSyncTime; t != nil {
		row("Last synced", t.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	row("Sync schedule", scheduleRow(ctx, c, jobspec.KindSync, l.Name))
	if c := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionMaintained); c != nil {
		row("Maintenance", c.Message)
	}
	if t := l.Status.LastMaintenanceTime; t != nil {
		row("Last maintained", t.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	if t := l.Status.LastDataReadTime; t != nil {
		row("Data last read", t.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	row("Maintenance schedule", scheduleRow(ctx, c, jobspec.KindMaintenance, l.Name))
	row("Backups", fmt.Sprint(len(backups)))
	return w.Flush()
}

// LocationDeleteOptions are the options of `kubectl pxb location delete`.
type LocationDeleteOptions struct {
	systemObjectOptions
	KeepBackups bool
}

func newCmdLocationDelete(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &LocationDeleteOptions{systemObjectOptions: systemObjectOptions{IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a backup location; the data in the bucket and the encryption key are kept",
		Long: `Delete a BackupLocation. Nothing in the bucket is deleted, and neither is the encryption key Secret, so the
location can be created again (here or in another cluster) and its backups read.

While Backup resources refer to the location it refuses, unless --keep-backups says to leave those Backups
in place (they cannot be restored until the location exists again).`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	cmd.Flags().BoolVar(&o.KeepBackups, "keep-backups", false, "Delete the location even though Backups refer to it.")
	return cmd
}

// Run deletes the location unless Backups refer to it and --keep-backups is not given, then the volumes
// through which Jobs mounted its NFS export.
func (o *LocationDeleteOptions) Run(ctx context.Context) error {
	c, name := o.client, o.Name
	backups, err := backupsUsing(ctx, c, name)
	if err != nil {
		return err
	}
	if len(backups) > 0 && !o.KeepBackups {
		shown := backups
		if len(shown) > 5 {
			shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(backups)-5))
		}
		return fmt.Errorf("location %s holds %d backup(s) (%s): delete them with kubectl pxb backup delete, or pass --keep-backups",
			name, len(backups), strings.Join(shown, ", "))
	}
	dctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	err = c.Dynamic.Resource(v1alpha1.BackupLocationsResource).Namespace(v1alpha1.SystemNamespace).Delete(dctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("BackupLocation %q not found in %s", name, v1alpha1.SystemNamespace)
	}
	if err != nil {
		return fmt.Errorf("delete BackupLocation %s: %w", name, err)
	}
	fmt.Fprintf(o.Out, "backuplocation.pxb.dev/%s deleted (data and encryption key kept)\n", name)
	// The volumes through which Jobs mounted an NFS export belong to the location.
	return jobspec.DeleteNFSVolumes(ctx, c.Kube, name)
}

// LocationExportKeyOptions are the options of `kubectl pxb location export-key`.
type LocationExportKeyOptions struct{ systemObjectOptions }

func newCmdLocationExportKey(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &LocationExportKeyOptions{systemObjectOptions{IOStreams: streams}}
	return &cobra.Command{
		Use:   "export-key NAME",
		Short: "Print what another cluster needs to read a location: its encryption key Secret and the location",
		Long: `Print, as YAML to apply in another cluster, the location's encryption key Secret and the BackupLocation
itself. The output holds the passphrase: store it like any other secret. The credential is not included:
create one in the other cluster with kubectl pxb credential create, under the same name.`,
		Example: `  kubectl pxb location export-key prod > prod-key.yaml
  kubectl --context other-cluster apply -f prod-key.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
}

// Run prints the location's encryption key Secret and the BackupLocation, as YAML.
func (o *LocationExportKeyOptions) Run(ctx context.Context) error {
	c := o.client
	l, err := store.GetLocation(ctx, c.Dynamic, o.Name)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	s, err := c.Kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Get(dctx, l.Spec.EncryptionKey.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("encryption key of location %s: %w", l.Name, err)
	}
	key := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: s.Labels},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{v1alpha1.EncryptionKeySecretKey: s.Data[v1alpha1.EncryptionKeySecretKey]},
	}
	out := &v1alpha1.BackupLocation{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "BackupLocation"},
		ObjectMeta: metav1.ObjectMeta{Name: l.Name, Namespace: l.Namespace, Labels: l.Labels},
		Spec:       l.Spec,
	}
	if err := printReport(o.Out, "yaml", key); err != nil {
		return err
	}
	fmt.Fprintln(o.Out, "---")
	return printObject(o.Out, "yaml", out, out.GroupVersionKind())
}

func newTabWriter(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
