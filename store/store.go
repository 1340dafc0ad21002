// Package store keeps OAuth 2.0 clients and tokens. It knows nothing of
// HTTP: the handlers of the root package decide what a grant means, and a
// Store makes the outcome durable and atomic.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors a Store returns. Callers map them to OAuth error codes.
var (
	// ErrNotFound: no such client or token, or the token expired.
	ErrNotFound = errors.New("store: not found")
	// ErrTokenReused: a refresh token was presented a second time. The
	// whole family it belongs to has been revoked (RFC 9700 §4.14.2).
	ErrTokenReused = errors.New("store: refresh token already used; its token family is revoked")
	// ErrClientExists: CreateClient was given an id that is taken.
	ErrClientExists = errors.New("store: client id already exists")
)

// Client is a registered OAuth client. The secret is kept only as the
// hash the root package computes (scrypt with the configured salt); a
// public client has none.
type Client struct {
	ID         string `json:"client_id"`
	SecretHash string `json:"secret_hash,omitempty"`
	ClientPolicy
	CreatedAt time.Time `json:"created_at"`
}

// ClientPolicy is what a client may do, in the config or the store.
type ClientPolicy struct {
	// A public client (a browser or native app) has no secret; it may use
	// only authorization_code (with PKCE) and refresh_token.
	Public bool `json:"public,omitempty"`

	// The grants the client may use. Default: password and refresh_token;
	// for a public client, authorization_code and refresh_token.
	GrantTypes []string `json:"grant_types,omitempty"`

	// The scopes the client may ask for. Default: none.
	Scopes []string `json:"scopes,omitempty"`

	// The scope granted when the client asks for none; each must be in
	// scopes. Default: none.
	DefaultScope []string `json:"default_scope,omitempty"`

	// Where the authorization endpoint may send the user back: https, or
	// http on a loopback IP (any port, RFC 8252), or a private-use scheme
	// with a dot (com.example.app:/cb). Compared exactly.
	RedirectURIs []string `json:"redirect_uris,omitempty"`

	// The name the login page shows. Default: the client id.
	Name string `json:"name,omitempty"`

	// Skip the consent part of the login page (for first-party apps);
	// the password is still asked for.
	SkipConsent bool `json:"skip_consent,omitempty"`
}

// Grant says what a new token pair is made of.
type Grant struct {
	ClientID string
	// StaticClient marks a client defined in the config rather than in
	// the store, so the gate can refuse its tokens once the config no
	// longer defines it.
	StaticClient bool
	// UserID is the user id as the user check returned it, as JSON, so
	// that a number stays a number; nil for a token of the client itself
	// (client_credentials).
	UserID json.RawMessage
	// Scope is the granted scope, space-separated (RFC 6749 §3.3).
	Scope string
	// RefreshScope, if set, is the refresh token's scope when it is wider
	// than the access token's: a refresh that narrows the scope narrows
	// the new access token only (RFC 6749 §6).
	RefreshScope string

	AccessLifetime time.Duration
	// RefreshLifetime 0 means the refresh token never expires; a
	// negative value means no refresh token is issued.
	RefreshLifetime time.Duration
}

// Token is what the store knows of an access or refresh token.
type Token struct {
	Refresh      bool // a refresh token, not an access token
	Used         bool // a refresh token already rotated
	ClientID     string
	StaticClient bool
	UserID       json.RawMessage
	UserText     string // UserID as text: a string unquoted, a number as written
	Scope        string
	Family       FamilyID
	IssuedAt     time.Time
	// ExpiresAt is the zero time for a refresh token that never expires.
	ExpiresAt time.Time
}

// Expired reports whether t has expired at now.
func (t Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// TokenPair is a newly issued access token and, unless the grant said
// otherwise, its refresh token. The plain token values exist only here:
// the store keeps their digests.
type TokenPair struct {
	AccessToken  string
	RefreshToken string
	Access       Token
}

// RefreshCheck decides, inside the store's transaction, whether the
// presented refresh token may be rotated, and what the new pair is made
// of. Returning an error leaves the token unused. It may be called more
// than once and must not have side effects.
type RefreshCheck func(old Token) (Grant, error)

// Store is the token and client storage behind the oauth2 app. Every
// method that writes has made its change durable when it returns.
type Store interface {
	// CreateClient adds a client; ErrClientExists if the id is taken.
	CreateClient(ctx context.Context, c Client) error
	// Client returns one client, or ErrNotFound.
	Client(ctx context.Context, id string) (Client, error)
	// Clients lists all stored clients, ordered by id.
	Clients(ctx context.Context) ([]Client, error)
	// RevokeClient deletes the client and every token it holds, at once.
	RevokeClient(ctx context.Context, id string) error

	// Issue creates a new token family with an access token and, if the
	// grant asks for one, a refresh token. For a client that is not
	// static, ErrNotFound if the store no longer holds it.
	Issue(ctx context.Context, g Grant, now time.Time) (TokenPair, error)
	// AccessToken looks up a live access token; ErrNotFound for an
	// unknown, malformed, expired or revoked one.
	AccessToken(ctx context.Context, token string, now time.Time) (Token, error)
	// Lookup looks up an unexpired access or refresh token, used or not;
	// ErrNotFound otherwise.
	Lookup(ctx context.Context, token string, now time.Time) (Token, error)
	// RevokeToken revokes one token; ErrNotFound if there is none.
	RevokeToken(ctx context.Context, token string) error
	// Refresh rotates a refresh token: it works once; presenting it again
	// revokes its family and returns ErrTokenReused. The old pair stops
	// working and a new pair of the same family is returned. Concurrent
	// calls with one token give exactly one success.
	Refresh(ctx context.Context, refreshToken string, now time.Time, check RefreshCheck) (TokenPair, error)
	// RevokeFamily revokes every token of a family.
	RevokeFamily(ctx context.Context, f FamilyID) error

	// CreateCode stores a new authorization code and returns it.
	CreateCode(ctx context.Context, c AuthCode) (string, error)
	// RedeemCode exchanges an authorization code for tokens, once; see
	// (*Bolt).RedeemCode.
	RedeemCode(ctx context.Context, code string, now time.Time, check CodeCheck) (TokenPair, error)

	// DeleteExpired removes up to max expired tokens (and expired
	// authorization codes) and reports how many tokens it removed.
	DeleteExpired(ctx context.Context, now time.Time, max int) (int, error)
}
