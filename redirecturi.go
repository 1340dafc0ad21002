package oauth2provider

import (
	"errors"
	"net/url"
	"strings"
)

// validRedirectURI checks a redirect URI a client registers (RFC 6749
// §3.1.2, RFC 8252, RFC 9700 §2.1): absolute, no fragment and no
// userinfo; https; or http on a loopback IP; or a private-use scheme in
// reverse-DNS form.
func validRedirectURI(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URI")
	case !u.IsAbs():
		return errors.New("must be absolute")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("must not have a fragment")
	case u.User != nil:
		return errors.New("must not carry userinfo")
	}
	for _, reserved := range []string{"code", "state", "iss", "error", "error_description"} {
		if u.Query().Has(reserved) {
			return errors.New("its query must not hold " + reserved + ", which the authorization response adds")
		}
	}
	switch scheme := strings.ToLower(u.Scheme); {
	case scheme == "https":
		if u.Host == "" {
			return errors.New("https needs a host")
		}
	case scheme == "http":
		if !isLoopbackIP(u.Hostname()) && u.Hostname() != "localhost" {
			return errors.New("http only on a loopback IP (127.0.0.1 or [::1]); use https elsewhere")
		}
	case scheme == "javascript" || scheme == "data" || scheme == "file" || scheme == "vbscript":
		return errors.New("scheme " + scheme + " is not allowed")
	case !strings.Contains(scheme, "."):
		return errors.New("a private-use scheme must be a reverse domain name, e.g. com.example.app (RFC 8252 §7.1)")
	}
	return nil
}

// isLoopbackIP is true for the loopback addresses RFC 8252 §7.3 names:
// 127.0.0.1 and ::1.
func isLoopbackIP(host string) bool { return host == "127.0.0.1" || host == "::1" }

// matchRedirectURI finds given among a client's registered URIs: byte
// for byte, except that for http on a loopback IP any port matches
// (RFC 8252 §7.3), every other part still exactly.
func matchRedirectURI(registered []string, given string) bool {
	for _, r := range registered {
		if r == given {
			return true
		}
	}
	g, err := url.Parse(given)
	if err != nil || g.Scheme != "http" || !isLoopbackIP(g.Hostname()) || g.User != nil || g.Fragment != "" {
		return false
	}
	for _, r := range registered {
		ru, err := url.Parse(r)
		if err != nil || ru.Scheme != "http" || !isLoopbackIP(ru.Hostname()) {
			continue
		}
		if ru.Hostname() == g.Hostname() && ru.EscapedPath() == g.EscapedPath() && ru.RawQuery == g.RawQuery {
			return true
		}
	}
	return false
}
