package console

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/human"
	"github.com/pxb-dev/pxb/pkg/schedule"
)

// listPage is a page that shows one kind of object of every cluster, a row each, kept live.
type listPage struct {
	// kind is the watched kind the rows are; page, title and row name its template, heading and row template.
	kind, page, title, row string
	// view is the row of the object under key in cluster c, nil when it is gone.
	view func(s *Server, c *cluster, key string) any
	// also are other kinds whose changes redraw every row of the cluster (a schedule's policy).
	also []string
}

var listPages = map[string]listPage{
	"/restores":  {kind: "restore", page: "restores", title: "Restores", row: "restoreRow", view: (*Server).restoreView},
	"/schedules": {kind: "schedule", page: "schedules", title: "Schedules", row: "scheduleRow", view: (*Server).scheduleView, also: []string{"policy"}},
	"/locations": {kind: "location", page: "locations", title: "Locations", row: "locationRow", view: (*Server).locationView},
}

// listView is what a list page shows: each installed cluster's rows, and why a cluster's are missing.
type listView struct {
	Rows     []any
	Problems []string
}

// listRows returns the rows of p in cluster c, by namespace and name.
func (s *Server) listRows(p listPage, c *cluster) []any {
	_, w := c.state()
	if w == nil || w.informers[p.kind] == nil {
		return nil
	}
	keys := w.informers[p.kind].GetStore().ListKeys()
	slices.Sort(keys)
	var rows []any
	for _, k := range keys {
		if v := p.view(s, c, k); v != nil {
			rows = append(rows, v)
		}
	}
	return rows
}

func (s *Server) listPage(p listPage) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var v listView
		for _, c := range s.clusters {
			st, wt := c.state()
			if !st.watchable() {
				continue
			}
			if why := wt.problem(p.kind); why != "" {
				v.Problems = append(v.Problems, c.Name+": "+why)
			}
			v.Rows = append(v.Rows, s.listRows(p, c)...)
		}
		s.render(w, r, http.StatusOK, p.page, p.title, v)
	}
}

// listUpdates returns what a change means to list page p.
func (s *Server) listUpdates(p listPage) func(c *cluster, kind, key string) []update {
	return func(c *cluster, kind, key string) []update {
		var keys []string
		switch {
		case kind == p.kind:
			keys = []string{key}
		case slices.Contains(p.also, kind):
			_, w := c.state()
			keys = w.informers[p.kind].GetStore().ListKeys()
		default:
			return nil
		}
		var us []update
		for _, k := range keys {
			id := rowID(p.kind, c, k)
			if v := p.view(s, c, k); v != nil {
				us = append(us, update{ID: id, Parent: p.kind + "-rows", HTML: s.fragment(p.row, v)})
			} else {
				us = append(us, update{ID: id, Remove: true})
			}
		}
		return us
	}
}

type restoreView struct {
	ID, Cluster string
	Restore     *v1alpha1.Restore
	Counts      v1alpha1.RestoreCounts
}

func (s *Server) restoreView(c *cluster, key string) any {
	r, id := object[v1alpha1.Restore](c, "restore", key)
	if r == nil {
		return nil
	}
	v := restoreView{ID: id, Cluster: c.Name, Restore: r}
	if r.Status.Counts != nil {
		v.Counts = *r.Status.Counts
	}
	return v
}

type scheduleView struct {
	ID, Cluster string
	Schedule    *v1alpha1.BackupSchedule
	// Next says when the next backup is taken, or why none is.
	Next string
}

func (s *Server) scheduleView(c *cluster, key string) any {
	bs, id := object[v1alpha1.BackupSchedule](c, "schedule", key)
	if bs == nil {
		return nil
	}
	v := scheduleView{ID: id, Cluster: c.Name, Schedule: bs}
	_, w := c.state()
	switch p := get[v1alpha1.SchedulePolicy](w, "policy", string(bs.Spec.Policy)); {
	case bs.Spec.Suspend:
		v.Next = "suspended"
	case p == nil:
		v.Next = "policy " + string(bs.Spec.Policy) + " not found"
	default:
		now := time.Now()
		if next, kind, err := schedule.Next(p.Spec, now); err != nil {
			v.Next = err.Error()
		} else {
			v.Next = strings.Join([]string{string(kind), human.Until(next, now), next.Format("2006-01-02 15:04 MST")}, ", ")
		}
	}
	return v
}

type locationView struct {
	ID, Cluster string
	Location    *v1alpha1.BackupLocation
}

func (s *Server) locationView(c *cluster, key string) any {
	l, id := object[v1alpha1.BackupLocation](c, "location", key)
	if l == nil {
		return nil
	}
	return locationView{ID: id, Cluster: c.Name, Location: l}
}

// rowID is the HTML id of the row of the object of kind under key in cluster c.
func rowID(kind string, c *cluster, key string) string { return kind + "/" + c.Name + "/" + key }

// object returns the object of kind under key in cluster c (nil when it is gone) and the id of its row.
func object[T any](c *cluster, kind, key string) (*T, string) {
	_, w := c.state()
	return get[T](w, kind, key), rowID(kind, c, key)
}
