// Package oauth2provider is an OAuth 2.0 authorization server and bearer
// token gate for Caddy: the oauth2 app holds the token store, the salt,
// the clients and the token lifetimes; the oauth2_token handler issues
// tokens and the oauth2_bearer handler checks them.
package oauth2provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-plugins/oauth2provider/internal/wire"
	"github.com/caddy-plugins/oauth2provider/store"
)

func init() {
	caddy.RegisterModule(App{})
}

// Grant types a client may be allowed.
const (
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
)

// defaultGrantTypes are the grants of a client that names none: machine
// tokens (client_credentials) are opt-in, so a leaked app secret cannot
// mint them.
var defaultGrantTypes = []string{GrantPassword, GrantRefreshToken}

// supportedGrantTypes are the grants this version implements.
var supportedGrantTypes = []string{GrantPassword, GrantRefreshToken, GrantClientCredentials, GrantAuthorizationCode}

// Defaults of the token lifetimes.
const (
	DefaultAccessTokenLifetime  = time.Hour
	DefaultRefreshTokenLifetime = 720 * time.Hour
)

// App is the oauth2 app: the state the token endpoint and the bearer
// gate share. Configure it with the `oauth2` global option.
type App struct {
	// The token store. Default: {"module": "bbolt"}, a file in Caddy's
	// data directory.
	StorageRaw json.RawMessage `json:"storage,omitempty" caddy:"namespace=oauth2.stores inline_key=module"`

	// Base64 of at least 16 random bytes (`caddy oauth2 gen-salt`),
	// mixed into every client secret hash. Required. Changing it
	// invalidates every client secret. Placeholders such as {env.*}
	// are expanded.
	Salt string `json:"salt,omitempty"`

	// Lifetime of access tokens. Default: 1h.
	AccessTokenLifetime caddy.Duration `json:"access_token_lifetime,omitempty"`

	// Lifetime of refresh tokens; 0 means they never expire (they are
	// still single-use). Default: 720h.
	RefreshTokenLifetime *caddy.Duration `json:"refresh_token_lifetime,omitempty"`

	// Clients defined in the config rather than in the store.
	Clients []StaticClient `json:"clients,omitempty"`

	// How often expired tokens are removed from the store. Default: 1m.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	// Failed password logins allowed per username (case-folded). Over
	// the limit the token endpoint answers 429 without asking the user
	// check. Default: 10 per 15m.
	MaxFailedLogins *LoginLimit `json:"max_failed_logins,omitempty"`

	// Failed password logins allowed per client IP (as Caddy determines
	// it, honouring trusted_proxies). Default: 100 per 15m.
	MaxFailedLoginsPerIP *LoginLimit `json:"max_failed_logins_per_ip,omitempty"`

	store        store.Store
	salt         []byte
	static       map[string]*client
	fakeHash     secretHash
	fakeHashText string
	sweeper      *sweeper
	limiter      *loginLimiter
	secrets      *secretCache
	logger       *zap.Logger
	scopeList    *scopeList // the metadata's, kept for scopesTTL
}

// StaticClient is a client defined in the config.
type StaticClient struct {
	// The client id. Required.
	ID string `json:"client_id"`

	// The hash of the client secret, from `caddy oauth2 hash-secret`
	// (which uses the configured salt). Required, but for a public
	// client, which has none. Placeholders are expanded.
	SecretHash string `json:"secret_hash,omitempty"`

	store.ClientPolicy
}

// client is a client the token endpoint can authenticate.
type client struct {
	id       string
	static   bool
	hash     secretHash
	hashText string // hash as stored
	store.ClientPolicy
}

func (c *client) mayUse(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// displayName is what the login page calls the client.
func (c *client) displayName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.id
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth2",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision validates the config and opens the store.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	salt, err := decodeSalt(repl.ReplaceKnown(a.Salt, ""))
	if err != nil {
		return err
	}
	a.salt = salt
	if a.AccessTokenLifetime < 0 {
		return errors.New("oauth2: access_token_lifetime must be positive")
	}
	if a.AccessTokenLifetime == 0 {
		a.AccessTokenLifetime = caddy.Duration(DefaultAccessTokenLifetime)
	}
	if a.SweepInterval < 0 {
		return errors.New("oauth2: sweep_interval must be positive")
	}
	if a.SweepInterval == 0 {
		a.SweepInterval = caddy.Duration(DefaultSweepInterval)
	}
	if a.RefreshTokenLifetime == nil {
		d := caddy.Duration(DefaultRefreshTokenLifetime)
		a.RefreshTokenLifetime = &d
	}
	if *a.RefreshTokenLifetime < 0 {
		return errors.New("oauth2: refresh_token_lifetime must not be negative (0 means refresh tokens never expire)")
	}

	perUser, err := loginLimit(a.MaxFailedLogins, DefaultMaxFailedLogins)
	if err != nil {
		return fmt.Errorf("oauth2: max_failed_logins: %w", err)
	}
	perIP, err := loginLimit(a.MaxFailedLoginsPerIP, DefaultMaxFailedLoginsPerIP)
	if err != nil {
		return fmt.Errorf("oauth2: max_failed_logins_per_ip: %w", err)
	}
	a.limiter = newLoginLimiter(perUser, perIP)
	a.secrets = newSecretCache(secretCacheSize)
	a.scopeList = new(scopeList)

	a.static = make(map[string]*client, len(a.Clients))
	for i, sc := range a.Clients {
		c, err := newStaticClient(sc, repl)
		if err != nil {
			return fmt.Errorf("oauth2: client %d (%q): %w", i, sc.ID, err)
		}
		if _, dup := a.static[c.id]; dup {
			return fmt.Errorf("oauth2: client %q is defined twice", c.id)
		}
		a.static[c.id] = c
	}

	// A hash to check secrets against when the client is unknown, so that
	// unknown and known client ids cost the same.
	a.fakeHash = newSecretHash(scryptLogN)
	a.fakeHashText = a.fakeHash.String()

	if a.StorageRaw == nil {
		a.StorageRaw = json.RawMessage(`{"module":"bbolt"}`)
	}
	mod, err := ctx.LoadModule(a, "StorageRaw")
	if err != nil {
		return fmt.Errorf("oauth2: %w", err)
	}
	a.store = mod.(store.Store)
	return nil
}

// loginLimit applies the defaults to a configured limit.
func loginLimit(l *LoginLimit, defaultMax int) (LoginLimit, error) {
	if l == nil {
		return LoginLimit{Max: defaultMax, Window: caddy.Duration(DefaultFailedLoginWindow)}, nil
	}
	out := *l
	if out.Max < 0 || out.Window < 0 {
		return out, errors.New("must not be negative")
	}
	if out.Window == 0 {
		out.Window = caddy.Duration(DefaultFailedLoginWindow)
	}
	return out, nil
}

func newStaticClient(sc StaticClient, repl *caddy.Replacer) (*client, error) {
	if sc.ID == "" {
		return nil, errors.New("client_id is required")
	}
	c := &client{id: sc.ID, static: true}
	if err := c.setPolicy(sc.ClientPolicy); err != nil {
		return nil, err
	}
	if err := c.setSecret(repl.ReplaceKnown(sc.SecretHash, "")); err != nil {
		return nil, err
	}
	return c, nil
}

// setSecret sets the client's secret hash: required for a confidential
// client, refused for a public one.
func (c *client) setSecret(hashText string) error {
	switch {
	case c.Public && hashText != "":
		return errors.New("a public client has no secret")
	case c.Public:
		return nil
	}
	h, err := parseSecretHash(hashText)
	if err != nil {
		return fmt.Errorf("secret_hash: %w", err)
	}
	c.hash, c.hashText = h, hashText
	return nil
}

// Grants by kind of client: a public client cannot keep a secret, so it
// may not use the grants that trust one.
var (
	publicGrantTypes  = []string{GrantAuthorizationCode, GrantRefreshToken}
	privateOnlyGrants = []string{GrantPassword, GrantClientCredentials}
)

// setPolicy validates and sets what a client may do.
func (c *client) setPolicy(p store.ClientPolicy) error {
	if len(p.GrantTypes) == 0 {
		p.GrantTypes = defaultGrantTypes
		if p.Public {
			p.GrantTypes = publicGrantTypes
		}
	}
	for _, g := range p.GrantTypes {
		if !slices.Contains(supportedGrantTypes, g) {
			return fmt.Errorf("grant type %q is not supported (supported: %s)", g, strings.Join(supportedGrantTypes, ", "))
		}
		if p.Public && slices.Contains(privateOnlyGrants, g) {
			return fmt.Errorf("a public client may not use the %s grant (only %s)", g, strings.Join(publicGrantTypes, ", "))
		}
	}
	for _, s := range p.Scopes {
		if !wire.ValidScopeToken(s) {
			return fmt.Errorf("scope %q is not a valid scope token (RFC 6749 §3.3)", s)
		}
	}
	for _, s := range p.DefaultScope {
		if !slices.Contains(p.Scopes, s) {
			return fmt.Errorf("default scope %q is not one of the client's scopes", s)
		}
	}
	for _, u := range p.RedirectURIs {
		if err := validRedirectURI(u); err != nil {
			return fmt.Errorf("redirect_uri %q: %w", u, err)
		}
	}
	if slices.Contains(p.GrantTypes, GrantAuthorizationCode) && len(p.RedirectURIs) == 0 {
		return errors.New("the authorization_code grant needs at least one redirect_uri")
	}
	p.GrantTypes, p.Scopes, p.DefaultScope = slices.Clone(p.GrantTypes), slices.Clone(p.Scopes), slices.Clone(p.DefaultScope)
	p.RedirectURIs = slices.Clone(p.RedirectURIs)
	c.ClientPolicy = p
	return nil
}

// Start implements caddy.App: it starts removing expired tokens.
func (a *App) Start() error {
	a.startSweeper()
	return nil
}

// Stop implements caddy.App.
func (a *App) Stop() error {
	a.stopSweeper()
	return nil
}

// client returns the client with the given id: a static one, or one from
// the store. It reports store.ErrNotFound for an unknown id.
func (a *App) client(ctx context.Context, id string) (*client, error) {
	if c, ok := a.static[id]; ok {
		return c, nil
	}
	sc, err := a.store.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	c := &client{id: sc.ID}
	if err := c.setPolicy(sc.ClientPolicy); err != nil {
		return nil, fmt.Errorf("stored client %q: %w", id, err)
	}
	if err := c.setSecret(sc.SecretHash); err != nil {
		return nil, fmt.Errorf("stored client %q: %w", id, err)
	}
	return c, nil
}

// authenticateClient checks a client id and secret. Every failure is an
// invalid_client error, and an unknown id costs the same scrypt work as a
// wrong secret.
func (a *App) authenticateClient(ctx context.Context, id, secret string) (*client, error) {
	c, err := a.client(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// The same path as a wrong secret, singleflight included.
		a.secrets.verify(a.fakeHash, a.fakeHashText, secret, a.salt)
		return nil, errClientAuthFailed
	case err != nil:
		return nil, err
	case c.Public && secret == "":
		return c, nil // a public client has no secret to check
	case c.Public:
		return nil, errInvalidClient("a public client has no secret")
	case !a.secrets.verify(c.hash, c.hashText, secret, a.salt):
		return nil, errClientAuthFailed
	}
	return c, nil
}

// knownToken reports whether a token's client still exists. Tokens of a
// stored client are deleted when it is revoked; a static client's tokens
// stop working when the config no longer defines it.
func (a *App) knownToken(t store.Token) bool {
	if !t.StaticClient {
		return true
	}
	_, ok := a.static[t.ClientID]
	return ok
}

// grant makes the grant for new tokens of client c.
func (a *App) grant(c *client, userID json.RawMessage, scope string) store.Grant {
	g := store.Grant{
		ClientID:        c.id,
		StaticClient:    c.static,
		UserID:          userID,
		Scope:           scope,
		AccessLifetime:  time.Duration(a.AccessTokenLifetime),
		RefreshLifetime: time.Duration(*a.RefreshTokenLifetime),
	}
	if !c.mayUse(GrantRefreshToken) {
		g.RefreshLifetime = -1
	}
	return g
}

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
