package oauth2provider

import (
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-plugins/oauth2provider/store"
)

// serveRevocation is RFC 7009 token revocation, how a client logs its
// user out. The client authenticates as at the token endpoint and may
// revoke only its own tokens. Revoking a refresh token revokes its whole
// family, the access tokens issued with it included; revoking an access
// token revokes that token. A token that is unknown, expired, already
// revoked or another client's gets the same 200 (RFC 7009 §2.2), so the
// answer tells nothing about other clients' tokens; token_type_hint is
// accepted and not needed, since a token's kind is in the store.
func (t *TokenEndpoint) serveRevocation(r *http.Request) (any, error) {
	form, c, err := t.authenticatedForm(r)
	if err != nil {
		return nil, err
	}
	raw, err := requireParam(form, "token")
	if err != nil {
		return nil, err
	}
	tok, err := t.app.store.Lookup(r.Context(), raw, time.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return struct{}{}, nil
	case err != nil:
		return nil, err
	case tok.ClientID != c.id:
		if ce := t.logger.Check(zapcore.InfoLevel, "refused to revoke another client's token"); ce != nil {
			ce.Write(zap.String("client_id", c.id), zap.String("remote_ip", clientIP(r)))
		}
		return struct{}{}, nil
	case tok.Refresh:
		err = t.app.store.RevokeFamily(r.Context(), tok.Family)
	default:
		err = t.app.store.RevokeToken(r.Context(), raw)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return struct{}{}, nil
}
