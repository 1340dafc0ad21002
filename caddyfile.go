package oauth2provider

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-plugins/oauth2provider/authcheck"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("oauth2", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("oauth2_token", parseTokenDirective)
	httpcaddyfile.RegisterHandlerDirective("oauth2_bearer", parseBearerDirective)
	// The token endpoint answers before any authentication runs; the
	// gate runs where authentication runs, so both sit ahead of
	// reverse_proxy and respond without an `order` option or a route.
	httpcaddyfile.RegisterDirectiveOrder("oauth2_token", httpcaddyfile.Before, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("oauth2_bearer", httpcaddyfile.After, "basic_auth")
}

// parseGlobalOption parses the oauth2 global option:
//
//	oauth2 {
//		storage bbolt [<path>]
//		salt <base64>
//		access_token_lifetime <duration>
//		refresh_token_lifetime <duration>
//		sweep_interval <duration>
//		max_failed_logins <max> <window>|off
//		max_failed_logins_per_ip <max> <window>|off
//		client <client_id> <secret_hash>|public {
//			grant_types <grant...>
//			scopes <scope...>
//			default_scope <scope...>
//			redirect_uri <uri...>
//			name "<shown on the login page>"
//			skip_consent
//		}
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("oauth2: the global option may be given only once")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "oauth2", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from the oauth2 global option.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "storage":
			if !d.NextArg() {
				return d.Errf("oauth2: storage: a store module is required, e.g. storage bbolt [<path>]")
			}
			name := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "oauth2.stores."+name)
			if err != nil {
				return err
			}
			a.StorageRaw = caddyconfig.JSONModuleObject(unm, "module", name, nil)
		case "salt":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			a.Salt = v
		case "access_token_lifetime":
			dur, err := durationArg(d)
			if err != nil {
				return err
			}
			if dur <= 0 {
				return d.Errf("oauth2: access_token_lifetime must be positive")
			}
			a.AccessTokenLifetime = dur
		case "refresh_token_lifetime":
			dur, err := durationArg(d)
			if err != nil {
				return err
			}
			if dur < 0 {
				return d.Errf("oauth2: refresh_token_lifetime must not be negative (0 means never expire)")
			}
			a.RefreshTokenLifetime = &dur
		case "sweep_interval":
			dur, err := durationArg(d)
			if err != nil {
				return err
			}
			if dur <= 0 {
				return d.Errf("oauth2: sweep_interval must be positive")
			}
			a.SweepInterval = dur
		case "max_failed_logins", "max_failed_logins_per_ip":
			l, err := parseLoginLimit(d)
			if err != nil {
				return err
			}
			if opt == "max_failed_logins" {
				a.MaxFailedLogins = l
			} else {
				a.MaxFailedLoginsPerIP = l
			}
		case "client":
			c, err := parseClient(d)
			if err != nil {
				return err
			}
			a.Clients = append(a.Clients, c)
		default:
			return d.Errf("oauth2: unknown subdirective %q", opt)
		}
	}
	return nil
}

// parseLoginLimit parses `<max> <window>` or `off`.
func parseLoginLimit(d *caddyfile.Dispenser) (*LoginLimit, error) {
	opt := d.Val()
	args := d.RemainingArgs()
	if len(args) == 1 && args[0] == "off" {
		return &LoginLimit{Max: 0}, nil
	}
	if len(args) != 2 {
		return nil, d.Errf("oauth2: %s takes <max> <window> or off", opt)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return nil, d.Errf("oauth2: %s: %q is not a positive number", opt, args[0])
	}
	window, err := caddy.ParseDuration(args[1])
	if err != nil || window <= 0 {
		return nil, d.Errf("oauth2: %s: bad window %q", opt, args[1])
	}
	return &LoginLimit{Max: n, Window: caddy.Duration(window)}, nil
}

func parseClient(d *caddyfile.Dispenser) (StaticClient, error) {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return StaticClient{}, d.Errf("oauth2: client takes <client_id> <secret_hash>|public (make the hash with: caddy oauth2 hash-secret)")
	}
	c := StaticClient{ID: args[0], SecretHash: args[1]}
	if args[1] == "public" {
		c.SecretHash, c.Public = "", true
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		values := d.RemainingArgs()
		switch opt {
		case "skip_consent":
			if len(values) != 0 {
				return c, d.Errf("oauth2: client %s: skip_consent takes no value", c.ID)
			}
			c.SkipConsent = true
			continue
		case "name":
			if len(values) != 1 {
				return c, d.Errf("oauth2: client %s: name takes one value (quote it)", c.ID)
			}
			c.Name = values[0]
			continue
		}
		if len(values) == 0 {
			return c, d.Errf("oauth2: client %s: %s needs at least one value", c.ID, opt)
		}
		switch opt {
		case "grant_types":
			c.GrantTypes = append(c.GrantTypes, values...)
		case "scopes":
			c.Scopes = append(c.Scopes, values...)
		case "default_scope":
			c.DefaultScope = append(c.DefaultScope, values...)
		case "redirect_uri":
			c.RedirectURIs = append(c.RedirectURIs, values...)
		default:
			return c, d.Errf("oauth2: client %s: unknown subdirective %q", c.ID, opt)
		}
	}
	return c, nil
}

// parseTokenDirective parses the oauth2_token directive:
//
//	oauth2_token [<matcher>] {
//		auth_check <url> {
//			timeout <duration>
//			header_up <name> <value>
//			user_id_field <name>
//		}
//		require_ssl true|false
//		refresh_requires_user_id
//		token_path <path>
//		revocation_path <path>|off
//		introspection_path <path>|off
//		metadata_path <path>|off
//		issuer <url>
//		authorize [<path>|off] {
//			login_template <file>
//			code_lifetime <duration>
//		}
//	}
//
// It serves its endpoints' paths (by default /oauth2/token,
// /oauth2/revoke, /oauth2/introspect and
// /.well-known/oauth-authorization-server) and passes everything else on.
func parseTokenDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	t := new(TokenEndpoint)
	err := t.UnmarshalCaddyfile(h.Dispenser)
	return t, err
}

// UnmarshalCaddyfile sets up the token endpoint from Caddyfile tokens.
func (t *TokenEndpoint) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "auth_check":
			checker := new(authcheck.HTTP)
			if err := checker.UnmarshalCaddyfile(d.NewFromNextSegment()); err != nil {
				return err
			}
			t.AuthCheckRaw = caddyconfig.JSONModuleObject(checker, "checker", "http", nil)
		case "require_ssl":
			b, err := boolArg(d)
			if err != nil {
				return err
			}
			t.RequireSSL = &b
		case "refresh_requires_user_id":
			if d.NextArg() {
				return d.ArgErr()
			}
			t.RefreshRequiresUserID = true
		case "authorize":
			if d.NextArg() {
				t.AuthorizePath = d.Val()
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				switch sub := d.Val(); sub {
				case "login_template":
					v, err := oneArg(d)
					if err != nil {
						return err
					}
					t.LoginTemplate = v
				case "code_lifetime":
					dur, err := durationArg(d)
					if err != nil {
						return err
					}
					t.CodeLifetime = dur
				default:
					return d.Errf("oauth2_token: authorize: unknown subdirective %q", sub)
				}
			}
		case "token_path", "revocation_path", "introspection_path", "metadata_path", "issuer":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			*map[string]*string{
				"token_path":         &t.TokenPath,
				"revocation_path":    &t.RevocationPath,
				"introspection_path": &t.IntrospectionPath,
				"metadata_path":      &t.MetadataPath,
				"issuer":             &t.Issuer,
			}[opt] = v
		default:
			return d.Errf("oauth2_token: unknown subdirective %q", opt)
		}
	}
	return nil
}

// parseBearerDirective parses the oauth2_bearer directive:
//
//	oauth2_bearer [<matcher>] {
//		realm <name>
//		require_ssl true|false
//		optional
//		require_scope <scope...>
//	}
func parseBearerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	b := new(BearerAuth)
	err := b.UnmarshalCaddyfile(h.Dispenser)
	return b, err
}

// UnmarshalCaddyfile sets up the gate from Caddyfile tokens.
func (b *BearerAuth) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "realm":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			b.Realm = v
		case "require_ssl":
			v, err := boolArg(d)
			if err != nil {
				return err
			}
			b.RequireSSL = &v
		case "optional":
			if d.NextArg() {
				return d.ArgErr()
			}
			b.Optional = true
		case "require_scope":
			scopes := d.RemainingArgs()
			if len(scopes) == 0 {
				return d.ArgErr()
			}
			b.RequireScope = append(b.RequireScope, scopes...)
		default:
			return d.Errf("oauth2_bearer: unknown subdirective %q", opt)
		}
	}
	return nil
}

// oneArg returns the single argument of the current option.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	opt := d.Val()
	if !d.NextArg() {
		return "", d.Errf("%s: a value is required", opt)
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.Errf("%s: takes one value", opt)
	}
	return v, nil
}

func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	opt := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, d.Errf("oauth2: %s: bad duration %q: %v", opt, v, err)
	}
	return caddy.Duration(dur), nil
}

func boolArg(d *caddyfile.Dispenser) (bool, error) {
	opt := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return false, err
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, d.Errf("%s: want true or false, got %q", opt, v)
	}
	return b, nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*TokenEndpoint)(nil)
	_ caddyfile.Unmarshaler = (*BearerAuth)(nil)
)
