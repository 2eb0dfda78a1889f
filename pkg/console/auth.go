package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

const (
	// tokenParam carries the token in the URL the command prints; the first request trades it for a cookie.
	tokenParam = "token"
	// sessionCookie holds the session the token opened.
	sessionCookie = "pxb-console"
	// csrfField is the form field every POST carries, the session's CSRF token.
	csrfField = "csrf"
)

// NewToken returns 32 random bytes, base64url-encoded: the secret of one console's URL.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// CheckAddress says whether the console may listen on host: a loopback address always, another one only
// when the user gave it explicitly, and then warning says that the network reaches the console.
func CheckAddress(host string, explicit bool) (warning string, err error) {
	if isLoopback(host) {
		return "", nil
	}
	if !explicit {
		return "", fmt.Errorf("address %q is not a loopback address: give --address %s explicitly to serve the console to the network", host, host)
	}
	return fmt.Sprintf("warning: the console listens on %s and is reachable from the network; anyone with its URL acts with your kubeconfig's credentials", host), nil
}

// isLoopback reports whether host (a name or an IP, without port) is this machine's loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// auth keeps the console's token and the sessions it opened. A session is a random ID in an HttpOnly,
// SameSite=Strict cookie, with a CSRF token of its own that every form carries.
type auth struct {
	token string
	// host is the host the console listens on; requests naming another (DNS rebinding) are refused.
	host string

	mu       sync.Mutex
	sessions map[string]string // session ID → CSRF token
}

func newAuth(token, host string) *auth {
	return &auth{token: token, host: host, sessions: map[string]string{}}
}

// verdict is what auth decides about a request.
type verdict int

const (
	allowed verdict = iota
	// redirect: the URL carried the right token; a session cookie is set and the token dropped from the URL.
	redirect
	unauthorized
	forbidden
)

// check decides about r and returns the session's CSRF token ("" for a request authorized by header).
func (a *auth) check(r *http.Request) (verdict, string) {
	if !a.hostAllowed(r.Host) {
		return forbidden, ""
	}
	if t := r.URL.Query().Get(tokenParam); t != "" {
		if r.Method == http.MethodGet && a.equal(t) {
			return redirect, ""
		}
		return unauthorized, ""
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok && a.equal(t) {
			// A browser sends no Authorization header across sites on its own, so no CSRF token is needed.
			return allowed, ""
		}
		return unauthorized, ""
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return unauthorized, ""
	}
	a.mu.Lock()
	csrf, ok := a.sessions[c.Value]
	a.mu.Unlock()
	if !ok {
		return unauthorized, ""
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !sameOrigin(r) || !equalStrings(r.PostFormValue(csrfField), csrf) {
			return forbidden, csrf
		}
	}
	return allowed, csrf
}

// open starts a session, after the URL's token was checked, and returns its cookie.
func (a *auth) open() (*http.Cookie, error) {
	id, err := NewToken()
	if err != nil {
		return nil, err
	}
	csrf, err := NewToken()
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.sessions[id] = csrf
	a.mu.Unlock()
	return &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode}, nil
}

func (a *auth) equal(t string) bool { return equalStrings(t, a.token) }

func equalStrings(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// hostAllowed reports whether the Host header names the console: its listen host, or for a loopback
// listener any loopback name. Another name is a page that resolved its own domain to this address.
func (a *auth) hostAllowed(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if isLoopback(a.host) {
		return isLoopback(host)
	}
	// Listening on every address, the console has no one name; the token alone admits requests.
	if ip := net.ParseIP(strings.Trim(a.host, "[]")); ip != nil && ip.IsUnspecified() {
		return true
	}
	return strings.EqualFold(strings.Trim(host, "[]"), strings.Trim(a.host, "[]")) || isLoopback(host)
}

// sameOrigin reports whether a state-changing request comes from the console's own pages: its Origin (or,
// without one, its Referer) names the host the request was sent to.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = r.Header.Get("Referer")
	}
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}
