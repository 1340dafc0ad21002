package oauth2provider

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// browser is a client with a cookie jar that does not follow redirects,
// to fill the login form the way a browser would.
type browser struct {
	t *testing.T
	c *http.Client
}

func newJar() http.CookieJar {
	jar, _ := cookiejar.New(nil)
	return jar
}

func newBrowser(t *testing.T, e *env) *browser {
	jar := newJar()
	return &browser{t: t, c: &http.Client{
		Jar:           jar,
		Transport:     e.client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is a response of the authorization endpoint.
type page struct {
	status   int
	header   http.Header
	body     string
	location *url.URL
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, header: resp.Header, body: string(body)}
	if loc := resp.Header.Get("Location"); loc != "" {
		p.location, _ = url.Parse(loc)
	}
	return p
}

func (b *browser) get(u string) page {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

var authzField = regexp.MustCompile(`name="authz" value="([^"]+)"`)

// submit posts the login form of p back to where it came from.
func (b *browser) submit(pageURL string, p page, username, password, action string) page {
	b.t.Helper()
	m := authzField.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no login form in %d %s", p.status, p.body)
	}
	form := url.Values{"authz": {html.UnescapeString(m[1])}, "username": {username}, "password": {password}, "action": {action}}
	req, _ := http.NewRequest(http.MethodPost, pageURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// login runs the browser part of the flow and returns the redirect.
func (b *browser) login(authURL string) *url.URL {
	b.t.Helper()
	p := b.get(authURL)
	if p.status != http.StatusOK {
		b.t.Fatalf("login page: %d %s", p.status, p.body)
	}
	r := b.submit(authURL, p, "alice", "wonderland", "allow")
	if r.status != http.StatusSeeOther || r.location == nil {
		b.t.Fatalf("after the login: %d %s", r.status, r.body)
	}
	return r.location
}

func authCodeConfig(clientID, secret, redirect string, style oauth2.AuthStyle) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		RedirectURL:  redirect,
		Scopes:       []string{"read"},
		Endpoint: oauth2.Endpoint{
			AuthURL:   baseURL + DefaultAuthorizePath,
			TokenURL:  baseURL + DefaultTokenPath,
			AuthStyle: style,
		},
	}
}

// The whole flow with golang.org/x/oauth2, without a browser: the login
// page, the redirect with code, state and iss, the exchange with the
// PKCE verifier, a protected call and a refresh.
func TestAuthorizationCodeFlow(t *testing.T) {
	e := startCaddy(t, testConfig{})
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.client)
	for name, conf := range map[string]*oauth2.Config{
		// A native app on a loopback port that is not the registered one
		// (RFC 8252 §7.3), sending its client_id in the body.
		"public client":       authCodeConfig("spa", "", "http://127.0.0.1:5555/callback", oauth2.AuthStyleInParams),
		"confidential client": authCodeConfig("web", "web-secret", "https://web.example/cb", oauth2.AuthStyleInHeader),
	} {
		t.Run(name, func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			authURL := conf.AuthCodeURL("the-state", oauth2.S256ChallengeOption(verifier))
			loc := newBrowser(t, e).login(authURL)
			want, _ := url.Parse(conf.RedirectURL)
			q := loc.Query()
			if loc.Host != want.Host || loc.Path != want.Path || q.Get("state") != "the-state" || q.Get("iss") != baseURL || q.Get("code") == "" {
				t.Fatalf("redirect to %s", loc)
			}
			tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if tok.Extra("user_id") != float64(1234) || tok.RefreshToken == "" {
				t.Fatalf("token %+v, user %v", tok, tok.Extra("user_id"))
			}
			if r := e.get("/api/x", tok.AccessToken); r.status != 200 || r.str("user_id") != "1234" || r.str("client_id") != conf.ClientID {
				t.Fatalf("protected call: %d %s", r.status, r.body)
			}
			tok.Expiry = tok.Expiry.Add(-2 * 3600e9) // make the token source refresh
			fresh, err := conf.TokenSource(ctx, tok).Token()
			if err != nil {
				t.Fatal(err)
			}
			if fresh.AccessToken == tok.AccessToken {
				t.Fatal("no refresh")
			}
			if r := e.get("/api/x", fresh.AccessToken); r.status != 200 {
				t.Fatalf("refreshed token: %d", r.status)
			}
		})
	}
}

func TestLoginPageHasItsSecurityHeaders(t *testing.T) {
	e := startCaddy(t, testConfig{})
	conf := authCodeConfig("web", "web-secret", "https://web.example/cb", oauth2.AuthStyleInHeader)
	p := newBrowser(t, e).get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	for k, want := range map[string]string{
		"X-Frame-Options":        "DENY",
		"Cache-Control":          "no-store",
		"Referrer-Policy":        "no-referrer",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := p.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	csp := p.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "form-action") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(p.body, "<script") || !strings.Contains(p.body, "Web App") || !strings.Contains(p.body, `value="deny"`) {
		t.Errorf("page: %s", p.body)
	}
	if c := p.header.Get("Set-Cookie"); !strings.HasPrefix(c, "__Host-oauth2_login_") || !strings.Contains(c, "Secure") ||
		!strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") || !strings.Contains(c, "Path=/") {
		t.Errorf("cookie %q", c)
	}
}

// authorizeURL builds an authorization request for a client by hand.
func authorizeURL(kv ...string) string {
	q := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return baseURL + DefaultAuthorizePath + "?" + q.Encode()
}

const testChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" // of dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk

func TestAuthorizationRequestErrors(t *testing.T) {
	e := startCaddy(t, testConfig{})
	b := newBrowser(t, e)
	good := []string{"response_type", "code", "client_id", "web", "redirect_uri", "https://web.example/cb",
		"code_challenge", testChallenge, "code_challenge_method", "S256", "state", "xyz"}
	with := func(kv ...string) string {
		q := append([]string(nil), good...)
		for i := 0; i < len(kv); i += 2 {
			replaced := false
			for j := 0; j < len(q); j += 2 {
				if q[j] == kv[i] {
					q[j+1], replaced = kv[i+1], true
				}
			}
			if !replaced {
				q = append(q, kv[i], kv[i+1])
			}
		}
		var out []string
		for i := 0; i < len(q); i += 2 {
			if q[i+1] != "-" {
				out = append(out, q[i], q[i+1])
			}
		}
		return authorizeURL(out...)
	}
	// Errors that must not redirect: a page.
	for name, u := range map[string]string{
		"unknown client":                  with("client_id", "nobody"),
		"no client":                       with("client_id", "-"),
		"unregistered redirect_uri":       with("redirect_uri", "https://evil.example/cb"),
		"another loopback path":           with("client_id", "spa", "redirect_uri", "http://127.0.0.1:8000/other"),
		"userinfo on loopback":            with("client_id", "spa", "redirect_uri", "http://evil@127.0.0.1:8000/callback"),
		"no redirect_uri, two registered": with("client_id", "spa", "redirect_uri", "-"),
		"redirect_uri twice":              with() + "&redirect_uri=https%3A%2F%2Fweb.example%2Fcb",
		"client_id twice":                 with() + "&client_id=web",
		"malformed redirect_uri":          with("redirect_uri", "https://web.example/%zz"),
	} {
		t.Run(name, func(t *testing.T) {
			p := b.get(u)
			if p.status != http.StatusBadRequest || p.location != nil || p.header.Get("X-Frame-Options") != "DENY" {
				t.Fatalf("%d, Location %v", p.status, p.location)
			}
		})
	}
	// Errors that go back to the client.
	for name, tc := range map[string]struct{ url, code string }{
		"no response_type":       {with("response_type", "-"), "invalid_request"},
		"token response_type":    {with("response_type", "token"), "unsupported_response_type"},
		"no PKCE":                {with("code_challenge", "-", "code_challenge_method", "-"), "invalid_request"},
		"plain PKCE":             {with("code_challenge_method", "plain"), "invalid_request"},
		"no challenge method":    {with("code_challenge_method", "-"), "invalid_request"},
		"malformed challenge":    {with("code_challenge", "short"), "invalid_request"},
		"scope not allowed":      {with("scope", "admin"), "invalid_scope"},
		"grant not allowed":      {with("client_id", "app", "redirect_uri", "https://app.example/cb"), "unauthorized_client"},
		"no redirect_uri at all": {with("client_id", "other", "redirect_uri", "-"), ""}, // other has none registered: a page
		"state twice":            {with() + "&state=again", "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			p := b.get(tc.url)
			if tc.code == "" {
				if p.status != http.StatusBadRequest || p.location != nil {
					t.Fatalf("%d %v", p.status, p.location)
				}
				return
			}
			if p.status != http.StatusSeeOther || p.location == nil {
				t.Fatalf("%d %s", p.status, p.body)
			}
			q := p.location.Query()
			if !strings.HasSuffix(p.location.Host, ".example") || q.Get("error") != tc.code || q.Get("iss") != baseURL || q.Get("state") == "" {
				t.Fatalf("redirect %s", p.location)
			}
		})
	}
	// A public client's registered query is kept, with a single URI
	// resolved when none is sent... here two are registered, so the one
	// with a query is named.
	p := b.get(with("client_id", "spa", "redirect_uri", "https://spa.example/cb?from=login", "scope", "admin"))
	if p.location == nil || p.location.Query().Get("from") != "login" || p.location.Query().Get("error") != "invalid_scope" {
		t.Fatalf("redirect with the registered query: %d %v", p.status, p.location)
	}
	if r := b.do(mustRequest(http.MethodPut, with())); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, POST" {
		t.Fatalf("PUT: %d %v", r.status, r.header)
	}
}

func mustRequest(method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return req
}

func TestCodeExchangeErrors(t *testing.T) {
	e := startCaddy(t, testConfig{})
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.client)
	conf := authCodeConfig("web", "web-secret", "https://web.example/cb", oauth2.AuthStyleInHeader)
	newCode := func() (code, verifier string) {
		verifier = oauth2.GenerateVerifier()
		loc := newBrowser(t, e).login(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
		return loc.Query().Get("code"), verifier
	}
	exchange := func(id, code, verifier, redirect string) reply {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {redirect}}
		return e.post(DefaultTokenPath, basic(id, clientSecret(id)), f)
	}
	t.Run("wrong verifier", func(t *testing.T) {
		code, _ := newCode()
		assertOAuthError(t, exchange("web", code, oauth2.GenerateVerifier(), conf.RedirectURL), 400, "invalid_grant")
	})
	t.Run("malformed verifier", func(t *testing.T) {
		code, _ := newCode()
		assertOAuthError(t, exchange("web", code, "short", conf.RedirectURL), 400, "invalid_request")
	})
	t.Run("no verifier", func(t *testing.T) {
		code, _ := newCode()
		assertOAuthError(t, e.post(DefaultTokenPath, basic("web", "web-secret"),
			url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {conf.RedirectURL}}), 400, "invalid_request")
	})
	t.Run("another redirect_uri", func(t *testing.T) {
		code, v := newCode()
		assertOAuthError(t, exchange("web", code, v, "https://web.example/other"), 400, "invalid_grant")
	})
	t.Run("no code", func(t *testing.T) {
		assertOAuthError(t, e.post(DefaultTokenPath, basic("web", "web-secret"),
			url.Values{"grant_type": {"authorization_code"}, "code_verifier": {oauth2.GenerateVerifier()}}), 400, "invalid_request")
	})
	t.Run("a failed replay revokes nothing", func(t *testing.T) {
		code, v := newCode()
		tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		assertOAuthError(t, exchange("web", code, oauth2.GenerateVerifier(), conf.RedirectURL), 400, "invalid_grant")
		assertOAuthError(t, exchange("web2", code, v, conf.RedirectURL), 400, "invalid_grant")
		if r := e.get("/api/x", tok.AccessToken); r.status != 200 {
			t.Fatalf("a replay without the verifier revoked the tokens: %d", r.status)
		}
		// The real reuse still revokes them.
		assertOAuthError(t, exchange("web", code, v, conf.RedirectURL), 400, "invalid_grant")
		if r := e.get("/api/x", tok.AccessToken); r.status != 401 {
			t.Fatalf("after the reuse: %d", r.status)
		}
	})
	t.Run("another confidential client", func(t *testing.T) {
		code, v := newCode()
		assertOAuthError(t, exchange("web2", code, v, conf.RedirectURL), 400, "invalid_grant")
		// It did not burn the code: the right client still gets its tokens.
		if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(v)); err != nil {
			t.Fatalf("another client burnt the code: %v", err)
		}
	})
	t.Run("another client", func(t *testing.T) {
		code, v := newCode()
		assertOAuthError(t, exchange("app", code, v, conf.RedirectURL), 400, "unauthorized_client")
		assertOAuthError(t, e.post(DefaultTokenPath, "", url.Values{"grant_type": {"authorization_code"}, "client_id": {"spa"},
			"code": {code}, "code_verifier": {v}, "redirect_uri": {conf.RedirectURL}}), 400, "invalid_grant")
	})
	t.Run("unknown code", func(t *testing.T) {
		assertOAuthError(t, exchange("web", "nope", oauth2.GenerateVerifier(), conf.RedirectURL), 400, "invalid_grant")
	})
	t.Run("a public client with a secret", func(t *testing.T) {
		assertOAuthError(t, e.post(DefaultTokenPath, basic("spa", "guess"), url.Values{"grant_type": {"authorization_code"}}), 401, "invalid_client")
	})
	t.Run("reuse revokes the tokens", func(t *testing.T) {
		code, v := newCode()
		tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		if r := e.get("/api/x", tok.AccessToken); r.status != 200 {
			t.Fatalf("%d", r.status)
		}
		assertOAuthError(t, exchange("web", code, v, conf.RedirectURL), 400, "invalid_grant")
		if r := e.get("/api/x", tok.AccessToken); r.status != 401 {
			t.Fatalf("the token of a reused code: %d", r.status)
		}
		assertOAuthError(t, e.refresh("web", tok.RefreshToken), 400, "invalid_grant")
	})
}

func TestExpiredCodeIsRefused(t *testing.T) {
	e := startCaddy(t, testConfig{Issuer: "authorize {\n\t\t\tcode_lifetime 1s\n\t\t}"})
	conf := authCodeConfig("web", "web-secret", "https://web.example/cb", oauth2.AuthStyleInHeader)
	v := oauth2.GenerateVerifier()
	code := newBrowser(t, e).login(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v))).Query().Get("code")
	sleepPast(1.2)
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {v}, "redirect_uri": {conf.RedirectURL}}
	assertOAuthError(t, e.post(DefaultTokenPath, basic("web", "web-secret"), f), 400, "invalid_grant")
}

func TestLoginFormState(t *testing.T) {
	e := startCaddy(t, testConfig{})
	conf := authCodeConfig("web", "web-secret", "https://web.example/cb", oauth2.AuthStyleInHeader)
	authURL := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	b := newBrowser(t, e)
	p := b.get(authURL)

	t.Run("forged state", func(t *testing.T) {
		forged := page{body: strings.Replace(p.body, `name="authz" value="`, `name="authz" value="x`, 1)}
		if r := b.submit(authURL, forged, "alice", "wonderland", "allow"); r.status != http.StatusForbidden || r.location != nil {
			t.Fatalf("%d %v", r.status, r.location)
		}
	})
	t.Run("another browser", func(t *testing.T) {
		if r := newBrowser(t, e).submit(authURL, p, "alice", "wonderland", "allow"); r.status != http.StatusForbidden {
			t.Fatalf("%d", r.status)
		}
		// One that has a login cookie, of its own flow.
		other := newBrowser(t, e)
		other.get(authURL)
		r := other.submit(authURL, p, "alice", "wonderland", "allow")
		if r.status != http.StatusForbidden || r.header.Get("Content-Security-Policy") == "" || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%d %v", r.status, r.header)
		}
	})
	t.Run("two flows in one browser", func(t *testing.T) {
		second := b.get(authURL)
		if r := b.submit(authURL, p, "alice", "wonderland", "allow"); r.status != http.StatusSeeOther {
			t.Fatalf("the first flow after a second began: %d", r.status)
		}
		if r := b.submit(authURL, second, "alice", "wonderland", "allow"); r.status != http.StatusSeeOther {
			t.Fatalf("the second flow: %d", r.status)
		}
	})
	t.Run("cross-origin post", func(t *testing.T) {
		m := authzField.FindStringSubmatch(p.body)
		form := url.Values{"authz": {html.UnescapeString(m[1])}, "username": {"alice"}, "password": {"wonderland"}}
		req, _ := http.NewRequest(http.MethodPost, authURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if r := b.do(req); r.status != http.StatusForbidden {
			t.Fatalf("%d", r.status)
		}
	})
	t.Run("wrong password shows the form again", func(t *testing.T) {
		r := b.submit(authURL, b.get(authURL), "alice", "nope", "allow")
		if r.status != http.StatusOK || !strings.Contains(r.body, "Wrong username or password") || !strings.Contains(r.body, `value="alice"`) {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("deny", func(t *testing.T) {
		r := b.submit(authURL, b.get(authURL), "", "", "deny")
		if r.location == nil || r.location.Query().Get("error") != "access_denied" || r.location.Query().Get("state") != "s" {
			t.Fatalf("%d %v", r.status, r.location)
		}
	})
}

func TestLoginFormIsThrottledWithoutAskingTheUserCheck(t *testing.T) {
	e := startCaddy(t, testConfig{Extra: "max_failed_logins 3 1m"})
	conf := authCodeConfig("web", "web-secret", "https://web.example/cb", oauth2.AuthStyleInHeader)
	authURL := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	b := newBrowser(t, e)
	p := b.get(authURL)
	before := upstreamCalls.Load()
	var last page
	for range 6 {
		last = b.submit(authURL, p, "alice", "guess", "allow")
	}
	if calls := upstreamCalls.Load() - before; calls != 3 {
		t.Fatalf("%d upstream calls for 6 tries, limit 3", calls)
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("%d %v", last.status, last.header)
	}
}

func sleepPast(seconds float64) { time.Sleep(time.Duration(seconds * float64(time.Second))) }

func TestRedirectURIRules(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://app.example/cb":      true,
		"https://app.example/cb?x=1":  true,
		"http://127.0.0.1/cb":         true,
		"http://[::1]:8080/cb":        true,
		"http://localhost/cb":         true,
		"com.example.app:/callback":   true,
		"http://app.example/cb":       false,
		"https://app.example/cb#frag": false,
		"https://user@app.example/cb": false,
		"myapp:/cb":                   false,
		"javascript:alert(1)":         false,
		"data:text/html,x":            false,
		"/relative":                   false,
		"https:///nohost":             false,
	} {
		if err := validRedirectURI(u); (err == nil) != ok {
			t.Errorf("%s: %v", u, err)
		}
	}
	reg := []string{"http://127.0.0.1/cb", "https://app.example/cb"}
	for u, ok := range map[string]bool{
		"http://127.0.0.1/cb":        true,
		"http://127.0.0.1:49152/cb":  true,
		"http://127.0.0.1:1/cb?x=1":  false,
		"http://127.0.0.1:1/other":   false,
		"http://[::1]:1/cb":          false,
		"https://app.example/cb":     true,
		"https://app.example:443/cb": false,
		"https://app.example/cb/":    false,
		"HTTPS://app.example/cb":     false,
	} {
		if matchRedirectURI(reg, u) != ok {
			t.Errorf("match %s: want %v", u, ok)
		}
	}
}

func TestPKCE(t *testing.T) {
	// RFC 7636 appendix B.
	if !pkceMatches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", testChallenge) {
		t.Fatal("the RFC's test vector does not match")
	}
	if pkceMatches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", testChallenge) {
		t.Fatal("another verifier matches")
	}
	for v, ok := range map[string]bool{
		strings.Repeat("a", 43): true, strings.Repeat("~", 128): true,
		strings.Repeat("a", 42): false, strings.Repeat("a", 129): false, strings.Repeat("a", 42) + "+": false,
	} {
		if validVerifier(v) != ok {
			t.Errorf("verifier %q", v)
		}
	}
}

func TestLoginTemplateCanBeReplaced(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/login.html"
	if err := os.WriteFile(good, []byte(`<p>Our own page for {{.ClientName}}</p>{{if .Message}}{{.Message}}{{else}}<form method="post">{{.Fields}}<input name="username"><input name="password"><button name="action" value="allow">Go</button></form>{{end}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startCaddy(t, testConfig{Issuer: "authorize {\n\t\t\tlogin_template " + good + "\n\t\t}"})
	conf := authCodeConfig("web", "web-secret", "https://web.example/cb", oauth2.AuthStyleInHeader)
	authURL := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	b := newBrowser(t, e)
	p := b.get(authURL)
	if !strings.Contains(p.body, "Our own page for Web App") {
		t.Fatalf("%d %s", p.status, p.body)
	}
	if r := b.submit(authURL, p, "alice", "wonderland", "allow"); r.status != http.StatusSeeOther || r.location.Query().Get("code") == "" {
		t.Fatalf("%d %v", r.status, r.location)
	}

	bad := dir + "/bad.html"
	if err := os.WriteFile(bad, []byte(`<form method="post"><input name="username"></form>`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig{Issuer: "authorize {\n\t\t\tlogin_template " + bad + "\n\t\t}"}.render()
	assertLoadError(t, cfg, "login_template must output {{.Fields}} inside its form")
	broken := dir + "/broken.html"
	if err := os.WriteFile(broken, []byte(`{{.Fields`), 0o600); err != nil {
		t.Fatal(err)
	}
	assertLoadError(t, testConfig{Issuer: "authorize {\n\t\t\tlogin_template " + broken + "\n\t\t}"}.render(), "oauth2_token: login_template: template: login:1")
}

func TestLoginPageOverPlainHTTPIsRefused(t *testing.T) {
	startCaddy(t, testConfig{})
	resp, err := plainClient.Get("http://127.0.0.1:9082" + DefaultAuthorizePath + "?client_id=web")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

func TestLoginWithTheUserCheckDownIsA503Page(t *testing.T) {
	e := startCaddy(t, testConfig{})
	conf := authCodeConfig("web", "web-secret", "https://web.example/cb", oauth2.AuthStyleInHeader)
	authURL := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	b := newBrowser(t, e)
	r := b.submit(authURL, b.get(authURL), "broken", "x", "allow")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || r.location != nil {
		t.Fatalf("%d %v", r.status, r.header)
	}
}

func TestLoginStateExpires(t *testing.T) {
	te := &TokenEndpoint{stateKey: []byte("0123456789abcdef0123456789abcdef")}
	now := time.Now()
	sealed := te.sealState(loginState{ClientID: "web", Challenge: testChallenge, Exp: now.Add(time.Minute).Unix(), Nonce: "n"})
	if st, ok := te.openState(sealed, now); !ok || st.ClientID != "web" {
		t.Fatal("a fresh state does not open")
	}
	if _, ok := te.openState(sealed, now.Add(2*time.Minute)); ok {
		t.Fatal("an expired state opens")
	}
	other := &TokenEndpoint{stateKey: []byte("another key, another salt.......")}
	if _, ok := other.openState(sealed, now); ok {
		t.Fatal("a state opens under another key")
	}
}

func TestPublicClientsCannotIntrospect(t *testing.T) {
	e := startCaddy(t, testConfig{})
	live := e.login("app")
	r := e.post(DefaultIntrospectionPath, "", url.Values{"client_id": {"spa"}, "token": {live.str("access_token")}})
	assertOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
}
