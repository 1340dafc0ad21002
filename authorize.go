package oauth2provider

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-plugins/oauth2provider/authcheck"
	"github.com/caddy-plugins/oauth2provider/internal/wire"
	"github.com/caddy-plugins/oauth2provider/store"
)

// The authorization endpoint (RFC 6749 §4.1 with PKCE, RFC 7636): a login
// and consent page served by the plugin. Nothing is stored before the
// user has logged in: the validated request travels in a signed form
// field bound to a cookie, and only a successful login writes a code.

//go:embed login.html
var defaultLoginTemplate string

// Defaults and bounds of the authorization endpoint.
const (
	DefaultAuthorizePath = "/oauth2/authorize"
	DefaultCodeLifetime  = time.Minute
	maxCodeLifetime      = 10 * time.Minute // RFC 6749 §4.1.2
	loginStateLifetime   = 10 * time.Minute
)

// loginPage is what a login template is given.
type loginPage struct {
	ClientName  string
	Scopes      []string
	SkipConsent bool
	Username    string
	Error       string
	// Fields are the hidden inputs the form must send back.
	Fields template.HTML
	// Title and Message make it an error page instead.
	Title, Message string
}

// provisionAuthorize parses the login template and checks the code
// lifetime.
func (t *TokenEndpoint) provisionAuthorize() error {
	if t.CodeLifetime == 0 {
		t.CodeLifetime = caddy.Duration(DefaultCodeLifetime)
	}
	if t.CodeLifetime < 0 || time.Duration(t.CodeLifetime) > maxCodeLifetime {
		return fmt.Errorf("oauth2_token: code_lifetime must be positive and at most %v (RFC 6749 §4.1.2)", maxCodeLifetime)
	}
	text := defaultLoginTemplate
	if t.LoginTemplate != "" {
		b, err := os.ReadFile(t.LoginTemplate)
		if err != nil {
			return fmt.Errorf("oauth2_token: login_template: %w", err)
		}
		text = string(b)
	}
	tmpl, err := template.New("login").Parse(text)
	if err != nil {
		return fmt.Errorf("oauth2_token: login_template: %w", err)
	}
	// A template that does not send the state back cannot work.
	var probe bytes.Buffer
	const marker = "oauth2-login-fields"
	if err := tmpl.Execute(&probe, loginPage{ClientName: "x", Fields: template.HTML("<!--" + marker + "-->")}); err != nil {
		return fmt.Errorf("oauth2_token: login_template: %w", err)
	}
	if !strings.Contains(probe.String(), marker) {
		return errors.New("oauth2_token: login_template must output {{.Fields}} inside its form")
	}
	t.loginTmpl = tmpl
	key, err := hkdf.Key(sha256.New, t.app.salt, nil, "caddy-oauth2 login v1", 32)
	if err != nil {
		return err
	}
	t.stateKey = key
	return nil
}

// authzRequest is a validated authorization request.
type authzRequest struct {
	client      *client
	redirectURI string   // where to send the user
	sentURI     string   // as sent ("" if none was)
	scope       []string // granted
	requested   []string
	state       string
	challenge   string
}

// authzError is a refusal of an authorization request: a page when the
// redirect URI cannot be trusted (RFC 6749 §4.1.2.1), otherwise a
// redirect with an error code.
type authzError struct {
	status      int    // a page with this status, when not redirecting
	code        string // the OAuth error code of a redirect
	description string
}

func (e *authzError) Error() string { return e.code + ": " + e.description }

func authzPage(status int, description string) *authzError {
	return &authzError{status: status, description: description}
}

func authzRedirect(code, description string) *authzError {
	return &authzError{code: code, description: description}
}

// parseAuthzRequest validates the parameters of an authorization
// request. The returned request is non-nil whenever the error is a
// redirect, so the caller knows where to send it.
func (t *TokenEndpoint) parseAuthzRequest(ctx context.Context, q url.Values) (*authzRequest, *authzError) {
	for _, name := range []string{"client_id", "redirect_uri"} {
		if len(q[name]) > 1 {
			return nil, authzPage(http.StatusBadRequest, name+" is given more than once")
		}
	}
	id := q.Get("client_id")
	if id == "" {
		return nil, authzPage(http.StatusBadRequest, "the request names no client (client_id)")
	}
	c, err := t.app.client(ctx, id)
	if err != nil {
		return nil, authzPage(http.StatusBadRequest, "this application is not known here")
	}
	req := &authzRequest{client: c, sentURI: q.Get("redirect_uri")}
	switch {
	case req.sentURI == "" && len(c.RedirectURIs) == 1:
		req.redirectURI = c.RedirectURIs[0]
	case req.sentURI == "":
		return nil, authzPage(http.StatusBadRequest, "the request names no redirect_uri")
	case !matchRedirectURI(c.RedirectURIs, req.sentURI):
		return nil, authzPage(http.StatusBadRequest, "the redirect_uri is not registered for this application")
	default:
		req.redirectURI = req.sentURI
	}
	// From here on, errors go back to the client.
	req.state = q.Get("state")
	for name, values := range q {
		if len(values) > 1 {
			return req, authzRedirect("invalid_request", "parameter "+printable(name)+" is given more than once")
		}
	}
	switch rt := q.Get("response_type"); {
	case rt == "":
		return req, authzRedirect("invalid_request", "response_type is required")
	case rt != "code":
		return req, authzRedirect("unsupported_response_type", "only response_type=code is supported")
	}
	if !c.mayUse(GrantAuthorizationCode) {
		return req, authzRedirect("unauthorized_client", "this client may not use the authorization code grant")
	}
	req.challenge = q.Get("code_challenge")
	switch method := q.Get("code_challenge_method"); {
	case req.challenge == "":
		return req, authzRedirect("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
	case method != "S256":
		return req, authzRedirect("invalid_request", "code_challenge_method must be S256")
	case !validChallenge(req.challenge):
		return req, authzRedirect("invalid_request", "malformed code_challenge")
	}
	requested, ok := wire.ParseScope(q.Get("scope"))
	switch {
	case !ok:
		return req, authzRedirect("invalid_scope", "malformed scope")
	case len(requested) == 0:
		req.scope = c.DefaultScope
	default:
		req.requested = requested
		if s, ok := subset(requested, c.Scopes); !ok {
			return req, authzRedirect("invalid_scope", "scope "+printable(s)+" is not allowed for this client")
		}
		req.scope = requested
	}
	return req, nil
}

// printable keeps an echoed value within what an error_description may
// hold (RFC 6749 §4.1.2.1: %x20-21 / %x23-5B / %x5D-7E), cut short.
func printable(s string) string {
	s = wire.Truncate(s)
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}

// validChallenge checks an S256 challenge: 43 base64url characters.
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

// validVerifier checks a PKCE code_verifier (RFC 7636 §4.1):
// 43 to 128 of ALPHA / DIGIT / "-" / "." / "_" / "~".
func validVerifier(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// pkceMatches reports in constant time whether verifier is the one of
// the S256 challenge.
func pkceMatches(verifier, challenge string) bool {
	d := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(d[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// loginState is the validated request as the form carries it, signed.
type loginState struct {
	ClientID    string `json:"c"`
	RedirectURI string `json:"r,omitempty"` // as sent
	Scope       string `json:"s,omitempty"`
	State       []byte `json:"st,omitempty"` // bytes, so any state is echoed exactly
	Challenge   string `json:"cc"`
	Exp         int64  `json:"exp"`
	Nonce       string `json:"n"` // also in the cookie
}

func (t *TokenEndpoint) sealState(s loginState) string {
	payload, _ := json.Marshal(s)
	p := base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, t.stateKey)
	mac.Write([]byte(p))
	return p + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (t *TokenEndpoint) openState(sealed string, now time.Time) (loginState, bool) {
	var s loginState
	p, sig, ok := strings.Cut(sealed, ".")
	if !ok {
		return s, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return s, false
	}
	mac := hmac.New(sha256.New, t.stateKey)
	mac.Write([]byte(p))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return s, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || json.Unmarshal(payload, &s) != nil || now.Unix() > s.Exp {
		return s, false
	}
	return s, true
}

// loginCookie is the cookie that binds the form to the browser: __Host-
// over HTTPS (RFC 6265bis), a plain name over HTTP with require_ssl off.
// Each flow has its own cookie, named after its nonce, so two tabs or
// two apps signing in at once do not undo each other.
func loginCookieName(r *http.Request, nonce string) string {
	if len(nonce) > 12 {
		nonce = nonce[:12]
	}
	if viaHTTPS(r) {
		return "__Host-oauth2_login_" + nonce
	}
	return "oauth2_login_" + nonce
}

func setLoginCookie(w http.ResponseWriter, r *http.Request, nonce string, maxAge int) {
	value := nonce
	if maxAge < 0 {
		value = ""
	}
	http.SetCookie(w, &http.Cookie{
		Name: loginCookieName(r, nonce), Value: value, Path: "/", MaxAge: maxAge,
		Secure: viaHTTPS(r), HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// crossOrigin refuses cross-origin form posts (Go's CSRF protection, by
// Sec-Fetch-Site and Origin).
var crossOrigin = http.NewCrossOriginProtection()

// serveAuthorize is the authorization endpoint.
func (t *TokenEndpoint) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w.Header())
	if requireSSL(t.RequireSSL) && !viaHTTPS(r) {
		t.errorPage(w, http.StatusBadRequest, "This page must be loaded over HTTPS.")
		return
	}
	switch r.Method {
	case http.MethodGet:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			t.errorPage(w, http.StatusBadRequest, "The request is malformed.")
			return
		}
		req, aerr := t.parseAuthzRequest(r.Context(), q)
		if aerr != nil {
			t.refuseAuthz(w, r, req, aerr)
			return
		}
		t.showLogin(w, r, req, "", "", newNonce(), http.StatusOK)
	case http.MethodPost:
		t.postLogin(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		t.errorPage(w, http.StatusMethodNotAllowed, "This page is reached with GET or POST.")
	}
}

func newNonce() string { return randomString(16) }

// showLogin renders the login page for req, with the cookie for nonce.
func (t *TokenEndpoint) showLogin(w http.ResponseWriter, r *http.Request, req *authzRequest, username, message, nonce string, status int) {
	sealed := t.sealState(loginState{
		ClientID: req.client.id, RedirectURI: req.sentURI, Scope: strings.Join(req.requested, " "),
		State: []byte(req.state), Challenge: req.challenge, Exp: time.Now().Add(loginStateLifetime).Unix(), Nonce: nonce,
	})
	setLoginCookie(w, r, nonce, int(loginStateLifetime.Seconds()))
	fields := template.HTML(`<input type="hidden" name="authz" value="` + template.HTMLEscapeString(sealed) + `">`)
	t.render(w, status, loginPage{
		ClientName: req.client.displayName(), Scopes: req.scope, SkipConsent: req.client.SkipConsent,
		Username: username, Error: message, Fields: fields,
	})
}

func (t *TokenEndpoint) errorPage(w http.ResponseWriter, status int, message string) {
	t.render(w, status, loginPage{Title: http.StatusText(status), Message: message})
}

// render writes a page to a buffer first, so a template error is a
// clean 500 and not half a page.
func (t *TokenEndpoint) render(w http.ResponseWriter, status int, page loginPage) {
	var b bytes.Buffer
	if err := t.loginTmpl.Execute(&b, page); err != nil {
		t.logger.Error("rendering the login page", zap.Error(err))
		status, b = http.StatusInternalServerError, *bytes.NewBufferString("internal error")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// pageHeaders are the headers of every page: no caching, no framing, no
// referrer, no scripts or outside resources (RFC 9700 §4.16, §4.2.4).
// There is no CSP form-action: browsers apply it to the redirect after
// the form's POST and block it.
func pageHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// refuseAuthz answers a refused request: a page, or a redirect to the
// client with the error, its state and the issuer (RFC 9207).
func (t *TokenEndpoint) refuseAuthz(w http.ResponseWriter, r *http.Request, req *authzRequest, e *authzError) {
	if e.code == "" || req == nil {
		t.errorPage(w, max(e.status, http.StatusBadRequest), e.description)
		return
	}
	t.redirectToClient(w, r, req, url.Values{"error": {e.code}, "error_description": {e.description}})
}

// redirectToClient answers 303 to the client's redirect URI (its own
// query kept) with params, state and iss.
func (t *TokenEndpoint) redirectToClient(w http.ResponseWriter, r *http.Request, req *authzRequest, params url.Values) {
	u, _ := url.Parse(req.redirectURI) // validated when registered
	if req.state != "" {
		params.Set("state", req.state)
	}
	params.Set("iss", t.issuer(r))
	// The registered query is kept as it is (RFC 6749 §3.1.2).
	if u.RawQuery != "" {
		u.RawQuery += "&" + params.Encode()
	} else {
		u.RawQuery = params.Encode()
	}
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusSeeOther)
}

// issuer is the issuer identifier: configured, or the site's origin.
func (t *TokenEndpoint) issuer(r *http.Request) string {
	if t.Issuer != "" {
		return t.Issuer
	}
	return "https://" + r.Host
}

// postLogin handles the form: check the state, then the password.
func (t *TokenEndpoint) postLogin(w http.ResponseWriter, r *http.Request) {
	if err := crossOrigin.Check(r); err != nil {
		t.errorPage(w, http.StatusForbidden, "This form was sent from another site. Start again from the application.")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxFormBytes))
	if err != nil {
		t.errorPage(w, http.StatusBadRequest, "The form is malformed.")
		return
	}
	form, err := wire.ParseForm(body)
	if err != nil {
		t.errorPage(w, http.StatusBadRequest, "The form is malformed.")
		return
	}
	now := time.Now()
	st, ok := t.openState(form.Get("authz"), now)
	cookie, cerr := r.Cookie(loginCookieName(r, st.Nonce))
	if !ok || cerr != nil || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(st.Nonce)) != 1 {
		t.errorPage(w, http.StatusForbidden, "This sign-in page has expired or was not opened in this browser. Start again from the application.")
		return
	}
	// Validate again: the client may have changed since the page was shown.
	q := url.Values{"client_id": {st.ClientID}, "response_type": {"code"},
		"code_challenge": {st.Challenge}, "code_challenge_method": {"S256"}}
	if st.RedirectURI != "" {
		q.Set("redirect_uri", st.RedirectURI)
	}
	if st.Scope != "" {
		q.Set("scope", st.Scope)
	}
	if len(st.State) > 0 {
		q.Set("state", string(st.State))
	}
	req, aerr := t.parseAuthzRequest(r.Context(), q)
	if aerr != nil {
		t.refuseAuthz(w, r, req, aerr)
		return
	}
	if form.Get("action") == "deny" {
		setLoginCookie(w, r, st.Nonce, -1)
		t.redirectToClient(w, r, req, url.Values{"error": {"access_denied"}, "error_description": {"the user denied the request"}})
		return
	}
	username, password := form.Get("username"), form.Get("password")
	if username == "" || password == "" {
		t.showLogin(w, r, req, username, "Enter your username and password.", st.Nonce, http.StatusOK)
		return
	}
	ip := clientIP(r)
	try, wait := t.app.limiter.begin(username, ip, now)
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())))
		if ce := t.logger.Check(zapcore.InfoLevel, "login throttled"); ce != nil {
			ce.Write(zap.String("username", wire.Truncate(username)), zap.String("client_id", req.client.id), zap.String("remote_ip", ip))
		}
		t.errorPage(w, http.StatusTooManyRequests, "Too many failed sign-ins. Try again later.")
		return
	}
	userID, err := t.checker.CheckAuth(r.Context(), username, password)
	switch {
	case errors.Is(err, authcheck.ErrInvalidCredentials):
		try.failed(time.Now())
		if ce := t.logger.Check(zapcore.InfoLevel, "failed login"); ce != nil {
			ce.Write(zap.String("username", wire.Truncate(username)), zap.String("client_id", req.client.id), zap.String("remote_ip", ip))
		}
		t.showLogin(w, r, req, username, "Wrong username or password.", st.Nonce, http.StatusOK)
		return
	case err != nil:
		try.abandon(time.Now())
		if ce := t.logger.Check(zapcore.ErrorLevel, "user check unavailable"); ce != nil {
			ce.Write(zap.String("username", wire.Truncate(username)), zap.String("client_id", req.client.id), zap.Error(err))
		}
		w.Header().Set("Retry-After", "5")
		t.errorPage(w, http.StatusServiceUnavailable, "Sign-in is not available right now. Try again in a moment.")
		return
	}
	try.succeeded(time.Now())
	code, err := t.app.store.CreateCode(r.Context(), store.AuthCode{
		ClientID: req.client.id, StaticClient: req.client.static, UserID: userID,
		Scope: strings.Join(req.scope, " "), Requested: strings.Join(req.requested, " "),
		RedirectURI: req.sentURI, Challenge: req.challenge,
		IssuedAt: now, ExpiresAt: now.Add(time.Duration(t.CodeLifetime)),
	})
	setLoginCookie(w, r, st.Nonce, -1)
	if err != nil {
		t.logger.Error("storing an authorization code", zap.Error(err))
		t.redirectToClient(w, r, req, url.Values{"error": {"server_error"}})
		return
	}
	t.redirectToClient(w, r, req, url.Values{"code": {code}})
}

// authorizationCodeGrant is RFC 6749 §4.1.3 with PKCE: the code works
// once, for the client it was issued to, with the redirect URI it was
// issued for and the verifier of its challenge.
func (t *TokenEndpoint) authorizationCodeGrant(r *http.Request, c *client, form url.Values) (*tokenResponse, error) {
	if !c.mayUse(GrantAuthorizationCode) {
		return nil, errUnauthorizedClient("this client may not use the authorization_code grant")
	}
	code, err := requireParam(form, "code")
	if err != nil {
		return nil, err
	}
	verifier, err := requireParam(form, "code_verifier")
	if err != nil {
		return nil, err
	}
	if !validVerifier(verifier) {
		return nil, errInvalidRequest("malformed code_verifier (RFC 7636 §4.1)")
	}
	redirectURI := form.Get("redirect_uri")
	var scope, requested []string
	pair, err := t.app.store.RedeemCode(r.Context(), code, time.Now(), func(ac store.AuthCode) (store.Grant, error) {
		// redirect_uri must be the one sent to the authorization endpoint;
		// if none was sent, it may be left out or be the registered one.
		sameURI := ac.RedirectURI == redirectURI || ac.RedirectURI == "" && slices.Contains(c.RedirectURIs, redirectURI)
		switch {
		case ac.ClientID != c.id:
			return store.Grant{}, errCodeRefused // not this client's to spend
		case !sameURI || !pkceMatches(verifier, ac.Challenge):
			return store.Grant{}, fmt.Errorf("%w: %w", store.ErrBurnCode, errCodeRefused)
		}
		scope, _ = wire.ParseScope(ac.Scope)
		requested, _ = wire.ParseScope(ac.Requested)
		return t.app.grant(c, ac.UserID, ac.Scope), nil
	})
	switch {
	case errors.Is(err, store.ErrTokenReused):
		if ce := t.logger.Check(zapcore.WarnLevel, "authorization code reused; the tokens it gave are revoked"); ce != nil {
			ce.Write(zap.String("client_id", c.id), zap.String("remote_ip", clientIP(r)))
		}
		return nil, errCodeRefused
	case errors.Is(err, store.ErrNotFound):
		return nil, errCodeRefused
	case err != nil:
		return nil, err
	}
	// Asked for none: the default scope granted is said (RFC 6749 §5.1).
	return t.response(pair, requested, scope), nil
}

// errCodeRefused is the answer for every code that does not work.
var errCodeRefused = errInvalidGrant("the authorization code is invalid, expired or used, or was issued for another client, redirect_uri or code_verifier")
