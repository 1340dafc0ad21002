package authcheck

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// UnmarshalCaddyfile sets up the checker from Caddyfile tokens:
//
//	auth_check <url> {
//		timeout <duration>
//		header_up <name> <value>
//		user_id_field <name>
//	}
func (h *HTTP) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option name
	if !d.NextArg() {
		return d.Errf("auth_check: a URL is required")
	}
	h.URL = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("auth_check: timeout: bad duration %q: %v", d.Val(), err)
			}
			if dur <= 0 {
				return d.Errf("auth_check: timeout must be positive")
			}
			h.Timeout = caddy.Duration(dur)
		case "header_up":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("auth_check: header_up takes a name and a value")
			}
			if h.HeadersUp == nil {
				h.HeadersUp = http.Header{}
			}
			h.HeadersUp.Add(args[0], args[1])
		case "user_id_field":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.UserIDField = d.Val()
		default:
			return d.Errf("auth_check: unknown subdirective %q", opt)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*HTTP)(nil)
