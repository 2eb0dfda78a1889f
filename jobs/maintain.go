package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/human"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/repo"
	"github.com/pxb-dev/pxb/pkg/store"
)

// MaintenanceResult is what a maintenance of a location found and did.
type MaintenanceResult struct {
	// Empty is true when the location holds no repository yet.
	Empty bool
	Check *repo.CheckResult
	// GC is nil when garbage collection did not run (the repository is damaged or busy).
	GC *repo.GCStats
	// Busy says why garbage collection did not run when a writer held the repository.
	Busy string
	// Damaged are the damaged packs and what each breaks, in the order of Check.DamagedPacks.
	Damaged []DamagedPack
	// Unmarked says why Backups that damaged packs break could not all be marked.
	Unmarked []string
	// ReadPeriod is the period of a rotating data read (Options.ReadDataPeriod), 0 when none ran.
	ReadPeriod time.Duration
}

// DamagedPack is a pack a maintenance found damaged and the backups that need it.
type DamagedPack struct {
	// Name is the pack's object name in the repository (data/xx/ID).
	Name string
	// Breaks names what needs the pack: "backup ns/name", "volume claim-ns/claim of backup ns/name", or
	// "snapshot ID (source)" for a snapshot that is no backup's; sorted.
	Breaks []string
	// Backups are the Backups ("ns/name") that need the pack, sorted.
	Backups []string
}

// Message sums the result up for a status: "verified 4 snapshots in 12 packs; freed 310.0 MiB (3 packs
// deleted, 1 rewritten)".
func (m *MaintenanceResult) Message() string {
	if m.Empty {
		return "the location holds no repository yet: nothing to maintain"
	}
	var b strings.Builder
	c := m.Check
	fmt.Fprintf(&b, "verified %d snapshot%s in %d pack%s", c.Snapshots, plural(c.Snapshots), c.Packs, plural(c.Packs))
	if c.ReadPacks > 0 {
		fmt.Fprintf(&b, ", read %d of %d pack%s (%s)", c.ReadPacks, c.Packs, plural(c.Packs), human.Bytes(c.ReadBytes))
		if m.ReadPeriod > 0 {
			fmt.Fprintf(&b, " in turn, every pack within %s", human.Duration(m.ReadPeriod))
		}
	}
	if len(c.Errors) > 0 {
		fmt.Fprintf(&b, ": %d problem%s, nothing deleted", len(c.Errors), plural(len(c.Errors)))
		if len(m.Damaged) == 0 {
			fmt.Fprintf(&b, ": %s", names(c.Errors))
			return truncate(b.String(), 4096)
		}
		// What the damage breaks comes before the problems, which may be many, so that truncation keeps it.
		for i, d := range m.Damaged {
			if i == maxNamed {
				fmt.Fprintf(&b, "; and %d more damaged packs", len(m.Damaged)-maxNamed)
				break
			}
			if len(d.Breaks) == 0 {
				fmt.Fprintf(&b, "; damaged pack %s breaks no backup", d.Name)
				continue
			}
			fmt.Fprintf(&b, "; damaged pack %s breaks %s", d.Name, names(d.Breaks))
		}
		if len(m.Unmarked) > 0 {
			fmt.Fprintf(&b, "; not marked: %s", names(m.Unmarked))
		}
		fmt.Fprintf(&b, "; problems: %s", names(c.Errors))
		return truncate(b.String(), 4096)
	}
	if m.GC == nil {
		fmt.Fprintf(&b, "; unused data not removed: %s", m.Busy)
		return truncate(b.String(), 4096)
	}
	g := m.GC
	fmt.Fprintf(&b, "; freed %s (%d pack%s deleted, %d rewritten)", human.Bytes(g.DeletedBytes), g.DeletedPacks,
		plural(g.DeletedPacks), g.RepackedPacks)
	if g.AbortedUploads > 0 {
		fmt.Fprintf(&b, ", %d abandoned upload%s aborted", g.AbortedUploads, plural(g.AbortedUploads))
	}
	if g.RetainedPacks > 0 {
		fmt.Fprintf(&b, "; %s of unused data in %d pack%s stays under object lock until %s", human.Bytes(g.RetainedBytes),
			g.RetainedPacks, plural(g.RetainedPacks), g.RetainedUntil.UTC().Format("2006-01-02 15:04 MST"))
	}
	if g.YoungPacks > 0 {
		fmt.Fprintf(&b, "; %s of unused data in %d pack%s written in the last %s goes at a later maintenance",
			human.Bytes(g.YoungBytes), g.YoungPacks, plural(g.YoungPacks), g.MinAge.Round(time.Minute))
	}
	if len(g.Undeletable) > 0 {
		fmt.Fprintf(&b, "; %d object%s could not be deleted (the next maintenance tries again): %s",
			len(g.Undeletable), plural(len(g.Undeletable)), names(g.Undeletable))
	}
	return truncate(b.String(), 4096)
}

// MaintainLocation verifies the structure of BackupLocation name's repository (every index readable, every
// pack present with its stated size and header, every snapshot's trees readable), with opts.ReadDataPercent
// also the data of that share of the packs, and, when it is sound,
// collects its garbage: the data of deleted backups goes, except what object lock still retains. The outcome
// goes into the location's status (v1alpha1.ConditionMaintained, lastMaintenanceTime). An error means the repository
// is damaged, could not be read, or the status not written; a backup writing meanwhile is not an error: GC
// waits for the next maintenance. Damaged packs are named with the backups they break, and each of those
// Backups gets v1alpha1.ConditionDataVerified False naming the packs.
func MaintainLocation(ctx context.Context, cfg *rest.Config, name string, opts Options) (*MaintenanceResult, error) {
	env, bl, err := locationEnv(ctx, cfg, name, jobspec.KindMaintenance)
	if err != nil {
		return nil, err
	}
	res, err := maintain(ctx, env, bl, opts)
	if err == nil && res.Check != nil && len(res.Check.Errors) > 0 {
		err = fmt.Errorf("the repository of location %s is damaged: %s", name, res.Message())
	}
	return res, errors.Join(err, recordMaintenance(ctx, env, name, res, err))
}

func maintain(ctx context.Context, env *jobenv.Env, bl *v1alpha1.BackupLocation, opts Options) (*MaintenanceResult, error) {
	empty, err := holdsNoRepository(ctx, env, bl, opts)
	if err != nil || empty {
		return &MaintenanceResult{Empty: empty}, err
	}
	loc, err := store.OpenLocation(ctx, env.Kube, env.Dynamic, bl.Name, opts.Location, false)
	if err != nil {
		return nil, err
	}
	defer loc.Close()
	r := loc.Repository()
	res := &MaintenanceResult{}
	copts := repo.CheckOptions{ReadData: opts.ReadDataPercent > 0, SubsetPercent: float64(opts.ReadDataPercent)}
	if opts.ReadDataPercent == 0 && opts.ReadDataPeriod > 0 {
		copts.ReadData, copts.ReadPack = true, readDataRotation(opts.ReadDataPeriod, bl.Status.LastDataReadTime, time.Now())
		res.ReadPeriod = opts.ReadDataPeriod
	}
	res.Check, err = r.Check(ctx, copts)
	if errors.Is(err, repo.ErrCheckFailed) {
		// The damage is in res.Check, named object by object; nothing is deleted.
		if len(res.Check.DamagedPacks) > 0 {
			reportDamage(ctx, env, bl.Name, r, res)
		}
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify %s: %s", loc.URL(""), location.Explain(err))
	}
	gcOpts := repo.GCOptions{}
	if opts.FreeRecent {
		gcOpts.MinAge = -1
	}
	res.GC, err = r.GC(ctx, gcOpts)
	if errors.Is(err, repo.ErrLocked) {
		res.GC, res.Busy = nil, "a backup, a restore or another maintenance was using the location; the next maintenance removes it"
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("remove unused data from %s: %s", loc.URL(""), location.Explain(err))
	}
	return res, nil
}

// readDataSlices is how many slices (repo.PackSlice) a rotating data read divides the packs into.
const readDataSlices = 30

// readDataRotation chooses the packs a maintenance at now reads so that every pack is read within period:
// time is cut into windows of period/readDataSlices, each window has its slice, and a maintenance reads the
// slices of the windows since the last data read (last; nil: never, when one slice is read), at most all. Run at least once a window, maintenance reads one slice at a time; run less often, it
// catches up, and still reads every pack within period plus the time between two maintenances.
func readDataRotation(period time.Duration, last *metav1.Time, now time.Time) func(packID string) bool {
	window := int64(period / readDataSlices)
	cur, turns := now.UnixNano()/window, int64(1)
	if last != nil {
		// A maintenance in the window of the last read reads nothing more.
		turns = min(max(cur-last.UnixNano()/window, 0), readDataSlices)
	}
	read := map[int]bool{}
	for i := range turns {
		read[int((cur-i)%readDataSlices)] = true
	}
	return func(packID string) bool { return read[repo.PackSlice(packID, readDataSlices)] }
}

// reportDamage names in res what each damaged pack breaks and marks the Backups of location locName that
// need one with ConditionDataVerified False. What it cannot find out or mark it says in res.Unmarked.
func reportDamage(ctx context.Context, env *jobenv.Env, locName string, r *repo.Repository, res *MaintenanceResult) {
	using, err := r.SnapshotsUsingPacks(ctx, res.Check.DamagedPacks)
	if err != nil {
		res.Unmarked = append(res.Unmarked, "the backups that the damaged packs break could not be found: "+location.Explain(err))
	}
	packsOf := map[string][]string{} // Backup "ns/name" -> the damaged packs it needs
	for _, id := range res.Check.DamagedPacks {
		d := DamagedPack{Name: layout.PackName(id)}
		breaks, backups := map[string]bool{}, map[string]bool{}
		for _, s := range using[id] {
			if ns, name, ok := layout.ParseBackupPrefix(s.Source); ok {
				breaks["backup "+ns+"/"+name] = true
				backups[ns+"/"+name] = true
			} else if ns, name, vol, ok := layout.ParseVolumeSource(s.Source); ok {
				breaks["volume "+vol+" of backup "+ns+"/"+name] = true
				backups[ns+"/"+name] = true
			} else {
				breaks["snapshot "+s.ID+" ("+s.Source+")"] = true
			}
		}
		d.Breaks, d.Backups = slices.Sorted(maps.Keys(breaks)), slices.Sorted(maps.Keys(backups))
		for _, b := range d.Backups {
			packsOf[b] = append(packsOf[b], d.Name)
		}
		res.Damaged = append(res.Damaged, d)
	}
	for _, id := range slices.Sorted(maps.Keys(packsOf)) {
		ns, name, _ := strings.Cut(id, "/")
		if err := markDamaged(ctx, env, locName, ns, name, packsOf[id]); err != nil {
			res.Unmarked = append(res.Unmarked, "backup "+id+": "+err.Error())
		}
	}
}

// markDamaged sets ConditionDataVerified False on Backup ns/name, when it is in this cluster and kept in
// location locName, naming the damaged packs it needs.
func markDamaged(ctx context.Context, env *jobenv.Env, locName, ns, name string, packs []string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	target := jobspec.Ref{Resource: v1alpha1.BackupsResource.Resource, Namespace: ns, Name: name}
	var b v1alpha1.Backup
	err := env.Get(ctx, target, &b)
	if apierrors.IsNotFound(err) {
		return nil // a backup of another cluster that is not synced here
	}
	if err != nil {
		return err
	}
	if string(b.Spec.Location) != locName {
		return nil // a Backup of the same name kept in another location
	}
	return env.SetCondition(ctx, target, metav1.Condition{
		Type: v1alpha1.ConditionDataVerified, Status: metav1.ConditionFalse, Reason: v1alpha1.ConditionReasonDataDamaged,
		Message: truncate(fmt.Sprintf("the maintenance of location %s found damaged pack%s that this backup needs: %s; it cannot be restored whole",
			locName, plural(len(packs)), names(packs)), 4096),
	})
}

// recordMaintenance writes the outcome of a maintenance of BackupLocation name into its status.
func recordMaintenance(ctx context.Context, env *jobenv.Env, name string, res *MaintenanceResult, runErr error) error {
	now := metav1.Now()
	cond := metav1.Condition{Type: v1alpha1.ConditionMaintained}
	switch {
	case runErr == nil && res.Empty:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, "NoRepository", res.Message()
	case res == nil || res.Check == nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "LocationUnreadable", truncate(runErr.Error(), 4096)
	case len(res.Check.Errors) > 0:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "RepositoryDamaged", res.Message()
	case res.GC == nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "RepositoryBusy", res.Message()
	default:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, "Maintained", res.Message()
	}
	return recordLocationCondition(ctx, env, name, cond, func(st *v1alpha1.BackupLocationStatus) {
		st.LastMaintenanceTime = &now
		if res != nil && res.Check != nil && (res.Check.ReadPacks > 0 || res.ReadPeriod > 0) {
			st.LastDataReadTime = &now
		}
	})
}
