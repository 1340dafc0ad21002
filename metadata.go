package oauth2provider

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// metadata is the RFC 8414 authorization server metadata.
type metadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods     []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	IntrospectionEndpointAuthMethods  []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	AuthorizationResponseIssParameter bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// clientSecretBasic is the only client authentication this server takes.
var clientSecretBasic = []string{"client_secret_basic"}

// serveMetadata answers GET /.well-known/oauth-authorization-server.
func (t *TokenEndpoint) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if requireSSL(t.RequireSSL) && !viaHTTPS(r) {
		writeOAuthError(w, r, errInvalidRequest("this endpoint requires HTTPS"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "the metadata is read with GET"})
		return
	}
	issuer, origin := t.Issuer, "https://"+r.Host
	if issuer == "" {
		issuer = origin
	} else if u, err := url.Parse(issuer); err == nil { // validated at provision
		origin = u.Scheme + "://" + u.Host
	}
	// The endpoints are served at their paths on the issuer's origin.
	on := func(path string) string {
		if path == "off" {
			return ""
		}
		return origin + path
	}
	m := metadata{
		Issuer:                            issuer,
		TokenEndpoint:                     on(t.TokenPath),
		RevocationEndpoint:                on(t.RevocationPath),
		IntrospectionEndpoint:             on(t.IntrospectionPath),
		GrantTypesSupported:               t.grantTypesSupported(),
		ResponseTypesSupported:            []string{},
		ScopesSupported:                   t.app.scopesSupported(r.Context()),
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "none"}, // none: public clients
		AuthorizationEndpoint:             on(t.AuthorizePath),
	}
	if m.AuthorizationEndpoint != "" {
		m.ResponseTypesSupported = []string{"code"}
		m.CodeChallengeMethodsSupported = []string{"S256"}
		m.AuthorizationResponseIssParameter = true
	}
	if m.RevocationEndpoint != "" {
		m.RevocationEndpointAuthMethods = clientSecretBasic
	}
	if m.IntrospectionEndpoint != "" {
		m.IntrospectionEndpointAuthMethods = clientSecretBasic
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	writeBody(w, http.StatusOK, m)
}

// scopesSupported is every scope some client may ask for, sorted. It
// reads every stored client, so the list is kept for a few seconds: the
// document is public, and must not be a way to make the store work.
func (a *App) scopesSupported(ctx context.Context) []string {
	l := a.scopeList
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.at) < scopesTTL {
		return l.scopes
	}
	var scopes []string
	for _, c := range a.static {
		scopes = append(scopes, c.Scopes...)
	}
	if stored, err := a.store.Clients(ctx); err == nil {
		for _, c := range stored {
			scopes = append(scopes, c.Scopes...)
		}
	}
	slices.Sort(scopes)
	l.scopes, l.at = slices.Compact(scopes), time.Now()
	return l.scopes
}

const scopesTTL = 10 * time.Second

type scopeList struct {
	mu     sync.Mutex
	scopes []string
	at     time.Time
}

// grantTypesSupported lists the grants, without authorization_code when
// the authorization endpoint is off.
func (t *TokenEndpoint) grantTypesSupported() []string {
	if t.AuthorizePath != "off" {
		return supportedGrantTypes
	}
	return slices.DeleteFunc(slices.Clone(supportedGrantTypes), func(g string) bool { return g == GrantAuthorizationCode })
}
