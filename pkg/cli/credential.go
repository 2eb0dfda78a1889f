package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Credential providers, as users name them (the cloud, not the storage service).
const (
	credentialAWS   = "aws"
	credentialAzure = "azure"
	credentialGCP   = "gcp"
)

// NewCmdCredential returns `kubectl pxb credential`.
func NewCmdCredential(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credential",
		Short: "Manage cloud credentials that backup locations use",
		Long: `Credentials are Secrets in pxb-system labelled pxb.dev/credential. Their values are read from a file or
from standard input, never from a flag, so they stay out of shell history and process lists.`,
	}
	cmd.AddCommand(newCmdCredentialCreate(f, streams), newCmdCredentialGet(f, streams), newCmdCredentialDelete(f, streams))
	return cmd
}

// CredentialCreateOptions are the options of `kubectl pxb credential create`.
type CredentialCreateOptions struct {
	Name     string
	Provider string
	FromFile string
	Profile  string
	// Create are --dry-run and -o; the Secret is printed with its values redacted.
	Create createFlags

	data   map[string][]byte
	client clients
	genericiooptions.IOStreams
}

func newCmdCredentialCreate(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CredentialCreateOptions{IOStreams: streams, Profile: "default", Create: newCreateFlags()}
	cmd := &cobra.Command{
		Use:   "create NAME --provider aws|azure|gcp --from-file FILE",
		Short: "Store a cloud credential for backup locations",
		Example: `  # AWS or any S3-compatible store: a shared credentials file (aws_access_key_id, aws_secret_access_key)
  kubectl pxb credential create s3-prod --provider aws --from-file ~/.aws/credentials --profile backup

  # Azure: a file of KEY=VALUE lines, either AZURE_STORAGE_ACCOUNT_KEY=... or
  # AZURE_TENANT_ID=..., AZURE_CLIENT_ID=..., AZURE_CLIENT_SECRET=... (a service principal)
  kubectl pxb credential create azure-prod --provider azure --from-file azure.env

  # Google Cloud: a service account's JSON key, here from standard input
  kubectl pxb credential create gcs-prod --provider gcp --from-file - < key.json

  # Print the Secret, its values redacted, without creating it
  kubectl pxb credential create s3-prod --provider aws --from-file ~/.aws/credentials --dry-run=client -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	cmd.Flags().StringVar(&o.Provider, "provider", o.Provider, "Cloud of the credential: aws, azure or gcp.")
	cmd.Flags().StringVar(&o.FromFile, "from-file", o.FromFile, "File holding the secret values; - reads standard input.")
	cmd.Flags().StringVar(&o.Profile, "profile", o.Profile, "With --provider aws: the profile of the credentials file to use.")
	o.Create.AddFlags(cmd)
	return cmd
}

// Complete reads the secret values.
func (o *CredentialCreateOptions) Complete(f cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	if o.FromFile == "" {
		return fmt.Errorf("--from-file is required: the file (or - for standard input) that holds the %s credential", o.Provider)
	}
	var r io.Reader = o.In
	if o.FromFile != "-" {
		file, err := os.Open(o.FromFile)
		if err != nil {
			return fmt.Errorf("--from-file: %w", err)
		}
		defer file.Close()
		r = file
	}
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return fmt.Errorf("--from-file %s: %w", o.FromFile, err)
	}
	if o.data, err = parseCredential(o.Provider, o.Profile, raw); err != nil {
		return fmt.Errorf("--from-file %s: %w", o.FromFile, err)
	}
	if _, _, err := o.Create.dryRunStrategy(); err != nil || o.Create.clientOnly() {
		return err
	}
	o.client, err = newClients(f)
	return err
}

// Validate checks the name and the output format.
func (o *CredentialCreateOptions) Validate() error {
	if errs := validation.IsDNS1123Subdomain(o.Name); len(errs) > 0 {
		return fmt.Errorf("NAME %q: %s", o.Name, strings.Join(errs, "; "))
	}
	return o.Create.Validate(false)
}

// Run creates the Secret.
func (o *CredentialCreateOptions) Run(ctx context.Context) error {
	s := &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name: o.Name, Namespace: v1alpha1.SystemNamespace,
			Labels: map[string]string{v1alpha1.CredentialLabel: o.Provider},
		},
		Type: corev1.SecretTypeOpaque,
		Data: o.data,
	}
	if o.Create.clientOnly() {
		return o.Create.print(redacted(s), "created", o.Out)
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	created, err := o.client.Kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Create(ctx, s, o.Create.createOptions())
	if err != nil {
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("credential %s already exists: delete it first, or choose another name", o.Name)
		}
		return fmt.Errorf("create credential %s: %w", o.Name, err)
	}
	if o.Create.printing() || o.Create.serverDryRun() {
		created.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		return o.Create.print(redacted(created), "created", o.Out)
	}
	fmt.Fprintf(o.Out, "credential %s created (%s; keys %s)\n", o.Name, o.Provider, strings.Join(sortedKeys(o.data), ", "))
	return nil
}

// parseCredential turns the file a user has into the Secret keys pxb reads.
func parseCredential(provider, profile string, raw []byte) (map[string][]byte, error) {
	switch provider {
	case credentialAWS:
		ini := parseINI(raw)
		sec, ok := ini[profile]
		if !ok {
			return nil, fmt.Errorf("no [%s] profile: pass --profile, or write the file as [default] aws_access_key_id = ... aws_secret_access_key = ...", profile)
		}
		id, secret := sec["aws_access_key_id"], sec["aws_secret_access_key"]
		if id == "" || secret == "" {
			return nil, fmt.Errorf("profile [%s] needs aws_access_key_id and aws_secret_access_key", profile)
		}
		data := map[string][]byte{v1alpha1.S3AccessKeyID: []byte(id), v1alpha1.S3SecretAccessKey: []byte(secret)}
		if tok := sec["aws_session_token"]; tok != "" {
			data[v1alpha1.S3SessionToken] = []byte(tok)
		}
		return data, nil
	case credentialAzure:
		env := parseINI(raw)[""]
		if key := env["AZURE_STORAGE_ACCOUNT_KEY"]; key != "" {
			return map[string][]byte{v1alpha1.AzureAccountKey: []byte(key)}, nil
		}
		tenant, client, secret := env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"]
		if tenant == "" || client == "" || secret == "" {
			return nil, fmt.Errorf("needs AZURE_STORAGE_ACCOUNT_KEY=..., or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET lines")
		}
		return map[string][]byte{
			v1alpha1.AzureTenantID: []byte(tenant), v1alpha1.AzureClientID: []byte(client), v1alpha1.AzureClientSecret: []byte(secret),
		}, nil
	case credentialGCP:
		var key struct {
			Type        string `json:"type"`
			ClientEmail string `json:"client_email"`
			PrivateKey  string `json:"private_key"`
		}
		// The decoder's error is not wrapped: it can quote the key.
		if json.Unmarshal(raw, &key) != nil || key.Type != "service_account" || key.ClientEmail == "" || key.PrivateKey == "" {
			return nil, fmt.Errorf(`is not a service account JSON key (want "type": "service_account" with client_email and private_key)`)
		}
		return map[string][]byte{v1alpha1.GCSServiceAccountJSON: raw}, nil
	case "":
		return nil, fmt.Errorf("--provider is required: aws, azure or gcp")
	default:
		return nil, fmt.Errorf("--provider %q is not one of aws, azure, gcp", provider)
	}
}

// parseINI reads "[section]" headers and "key = value" or "KEY=VALUE" lines; keys before any header are in
// section "". Comments start with # or ;.
func parseINI(raw []byte) map[string]map[string]string {
	out := map[string]map[string]string{"": {}}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(strings.TrimPrefix(strings.Trim(line, "[]"), "profile "))
			if out[section] == nil {
				out[section] = map[string]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		v = strings.Trim(v, `"'`)
		out[section][strings.TrimSpace(strings.TrimPrefix(k, "export "))] = v
	}
	return out
}

// redacted is a Secret as it may be shown: its keys, never its values.
func redacted(s *corev1.Secret) *corev1.Secret {
	c := s.DeepCopy()
	for k := range c.Data {
		c.Data[k] = []byte("REDACTED")
	}
	c.StringData = nil
	return c
}

// CredentialGetOptions are the options of `kubectl pxb credential get`.
type CredentialGetOptions struct {
	Names  []string
	Output string

	client clients
	genericiooptions.IOStreams
}

func newCmdCredentialGet(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CredentialGetOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "get [NAME...]",
		Short: "List credentials and the locations that use them (values are never shown)",
		RunE:  runE(f, o),
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "Output format: yaml, json or name (values are redacted).")
	return cmd
}

// Complete names the credentials and builds the clients.
func (o *CredentialGetOptions) Complete(f cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Names = args
	var err error
	o.client, err = newClients(f)
	return err
}

// Validate checks -o.
func (o *CredentialGetOptions) Validate() error {
	if o.Output != "" && o.Output != "yaml" && o.Output != "json" && o.Output != "name" {
		return fmt.Errorf("--output must be yaml, json or name, not %q", o.Output)
	}
	return nil
}

// Run lists the credentials, their values redacted, with the locations that use them.
func (o *CredentialGetOptions) Run(ctx context.Context) error {
	creds, err := listCredentials(ctx, o.client, o.Names)
	if err != nil {
		return err
	}
	users, err := credentialUsers(ctx, o.client)
	if err != nil {
		return err
	}
	switch o.Output {
	case "name":
		for _, s := range creds {
			fmt.Fprintf(o.Out, "secret/%s\n", s.Name)
		}
		return nil
	case "yaml", "json":
		list := &corev1.SecretList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
		for i := range creds {
			list.Items = append(list.Items, *redacted(&creds[i]))
		}
		return printReport(o.Out, o.Output, list)
	}
	w := newTabWriter(o.Out)
	fmt.Fprintln(w, "NAME\tPROVIDER\tKEYS\tUSED BY\tAGE")
	for _, s := range creds {
		used := strings.Join(users[s.Name], ",")
		if used == "" {
			used = "<none>"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Labels[v1alpha1.CredentialLabel], strings.Join(sortedKeys(s.Data), ","),
			used, duration.HumanDuration(metav1.Now().Sub(s.CreationTimestamp.Time)))
	}
	return w.Flush()
}

func listCredentials(ctx context.Context, c clients, names []string) ([]corev1.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	list, err := c.Kube.CoreV1().Secrets(v1alpha1.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.CredentialLabel})
	if err != nil {
		return nil, fmt.Errorf("list credentials in %s: %w", v1alpha1.SystemNamespace, err)
	}
	if len(names) == 0 {
		return list.Items, nil
	}
	var out []corev1.Secret
	for _, n := range names {
		found := false
		for _, s := range list.Items {
			if s.Name == n {
				out, found = append(out, s), true
			}
		}
		if !found {
			return nil, fmt.Errorf("credential %q not found in %s", n, v1alpha1.SystemNamespace)
		}
	}
	return out, nil
}

// credentialUsers maps each credential to the locations that refer to it.
func credentialUsers(ctx context.Context, c clients) (map[string][]string, error) {
	locs, err := listLocations(ctx, c)
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	for _, l := range locs {
		if l.Spec.Credential != nil {
			users[l.Spec.Credential.Name] = append(users[l.Spec.Credential.Name], l.Name)
		}
	}
	return users, nil
}

// CredentialDeleteOptions are the options of `kubectl pxb credential delete`.
type CredentialDeleteOptions struct{ systemObjectOptions }

func newCmdCredentialDelete(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CredentialDeleteOptions{systemObjectOptions{IOStreams: streams}}
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a credential; refused while a backup location uses it",
		Args:  cobra.ExactArgs(1),
		RunE:  runE(f, o),
	}
}

// Run deletes the credential's Secret unless a backup location refers to it.
func (o *CredentialDeleteOptions) Run(ctx context.Context) error {
	c, name := o.client, o.Name
	if _, err := listCredentials(ctx, c, []string{name}); err != nil {
		return err
	}
	users, err := credentialUsers(ctx, c)
	if err != nil {
		return err
	}
	if u := users[name]; len(u) > 0 {
		return fmt.Errorf("credential %s is used by backup location(s) %s: delete or change them first", name, strings.Join(u, ", "))
	}
	dctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	if err := c.Kube.CoreV1().Secrets(v1alpha1.SystemNamespace).Delete(dctx, name, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete credential %s: %w", name, err)
	}
	fmt.Fprintf(o.Out, "credential %s deleted\n", name)
	return nil
}
