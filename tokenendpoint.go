package oauth2provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-plugins/oauth2provider/authcheck"
	"github.com/caddy-plugins/oauth2provider/internal/wire"
	"github.com/caddy-plugins/oauth2provider/store"
)

func init() {
	caddy.RegisterModule(TokenEndpoint{})
}

// TokenEndpoint is the issuer: the OAuth 2.0 token endpoint (RFC 6749
// §3.2) and, beside it, token revocation (RFC 7009), token introspection
// (RFC 7662) and the server metadata document (RFC 8414). Each is served
// at its path; every other request passes on to the next handler. Clients
// authenticate with HTTP Basic and trade a username and password (checked
// by the auth_check), a refresh token or, for a client's own tokens,
// nothing at all (client_credentials) for tokens.
type TokenEndpoint struct {
	// The user check for the password grant. Required. The Caddyfile's
	// `auth_check <url>` is {"checker": "http", "url": "<url>"}.
	AuthCheckRaw json.RawMessage `json:"auth_check,omitempty" caddy:"namespace=oauth2.auth_checkers inline_key=checker"`

	// Refuse requests that did not reach the client's side over HTTPS
	// (TLS, or a trusted proxy's `X-Forwarded-Proto: https`). Default:
	// true.
	RequireSSL *bool `json:"require_ssl,omitempty"`

	// Require the refresh grant to carry the token's user_id, as the
	// seed did. Without it, a user_id that is sent must still match.
	RefreshRequiresUserID bool `json:"refresh_requires_user_id,omitempty"`

	// The path of each endpoint; "off" switches one off (the token
	// endpoint too, for an issuer that only revokes or introspects; then
	// auth_check may be left out). No two may be the same. Defaults:
	// /oauth2/token, /oauth2/revoke, /oauth2/introspect, and RFC 8414's
	// /.well-known/oauth-authorization-server (followed by the issuer's
	// path, if it has one).
	TokenPath         string `json:"token_path,omitempty"`
	RevocationPath    string `json:"revocation_path,omitempty"`
	IntrospectionPath string `json:"introspection_path,omitempty"`
	MetadataPath      string `json:"metadata_path,omitempty"`
	// The authorization endpoint, with the login page. Default:
	// /oauth2/authorize.
	AuthorizePath string `json:"authorize_path,omitempty"`

	// A file with an html/template for the login page, instead of the
	// built-in one; it must output {{.Fields}} inside its form. Checked
	// at start-up.
	LoginTemplate string `json:"login_template,omitempty"`

	// How long an authorization code may be exchanged. Default: 1m; at
	// most 10m.
	CodeLifetime caddy.Duration `json:"code_lifetime,omitempty"`

	// The issuer identifier of the metadata (RFC 8414 §2): an https URL
	// without query or fragment, to which the endpoint paths are added.
	// Default: https:// and the host the request was sent to.
	Issuer string `json:"issuer,omitempty"`

	app       *App
	checker   authcheck.AuthChecker
	loginTmpl *template.Template
	stateKey  []byte // signs the login form's state
	logger    *zap.Logger
}

// Default paths of the endpoints.
const (
	DefaultTokenPath         = "/oauth2/token"
	DefaultRevocationPath    = "/oauth2/revoke"
	DefaultIntrospectionPath = "/oauth2/introspect"
	wellKnownMetadataPath    = "/.well-known/oauth-authorization-server"
)

// CaddyModule returns the Caddy module information.
func (TokenEndpoint) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.oauth2_token",
		New: func() caddy.Module { return new(TokenEndpoint) },
	}
}

// Provision sets up the handler.
func (t *TokenEndpoint) Provision(ctx caddy.Context) error {
	t.logger = ctx.Logger()
	app, err := ctx.App("oauth2")
	if err != nil {
		return err
	}
	t.app = app.(*App)
	if err := t.provisionEndpoints(); err != nil {
		return err
	}
	if err := t.provisionAuthorize(); err != nil {
		return err
	}
	if t.AuthCheckRaw == nil {
		if t.TokenPath == "off" && t.AuthorizePath == "off" {
			return nil // no password to check
		}
		return errors.New("oauth2_token: auth_check is required (the URL that checks usernames and passwords)")
	}
	mod, err := ctx.LoadModule(t, "AuthCheckRaw")
	if err != nil {
		return fmt.Errorf("oauth2_token: %w", err)
	}
	t.checker = mod.(authcheck.AuthChecker)
	return nil
}

// provisionEndpoints validates the issuer and sets the endpoint paths.
func (t *TokenEndpoint) provisionEndpoints() error {
	issuerPath := ""
	if t.Issuer != "" {
		u, err := url.Parse(t.Issuer)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("oauth2_token: issuer must be an https URL without query or fragment (RFC 8414 §2): %q", t.Issuer)
		}
		t.Issuer = strings.TrimSuffix(t.Issuer, "/")
		issuerPath = strings.TrimSuffix(u.Path, "/")
	}
	for _, p := range []struct {
		field *string
		name  string
		def   string
	}{
		{&t.TokenPath, "token_path", DefaultTokenPath},
		{&t.RevocationPath, "revocation_path", DefaultRevocationPath},
		{&t.IntrospectionPath, "introspection_path", DefaultIntrospectionPath},
		{&t.MetadataPath, "metadata_path", wellKnownMetadataPath + issuerPath},
		{&t.AuthorizePath, "authorize_path", DefaultAuthorizePath},
	} {
		switch {
		case *p.field == "":
			*p.field = p.def
		case *p.field == "off":
		case !strings.HasPrefix(*p.field, "/"):
			return fmt.Errorf("oauth2_token: %s must be a path starting with / or off: %q", p.name, *p.field)
		}
	}
	seen := map[string]string{}
	for name, path := range map[string]string{"token_path": t.TokenPath, "revocation_path": t.RevocationPath,
		"introspection_path": t.IntrospectionPath, "metadata_path": t.MetadataPath, "authorize_path": t.AuthorizePath} {
		if path == "off" {
			continue
		}
		if other, dup := seen[path]; dup {
			return fmt.Errorf("oauth2_token: %s and %s are both %s", min(name, other), max(name, other), path)
		}
		seen[path] = name
	}
	return nil
}

// maxFormBytes bounds the request body.
const maxFormBytes = 64 << 10

// queryForbidden are the parameters that must never be sent in the URL,
// where logs and referrers would keep them.
var queryForbidden = []string{
	"grant_type", "username", "password", "refresh_token", "user_id", "scope",
	"client_id", "client_secret", "code", "code_verifier", "access_token", "token",
}

// tokenResponse is the success body (RFC 6749 §5.1) with the seed's
// user_id.
type tokenResponse struct {
	AccessToken  string          `json:"access_token"`
	TokenType    string          `json:"token_type"`
	ExpiresIn    int64           `json:"expires_in"`
	RefreshToken string          `json:"refresh_token,omitempty"`
	UserID       json.RawMessage `json:"user_id,omitempty"`
	Scope        string          `json:"scope,omitempty"`
}

// ServeHTTP implements caddyhttp.MiddlewareHandler: it answers at its
// endpoints' paths and passes every other request on.
func (t *TokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	var serve func(*http.Request) (any, error)
	switch r.URL.Path {
	case t.TokenPath:
		serve = t.serveToken
	case t.RevocationPath:
		serve = t.serveRevocation
	case t.IntrospectionPath:
		serve = t.serveIntrospection
	case t.MetadataPath:
		t.serveMetadata(w, r)
		return nil
	case t.AuthorizePath:
		t.serveAuthorize(w, r)
		return nil
	default:
		return next.ServeHTTP(w, r)
	}
	resp, err := serve(r)
	if err != nil {
		t.logFailure(r, err)
		writeOAuthError(w, r, err)
		return nil
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// authenticatedForm checks what the token, revocation and introspection
// endpoints share: HTTPS, POST, nothing in the URL, a well-formed form
// body, and client authentication.
func (t *TokenEndpoint) authenticatedForm(r *http.Request) (url.Values, *client, error) {
	if requireSSL(t.RequireSSL) && !viaHTTPS(r) {
		return nil, nil, errInvalidRequest("this endpoint requires HTTPS")
	}
	if r.Method != http.MethodPost {
		return nil, nil, oauthError(http.StatusMethodNotAllowed, "invalid_request", "this endpoint accepts only POST")
	}
	switch name, err := wire.ForbiddenQueryParam(r.URL.RawQuery, queryForbidden); {
	case err != nil:
		return nil, nil, errInvalidRequest("%v", err)
	case name != "":
		return nil, nil, errInvalidRequest("%s must be sent in the request body, not the URL", name)
	}
	form, err := readTokenForm(r)
	if err != nil {
		return nil, nil, err
	}
	c, err := t.authenticateClient(r, form)
	if err != nil {
		return nil, nil, err
	}
	return form, c, nil
}

// serveToken is the token endpoint.
func (t *TokenEndpoint) serveToken(r *http.Request) (any, error) {
	form, c, err := t.authenticatedForm(r)
	if err != nil {
		return nil, err
	}
	switch grant := form.Get("grant_type"); grant {
	case "":
		return nil, errInvalidRequest("grant_type is required")
	case GrantPassword:
		return t.passwordGrant(r, c, form)
	case GrantRefreshToken, "refresh":
		return t.refreshGrant(r, c, form)
	case GrantClientCredentials:
		return t.clientCredentialsGrant(r, c, form)
	case GrantAuthorizationCode:
		return t.authorizationCodeGrant(r, c, form)
	default:
		// The value is not echoed: it could be anything a client
		// mistyped, and descriptions reach the debug log.
		return nil, errUnsupportedGrantType("unsupported grant_type; this server supports %s", strings.Join(supportedGrantTypes, ", "))
	}
}

// readTokenForm reads and parses the form-encoded body.
func readTokenForm(r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errInvalidRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxFormBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errInvalidRequest("request body is larger than %d bytes", maxFormBytes)
	}
	if err != nil {
		return nil, errInvalidRequest("reading request body failed")
	}
	form, err := wire.ParseForm(body)
	if err != nil {
		return nil, errInvalidRequest("%v", err)
	}
	return form, nil
}

// authenticateClient authenticates the client with HTTP Basic.
func (t *TokenEndpoint) authenticateClient(r *http.Request, form url.Values) (*client, error) {
	if form.Has("client_secret") {
		return nil, errInvalidRequest("send client credentials in the Authorization header (HTTP Basic), not in the body")
	}
	id, secret, err := wire.BasicCredentials(r.Header)
	bodyID := form.Get("client_id")
	switch {
	case errors.Is(err, wire.ErrNoCredentials) && bodyID != "":
		// A public client sends only its id (RFC 6749 §2.3.1, §3.2.1).
		id, secret = bodyID, ""
	case err != nil:
		return nil, errInvalidClient("%v", err)
	case bodyID != "" && bodyID != id:
		return nil, errInvalidRequest("client_id in the body does not match the Authorization header")
	}
	// A failed client authentication counts against the address like a
	// failed login: each costs scrypt work.
	ip := clientIP(r)
	if wait := t.app.limiter.clientWait(ip, time.Now()); wait > 0 {
		return nil, errTooManyFailures(wait)
	}
	c, err := t.app.authenticateClient(r.Context(), id, secret)
	if errors.Is(err, errClientAuthFailed) {
		t.app.limiter.clientFailed(ip, time.Now())
	}
	return c, err
}

// requireParam returns a required form parameter.
func requireParam(form url.Values, name string) (string, error) {
	v := form.Get(name)
	if v == "" {
		return "", errInvalidRequest("%s is required", name)
	}
	return v, nil
}

// passwordGrant is RFC 6749 §4.3.
func (t *TokenEndpoint) passwordGrant(r *http.Request, c *client, form url.Values) (*tokenResponse, error) {
	if !c.mayUse(GrantPassword) {
		return nil, errUnauthorizedClient("this client may not use the password grant")
	}
	username, err := requireParam(form, "username")
	if err != nil {
		return nil, err
	}
	password, err := requireParam(form, "password")
	if err != nil {
		return nil, err
	}
	requested, granted, err := scopeForNewGrant(c, form)
	if err != nil {
		return nil, err
	}
	ip := clientIP(r)
	try, wait := t.app.limiter.begin(username, ip, time.Now())
	if wait > 0 {
		if ce := t.logger.Check(zapcore.InfoLevel, "login throttled"); ce != nil {
			ce.Write(zap.String("username", wire.Truncate(username)), zap.String("client_id", c.id), zap.String("remote_ip", ip))
		}
		return nil, errTooManyFailures(wait)
	}
	userID, err := t.checker.CheckAuth(r.Context(), username, password)
	switch {
	case errors.Is(err, authcheck.ErrInvalidCredentials):
		try.failed(time.Now())
		if ce := t.logger.Check(zapcore.InfoLevel, "failed login"); ce != nil {
			ce.Write(zap.String("username", wire.Truncate(username)), zap.String("client_id", c.id), zap.String("remote_ip", ip))
		}
		return nil, errInvalidGrant("invalid username or password")
	case err != nil:
		try.abandon(time.Now())
		if ce := t.logger.Check(zapcore.ErrorLevel, "user check unavailable"); ce != nil {
			ce.Write(zap.String("username", wire.Truncate(username)), zap.String("client_id", c.id), zap.Error(err))
		}
		return nil, errTemporarilyUnavailable("the user check is unavailable; try again later")
	}
	try.succeeded(time.Now())
	pair, err := t.app.store.Issue(r.Context(), t.app.grant(c, userID, strings.Join(granted, " ")), time.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errClientAuthFailed // revoked meanwhile
	case err != nil:
		return nil, fmt.Errorf("issuing tokens: %w", err)
	}
	return t.response(pair, requested, granted), nil
}

// scopeForNewGrant returns the requested and the granted scope of a new
// grant: what was asked, if the client may have it all; otherwise the
// client's default scope.
func scopeForNewGrant(c *client, form url.Values) (requested, granted []string, err error) {
	requested, ok := wire.ParseScope(form.Get("scope"))
	if !ok {
		return nil, nil, errInvalidScope("malformed scope")
	}
	if len(requested) == 0 {
		return nil, c.DefaultScope, nil
	}
	if s, ok := subset(requested, c.Scopes); !ok {
		return nil, nil, errInvalidScope("scope %q is not allowed for this client", wire.Truncate(s))
	}
	return requested, requested, nil
}

// clientCredentialsGrant is RFC 6749 §4.4: an access token for the
// client itself, with no user and no refresh token.
func (t *TokenEndpoint) clientCredentialsGrant(r *http.Request, c *client, form url.Values) (*tokenResponse, error) {
	if !c.mayUse(GrantClientCredentials) {
		return nil, errUnauthorizedClient("this client may not use the client_credentials grant")
	}
	requested, granted, err := scopeForNewGrant(c, form)
	if err != nil {
		return nil, err
	}
	g := t.app.grant(c, nil, strings.Join(granted, " "))
	g.RefreshLifetime = -1 // RFC 6749 §4.4.3: no refresh token
	pair, err := t.app.store.Issue(r.Context(), g, time.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errClientAuthFailed // revoked meanwhile
	case err != nil:
		return nil, fmt.Errorf("issuing tokens: %w", err)
	}
	return t.response(pair, requested, granted), nil
}

// errRefreshRefused is the answer for every refresh token that does not
// work, whatever the reason, so the answer tells an attacker nothing.
var errRefreshRefused = errInvalidGrant("the refresh token is invalid, expired or revoked")

// refreshGrant is RFC 6749 §6, with rotation: the presented token works
// once, and presenting it again revokes its family (RFC 9700 §4.14.2).
func (t *TokenEndpoint) refreshGrant(r *http.Request, c *client, form url.Values) (*tokenResponse, error) {
	if !c.mayUse(GrantRefreshToken) {
		return nil, errUnauthorizedClient("this client may not use the refresh_token grant")
	}
	refreshToken, err := requireParam(form, "refresh_token")
	if err != nil {
		return nil, err
	}
	userID := form.Get("user_id")
	if t.RefreshRequiresUserID && userID == "" {
		return nil, errInvalidRequest("user_id is required")
	}
	requested, ok := wire.ParseScope(form.Get("scope"))
	if !ok {
		return nil, errInvalidScope("malformed scope")
	}
	var original, granted []string
	pair, err := t.app.store.Refresh(r.Context(), refreshToken, time.Now(), func(old store.Token) (store.Grant, error) {
		if old.ClientID != c.id {
			return store.Grant{}, errRefreshRefused
		}
		if userID != "" && !sameUserID(old.UserID, userID) {
			return store.Grant{}, errInvalidGrant("user_id does not match the refresh token")
		}
		// A refresh may narrow the access token's scope, never widen it,
		// and the new refresh token keeps the old one's (RFC 6749 §6) —
		// never beyond what the client may still have.
		original, _ = wire.ParseScope(old.Scope)
		allowed := intersect(original, c.Scopes)
		granted = allowed
		if len(requested) > 0 {
			if s, ok := subset(requested, allowed); !ok {
				return store.Grant{}, errInvalidScope("scope %q was not granted to this refresh token", wire.Truncate(s))
			}
			granted = requested
		}
		g := t.app.grant(c, old.UserID, strings.Join(granted, " "))
		g.RefreshScope = strings.Join(allowed, " ")
		return g, nil
	})
	switch {
	case errors.Is(err, store.ErrTokenReused):
		if ce := t.logger.Check(zapcore.WarnLevel, "refresh token reused; its token family is revoked"); ce != nil {
			ce.Write(zap.String("client_id", c.id), zap.String("remote_ip", clientIP(r)))
		}
		return nil, errRefreshRefused
	case errors.Is(err, store.ErrNotFound):
		return nil, errRefreshRefused
	case err != nil:
		return nil, err
	}
	if len(requested) == 0 {
		// Not asking means asking for the scope of the original grant.
		requested = original
	}
	return t.response(pair, requested, granted), nil
}

// sameUserID compares a stored user id (JSON) with one sent in a form.
func sameUserID(stored json.RawMessage, sent string) bool {
	var s string
	if json.Unmarshal(stored, &s) == nil {
		return s == sent
	}
	return bytes.Equal(stored, []byte(sent))
}

func (t *TokenEndpoint) response(pair store.TokenPair, requested, granted []string) *tokenResponse {
	resp := &tokenResponse{
		AccessToken:  pair.AccessToken,
		TokenType:    "bearer",
		ExpiresIn:    int64(time.Duration(t.app.AccessTokenLifetime).Seconds()),
		RefreshToken: pair.RefreshToken,
		UserID:       pair.Access.UserID,
	}
	// RFC 6749 §5.1: scope is required when it differs from the request.
	if !sameScope(requested, granted) {
		resp.Scope = strings.Join(granted, " ")
	}
	return resp
}

// logFailure logs a failed request without its credentials.
func (t *TokenEndpoint) logFailure(r *http.Request, err error) {
	var oe *OAuthError
	if !errors.As(err, &oe) {
		if ce := t.logger.Check(zapcore.ErrorLevel, "token request failed"); ce != nil {
			ce.Write(zap.Error(err))
		}
		return
	}
	if ce := t.logger.Check(zapcore.DebugLevel, "token request refused"); ce != nil {
		ce.Write(zap.String("error", oe.Code), zap.String("description", oe.Description), zap.String("remote_ip", clientIP(r)))
	}
}

// clientIP is the client's IP as Caddy determined it (honouring
// trusted_proxies).
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}

// Interface guards
var (
	_ caddy.Provisioner           = (*TokenEndpoint)(nil)
	_ caddyhttp.MiddlewareHandler = (*TokenEndpoint)(nil)
)
