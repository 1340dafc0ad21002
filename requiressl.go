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
	// The last value is the one the trusted proxy added; earlier values
	// (if a proxy appends) came from further away, maybe from the client.
	values := r.Header.Values("X-Forwarded-Proto")
	if len(values) == 0 {
		return false
	}
	last := values[len(values)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(last), "https")
}

// requireSSL is the value of a require_ssl option: true unless set false.
func requireSSL(opt *bool) bool { return opt == nil || *opt }
