// Package console is the local web console of `kubectl pxb ui`: an HTTP server on the user's machine that
// shows and drives pxb in every context of the kubeconfig with the user's own credentials. Pages are
// rendered on the server; a watch on each cluster pushes changes to the browser as server-sent events.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Cluster is one kubeconfig context the console shows.
type Cluster struct {
	// Name is the context's name.
	Name string
	// Config is the context's client configuration; nil when it could not be built (ConfigError says why).
	Config      *rest.Config
	ConfigError string
	// Namespace is the context's namespace, which the console watches alone when the user may not list
	// pxb's objects in every namespace.
	Namespace string
}

// Status is what the plugin's `cluster list` learns of a cluster.
type Status struct {
	Reachable bool
	Installed bool
	Version   string
	// Error says why the cluster could not be read; empty when it was.
	Error string
}

// watchable reports whether pxb's objects may be read: pxb is installed, or the server answered but would not
// show pxb's configuration (a team, which may still read its namespace's objects).
func (st Status) watchable() bool { return st.Installed || st.Reachable && st.Error != "" }

// BackupRequest is the backup form: the flags of `kubectl pxb backup create` it offers.
type BackupRequest struct {
	Name              string
	Namespace         string
	IncludeNamespaces []string
	Selector          string
	Location          string
}

// RestoreRequest is the restore form: the flags of `kubectl pxb restore create` it offers.
type RestoreRequest struct {
	// Name is the Restore's; empty, it is BACKUP-TIMESTAMP.
	Name string
	// NamespaceMappings are FROM:TO pairs.
	NamespaceMappings      []string
	ExistingResourcePolicy string
}

// Backend does what the plugin's commands do, in one context, so that the console shows and does
// exactly what the commands would.
type Backend interface {
	// Inspect reports whether the cluster answers and which pxb it runs, as `kubectl pxb cluster list`.
	Inspect(ctx context.Context, cluster string) Status
	// CreateBackup creates a Backup and launches its Job, as `kubectl pxb backup create`; it returns what the
	// command prints.
	CreateBackup(ctx context.Context, cluster string, req BackupRequest) (string, error)
	// DeleteBackup deletes a Backup with its data, as `kubectl pxb backup delete --yes`.
	DeleteBackup(ctx context.Context, cluster, namespace, name string) (string, error)
	// RestoreBackup restores a Backup, as `kubectl pxb restore create --from-backup`.
	RestoreBackup(ctx context.Context, cluster, namespace, backup string, req RestoreRequest) (string, error)
	// SuspendSchedule suspends or resumes a BackupSchedule.
	SuspendSchedule(ctx context.Context, cluster, namespace, name string, suspend bool) (string, error)
}

// Options configure a Server.
type Options struct {
	// Token is the secret of the console's URL (NewToken).
	Token string
	// Host is the host the listener is bound to; requests naming another host are refused.
	Host     string
	Clusters []Cluster
	Backend  Backend
	// Timeout bounds each read of a cluster; ActionTimeout each backup created or deleted.
	Timeout       time.Duration
	ActionTimeout time.Duration
}

// Server is the console.
type Server struct {
	opts     Options
	auth     *auth
	pages    map[string]*template.Template
	rows     *template.Template
	clusters []*cluster
	hub      *hub
	mux      *http.ServeMux

	// ctx ends with Serve; the clusters' watches run under it.
	ctx context.Context
}

// New prepares a Server over the given clusters.
func New(o Options) (*Server, error) {
	if o.Token == "" || o.Backend == nil {
		return nil, errors.New("console: a token and a backend are required")
	}
	s := &Server{opts: o, auth: newAuth(o.Token, o.Host), hub: newHub(), ctx: context.Background()}
	var err error
	if s.pages, s.rows, err = parseTemplates(); err != nil {
		return nil, err
	}
	for _, c := range o.Clusters {
		s.clusters = append(s.clusters, &cluster{Cluster: c})
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	m := http.NewServeMux()
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /{$}", s.clustersPage)
	m.HandleFunc("GET /backups", s.backupsPage)
	m.HandleFunc("POST /backups", s.createBackup)
	m.HandleFunc("GET /backups/{cluster}/{namespace}/{name}", s.backupPage)
	m.HandleFunc("POST /backups/{cluster}/{namespace}/{name}/delete", s.deleteBackup)
	m.HandleFunc("POST /backups/{cluster}/{namespace}/{name}/restore", s.restoreBackup)
	for path, p := range listPages {
		m.HandleFunc("GET "+path, s.listPage(p))
	}
	m.HandleFunc("POST /schedules/{cluster}/{namespace}/{name}/suspend", s.suspendSchedule)
	m.HandleFunc("GET /events", s.events)
	s.mux = m
	return s, nil
}

// Serve serves the console on l until ctx ends, then stops the server and the clusters' watches.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx
	s.inspectAll(ctx)
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// Requests (and the event streams) end with ctx.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("console server: %w", err)
	case <-ctx.Done():
	}
	shutdown, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stop()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("stop the console server: %w", err)
	}
	return nil
}

// ServeHTTP authorizes the request, then serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	v, csrf := s.auth.check(r)
	switch v {
	case redirect:
		c, err := s.auth.open()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.SetCookie(w, c)
		u := *r.URL
		q := u.Query()
		q.Del(tokenParam)
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return
	case unauthorized:
		http.Error(w, "401 unauthorized: open the URL that kubectl pxb ui printed", http.StatusUnauthorized)
		return
	case forbidden:
		http.Error(w, "403 forbidden: the request did not come from the console's own page", http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), csrfKey{}, csrf)))
}

type csrfKey struct{}

// cluster is one context and what the console knows of it.
type cluster struct {
	Cluster

	mu     sync.Mutex
	status Status
	watch  *watch
}

func (c *cluster) state() (Status, *watch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status, c.watch
}

func (s *Server) find(name string) *cluster {
	for _, c := range s.clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// inspectAll asks every cluster at once whether it answers and runs pxb, and starts watching those that do.
func (s *Server) inspectAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range s.clusters {
		wg.Go(func() {
			st := Status{Error: c.ConfigError}
			if c.Config != nil {
				st = s.opts.Backend.Inspect(ctx, c.Name)
			}
			c.mu.Lock()
			c.status = st
			start := st.watchable() && c.watch == nil
			if start {
				c.watch = newWatch(ctx, c.Config, c.Namespace, s.opts.Timeout, func(kind string, key string) { s.changed(c, kind, key) })
			}
			w := c.watch
			c.mu.Unlock()
			if start {
				w.start(s.ctx, s.opts.Timeout)
			}
		})
	}
	wg.Wait()
}
