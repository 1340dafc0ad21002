package oauth2provider

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-plugins/oauth2provider/store"
)

// assertOAuthError checks an RFC 6749 §5.2 error response.
func assertOAuthError(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d %q", r.status, r.body, status, code)
	}
	assertNoStore(t, r)
	if r.str("error_description") == "" {
		t.Errorf("no error_description in %s", r.body)
	}
	if status == http.StatusUnauthorized {
		if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="localhost"` {
			t.Errorf("WWW-Authenticate = %q", got)
		}
	}
	if _, ok := r.json["access_token"]; ok {
		t.Errorf("an error response carries a token: %s", r.body)
	}
}

func assertNoStore(t *testing.T, r reply) {
	t.Helper()
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
		t.Errorf("cache headers: Cache-Control %q, Pragma %q", r.header.Get("Cache-Control"), r.header.Get("Pragma"))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
		t.Errorf("Content-Type = %q", ct)
	}
}

var aliceForm = url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}}

func TestPasswordGrantSuccessBody(t *testing.T) {
	e := startCaddy(t, testConfig{})
	r := e.login("other")
	assertNoStore(t, r)
	if r.str("token_type") != "bearer" || r.json["expires_in"] != float64(3600) || r.json["user_id"] != float64(1234) {
		t.Fatalf("body = %s", r.body)
	}
	if len(r.str("access_token")) < 43 || len(r.str("refresh_token")) < 43 || r.str("access_token") == r.str("refresh_token") {
		t.Fatalf("tokens in %s", r.body)
	}
	if _, ok := r.json["scope"]; ok {
		t.Errorf("scope in the answer though none was asked or granted: %s", r.body)
	}
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
}

func TestStringUserIDStaysAString(t *testing.T) {
	e := startCaddy(t, testConfig{})
	r := e.token("other", url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"builder"}})
	if r.status != http.StatusOK || r.json["user_id"] != "bob-7" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if got := e.get("/api/x", r.str("access_token")); got.str("user_id") != "bob-7" {
		t.Fatalf("backend saw %s", got.body)
	}
}

// RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
func TestBasicCredentialsAreFormURLDecoded(t *testing.T) {
	e := startCaddy(t, testConfig{})
	r := e.token("team:app ü", aliceForm)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// The same credentials not encoded are wrong: the raw secret holds a
	// '%' that does not decode.
	raw := "Basic " + base64.StdEncoding.EncodeToString([]byte("team%3Aapp+%C3%BC:pa ss+wörd%/:"))
	assertOAuthError(t, e.post(DefaultTokenPath, raw, aliceForm), http.StatusUnauthorized, "invalid_client")
}

func TestRefreshTokenAlias(t *testing.T) {
	e := startCaddy(t, testConfig{})
	first := e.login("other")
	r := e.token("other", url.Values{"grant_type": {"refresh"}, "refresh_token": {first.str("refresh_token")}})
	if r.status != http.StatusOK || r.str("access_token") == "" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestScopeOfThePasswordGrant(t *testing.T) {
	e := startCaddy(t, testConfig{})
	// No scope asked: the default is granted, and said.
	r := e.login("app")
	if r.str("scope") != "read" {
		t.Errorf("default scope: %s", r.body)
	}
	// Asked and allowed: granted; the same as asked, so not repeated.
	r = e.token("app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}, "scope": {"write read"}})
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if _, ok := r.json["scope"]; ok {
		t.Errorf("scope repeated: %s", r.body)
	}
	if got := e.get("/write/x", r.str("access_token")); got.status != http.StatusOK {
		t.Errorf("write scope not granted: %d", got.status)
	}
}

func TestRefreshMayNarrowTheScopeButNotWidenIt(t *testing.T) {
	e := startCaddy(t, testConfig{})
	first := e.login("app") // scope "read"
	wide := e.token("app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.str("refresh_token")}, "scope": {"read write"}})
	assertOAuthError(t, wide, http.StatusBadRequest, "invalid_scope")

	both := e.token("app", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}, "scope": {"read write"}})
	narrow := e.token("app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {both.str("refresh_token")}, "scope": {"read"}})
	if narrow.status != http.StatusOK {
		t.Fatalf("%d %s", narrow.status, narrow.body)
	}
	if got := e.get("/write/x", narrow.str("access_token")); got.status != http.StatusForbidden {
		t.Errorf("narrowed token still writes: %d", got.status)
	}
	// The narrowing was the access token's only: the new refresh token
	// keeps the scope of the one it replaced (RFC 6749 §6), so a refresh
	// without a scope gets it all back.
	again := e.refresh("app", narrow.str("refresh_token"))
	if got := e.get("/api/x", again.str("access_token")); got.str("scope") != "read write" {
		t.Errorf("scope after refresh: %s", got.body)
	}
	if r := e.introspect("other", again.str("refresh_token")); r.str("scope") != "read write" {
		t.Errorf("refresh token scope: %s", r.body)
	}
}

func TestRefreshRotatesTheTokens(t *testing.T) {
	e := startCaddy(t, testConfig{})
	first := e.login("other")
	second := e.refresh("other", first.str("refresh_token"))
	if second.status != http.StatusOK {
		t.Fatalf("%d %s", second.status, second.body)
	}
	if second.json["user_id"] != float64(1234) || second.json["expires_in"] != float64(3600) {
		t.Errorf("refresh body %s", second.body)
	}
	if got := e.get("/api/x", first.str("access_token")); got.status != http.StatusUnauthorized {
		t.Errorf("the old access token still works: %d", got.status)
	}
	if got := e.get("/api/x", second.str("access_token")); got.status != http.StatusOK {
		t.Errorf("the new access token: %d", got.status)
	}
}

func TestRefreshTokenReuseRevokesTheFamily(t *testing.T) {
	e := startCaddy(t, testConfig{})
	first := e.login("other")
	second := e.refresh("other", first.str("refresh_token"))
	unrelated := e.login("other")

	assertOAuthError(t, e.refresh("other", first.str("refresh_token")), http.StatusBadRequest, "invalid_grant")

	if got := e.get("/api/x", second.str("access_token")); got.status != http.StatusUnauthorized {
		t.Errorf("access token of the revoked family: %d", got.status)
	}
	assertOAuthError(t, e.refresh("other", second.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
	if got := e.get("/api/x", unrelated.str("access_token")); got.status != http.StatusOK {
		t.Errorf("another family was revoked: %d", got.status)
	}
}

func TestConcurrentRefreshesOfOneTokenGiveOneSuccess(t *testing.T) {
	e := startCaddy(t, testConfig{})
	first := e.login("other")
	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.str("refresh_token")}}
			req, _ := http.NewRequest(http.MethodPost, baseURL+DefaultTokenPath, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", basic("other", "other-secret"))
			resp, err := e.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusBadRequest:
			refused++
		}
	}
	if ok != 1 || refused != n-1 {
		t.Fatalf("%d × 200 and %d × 400 of %d: %v", ok, refused, n, statuses)
	}
	// The losers presented a used token, so the family is revoked,
	// including the winner's new pair (RFC 9700 §4.14.2: the server
	// cannot tell the thief from the client). The store holds nothing.
	if n := e.countTokens(); n != 0 {
		t.Fatalf("%d tokens left of a revoked family", n)
	}
}

func TestClientRevokedDuringTheUserCheckGetsNoToken(t *testing.T) {
	e := startCaddy(t, testConfig{})
	salt, _ := decodeSalt(testSalt)
	hash, _ := hashSecretCost("late-secret", salt, 10)
	if err := e.app().store.CreateClient(context.Background(), store.Client{ID: "late", SecretHash: hash}); err != nil {
		t.Fatal(err)
	}
	done := make(chan reply)
	go func() {
		// "delayed" takes 300 ms to be checked.
		done <- e.post(DefaultTokenPath, basic("late", "late-secret"), url.Values{"grant_type": {"password"}, "username": {"delayed"}, "password": {"x"}})
	}()
	time.Sleep(100 * time.Millisecond)
	if err := e.app().store.RevokeClient(context.Background(), "late"); err != nil {
		t.Fatal(err)
	}
	assertOAuthError(t, <-done, http.StatusUnauthorized, "invalid_client")
	if n := e.countTokens(); n != 0 {
		t.Fatalf("%d tokens stored", n)
	}
}

func TestUpstreamNumericUserIDIsNumericInTheToken(t *testing.T) {
	e := startCaddy(t, testConfig{})
	r := e.login("other")
	if v, ok := r.json["user_id"].(float64); !ok || v != 1234 || !strings.Contains(r.body, `"user_id":1234`) {
		t.Fatalf("user_id in %s", r.body)
	}
}

func TestUnavailableUserCheckGives503AndNoToken(t *testing.T) {
	e := startCaddy(t, testConfig{})
	for name, tc := range map[string]struct {
		path, user string
	}{
		"answers 500":         {DefaultTokenPath, "broken"},
		"hangs past timeout":  {DefaultTokenPath, "slow"},
		"refuses connections": {"/refused/token", "alice"},
	} {
		t.Run(name, func(t *testing.T) {
			before := e.countTokens()
			start := time.Now()
			r := e.post(tc.path, basic("other", "other-secret"), url.Values{"grant_type": {"password"}, "username": {tc.user}, "password": {"x"}})
			assertOAuthError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
			if r.header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v; the check's timeout is 500ms", d)
			}
			if after := e.countTokens(); after != before {
				t.Errorf("tokens stored: %d → %d", before, after)
			}
		})
	}
}

// One test per row of the spec's token endpoint error table.
func TestTokenEndpointErrors(t *testing.T) {
	e := startCaddy(t, testConfig{})
	valid := e.login("other")

	// Tokens that must not refresh: expired, revoked, used, another
	// client's.
	expired := func() string {
		g := e.app().grant(e.app().static["other"], []byte(`1234`), "")
		g.RefreshLifetime = time.Millisecond
		pair, err := e.app().store.Issue(context.Background(), g, time.Now().Add(-time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return pair.RefreshToken
	}()
	revoked := e.login("other")
	fam, _ := store.ParseToken(revoked.str("refresh_token"))
	if err := e.app().store.RevokeFamily(context.Background(), fam.Family()); err != nil {
		t.Fatal(err)
	}
	used := e.login("other")
	e.refresh("other", used.str("refresh_token"))
	others := e.login("app")

	// A stored client, then revoked.
	salt, _ := decodeSalt(testSalt)
	hash, _ := hashSecretCost("gone-secret", salt, 10)
	if err := e.app().store.CreateClient(context.Background(), store.Client{ID: "gone", SecretHash: hash}); err != nil {
		t.Fatal(err)
	}
	if r := e.post(DefaultTokenPath, basic("gone", "gone-secret"), aliceForm); r.status != http.StatusOK {
		t.Fatalf("stored client before revocation: %d %s", r.status, r.body)
	}
	if err := e.app().store.RevokeClient(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}

	auth := basic("other", "other-secret")
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	refreshForm := func(tok string) url.Values { return form("grant_type", "refresh_token", "refresh_token", tok) }

	rows := []struct {
		name   string
		send   func() reply
		status int
		code   string
	}{
		{"not HTTPS", func() reply { return e.plainHTTP(t, 9082, DefaultTokenPath, auth, aliceForm, nil) }, 400, "invalid_request"},
		{"not HTTPS, untrusted X-Forwarded-Proto", func() reply {
			return e.plainHTTP(t, 9082, DefaultTokenPath, auth, aliceForm, map[string]string{"X-Forwarded-Proto": "https"})
		}, 400, "invalid_request"},
		{"trusted proxy without X-Forwarded-Proto", func() reply { return e.plainHTTP(t, 9081, DefaultTokenPath, auth, aliceForm, nil) }, 400, "invalid_request"},
		{"method GET", func() reply {
			req, _ := http.NewRequest(http.MethodGet, baseURL+DefaultTokenPath, nil)
			req.Header.Set("Authorization", auth)
			return e.do(req)
		}, 405, "invalid_request"},
		{"wrong Content-Type", func() reply {
			req, _ := http.NewRequest(http.MethodPost, baseURL+DefaultTokenPath, strings.NewReader(aliceForm.Encode()))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", auth)
			return e.do(req)
		}, 400, "invalid_request"},
		{"no Content-Type", func() reply {
			req, _ := http.NewRequest(http.MethodPost, baseURL+DefaultTokenPath, strings.NewReader(aliceForm.Encode()))
			req.Header.Set("Authorization", auth)
			return e.do(req)
		}, 400, "invalid_request"},
		{"body over 64 KiB", func() reply {
			big := form("grant_type", "password", "username", "alice", "password", "wonderland", "pad", strings.Repeat("x", 64<<10))
			return e.post(DefaultTokenPath, auth, big)
		}, 400, "invalid_request"},
		{"parameter given twice", func() reply {
			return e.post(DefaultTokenPath, auth, form("grant_type", "password", "username", "alice", "username", "bob", "password", "wonderland"))
		}, 400, "invalid_request"},
		{"password in the URL query", func() reply {
			return e.post(DefaultTokenPath+"?password=wonderland", auth, form("grant_type", "password", "username", "alice"))
		}, 400, "invalid_request"},
		{"grant_type in the URL query", func() reply {
			return e.post(DefaultTokenPath+"?grant_type=password", auth, form("username", "alice", "password", "wonderland"))
		}, 400, "invalid_request"},
		{"client secret in the body", func() reply {
			return e.post(DefaultTokenPath, "", form("grant_type", "password", "username", "alice", "password", "wonderland", "client_id", "other", "client_secret", "other-secret"))
		}, 400, "invalid_request"},
		{"no Authorization header", func() reply { return e.post(DefaultTokenPath, "", aliceForm) }, 401, "invalid_client"},
		{"Bearer instead of Basic", func() reply { return e.post(DefaultTokenPath, "Bearer "+valid.str("access_token"), aliceForm) }, 401, "invalid_client"},
		{"malformed base64", func() reply { return e.post(DefaultTokenPath, "Basic !!!notbase64", aliceForm) }, 401, "invalid_client"},
		{"no colon in Basic", func() reply {
			return e.post(DefaultTokenPath, "Basic "+base64.StdEncoding.EncodeToString([]byte("other")), aliceForm)
		}, 401, "invalid_client"},
		{"bad percent-encoding in Basic", func() reply {
			return e.post(DefaultTokenPath, "Basic "+base64.StdEncoding.EncodeToString([]byte("oth%zzer:x")), aliceForm)
		}, 401, "invalid_client"},
		{"unknown client", func() reply { return e.post(DefaultTokenPath, basic("nobody", "other-secret"), aliceForm) }, 401, "invalid_client"},
		{"wrong secret", func() reply { return e.post(DefaultTokenPath, basic("other", "wrong"), aliceForm) }, 401, "invalid_client"},
		{"revoked client", func() reply { return e.post(DefaultTokenPath, basic("gone", "gone-secret"), aliceForm) }, 401, "invalid_client"},
		{"missing grant_type", func() reply {
			return e.post(DefaultTokenPath, auth, form("username", "alice", "password", "wonderland"))
		}, 400, "invalid_request"},
		{"missing username", func() reply {
			return e.post(DefaultTokenPath, auth, form("grant_type", "password", "password", "wonderland"))
		}, 400, "invalid_request"},
		{"missing password", func() reply {
			return e.post(DefaultTokenPath, auth, form("grant_type", "password", "username", "alice"))
		}, 400, "invalid_request"},
		{"missing refresh_token", func() reply { return e.post(DefaultTokenPath, auth, form("grant_type", "refresh_token")) }, 400, "invalid_request"},
		{"missing user_id where required", func() reply {
			return e.post("/strict/token", auth, refreshForm(valid.str("refresh_token")))
		}, 400, "invalid_request"},
		{"unknown grant_type", func() reply { return e.post(DefaultTokenPath, auth, form("grant_type", "magic")) }, 400, "unsupported_grant_type"},
		{"grant the client may not use", func() reply {
			return e.post(DefaultTokenPath, basic("limited", "limited-secret"), refreshForm(valid.str("refresh_token")))
		}, 400, "unauthorized_client"},
		{"scope the client may not have", func() reply {
			return e.post(DefaultTokenPath, basic("app", "app-secret"), form("grant_type", "password", "username", "alice", "password", "wonderland", "scope", "read admin"))
		}, 400, "invalid_scope"},
		{"scope for a client with no scopes", func() reply {
			return e.post(DefaultTokenPath, auth, form("grant_type", "password", "username", "alice", "password", "wonderland", "scope", "read"))
		}, 400, "invalid_scope"},
		{"malformed scope", func() reply {
			return e.post(DefaultTokenPath, basic("app", "app-secret"), form("grant_type", "password", "username", "alice", "password", "wonderland", "scope", `read "x"`))
		}, 400, "invalid_scope"},
		{"wrong password", func() reply {
			return e.post(DefaultTokenPath, auth, form("grant_type", "password", "username", "alice", "password", "nope"))
		}, 400, "invalid_grant"},
		{"unknown user", func() reply {
			return e.post(DefaultTokenPath, auth, form("grant_type", "password", "username", "mallory", "password", "x"))
		}, 400, "invalid_grant"},
		{"refresh token unknown", func() reply { return e.post(DefaultTokenPath, auth, refreshForm("not-a-token")) }, 400, "invalid_grant"},
		{"refresh token forged in a real family", func() reply {
			tok := valid.str("refresh_token")
			return e.post(DefaultTokenPath, auth, refreshForm(tok[:23]+strings.Repeat("A", len(tok)-23)))
		}, 400, "invalid_grant"},
		{"refresh token expired", func() reply { return e.post(DefaultTokenPath, auth, refreshForm(expired)) }, 400, "invalid_grant"},
		{"refresh token revoked", func() reply { return e.post(DefaultTokenPath, auth, refreshForm(revoked.str("refresh_token"))) }, 400, "invalid_grant"},
		{"refresh token already used", func() reply { return e.post(DefaultTokenPath, auth, refreshForm(used.str("refresh_token"))) }, 400, "invalid_grant"},
		{"access token as refresh token", func() reply { return e.post(DefaultTokenPath, auth, refreshForm(valid.str("access_token"))) }, 400, "invalid_grant"},
		{"refresh token of another client", func() reply { return e.post(DefaultTokenPath, auth, refreshForm(others.str("refresh_token"))) }, 400, "invalid_grant"},
		{"user_id mismatch", func() reply {
			f := refreshForm(valid.str("refresh_token"))
			f.Set("user_id", "999")
			return e.post(DefaultTokenPath, auth, f)
		}, 400, "invalid_grant"},
		{"upstream check unavailable", func() reply {
			return e.post(DefaultTokenPath, auth, form("grant_type", "password", "username", "broken", "password", "x"))
		}, 503, "temporarily_unavailable"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			r := row.send()
			assertOAuthError(t, r, row.status, row.code)
			if row.status == http.StatusMethodNotAllowed && r.header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q", r.header.Get("Allow"))
			}
		})
	}

	// The refusals above left the tokens they did not use working.
	if got := e.get("/api/x", valid.str("access_token")); got.status != http.StatusOK {
		t.Errorf("valid token after the refusals: %d", got.status)
	}
	if r := e.refresh("app", others.str("refresh_token")); r.status != http.StatusOK {
		t.Errorf("another client's attempt used up the token: %d %s", r.status, r.body)
	}
	f := refreshForm(valid.str("refresh_token"))
	f.Set("user_id", "1234")
	if r := e.post("/strict/token", auth, f); r.status != http.StatusOK {
		t.Errorf("refresh with the matching user_id: %d %s", r.status, r.body)
	}
}

func TestHTTPSFromATrustedProxyIsAccepted(t *testing.T) {
	e := startCaddy(t, testConfig{})
	r := e.plainHTTP(t, 9081, DefaultTokenPath, basic("other", "other-secret"), aliceForm, map[string]string{"X-Forwarded-Proto": "https"})
	if r.status != http.StatusOK || r.str("access_token") == "" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	get := func(headers map[string]string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9081/x", nil)
		req.Header.Set("Authorization", "Bearer "+r.str("access_token"))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := plainClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(map[string]string{"X-Forwarded-Proto": "https"}); s != http.StatusOK {
		t.Errorf("gate behind a trusted proxy: %d", s)
	}
	if s := get(nil); s != http.StatusBadRequest {
		t.Errorf("gate over plain HTTP: %d", s)
	}
	// A proxy that appends: the last value is the one it added.
	if s := get(map[string]string{"X-Forwarded-Proto": "https, http"}); s != http.StatusBadRequest {
		t.Errorf("client-sent https before the proxy's http: %d", s)
	}
	if s := get(map[string]string{"X-Forwarded-Proto": "http, https"}); s != http.StatusOK {
		t.Errorf("the proxy's https last: %d", s)
	}
}

// plainHTTP posts a form over plain HTTP to 127.0.0.1:port.
func (e *env) plainHTTP(t *testing.T, port int, path, authorization string, form url.Values, headers map[string]string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(port)+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", authorization)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return (&env{t: t, client: plainClient}).do(req)
}
