package oauth2provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// handlerOrder lists the handler names of a JSON config in the order a
// request meets them.
func handlerOrder(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		if h, ok := v["handler"].(string); ok {
			out = append(out, h)
		}
		for _, k := range []string{"routes", "handle"} {
			if sub, ok := v[k]; ok {
				out = append(out, handlerOrder(sub)...)
			}
		}
	case []any:
		for _, e := range v {
			out = append(out, handlerOrder(e)...)
		}
	}
	return out
}

func serverOnPort(t *testing.T, cfgJSON []byte, port string) map[string]any {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	servers := cfg["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)
	for _, s := range servers {
		if slices.Contains(s.(map[string]any)["listen"].([]any), any(":"+port)) {
			return s.(map[string]any)
		}
	}
	t.Fatalf("no server on :%s in %s", port, cfgJSON)
	return nil
}

func assertBefore(t *testing.T, order []string, first, second string) {
	t.Helper()
	i, j := slices.Index(order, first), slices.Index(order, second)
	if i < 0 || j < 0 || i > j {
		t.Errorf("want %s before %s in %v", first, second, order)
	}
}

func TestAdaptExampleCaddyfile(t *testing.T) {
	out, stderr, err := runCaddy(t, "", "adapt", "--config", "example.Caddyfile")
	if err != nil {
		t.Fatalf("caddy adapt: %v\n%s", err, stderr)
	}
	order := handlerOrder(serverOnPort(t, []byte(out), "8443")["routes"])
	assertBefore(t, order, "oauth2_token", "oauth2_bearer")
	assertBefore(t, order, "oauth2_bearer", "reverse_proxy")
	if !strings.Contains(out, `"oauth2":{`) || !strings.Contains(out, `"auth_check":{"checker":"http"`) {
		t.Errorf("the JSON lacks the oauth2 app or the checker: %s", out)
	}
}

// The directives find their places whatever order they are written in.
func TestDirectivesAreOrderedAutomatically(t *testing.T) {
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(`{
	oauth2 {
		salt `+testSalt+`
	}
}
example.com {
	respond "hi"
	reverse_proxy localhost:1
	oauth2_bearer
	basic_auth /admin/* {
		ops $2a$04$pNAsoxeqlR9jyXbg9SVqROdW7nqPRMzJmzGdJCl/A6EIPnLgr5KTe
	}
	oauth2_token {
		auth_check http://localhost:2/check
	}
}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	order := handlerOrder(serverOnPort(t, cfgJSON, "443")["routes"])
	for _, pair := range [][2]string{
		{"oauth2_token", "authentication"},
		{"authentication", "oauth2_bearer"},
		{"oauth2_bearer", "static_response"},
		{"oauth2_bearer", "reverse_proxy"},
	} {
		assertBefore(t, order, pair[0], pair[1])
	}
	// Without a matcher, the issuer sees every request; it answers at its
	// paths and passes the rest on.
	if !strings.Contains(string(cfgJSON), `{"handle":[{"auth_check":{"checker":"http","url":"http://localhost:2/check"},"handler":"oauth2_token"}]}`) {
		t.Errorf("token route: %s", cfgJSON)
	}
}

func TestTokenEndpointTakesAMatcherAndPaths(t *testing.T) {
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(`example.com {
	oauth2_token /login/* {
		auth_check http://localhost:2/check
		token_path /login/token
		revocation_path /login/logout
		introspection_path off
		metadata_path off
		issuer https://login.example.com
	}
}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"match":[{"path":["/login/*"]}]`,
		`"token_path":"/login/token"`, `"revocation_path":"/login/logout"`,
		`"introspection_path":"off"`, `"metadata_path":"off"`, `"issuer":"https://login.example.com"`,
	} {
		if !strings.Contains(string(cfgJSON), want) {
			t.Errorf("missing %s in %s", want, cfgJSON)
		}
	}
}

func TestEveryOptionAdaptsToDocumentedJSON(t *testing.T) {
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(`{
	oauth2 {
		storage bbolt /var/lib/oauth2.db
		salt `+testSalt+`
		access_token_lifetime 15m
		refresh_token_lifetime 0
		client app `+clientHashes()["app"]+` {
			grant_types password
			scopes read write
			default_scope read
		}
	}
}
example.com {
	oauth2_token {
		auth_check http://localhost:2/check {
			timeout 2s
			header_up X-Api-Key {env.KEY}
			user_id_field uid
		}
		require_ssl false
		refresh_requires_user_id
	}
	oauth2_bearer {
		realm api
		require_ssl false
		optional
		require_scope read write
	}
}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"storage":{"module":"bbolt","path":"/var/lib/oauth2.db"}`,
		`"salt":"` + testSalt + `"`,
		`"access_token_lifetime":900000000000`,
		`"refresh_token_lifetime":0`,
		`"clients":[{"client_id":"app","secret_hash":"` + clientHashes()["app"] + `","grant_types":["password"],"scopes":["read","write"],"default_scope":["read"]}]`,
		`"auth_check":{"checker":"http","header_up":{"X-Api-Key":["{env.KEY}"]},"timeout":2000000000,"url":"http://localhost:2/check","user_id_field":"uid"}`,
		`"refresh_requires_user_id":true`,
		`"require_ssl":false`,
		`"handler":"oauth2_bearer","optional":true,"realm":"api","require_scope":["read","write"],"require_ssl":false`,
	} {
		if !strings.Contains(string(cfgJSON), want) {
			t.Errorf("missing %s\nin %s", want, cfgJSON)
		}
	}
}

// Bad config refuses to load, with a message that names the option.
func TestBadConfigFailsWithAClearMessage(t *testing.T) {
	startCaddy(t, testConfig{})
	good := testConfig{DB: filepath.Join(t.TempDir(), "x.db"), LogToStderr: true}.render()
	file, err := os.CreateTemp(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ old, new, want string }{
		"no salt":                       {"salt " + testSalt, "", "oauth2: salt is required; generate one with: caddy oauth2 gen-salt"},
		"short salt":                    {"salt " + testSalt, "salt c2hvcnQ=", "salt is 5 bytes, need at least 16"},
		"salt not base64":               {"salt " + testSalt, "salt not*base64", "salt is not valid base64"},
		"bad duration":                  {"access_token_lifetime 1h", "access_token_lifetime soon", `access_token_lifetime: bad duration "soon"`},
		"zero access lifetime":          {"access_token_lifetime 1h", "access_token_lifetime 0s", "access_token_lifetime must be positive"},
		"negative refresh lifetime":     {"refresh_token_lifetime 720h", "refresh_token_lifetime -1h", "refresh_token_lifetime must not be negative"},
		"unknown global subdirective":   {"access_token_lifetime 1h", "token_lifetime 1h", `oauth2: unknown subdirective "token_lifetime"`},
		"unknown token subdirective":    {"refresh_requires_user_id", "refresh_needs_user_id", `oauth2_token: unknown subdirective "refresh_needs_user_id"`},
		"unknown bearer subdirective":   {"optional\n", "optionally\n", `oauth2_bearer: unknown subdirective "optionally"`},
		"unknown auth_check option":     {"timeout 500ms", "timeout_after 500ms", `auth_check: unknown subdirective "timeout_after"`},
		"bad auth_check timeout":        {"timeout 500ms", "timeout fast", `auth_check: timeout: bad duration "fast"`},
		"auth_check with no URL":        {"auth_check " + refusedURL + "/check", "auth_check", "auth_check: a URL is required"},
		"no auth_check":                 {"auth_check " + refusedURL + "/check", "", "oauth2_token: auth_check is required"},
		"bad require_ssl":               {"refresh_requires_user_id", "require_ssl maybe", `require_ssl: want true or false, got "maybe"`},
		"bad client hash":               {clientHashes()["other"], "plaintext", `client 1 ("other"): secret_hash: not a secret hash made by 'caddy oauth2 hash-secret'`},
		"unsupported grant type":        {"grant_types password", "grant_types implicit", `grant type "implicit" is not supported`},
		"default scope not allowed":     {"default_scope read", "default_scope admin", `default scope "admin" is not one of the client's scopes`},
		"client defined twice":          {`client "other"`, `client "app"`, `client "app" is defined twice`},
		"unreachable store path":        {"storage bbolt ", "storage bbolt /dev/null/", "storage bbolt: creating folder for /dev/null"},
		"unknown store module":          {"storage bbolt ", "storage mongo ", "oauth2.stores.mongo"},
		"bad require_scope":             {"require_scope write", `require_scope "a\"b"`, `require_scope: "a\"b" is not a valid scope token`},
		"oauth2 global option twice":    {"oauth2 {", "oauth2 {\n\t}\n\toauth2 {", "oauth2: the global option may be given only once"},
		"bad max_failed_logins":         {"access_token_lifetime 1h", "access_token_lifetime 1h\n\t\tmax_failed_logins 0 1m", `max_failed_logins: "0" is not a positive number`},
		"issuer not https":              {"refresh_requires_user_id", "refresh_requires_user_id\n\t\tissuer http://x.example", "issuer must be an https URL"},
		"public client with password":   {`client "spa" public {`, `client "spa" public {` + "\n\t\t\tgrant_types password", "a public client may not use the password grant"},
		"http redirect off loopback":    {"redirect_uri https://web.example/cb", "redirect_uri http://web.example/cb", "http only on a loopback IP"},
		"private scheme without a dot":  {"redirect_uri https://web.example/cb", "redirect_uri myapp:/cb", "a private-use scheme must be a reverse domain name"},
		"redirect with a fragment":      {"redirect_uri https://web.example/cb", "redirect_uri https://web.example/cb#x", "must not have a fragment"},
		"code grant without a redirect": {"redirect_uri https://web.example/cb", "", "the authorization_code grant needs at least one redirect_uri"},
		"code lifetime over 10m":        {"timeout 500ms\n\t\t}", "timeout 500ms\n\t\t}\n\t\tauthorize {\n\t\t\tcode_lifetime 11m\n\t\t}", "code_lifetime must be positive and at most 10m0s"},
		"login template file missing":   {"timeout 500ms\n\t\t}", "timeout 500ms\n\t\t}\n\t\tauthorize {\n\t\t\tlogin_template /nonexistent/login.html\n\t\t}", "login_template: open /nonexistent/login.html"},
		"login page without auth_check": {"\t\tauthorize off\n", "", "oauth2_token: auth_check is required"},
		"redirect_uri with a state":     {"redirect_uri https://web.example/cb", "redirect_uri https://web.example/cb?state=x", "its query must not hold state"},
		"two endpoints on one path":     {"revocation_path /moved/logout", "revocation_path /moved/token", "revocation_path and token_path are both /moved/token"},
		"relative path":                 {"refresh_requires_user_id", "refresh_requires_user_id\n\t\trevocation_path revoke", "revocation_path must be a path starting with /"},
		"bad failed-login window":       {"access_token_lifetime 1h", "access_token_lifetime 1h\n\t\tmax_failed_logins_per_ip 5 soon", `max_failed_logins_per_ip: bad window "soon"`},
	} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the config has no %q", tc.old)
			}
			bad := strings.Replace(good, tc.old, tc.new, 1)
			assertLoadError(t, bad, tc.want)
		})
	}
	// The same through the binary, as a user starting Caddy sees it: a
	// non-zero exit and the message on one line.
	noSalt := strings.Replace(good, "salt "+testSalt, "", 1)
	if err := os.WriteFile(file.Name(), []byte(noSalt), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runCaddy(t, "", "validate", "--config", file.Name(), "--adapter", "caddyfile")
	if err == nil || !strings.Contains(stderr, "oauth2: salt is required; generate one with: caddy oauth2 gen-salt") {
		t.Fatalf("caddy validate without a salt: err %v\n%s", err, stderr)
	}
}

func TestGenSaltPrintsSixteenRandomBytes(t *testing.T) {
	a, _, err := runCaddy(t, "", "oauth2", "gen-salt")
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := runCaddy(t, "", "oauth2", "gen-salt")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a))
	if err != nil || len(raw) != 16 || a == b {
		t.Fatalf("gen-salt printed %q then %q", a, b)
	}
	if _, err := decodeSalt(strings.TrimSpace(a)); err != nil {
		t.Fatal(err)
	}
}

// hash-secret's output in a client line authenticates the secret.
func TestHashSecretOutputWorksInAClientLine(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(cfgFile, []byte(testConfig{DB: filepath.Join(t.TempDir(), "x.db")}.render()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runCaddy(t, "s3cret from stdin\r\n", "oauth2", "hash-secret", "--config", cfgFile)
	if err != nil {
		t.Fatalf("hash-secret: %v\n%s", err, stderr)
	}
	hash := strings.TrimSpace(out)
	if !strings.HasPrefix(hash, "$scrypt$ln=14,r=8,p=1$") || strings.Contains(out+stderr, "s3cret") {
		t.Fatalf("hash-secret printed %q, stderr %q", out, stderr)
	}
	e := startCaddy(t, testConfig{ExtraClients: "\t\tclient made-by-cli " + hash + "\n"})
	if r := e.post(DefaultTokenPath, basic("made-by-cli", "s3cret from stdin"), aliceForm); r.status != http.StatusOK {
		t.Fatalf("the hashed secret: %d %s", r.status, r.body)
	}
	assertOAuthError(t, e.post(DefaultTokenPath, basic("made-by-cli", "s3cret from stdin\r"), aliceForm), 401, "invalid_client")

	// Without a salt in the config, with a config that does not parse,
	// or with no secret, it refuses.
	noSalt := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(noSalt, []byte(strings.Replace(testConfig{LogToStderr: true}.render(), "salt "+testSalt, "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = runCaddy(t, "x\n", "oauth2", "hash-secret", "--config", noSalt)
	if err == nil || !strings.Contains(stderr, "oauth2: salt is required") {
		t.Errorf("hash-secret without a salt: %v %s", err, stderr)
	}
	broken := filepath.Join(t.TempDir(), "caddy.json")
	if err := os.WriteFile(broken, []byte(`{"apps": `), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = runCaddy(t, "x\n", "oauth2", "hash-secret", "--config", broken)
	if err == nil || !strings.Contains(stderr, "not valid JSON") {
		t.Errorf("hash-secret with an unparseable config: %v %s", err, stderr)
	}
	_, stderr, err = runCaddy(t, "", "oauth2", "hash-secret", "--config", cfgFile)
	if err == nil || !strings.Contains(stderr, "empty") {
		t.Errorf("hash-secret with no secret: %v %s", err, stderr)
	}
}

// A config reload that keeps the store neither waits for the file lock
// nor loses a token, through the admin API and through `caddy reload`.
func TestReloadKeepsTokensAndDoesNotBlock(t *testing.T) {
	db := filepath.Join(t.TempDir(), "oauth2.db")
	e := startCaddy(t, testConfig{DB: db})
	first := e.login("other")

	for i, realm := range []string{"one", "two", "three"} {
		start := time.Now()
		e = startCaddy(t, testConfig{DB: db, Realm: realm})
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("reload %d took %v", i, d)
		}
		assertChallenge(t, e.get("/api/x", ""), 401, `Bearer realm="`+realm+`"`)
		if r := e.get("/api/x", first.str("access_token")); r.status != http.StatusOK {
			t.Fatalf("after reload %d the token fails: %d", i, r.status)
		}
	}

	cfgFile := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(cfgFile, []byte(testConfig{DB: db, Realm: "cli"}.render()), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, stderr, err := runCaddy(t, "", "reload", "--config", cfgFile, "--address", "localhost:2999"); err != nil {
		t.Fatalf("caddy reload: %v\n%s", err, stderr)
	}
	t.Logf("caddy reload took %v", time.Since(start))
	assertChallenge(t, e.get("/api/x", ""), 401, `Bearer realm="cli"`)
	second := e.refresh("other", first.str("refresh_token"))
	if second.status != http.StatusOK {
		t.Fatalf("refresh after reloads: %d %s", second.status, second.body)
	}
	if r := e.get("/api/x", second.str("access_token")); r.status != http.StatusOK {
		t.Fatalf("new token: %d", r.status)
	}
}

// The README's first command, as a user runs it: the example config
// starts, logs alice in, serves the protected route and refreshes.
func TestExampleCaddyfileRunsAsIs(t *testing.T) {
	b := runBinary(t, "example.Caddyfile", "https://localhost:8443/")
	home := b.home
	e := &env{t: t, client: b.client}
	post := func(form url.Values) reply {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://localhost:8443/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("demo", "demo-secret")
		return e.do(req)
	}
	tok := post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}})
	if tok.status != http.StatusOK || tok.json["user_id"] != float64(1234) {
		t.Fatalf("login: %d %s", tok.status, tok.body)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://localhost:8443/api/hello", nil)
	req.Header.Set("Authorization", "Bearer "+tok.str("access_token"))
	if r := e.do(req); r.status != http.StatusOK || r.body != "hello, user 1234" {
		t.Fatalf("protected route: %d %q", r.status, r.body)
	}
	if r := e.do(mustGet("https://localhost:8443/api/hello")); r.status != http.StatusUnauthorized {
		t.Fatalf("protected route without a token: %d", r.status)
	}
	if r := post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong"}}); r.str("error") != "invalid_grant" {
		t.Fatalf("wrong password: %d %s", r.status, r.body)
	}
	if r := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}}); r.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	// The README's login page walk-through, with the browser of the tests.
	b2 := &browser{t: t, c: &http.Client{Jar: newJar(), Transport: e.client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	authURL := "https://localhost:8443/oauth2/authorize?response_type=code&client_id=demo-app&redirect_uri=http://127.0.0.1:9000/callback&state=xyz&code_challenge=" + testChallenge + "&code_challenge_method=S256"
	p := b2.get(authURL)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Sign in to Demo App") {
		t.Fatalf("the demo login page: %d", p.status)
	}
	loc := b2.submit(authURL, p, "alice", "wonderland", "allow").location
	if loc == nil || loc.Query().Get("state") != "xyz" {
		t.Fatalf("after the demo login: %v", loc)
	}
	exch := url.Values{"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {loc.Query().Get("code")},
		"code_verifier": {"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}, "redirect_uri": {"http://127.0.0.1:9000/callback"}}
	req, _ = http.NewRequest(http.MethodPost, "https://localhost:8443/oauth2/token", strings.NewReader(exch.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := e.do(req); r.status != http.StatusOK || r.json["user_id"] != float64(1234) {
		t.Fatalf("the demo code exchange: %d %s", r.status, r.body)
	}
	if fi, err := os.Stat(filepath.Join(home, "data", "caddy", "oauth2", "oauth2.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file: %v %v", fi, err)
	}
}

func mustGet(u string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		panic(err)
	}
	return req
}
