package oauth2provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"time"
)

// OAuthError is an error response of the token endpoint (RFC 6749 §5.2):
// it knows its error code and its HTTP status. Its description is shown
// to the client, so it never holds a secret.
type OAuthError struct {
	Status      int
	Code        string
	Description string
	// RetryAfter, in seconds, for 503 and 429 answers.
	RetryAfter int
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

func oauthError(status int, code, format string, args ...any) *OAuthError {
	return &OAuthError{Status: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

// The error codes of RFC 6749 §5.2, with the status the spec gives each.
func errInvalidRequest(format string, args ...any) *OAuthError {
	return oauthError(http.StatusBadRequest, "invalid_request", format, args...)
}

func errInvalidClient(format string, args ...any) *OAuthError {
	return oauthError(http.StatusUnauthorized, "invalid_client", format, args...)
}

// errClientAuthFailed is the answer for an unknown client, a wrong secret
// and a revoked client alike.
var errClientAuthFailed = errInvalidClient("client authentication failed")

func errInvalidGrant(format string, args ...any) *OAuthError {
	return oauthError(http.StatusBadRequest, "invalid_grant", format, args...)
}

func errUnauthorizedClient(format string, args ...any) *OAuthError {
	return oauthError(http.StatusBadRequest, "unauthorized_client", format, args...)
}

func errUnsupportedGrantType(format string, args ...any) *OAuthError {
	return oauthError(http.StatusBadRequest, "unsupported_grant_type", format, args...)
}

func errInvalidScope(format string, args ...any) *OAuthError {
	return oauthError(http.StatusBadRequest, "invalid_scope", format, args...)
}

func errTemporarilyUnavailable(format string, args ...any) *OAuthError {
	e := oauthError(http.StatusServiceUnavailable, "temporarily_unavailable", format, args...)
	e.RetryAfter = 5
	return e
}

// errTooManyFailures is the answer to a throttled login: 429, and an
// error code that well-behaved clients already read as "try again later".
func errTooManyFailures(wait time.Duration) *OAuthError {
	e := oauthError(http.StatusTooManyRequests, "temporarily_unavailable", "too many failed logins for this user or address; try again later")
	e.RetryAfter = int(math.Ceil(wait.Seconds()))
	return e
}

func errServerError(format string, args ...any) *OAuthError {
	return oauthError(http.StatusInternalServerError, "server_error", format, args...)
}

// writeOAuthError answers with err as RFC 6749 §5.2 JSON. Any error that
// is not an *OAuthError becomes a server_error without its text.
func writeOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *OAuthError
	if !errors.As(err, &oe) {
		oe = errServerError("internal error")
	}
	h := w.Header()
	switch oe.Status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", fmt.Sprintf(`Basic realm=%s`, quote(siteRealm(r))))
	case http.StatusMethodNotAllowed:
		h.Set("Allow", http.MethodPost)
	}
	if oe.RetryAfter > 0 {
		h.Set("Retry-After", fmt.Sprint(oe.RetryAfter))
	}
	writeJSON(w, oe.Status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{oe.Code, oe.Description})
}

// writeJSON writes a token endpoint response: JSON that no cache keeps
// (RFC 6749 §5.1).
func writeJSON(w http.ResponseWriter, status int, body any) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	writeBody(w, status, body)
}

// writeBody writes body as JSON; the caller has set the headers.
func writeBody(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// siteRealm is the default realm: the host the request was sent to.
func siteRealm(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return host
}

// quote makes a quoted-string (RFC 9110 §5.6.4) of s.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			// not allowed in a header value; drop it
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
