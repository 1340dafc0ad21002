package oauth2provider

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"

	"github.com/caddy-plugins/oauth2provider/internal/wire"
	"github.com/caddy-plugins/oauth2provider/store"
)

func init() {
	caddy.RegisterModule(BearerAuth{})
	caddy.RegisterModule(BearerProvider{})
}

// BearerAuth lets a request pass only with a valid access token in
// `Authorization: Bearer <token>` (RFC 6750 §2.1). On success it sets
// {http.auth.user.id} (the user id), {http.auth.user.client_id} and
// {http.auth.user.scope}; otherwise it answers 400, 401 or 403 with a
// WWW-Authenticate challenge (RFC 6750 §3), as a Caddy error that
// handle_errors can restyle.
type BearerAuth struct {
	// The realm of the WWW-Authenticate challenge. Default: the host the
	// request was sent to.
	Realm string `json:"realm,omitempty"`

	// Refuse requests that did not reach the client's side over HTTPS
	// (TLS, or a trusted proxy's `X-Forwarded-Proto: https`). Default:
	// true.
	RequireSSL *bool `json:"require_ssl,omitempty"`

	// Let requests without bearer credentials pass on unauthenticated
	// (no placeholders set). A request with a bad token is still refused.
	// Has no effect in the authentication provider.
	Optional bool `json:"optional,omitempty"`

	// Scopes the token must all have; otherwise 403 insufficient_scope.
	RequireScope []string `json:"require_scope,omitempty"`

	app *App
}

// CaddyModule returns the Caddy module information.
func (BearerAuth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.oauth2_bearer",
		New: func() caddy.Module { return new(BearerAuth) },
	}
}

// Provision sets up the gate.
func (b *BearerAuth) Provision(ctx caddy.Context) error {
	app, err := ctx.App("oauth2")
	if err != nil {
		return err
	}
	b.app = app.(*App)
	for _, s := range b.RequireScope {
		if !wire.ValidScopeToken(s) {
			return fmt.Errorf("oauth2_bearer: require_scope: %q is not a valid scope token", s)
		}
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (b *BearerAuth) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	tok, err := b.authenticate(r)
	if err != nil {
		if errors.Is(err, errNoBearer) && b.Optional {
			return next.ServeHTTP(w, r)
		}
		return b.refuse(w, r, err)
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", tok.UserText)
	repl.Set("http.auth.user.client_id", tok.ClientID)
	repl.Set("http.auth.user.scope", tok.Scope)
	return next.ServeHTTP(w, r)
}

// bearerError is a failed bearer check; it knows its status and the
// error code of its challenge.
type bearerError struct {
	status      int
	code        string // "" for a request without credentials
	description string
	// answer writes the refusal itself instead of returning a Caddy
	// error, whose log line would hold the request's URL.
	answer bool
}

func (e *bearerError) Error() string {
	if e.code == "" {
		return e.description
	}
	return e.code + ": " + e.description
}

var (
	errNoBearer      = &bearerError{status: http.StatusUnauthorized, description: "no bearer token"}
	errInvalidToken  = &bearerError{status: http.StatusUnauthorized, code: "invalid_token", description: "the access token is invalid, expired or revoked"}
	errBearerNoHTTPS = &bearerError{status: http.StatusBadRequest, code: "invalid_request", description: "HTTPS is required"}
)

func bearerMalformed(description string) *bearerError {
	return &bearerError{status: http.StatusBadRequest, code: "invalid_request", description: description}
}

// authenticate returns the valid access token of r, or a *bearerError.
func (b *BearerAuth) authenticate(r *http.Request) (store.Token, error) {
	if requireSSL(b.RequireSSL) && !viaHTTPS(r) {
		return store.Token{}, errBearerNoHTTPS
	}
	if r.URL.RawQuery != "" && r.URL.Query().Has("access_token") {
		// The client has leaked the token into the URL; keep it at least
		// out of Caddy's error log.
		e := bearerMalformed("access tokens are not accepted in the URL")
		e.answer = true
		return store.Token{}, e
	}
	raw, err := wire.BearerToken(r.Header)
	switch {
	case errors.Is(err, wire.ErrNoBearer):
		return store.Token{}, errNoBearer
	case err != nil:
		return store.Token{}, bearerMalformed(err.Error())
	}
	tok, err := b.app.store.AccessToken(r.Context(), raw, time.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Token{}, errInvalidToken
	case err != nil:
		return store.Token{}, err
	case !b.app.knownToken(tok):
		return store.Token{}, errInvalidToken
	}
	if len(b.RequireScope) > 0 {
		have, _ := wire.ParseScope(tok.Scope)
		if _, ok := subset(b.RequireScope, have); !ok {
			return store.Token{}, &bearerError{status: http.StatusForbidden, code: "insufficient_scope", description: "the access token lacks a required scope"}
		}
	}
	return tok, nil
}

// refuse sets the challenge for err and returns it as a Caddy error.
func (b *BearerAuth) refuse(w http.ResponseWriter, r *http.Request, err error) error {
	var be *bearerError
	if !errors.As(err, &be) {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	w.Header().Set("WWW-Authenticate", b.challenge(r, be))
	if be.answer {
		w.WriteHeader(be.status)
		return nil
	}
	return caddyhttp.Error(be.status, be)
}

// challenge is the WWW-Authenticate value for a failed check.
func (b *BearerAuth) challenge(r *http.Request, e *bearerError) string {
	realm := b.Realm
	if realm == "" {
		realm = siteRealm(r)
	}
	c := "Bearer realm=" + quote(realm)
	if e.code == "" {
		return c
	}
	c += ", error=" + quote(e.code) + ", error_description=" + quote(e.description)
	if e.code == "insufficient_scope" {
		c += ", scope=" + quote(strings.Join(b.RequireScope, " "))
	}
	return c
}

// BearerProvider is the same check as a provider of Caddy's
// authentication handler, so a route can accept a bearer token or, for
// instance, HTTP Basic. The authentication handler answers 401 for every
// failure; the challenge still carries the error code.
type BearerProvider struct {
	BearerAuth
}

// CaddyModule returns the Caddy module information.
func (BearerProvider) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.authentication.providers.oauth2_bearer",
		New: func() caddy.Module { return new(BearerProvider) },
	}
}

// Authenticate implements caddyauth.Authenticator.
func (p *BearerProvider) Authenticate(w http.ResponseWriter, r *http.Request) (caddyauth.User, bool, error) {
	tok, err := p.authenticate(r)
	var be *bearerError
	if errors.As(err, &be) {
		w.Header().Set("WWW-Authenticate", p.challenge(r, be))
		return caddyauth.User{}, false, nil
	}
	if err != nil {
		return caddyauth.User{}, false, err
	}
	return caddyauth.User{
		ID:       tok.UserText,
		Metadata: map[string]string{"client_id": tok.ClientID, "scope": tok.Scope},
	}, true, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*BearerAuth)(nil)
	_ caddyhttp.MiddlewareHandler = (*BearerAuth)(nil)
	_ caddyauth.Authenticator     = (*BearerProvider)(nil)
)
