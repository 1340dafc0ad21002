// Package wire parses the untrusted text of OAuth 2.0 requests: form
// bodies, query strings, HTTP Basic client credentials, Bearer headers
// and scopes. It depends on nothing but the standard library, so its
// fuzz targets run fast; the handlers turn its errors into OAuth errors.
package wire

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Errors of form and query parsing.
var (
	ErrMalformedForm  = errors.New("malformed form body")
	ErrRepeatedParam  = errors.New("a parameter is given more than once")
	ErrNotUTF8        = errors.New("parameters must be UTF-8")
	ErrMalformedQuery = errors.New("malformed query string")
)

// ParseForm parses a form-encoded body strictly: UTF-8 only, and no
// parameter twice (RFC 6749 §3.2: "Request and response parameters MUST
// NOT be included more than once").
func ParseForm(body []byte) (url.Values, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, ErrMalformedForm
	}
	for name, values := range form {
		if len(values) > 1 {
			return nil, fmt.Errorf("%w: %q", ErrRepeatedParam, Truncate(name))
		}
		if !utf8.ValidString(name) || !utf8.ValidString(values[0]) {
			return nil, ErrNotUTF8
		}
	}
	return form, nil
}

// ForbiddenQueryParam returns the first of names that the query string
// holds, or ErrMalformedQuery.
func ForbiddenQueryParam(rawQuery string, names []string) (string, error) {
	if rawQuery == "" {
		return "", nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", ErrMalformedQuery
	}
	for _, name := range names {
		if q.Has(name) {
			return name, nil
		}
	}
	return "", nil
}

// Errors of HTTP Basic client authentication. None names what was sent.
var (
	ErrNoCredentials     = errors.New("client authentication is required (HTTP Basic)")
	ErrTwoAuthorizations = errors.New("more than one Authorization header")
	ErrMalformedBasic    = errors.New("malformed Basic Authorization header")
	ErrMalformedClientID = errors.New("malformed client id encoding")
	ErrMalformedSecret   = errors.New("malformed client secret encoding")
	ErrEmptyClientID     = errors.New("client id is empty")
)

// BasicCredentials decodes the client id and secret of an HTTP Basic
// Authorization header. Each was form-urlencoded before base64, as RFC
// 6749 §2.3.1 says, so each is unescaped.
func BasicCredentials(h http.Header) (id, secret string, err error) {
	switch len(h.Values("Authorization")) {
	case 0:
		return "", "", ErrNoCredentials
	case 1:
	default:
		return "", "", ErrTwoAuthorizations
	}
	rawID, rawSecret, ok := (&http.Request{Header: h}).BasicAuth()
	if !ok {
		return "", "", ErrMalformedBasic
	}
	if id, err = url.QueryUnescape(rawID); err != nil {
		return "", "", ErrMalformedClientID
	}
	if secret, err = url.QueryUnescape(rawSecret); err != nil {
		return "", "", ErrMalformedSecret
	}
	if id == "" {
		return "", "", ErrEmptyClientID
	}
	return id, secret, nil
}

// EncodeBasic is the Authorization header value a client sends for id
// and secret (RFC 6749 §2.3.1).
func EncodeBasic(id, secret string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return r.Header.Get("Authorization")
}

// Errors of Bearer headers.
var (
	// ErrNoBearer: no Authorization header, or one of another scheme.
	ErrNoBearer        = errors.New("no bearer token")
	ErrMalformedBearer = errors.New("malformed Bearer Authorization header")
)

// BearerToken returns the token of an `Authorization: Bearer` header
// (the scheme is case-insensitive, RFC 9110 §11.1).
func BearerToken(h http.Header) (string, error) {
	values := h.Values("Authorization")
	switch len(values) {
	case 0:
		return "", ErrNoBearer
	case 1:
	default:
		return "", ErrTwoAuthorizations
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoBearer
	}
	token = strings.TrimLeft(token, " ")
	if !ValidB64Token(token) {
		return "", ErrMalformedBearer
	}
	return token, nil
}

// ValidB64Token reports whether s is a b64token of RFC 6750 §2.1.
func ValidB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// ValidScopeToken reports whether s is a scope-token of RFC 6749 §3.3:
// printable ASCII except space, '"' and '\'.
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// ParseScope splits a scope parameter into its tokens, in order and
// without repeats. ok is false if a token is not a valid scope-token.
func ParseScope(s string) (scopes []string, ok bool) {
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue // tolerate repeated spaces
		}
		if !ValidScopeToken(tok) {
			return nil, false
		}
		if !slices.Contains(scopes, tok) {
			scopes = append(scopes, tok)
		}
	}
	return scopes, true
}

// Truncate shortens a client-supplied value echoed in an error message,
// without splitting a UTF-8 sequence.
func Truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
