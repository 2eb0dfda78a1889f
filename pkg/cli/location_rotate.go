package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"gocloud.dev/blob"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/store"
)

// rotateTimeout bounds the whole rotation: a few small objects and argon2id derivations.
const rotateTimeout = 5 * time.Minute

// LocationRotateKeyOptions are the options of `kubectl pxb location rotate-key`.
type LocationRotateKeyOptions struct {
	Name              string
	NewPassphraseFile string

	passphrase []byte
	client     clients
	genericiooptions.IOStreams
}

func newCmdLocationRotateKey(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &LocationRotateKeyOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "rotate-key NAME [--new-passphrase-file FILE]",
		Short: "Change a location's encryption passphrase without rewriting its data",
		Long: `Change the passphrase that unlocks a location's repository. The data is not rewritten: the repository's
key is wrapped again under the new passphrase, and the old passphrase stops opening it.

The steps run in an order that never leaves the Secret holding a passphrase the repository does not accept:
a key slot for the new passphrase is added, the Secret is updated, then the old slot is removed. When
interrupted, run the command again.

Other clusters that read this location with the old passphrase need the new one: export it again with
kubectl pxb location export-key.`,
		Example: `  # A new, generated passphrase
  kubectl pxb location rotate-key prod

  # A passphrase of your own, from standard input
  kubectl pxb location rotate-key prod --new-passphrase-file - < new-passphrase.txt`,
		Args: cobra.ExactArgs(1),
		RunE: runE(f, o),
	}
	cmd.Flags().StringVar(&o.NewPassphraseFile, "new-passphrase-file", "", "File (- for standard input) holding the new passphrase; generated when not given.")
	return cmd
}

// Complete reads or generates the new passphrase and builds the clients.
func (o *LocationRotateKeyOptions) Complete(f cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	var err error
	if o.passphrase, err = readPassphrase(o.NewPassphraseFile, o.In); err != nil {
		return fmt.Errorf("new passphrase: %w", err)
	}
	o.client, err = newClients(f)
	return err
}

// Validate has nothing to check: Complete has read the new passphrase.
func (o *LocationRotateKeyOptions) Validate() error { return nil }

// Run rotates the key: add a slot for the new passphrase, update the Secret, remove the old passphrase's slots.
func (o *LocationRotateKeyOptions) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, rotateTimeout)
	defer cancel()
	loc, err := store.GetLocation(ctx, o.client.Dynamic, o.Name)
	if err != nil {
		return err
	}
	if loc.Spec.Provider == v1alpha1.ProviderNFS {
		// The export is mounted only inside Jobs' pods.
		return fmt.Errorf("location %s is on NFS, which only pxb's Jobs mount: rotate-key works on s3, azure and gcs locations", o.Name)
	}
	secrets := o.client.Kube.CoreV1().Secrets(v1alpha1.SystemNamespace)
	keySecret, err := secrets.Get(ctx, loc.Spec.EncryptionKey.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("encryption key of location %s: %w", o.Name, err)
	}
	old := keySecret.Data[v1alpha1.EncryptionKeySecretKey]
	if len(old) == 0 {
		return fmt.Errorf("encryption key Secret %s/%s has no %q key", v1alpha1.SystemNamespace, keySecret.Name, v1alpha1.EncryptionKeySecretKey)
	}
	if string(old) == string(o.passphrase) {
		return errors.New("the new passphrase is the one the location already uses")
	}
	var creds location.Credentials
	if ref := loc.Spec.Credential; ref != nil {
		s, err := secrets.Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("credential of location %s: %w", o.Name, err)
		}
		creds = s.Data
	}
	b, err := location.Open(ctx, loc.Spec, creds, location.Options{})
	if err != nil {
		return fmt.Errorf("open location %s: %w", o.Name, err)
	}
	defer b.Close()

	// Without a repository there is no key slot to rotate; the first backup creates the repository with
	// whatever passphrase the Secret then holds.
	exists, err := b.Exists(ctx, layout.Config)
	if err != nil {
		return fmt.Errorf("location %s: %s", o.Name, location.Explain(err))
	}
	if !exists {
		return fmt.Errorf("location %s holds no repository yet (no backup was written to it): there is no key to rotate; "+
			"the first backup creates the repository with the passphrase in Secret %s/%s",
			o.Name, v1alpha1.SystemNamespace, keySecret.Name)
	}
	// The new key slot is written like every other object of the location: under its object lock.
	r, err := repo.Open(ctx, b, old, store.RepoOptions(loc.Spec, b))
	if err != nil {
		if errors.Is(err, repo.ErrWrongPassphrase) {
			return fmt.Errorf("location %s: the passphrase in Secret %s/%s does not open the repository (wrong passphrase): nothing changed",
				o.Name, v1alpha1.SystemNamespace, keySecret.Name)
		}
		return fmt.Errorf("location %s: %s", o.Name, location.Explain(err))
	}

	// 1. The new slot: from here both passphrases open the repository.
	newID, err := r.AddKey(ctx, o.passphrase, repo.DefaultKDF)
	if err != nil {
		return fmt.Errorf("location %s: %s (nothing changed)", o.Name, location.Explain(err))
	}
	// 2. The Secret, guarded by its resourceVersion so that a concurrent change is not overwritten.
	keySecret.Data[v1alpha1.EncryptionKeySecretKey] = o.passphrase
	if _, err := secrets.Update(ctx, keySecret, metav1.UpdateOptions{FieldManager: "kubectl-pxb"}); err != nil {
		// The Secret still holds the old passphrase, which still opens the repository: undo the new slot.
		if rerr := r.RemoveKey(context.WithoutCancel(ctx), newID); rerr != nil {
			return fmt.Errorf("update Secret %s/%s: %w (the old passphrase stays valid; an unused key slot %s is left: %s)",
				v1alpha1.SystemNamespace, keySecret.Name, err, newID, location.Explain(rerr))
		}
		return fmt.Errorf("update Secret %s/%s: %w (nothing changed)", v1alpha1.SystemNamespace, keySecret.Name, err)
	}
	// 3. Every slot the old passphrase opens; an interrupted earlier rotation may have left more than one.
	removed, err := removeSlotsOf(ctx, b, old, newID)
	if err != nil {
		return fmt.Errorf("location %s: the Secret holds the new passphrase, but removing the old key slot failed: %s; "+
			"run kubectl pxb location rotate-key %s again to finish", o.Name, location.Explain(err), o.Name)
	}
	fmt.Fprintf(o.Out, "encryption key of location %s rotated: Secret %s/%s holds the new passphrase; %d old key slot(s) removed, no data rewritten\n",
		o.Name, v1alpha1.SystemNamespace, keySecret.Name, removed)
	fmt.Fprintf(o.Out, "other clusters reading this location need the new passphrase: kubectl pxb location export-key %s\n", o.Name)
	return nil
}

// removeSlotsOf removes every key slot that passphrase opens, keeping slot keep; it returns how many it removed.
func removeSlotsOf(ctx context.Context, b *blob.Bucket, passphrase []byte, keep string) (int, error) {
	removed := 0
	for {
		r, err := repo.Open(ctx, b, passphrase, repo.Options{})
		if errors.Is(err, repo.ErrWrongPassphrase) {
			return removed, nil
		}
		if err != nil {
			return removed, err
		}
		keys, err := r.Keys(ctx)
		if err != nil {
			return removed, err
		}
		current := ""
		for _, k := range keys {
			if k.Current {
				current = k.ID
			}
		}
		if current == "" || current == keep {
			// The old passphrase opens the new slot: only possible if they are equal, refused above.
			return removed, fmt.Errorf("the old passphrase opens key slot %s, which must stay", keep)
		}
		if err := r.RemoveKey(ctx, current); err != nil {
			return removed, err
		}
		removed++
	}
}
