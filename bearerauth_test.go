package oauth2provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-plugins/oauth2provider/store"
)

// assertChallenge checks a refusal of the gate.
func assertChallenge(t *testing.T, r reply, status int, challenge string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (%s)", r.status, status, r.body)
	}
	if got := r.header.Get("WWW-Authenticate"); got != challenge {
		t.Fatalf("WWW-Authenticate = %q\n                want %q", got, challenge)
	}
	if strings.Contains(r.body, "user_id") {
		t.Fatalf("the backend answered a refused request: %s", r.body)
	}
}

const invalidToken = `Bearer realm="localhost", error="invalid_token", error_description="the access token is invalid, expired or revoked"`

func TestValidTokenPassesWithTheUserInPlaceholders(t *testing.T) {
	e := startCaddy(t, testConfig{})
	tok := e.login("app").str("access_token")
	r := e.get("/api/me", tok)
	if r.status != http.StatusOK || r.str("user_id") != "1234" || r.str("client_id") != "app" || r.str("scope") != "read" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// The scheme is case-insensitive (RFC 9110 §11.1).
	req, _ := http.NewRequest(http.MethodGet, baseURL+"/api/me", nil)
	req.Header.Set("Authorization", "bEaReR "+tok)
	if r := e.do(req); r.status != http.StatusOK {
		t.Fatalf("lower-case scheme: %d", r.status)
	}
}

// One test per row of the spec's bearer table.
func TestBearerTable(t *testing.T) {
	e := startCaddy(t, testConfig{AccessLifetime: "1s"})
	expiring := e.login("other").str("access_token")
	revoked := e.login("other")
	valid := func() string { return e.login("app").str("access_token") }

	t.Run("no Authorization header", func(t *testing.T) {
		assertChallenge(t, e.get("/api/x", ""), 401, `Bearer realm="localhost"`)
	})
	t.Run("another scheme", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, baseURL+"/api/x", nil)
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("a:b")))
		assertChallenge(t, e.do(req), 401, `Bearer realm="localhost"`)
	})
	t.Run("no Authorization header, optional", func(t *testing.T) {
		// The placeholder is not set, so respond leaves it as it is.
		r := e.get("/optional/x", "")
		if r.status != 200 || r.body != "user=[{http.auth.user.id}]" {
			t.Fatalf("%d %q", r.status, r.body)
		}
	})
	t.Run("valid token, optional", func(t *testing.T) {
		r := e.get("/optional/x", valid())
		if r.status != 200 || r.body != "user=[1234]" {
			t.Fatalf("%d %q", r.status, r.body)
		}
	})
	t.Run("bad token, optional", func(t *testing.T) {
		assertChallenge(t, e.get("/optional/x", "nope"), 401, invalidToken)
	})
	t.Run("unknown token", func(t *testing.T) {
		assertChallenge(t, e.get("/api/x", "c29tZXRoaW5n"), 401, invalidToken)
	})
	t.Run("forged token of a real family", func(t *testing.T) {
		tok := valid()
		// 'A' keeps the secret valid base64, so the store is asked.
		forged := tok[:23] + strings.Repeat("A", len(tok)-23)
		if _, ok := store.ParseToken(forged); !ok {
			t.Fatal("the forged token does not parse")
		}
		assertChallenge(t, e.get("/api/x", forged), 401, invalidToken)
	})
	t.Run("expired token", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond)
		assertChallenge(t, e.get("/api/x", expiring), 401, invalidToken)
	})
	t.Run("revoked token", func(t *testing.T) {
		key, _ := store.ParseToken(revoked.str("access_token"))
		if err := e.app().store.RevokeFamily(context.Background(), key.Family()); err != nil {
			t.Fatal(err)
		}
		assertChallenge(t, e.get("/api/x", revoked.str("access_token")), 401, invalidToken)
	})
	t.Run("a refresh token", func(t *testing.T) {
		assertChallenge(t, e.get("/api/x", e.login("other").str("refresh_token")), 401, invalidToken)
	})
	for name, header := range map[string]string{
		"malformed header: no token":       "Bearer",
		"malformed header: empty token":    "Bearer ",
		"malformed header: two tokens":     "Bearer abc def",
		"malformed header: bad characters": "Bearer a,b;c",
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, baseURL+"/api/x", nil)
			req.Header.Set("Authorization", header)
			assertChallenge(t, e.do(req), 400, `Bearer realm="localhost", error="invalid_request", error_description="malformed Bearer Authorization header"`)
		})
	}
	t.Run("malformed header: two Authorization headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, baseURL+"/api/x", nil)
		req.Header.Add("Authorization", "Bearer "+valid())
		req.Header.Add("Authorization", "Bearer "+valid())
		assertChallenge(t, e.do(req), 400, `Bearer realm="localhost", error="invalid_request", error_description="more than one Authorization header"`)
	})
	t.Run("token in the URL query", func(t *testing.T) {
		assertChallenge(t, e.get("/api/x?access_token="+valid(), ""), 400,
			`Bearer realm="localhost", error="invalid_request", error_description="access tokens are not accepted in the URL"`)
	})
	t.Run("token lacks a required scope", func(t *testing.T) {
		assertChallenge(t, e.get("/write/x", valid()), 403,
			`Bearer realm="localhost", error="insufficient_scope", error_description="the access token lacks a required scope", scope="write"`)
	})
	t.Run("not HTTPS", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9082/x", nil)
		req.Header.Set("Authorization", "Bearer "+valid())
		resp, err := plainClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`) {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
}

func TestRealmIsConfigurable(t *testing.T) {
	e := startCaddy(t, testConfig{Realm: "my-api"})
	assertChallenge(t, e.get("/api/x", ""), 401, `Bearer realm="my-api"`)
}

func TestStaticClientRemovedFromTheConfigLosesItsTokens(t *testing.T) {
	db := filepath.Join(t.TempDir(), "oauth2.db")
	e := startCaddy(t, testConfig{DB: db})
	tok := e.login("other").str("access_token")
	saved := testClients
	t.Cleanup(func() { testClients = saved })
	testClients = []testClient{saved[0]} // only "app" is left
	e = startCaddy(t, testConfig{DB: db})
	assertChallenge(t, e.get("/api/x", tok), 401, invalidToken)
}

// The provider form: one route accepts a bearer token or HTTP Basic.
func TestProviderAcceptsBearerOrBasic(t *testing.T) {
	db := filepath.Join(t.TempDir(), "oauth2.db")
	caddyfile := testConfig{DB: db}.render()
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Put an authentication handler with both providers in front of
	// everything on the HTTPS server.
	var cfg map[string]any
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	servers := cfg["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)
	var srv map[string]any
	for _, s := range servers {
		if strings.Contains(toJSON(s), `":9443"`) {
			srv = s.(map[string]any)
		}
	}
	var route map[string]any
	if err := json.Unmarshal([]byte(`{
		"match": [{"path": ["/either/*"]}],
		"handle": [
			{"handler": "authentication", "providers": {
				"oauth2_bearer": {"realm": "either"},
				"http_basic": {"accounts": [{"username": "ops", "password": "$2a$04$pNAsoxeqlR9jyXbg9SVqROdW7nqPRMzJmzGdJCl/A6EIPnLgr5KTe"}]}
			}},
			{"handler": "static_response", "body": "hello {http.auth.user.id} via [{http.auth.user.client_id}]"}
		]}`), &route); err != nil {
		t.Fatal(err)
	}
	var bearerOnly map[string]any
	if err := json.Unmarshal([]byte(`{
		"match": [{"path": ["/bearer-only/*"]}],
		"handle": [
			{"handler": "authentication", "providers": {"oauth2_bearer": {"require_scope": ["write"]}}},
			{"handler": "static_response", "body": "hello {http.auth.user.id} with [{http.auth.user.scope}]"}
		]}`), &bearerOnly); err != nil {
		t.Fatal(err)
	}
	srv["routes"] = append([]any{route, bearerOnly}, srv["routes"].([]any)...)
	caddytest.NewTester(t).InitServer(toJSON(cfg), "json")
	e := &env{t: t, db: db, client: tlsClient(t)}

	if r := e.get("/either/x", e.login("app").str("access_token")); r.status != 200 || r.body != "hello 1234 via [app]" {
		t.Errorf("bearer: %d %q", r.status, r.body)
	}
	req, _ := http.NewRequest(http.MethodGet, baseURL+"/either/x", nil)
	req.SetBasicAuth("ops", "hunter2")
	if r := e.do(req); r.status != 200 || r.body != "hello ops via [{http.auth.user.client_id}]" {
		t.Errorf("basic: %d %q", r.status, r.body)
	}
	// With two providers, Caddy's authentication handler picks one
	// provider's challenge; either way the request is refused.
	if r := e.get("/either/x", "bad-token"); r.status != 401 || strings.Contains(r.body, "hello") {
		t.Errorf("bad token: %d %q", r.status, r.body)
	}

	// Alone, the provider's challenge carries the error; every failure
	// is a 401 in the provider form.
	both := e.token("app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}, "scope": {"read write"}})
	if r := e.get("/bearer-only/x", both.str("access_token")); r.status != 200 || r.body != "hello 1234 with [read write]" {
		t.Errorf("bearer only: %d %q", r.status, r.body)
	}
	assertChallenge(t, e.get("/bearer-only/x", "bad-token"), 401, invalidToken)
	assertChallenge(t, e.get("/bearer-only/x", e.login("app").str("access_token")), 401,
		`Bearer realm="localhost", error="insufficient_scope", error_description="the access token lacks a required scope", scope="write"`)
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
