package console

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/human"
)

var funcs = template.FuncMap{
	"bytes": human.Bytes,
	"path":  url.PathEscape,
	"time": func(t any) string {
		switch t := t.(type) {
		case metav1.Time:
			return stamp(&t)
		case *metav1.Time:
			return stamp(t)
		}
		return ""
	},
	"schedule": func(b *v1alpha1.Backup) string { return b.Labels[v1alpha1.ScheduleLabel] },
	"join":     strings.Join,
}

func parseTemplates() (map[string]*template.Template, *template.Template, error) {
	rows, err := template.New("rows").Funcs(funcs).ParseFS(assets, "templates/rows.html")
	if err != nil {
		return nil, nil, fmt.Errorf("parse console templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, p := range []string{"clusters", "backups", "backup", "result", "restores", "schedules", "locations"} {
		t, err := template.New(p).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/rows.html", "templates/"+p+".html")
		if err != nil {
			return nil, nil, fmt.Errorf("parse console page %s: %w", p, err)
		}
		pages[p] = t
	}
	return pages, rows, nil
}

// page is what every page's layout needs.
type page struct {
	Title string
	// Path is the page's path and query, which its event stream names.
	Path string
	CSRF string
	Data any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	var buf bytes.Buffer
	csrf, _ := r.Context().Value(csrfKey{}).(string)
	p := page{Title: title, Path: r.URL.RequestURI(), CSRF: csrf, Data: data}
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) fragment(name string, data any) string {
	var buf bytes.Buffer
	if err := s.rows.ExecuteTemplate(&buf, name, data); err != nil {
		return template.HTMLEscapeString(err.Error())
	}
	return buf.String()
}

// clusterView is one row of the clusters page.
type clusterView struct {
	Name   string
	Server string
	Status Status
	// Problem says why the Backups or locations could not be listed.
	Problem string
	// Namespace is the one namespace shown when the user may not list every namespace's objects.
	Namespace   string
	Last24h     []phaseCount
	LastFailure *v1alpha1.Backup
	Locations   []*v1alpha1.BackupLocation
}

type phaseCount struct {
	Phase string
	Count int
}

func (s *Server) clusterView(c *cluster, now time.Time) clusterView {
	st, w := c.state()
	v := clusterView{Name: c.Name, Status: st}
	if c.Config != nil {
		v.Server = c.Config.Host
	}
	if w == nil {
		return v
	}
	v.Namespace = w.namespace
	v.Problem = strings.Join(slices.DeleteFunc([]string{w.problem("backup"), w.problem("location")}, func(s string) bool { return s == "" }), "; ")
	counts := map[string]int{}
	for _, b := range w.backups() {
		if now.Sub(b.CreationTimestamp.Time) <= 24*time.Hour {
			counts[phaseOf(b)]++
		}
		if v.LastFailure == nil && (b.Status.Phase == v1alpha1.BackupFailed || b.Status.Phase == v1alpha1.BackupPartiallySucceeded) {
			v.LastFailure = b
		}
	}
	for _, p := range slices.Sorted(maps.Keys(counts)) {
		v.Last24h = append(v.Last24h, phaseCount{p, counts[p]})
	}
	v.Locations = list[v1alpha1.BackupLocation](w, "location")
	slices.SortFunc(v.Locations, func(a, b *v1alpha1.BackupLocation) int { return strings.Compare(a.Name, b.Name) })
	return v
}

// stamp formats t for people; "" when unset.
func stamp(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 MST")
}

func phaseOf(b *v1alpha1.Backup) string {
	if b.Status.Phase == "" {
		return string(v1alpha1.BackupPending)
	}
	return string(b.Status.Phase)
}

func (s *Server) clustersPage(w http.ResponseWriter, r *http.Request) {
	s.inspectAll(r.Context())
	now := time.Now()
	var views []clusterView
	for _, c := range s.clusters {
		views = append(views, s.clusterView(c, now))
	}
	s.render(w, r, http.StatusOK, "clusters", "Clusters", views)
}

// filter selects the Backups of the backups page.
type filter struct {
	Cluster, Namespace, Phase, Schedule string
}

func filterOf(q url.Values) filter {
	return filter{Cluster: q.Get("cluster"), Namespace: q.Get("namespace"), Phase: q.Get("phase"), Schedule: q.Get("schedule")}
}

func (f filter) match(cluster string, b *v1alpha1.Backup) bool {
	return (f.Cluster == "" || f.Cluster == cluster) && (f.Namespace == "" || f.Namespace == b.Namespace) &&
		(f.Phase == "" || f.Phase == phaseOf(b)) && (f.Schedule == "" || f.Schedule == b.Labels[v1alpha1.ScheduleLabel])
}

// backupRow is one Backup in one cluster.
type backupRow struct {
	Cluster string
	Backup  *v1alpha1.Backup
}

func (b backupRow) Phase() string { return phaseOf(b.Backup) }

type backupsView struct {
	Filter   filter
	Clusters []string
	Phases   []string
	Rows     []backupRow
	Form     formView
}

type formView struct {
	Request BackupRequest
	Cluster string
	Error   string
	// Locations are the locations of each cluster, to choose from.
	Locations map[string][]string
}

func (s *Server) backupsPage(w http.ResponseWriter, r *http.Request) {
	s.renderBackups(w, r, http.StatusOK, formView{Request: BackupRequest{Namespace: v1alpha1.SystemNamespace}})
}

func (s *Server) renderBackups(w http.ResponseWriter, r *http.Request, status int, form formView) {
	v := backupsView{Filter: filterOf(r.URL.Query()), Form: form}
	v.Phases = []string{string(v1alpha1.BackupPending), string(v1alpha1.BackupInProgress), string(v1alpha1.BackupCompleted),
		string(v1alpha1.BackupPartiallySucceeded), string(v1alpha1.BackupFailed), string(v1alpha1.BackupDeleting)}
	v.Form.Locations = map[string][]string{}
	for _, c := range s.clusters {
		st, wt := c.state()
		if !st.watchable() {
			continue
		}
		v.Clusters = append(v.Clusters, c.Name)
		for _, l := range list[v1alpha1.BackupLocation](wt, "location") {
			v.Form.Locations[c.Name] = append(v.Form.Locations[c.Name], l.Name)
		}
		slices.Sort(v.Form.Locations[c.Name])
		for _, b := range wt.backups() {
			if v.Filter.match(c.Name, b) {
				v.Rows = append(v.Rows, backupRow{c.Name, b})
			}
		}
	}
	slices.SortStableFunc(v.Rows, func(a, b backupRow) int {
		return b.Backup.CreationTimestamp.Compare(a.Backup.CreationTimestamp.Time)
	})
	s.render(w, r, status, "backups", "Backups", v)
}

func (s *Server) createBackup(w http.ResponseWriter, r *http.Request) {
	req := BackupRequest{
		Name:      strings.TrimSpace(r.PostFormValue("name")),
		Namespace: strings.TrimSpace(r.PostFormValue("namespace")),
		Selector:  strings.TrimSpace(r.PostFormValue("selector")),
		Location:  strings.TrimSpace(r.PostFormValue("location")),
	}
	for _, n := range strings.Split(r.PostFormValue("includeNamespaces"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			req.IncludeNamespaces = append(req.IncludeNamespaces, n)
		}
	}
	name := r.PostFormValue("cluster")
	form := formView{Request: req, Cluster: name}
	c := s.find(name)
	if c == nil {
		form.Error = fmt.Sprintf("cluster %q is not one of the console's contexts", name)
		s.renderBackups(w, r, http.StatusUnprocessableEntity, form)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ActionTimeout)
	defer cancel()
	out, err := s.opts.Backend.CreateBackup(ctx, name, req)
	if err != nil {
		form.Error = err.Error()
		s.renderBackups(w, r, http.StatusUnprocessableEntity, form)
		return
	}
	u := fmt.Sprintf("/backups/%s/%s/%s?%s", url.PathEscape(name), url.PathEscape(req.Namespace), url.PathEscape(req.Name),
		url.Values{"note": {strings.TrimSpace(out)}}.Encode())
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// backupDetail is one Backup's page.
type backupDetail struct {
	Cluster, Namespace, Name string
	Backup                   *v1alpha1.Backup
	Note                     string
}

func (s *Server) detail(c *cluster, namespace, name string) backupDetail {
	_, w := c.state()
	return backupDetail{Cluster: c.Name, Namespace: namespace, Name: name, Backup: get[v1alpha1.Backup](w, "backup", namespace+"/"+name)}
}

func (s *Server) backupPage(w http.ResponseWriter, r *http.Request) {
	c := s.find(r.PathValue("cluster"))
	if c == nil {
		http.NotFound(w, r)
		return
	}
	d := s.detail(c, r.PathValue("namespace"), r.PathValue("name"))
	d.Note = r.URL.Query().Get("note")
	s.render(w, r, http.StatusOK, "backup", "Backup "+d.Namespace+"/"+d.Name, d)
}

// result is the outcome of an action, on a page of its own.
type result struct {
	Message, Error string
	Back           string
}

func (s *Server) deleteBackup(w http.ResponseWriter, r *http.Request) {
	name, ns, b := r.PathValue("cluster"), r.PathValue("namespace"), r.PathValue("name")
	if s.find(name) == nil {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ActionTimeout)
	defer cancel()
	out, err := s.opts.Backend.DeleteBackup(ctx, name, ns, b)
	s.renderResult(w, r, "Delete Backup "+ns+"/"+b, "/backups", out, err)
}

func (s *Server) restoreBackup(w http.ResponseWriter, r *http.Request) {
	name, ns, b := r.PathValue("cluster"), r.PathValue("namespace"), r.PathValue("name")
	if s.find(name) == nil {
		http.NotFound(w, r)
		return
	}
	req := RestoreRequest{Name: strings.TrimSpace(r.PostFormValue("name")), ExistingResourcePolicy: r.PostFormValue("existingResourcePolicy")}
	for _, m := range strings.Split(r.PostFormValue("namespaceMappings"), ",") {
		if m = strings.TrimSpace(m); m != "" {
			req.NamespaceMappings = append(req.NamespaceMappings, m)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ActionTimeout)
	defer cancel()
	out, err := s.opts.Backend.RestoreBackup(ctx, name, ns, b, req)
	s.renderResult(w, r, "Restore Backup "+ns+"/"+b, "/restores", out, err)
}

func (s *Server) suspendSchedule(w http.ResponseWriter, r *http.Request) {
	name, ns, bs := r.PathValue("cluster"), r.PathValue("namespace"), r.PathValue("name")
	if s.find(name) == nil {
		http.NotFound(w, r)
		return
	}
	suspend := r.PostFormValue("suspend") == "true"
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ActionTimeout)
	defer cancel()
	out, err := s.opts.Backend.SuspendSchedule(ctx, name, ns, bs, suspend)
	res := result{Message: strings.TrimSpace(out), Back: "/schedules"}
	status := http.StatusOK
	if err != nil {
		res.Message, res.Error, status = "", err.Error(), http.StatusUnprocessableEntity
	}
	s.render(w, r, status, "result", "BackupSchedule "+ns+"/"+bs, res)
}

// pageUpdates returns what a change means to the page at path (with its query): the rows to replace, add
// or remove.
func (s *Server) pageUpdates(path string) (func(c *cluster, kind, key string) []update, error) {
	u, err := url.Parse(path)
	if err != nil || !strings.HasPrefix(u.Path, "/") {
		return nil, fmt.Errorf("page %q: not a console page", path)
	}
	switch parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/"); {
	case u.Path == "/":
		return func(c *cluster, _, _ string) []update {
			return []update{{ID: "cluster/" + c.Name, HTML: s.fragment("clusterRow", s.clusterView(c, time.Now()))}}
		}, nil
	case u.Path == "/backups":
		f := filterOf(u.Query())
		return func(c *cluster, kind, key string) []update {
			if kind != "backup" {
				return nil
			}
			b, id := object[v1alpha1.Backup](c, kind, key)
			if b == nil || !f.match(c.Name, b) {
				return []update{{ID: id, Remove: true}}
			}
			return []update{{ID: id, Parent: "backup-rows", HTML: s.fragment("backupRow", backupRow{c.Name, b})}}
		}, nil
	case listPages[u.Path].kind != "":
		return s.listUpdates(listPages[u.Path]), nil
	case len(parts) == 4 && parts[0] == "backups":
		for i, p := range parts {
			if parts[i], err = url.PathUnescape(p); err != nil {
				return nil, fmt.Errorf("page %q: %w", path, err)
			}
		}
		return func(c *cluster, kind, key string) []update {
			if kind != "backup" || c.Name != parts[1] || key != parts[2]+"/"+parts[3] {
				return nil
			}
			return []update{{ID: "detail", HTML: s.fragment("backupDetail", s.detail(c, parts[2], parts[3]))}}
		}, nil
	}
	return func(*cluster, string, string) []update { return nil }, nil
}

// renderResult shows what an action printed, or its error, with a link back to the list it acted on.
func (s *Server) renderResult(w http.ResponseWriter, r *http.Request, title, back, out string, err error) {
	res := result{Message: strings.TrimSpace(out), Back: back}
	status := http.StatusOK
	if err != nil {
		res.Error, status = err.Error(), http.StatusUnprocessableEntity
	}
	s.render(w, r, status, "result", title, res)
}
