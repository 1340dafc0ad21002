// Package authcheck asks the user's own accounts service whether a
// username and password are valid: the successor of pyramid's IAuthCheck.
package authcheck

import (
	"context"
	"encoding/json"
	"errors"
)

// Errors a checker returns.
var (
	// ErrInvalidCredentials: the accounts service said no.
	ErrInvalidCredentials = errors.New("invalid username or password")
	// ErrUnavailable: the accounts service could not give an answer. The
	// caller should ask again later; the credentials may well be right.
	ErrUnavailable = errors.New("user check unavailable")
)

// AuthChecker checks a username and password. Implementations are Caddy
// modules in the oauth2.auth_checkers namespace.
type AuthChecker interface {
	// CheckAuth returns the user id, as JSON (a string or a number), for
	// valid credentials; an error wrapping ErrInvalidCredentials for
	// wrong ones; and an error wrapping ErrUnavailable when it cannot
	// tell. No error may contain the password.
	CheckAuth(ctx context.Context, username, password string) (userID json.RawMessage, err error)
}
