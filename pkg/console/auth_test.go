package console

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	raw, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil || len(raw) != 32 {
		t.Errorf("token %q: %d bytes, %v; want 32 bytes of base64url", a, len(raw), err)
	}
	if a == b {
		t.Errorf("two tokens are the same: %q", a)
	}
}

func TestCheckAddress(t *testing.T) {
	for _, tc := range []struct {
		host      string
		explicit  bool
		ok, warns bool
	}{
		{"127.0.0.1", false, true, false},
		{"127.0.0.1", true, true, false},
		{"::1", true, true, false},
		{"localhost", false, true, false},
		{"0.0.0.0", false, false, false},
		{"192.168.1.5", false, false, false},
		{"0.0.0.0", true, true, true},
		{"192.168.1.5", true, true, true},
	} {
		warning, err := CheckAddress(tc.host, tc.explicit)
		if (err == nil) != tc.ok || (warning != "") != tc.warns {
			t.Errorf("CheckAddress(%q, %v) = %q, %v; want ok %v, warning %v", tc.host, tc.explicit, warning, err, tc.ok, tc.warns)
		}
		if tc.warns && !strings.Contains(warning, "reachable from the network") {
			t.Errorf("warning %q does not say the network reaches the console", warning)
		}
	}
}

// session opens a session as a browser does with the console's URL, and returns its cookie and CSRF token.
func session(t *testing.T, a *auth) (*http.Cookie, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/?token="+a.token, nil)
	if v, _ := a.check(r); v != redirect {
		t.Fatalf("the URL's token: verdict %v, want redirect", v)
	}
	c, err := a.open()
	if err != nil {
		t.Fatal(err)
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("cookie %+v is not HttpOnly and SameSite=Strict", c)
	}
	return c, a.sessions[c.Value]
}

func TestAuthCheck(t *testing.T) {
	a := newAuth("secret-token", "127.0.0.1")
	cookie, csrf := session(t, a)
	post := func(form url.Values, mod func(*http.Request)) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/backups", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://127.0.0.1:8080")
		r.AddCookie(cookie)
		if mod != nil {
			mod(r)
		}
		return r
	}
	get := func(target string, mod func(*http.Request)) *http.Request {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		if mod != nil {
			mod(r)
		}
		return r
	}
	withCookie := func(r *http.Request) { r.AddCookie(cookie) }
	for _, tc := range []struct {
		name string
		r    *http.Request
		want verdict
	}{
		{"no token", get("http://127.0.0.1:8080/", nil), unauthorized},
		{"wrong token in URL", get("http://127.0.0.1:8080/?token=guess", nil), unauthorized},
		{"token in URL of a POST", post(url.Values{csrfField: {csrf}}, func(r *http.Request) { r.URL.RawQuery = "token=secret-token" }), unauthorized},
		{"session cookie", get("http://127.0.0.1:8080/backups", withCookie), allowed},
		{"unknown session", get("http://127.0.0.1:8080/", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: sessionCookie, Value: "forged"}) }), unauthorized},
		{"bearer token", get("http://127.0.0.1:8080/", func(r *http.Request) { r.Header.Set("Authorization", "Bearer secret-token") }), allowed},
		{"wrong bearer token", get("http://127.0.0.1:8080/", func(r *http.Request) { r.Header.Set("Authorization", "Bearer guess") }), unauthorized},
		{"another host name (DNS rebinding)", get("http://evil.example:8080/", withCookie), forbidden},
		{"localhost name", get("http://localhost:8080/", withCookie), allowed},
		{"POST from the console", post(url.Values{csrfField: {csrf}}, nil), allowed},
		{"POST without CSRF token", post(url.Values{}, nil), forbidden},
		{"POST with a wrong CSRF token", post(url.Values{csrfField: {"guess"}}, nil), forbidden},
		{"POST from another origin", post(url.Values{csrfField: {csrf}}, func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }), forbidden},
		{"POST without Origin or Referer", post(url.Values{csrfField: {csrf}}, func(r *http.Request) { r.Header.Del("Origin") }), forbidden},
		{"POST with the console's Referer", post(url.Values{csrfField: {csrf}}, func(r *http.Request) {
			r.Header.Del("Origin")
			r.Header.Set("Referer", "http://127.0.0.1:8080/backups")
		}), allowed},
	} {
		if got, _ := a.check(tc.r); got != tc.want {
			t.Errorf("%s: verdict %v, want %v", tc.name, got, tc.want)
		}
	}

	// A second session has a CSRF token of its own: one session's token is no good in another.
	other, otherCSRF := session(t, a)
	if otherCSRF == csrf {
		t.Fatal("two sessions share a CSRF token")
	}
	r := post(url.Values{csrfField: {csrf}}, nil)
	r.Header.Del("Cookie")
	r.AddCookie(other)
	if got, _ := a.check(r); got != forbidden {
		t.Errorf("POST with another session's CSRF token: verdict %v, want forbidden", got)
	}
}

func TestHostOfWildcardListener(t *testing.T) {
	a := newAuth("secret-token", "0.0.0.0")
	r := httptest.NewRequest(http.MethodGet, "http://10.1.2.3:8080/", nil)
	r.Header.Set("Authorization", "Bearer secret-token")
	if got, _ := a.check(r); got != allowed {
		t.Errorf("a request to the machine's address: verdict %v, want allowed", got)
	}
}
