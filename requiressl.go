package oauth2provider

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// viaHTTPS reports whether a request reached the client's side over TLS:
// either it came over TLS, or it came from one of the server's
// trusted_proxies and that proxy says, with X-Forwarded-Proto, that the
// client used https. The seed looked only at the scheme and so refused
// every request behind a TLS-terminating proxy.
func viaHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); !trusted {
		return false
	}
	// The first proxy (nearest the client) is first in the list.
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}

// requireSSL is the value of a require_ssl option: true unless set false.
func requireSSL(opt *bool) bool { return opt == nil || *opt }
