package oauth2provider

import (
	"errors"
	"net/http"
	"time"

	"github.com/caddy-plugins/oauth2provider/store"
)

// introspection is an RFC 7662 answer. For anything but a live token it
// is only {"active":false}: the caller learns nothing about why.
type introspection struct {
	Active    bool   `json:"active"`
	ClientID  string `json:"client_id,omitempty"`
	Scope     string `json:"scope,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
}

// serveIntrospection is RFC 7662 token introspection, for a resource
// server that is not behind this Caddy. The caller authenticates as a
// confidential client (any); a live token is described, anything else is
// inactive.
func (t *TokenEndpoint) serveIntrospection(r *http.Request) (any, error) {
	form, c, err := t.authenticatedForm(r)
	if err != nil {
		return nil, err
	}
	if c.Public {
		// Its id is no credential: a public client could ask about anyone's
		// tokens (RFC 7662 §2.1 wants the caller authorized).
		return nil, errInvalidClient("introspection needs a confidential client")
	}
	raw, err := requireParam(form, "token")
	if err != nil {
		return nil, err
	}
	tok, err := t.app.store.Lookup(r.Context(), raw, time.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return introspection{}, nil
	case err != nil:
		return nil, err
	case tok.Used || !t.app.knownToken(tok):
		return introspection{}, nil
	}
	in := introspection{
		Active:    true,
		ClientID:  tok.ClientID,
		Scope:     tok.Scope,
		TokenType: "bearer",
		Iat:       tok.IssuedAt.Unix(),
		Sub:       tok.UserText,
	}
	if tok.Refresh {
		in.TokenType = "refresh_token"
	}
	if !tok.ExpiresAt.IsZero() {
		in.Exp = tok.ExpiresAt.Unix()
	}
	return in, nil
}
