package oauth2provider

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every token a client received before Caddy was killed with SIGKILL
// still works after a restart on the same store: tokens are durable
// before their response is written.
func TestTokensSurviveKill9(t *testing.T) {
	file, _ := cliConfigFile(t, true)
	b := runBinary(t, file, cliBase+"/")

	var mu sync.Mutex
	var received []string
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second, Transport: b.client.Transport.(*http.Transport).Clone()}
			for !stop.Load() {
				req, _ := http.NewRequest(http.MethodPost, cliBase+DefaultTokenPath, strings.NewReader(aliceForm.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", basic("static-app", "app-secret"))
				resp, err := client.Do(req)
				if err != nil {
					continue // Caddy is gone
				}
				r := reply{status: resp.StatusCode}
				body := new(strings.Builder)
				_, err = bufio.NewReader(resp.Body).WriteTo(body)
				resp.Body.Close()
				if err != nil || r.status != http.StatusOK {
					continue
				}
				tok := between(body.String(), `"access_token":"`, `"`)
				mu.Lock()
				received = append(received, tok)
				mu.Unlock()
			}
		}()
	}
	// Kill mid-load, once a few hundred tokens have gone out.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(received)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
	}
	b.stop() // SIGKILL
	stop.Store(true)
	wg.Wait()
	if len(received) < 100 {
		t.Fatalf("only %d tokens issued before the kill", len(received))
	}

	b.restart(file, cliBase+"/")
	lost := 0
	for _, tok := range received {
		if r := b.get(tok); r.status != http.StatusOK {
			lost++
		}
	}
	t.Logf("checked %d tokens received before kill -9: %d lost", len(received), lost)
	if lost > 0 {
		t.Fatalf("%d of %d tokens lost", lost, len(received))
	}
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return ""
}

// Requests keep flowing to a protected route, and logins keep going,
// while the config is reloaded ten times: none fails, no token is lost.
func TestReloadUnderLoad(t *testing.T) {
	db := filepath.Join(t.TempDir(), "oauth2.db")
	cfg := testConfig{DB: db, GracePeriod: "10s"}
	e := startCaddy(t, cfg)
	token := e.login("other").str("access_token")

	var stop atomic.Bool
	var calls, failures, logins atomic.Int64
	var mu sync.Mutex
	var issued []string
	var failed []string
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 20 * time.Second, Transport: e.client.Transport.(*http.Transport).Clone()}
			for !stop.Load() {
				var req *http.Request
				if w == 0 {
					req, _ = http.NewRequest(http.MethodPost, baseURL+DefaultTokenPath, strings.NewReader(aliceForm.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Authorization", basic("other", "other-secret"))
				} else {
					req, _ = http.NewRequest(http.MethodGet, baseURL+"/api/x", nil)
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := client.Do(req)
				calls.Add(1)
				if err != nil {
					failures.Add(1)
					mu.Lock()
					failed = append(failed, err.Error())
					mu.Unlock()
					continue
				}
				body := new(strings.Builder)
				_, _ = bufio.NewReader(resp.Body).WriteTo(body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
					mu.Lock()
					failed = append(failed, fmt.Sprint(resp.StatusCode, " ", body.String()))
					mu.Unlock()
					continue
				}
				if w == 0 {
					logins.Add(1)
					mu.Lock()
					issued = append(issued, between(body.String(), `"access_token":"`, `"`))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range 10 {
		time.Sleep(150 * time.Millisecond)
		cfg.Realm = fmt.Sprint("reload-", i)
		startCaddy(t, cfg)
	}
	time.Sleep(150 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d requests (%d logins) during 10 reloads, %d failed", calls.Load(), logins.Load(), failures.Load())
	if failures.Load() > 0 {
		t.Fatalf("%d requests failed, e.g. %v", failures.Load(), failed[:min(3, len(failed))])
	}
	for _, tok := range append(issued, token) {
		if r := e.get("/api/x", tok); r.status != http.StatusOK {
			t.Fatalf("a token issued during the reloads fails: %d", r.status)
		}
	}
}

// No password, client secret or token ever reaches the log, even at
// debug level.
func TestLogsHoldNoSecrets(t *testing.T) {
	start := logSize()
	e := startCaddy(t, testConfig{LogLevel: "DEBUG", AccessLifetime: "1h"})
	first := e.login("app")
	e.get("/api/x", first.str("access_token"))
	second := e.refresh("app", first.str("refresh_token"))
	e.refresh("app", first.str("refresh_token")) // reuse: revokes the family
	e.token("other", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong-pass-9876"}})
	e.token("other", url.Values{"grant_type": {"password"}, "username": {"broken"}, "password": {"broken-pass-5432"}})
	e.post(DefaultTokenPath, basic("other", "bad-secret-1234"), aliceForm)
	e.post(DefaultTokenPath, basic("nobody", "nobody-secret-77"), aliceForm)
	e.post(DefaultTokenPath+"?password=query-pass-4321", basic("other", "other-secret"), url.Values{"grant_type": {"password"}})
	e.token("other", url.Values{"grant_type": {"query-pass-as-grant"}})
	e.get("/api/x", second.str("access_token"))
	e.get("/api/x?access_token="+second.str("access_token"), "")
	e.get("/api/x", "not-a-real-token-5555")

	logs := logSince(start)
	if !strings.Contains(logs, `"level":"debug"`) || !strings.Contains(logs, "failed login") {
		t.Fatalf("the debug log was not captured:\n%s", logs)
	}
	secrets := []string{"wonderland", "wrong-pass-9876", "broken-pass-5432", "bad-secret-1234", "nobody-secret-77",
		"query-pass-as-grant", "not-a-real-token-5555", "app-secret", "other-secret"}
	for _, r := range []reply{first, second} {
		for _, field := range []string{"access_token", "refresh_token"} {
			tok := r.str(field)
			secrets = append(secrets, tok, tok[strings.IndexByte(tok, '.')+1:])
		}
	}
	for _, c := range testClients {
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.id)+":"+url.QueryEscape(c.secret))))
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds %q", s)
		}
	}
	// The password in the query string is refused before it is used, but
	// Caddy's own request log would show a URL: there is none at debug
	// level without an access log, which is checked above too.
	t.Logf("scanned %d bytes of debug log", len(logs))
}

// Bad input of every kind gets a 4xx and never a 500.
func TestBadInputNeverGetsA500(t *testing.T) {
	e := startCaddy(t, testConfig{})
	tok := e.login("other")
	auth := basic("other", "other-secret")
	// HTTP/1.1, whose client sends headers of any size; HTTP/2's refuses
	// to send more than the server advertises.
	roots := e.client.Transport.(*http.Transport).TLSClientConfig.RootCAs
	h1 := &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: h1, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	type input struct {
		name    string
		method  string
		path    string
		ctype   string
		authz   []string
		body    string
		want    int // 0: any 4xx
		wantErr string
	}
	long := strings.Repeat("a", 4<<10)  // within Caddy's header limit
	big := strings.Repeat("a", 100<<10) // beyond it: Caddy answers 431
	inputs := []input{
		{name: "GET", method: "GET", path: DefaultTokenPath, authz: []string{auth}, want: 405},
		{name: "PUT", method: "PUT", path: DefaultTokenPath, ctype: "application/x-www-form-urlencoded", authz: []string{auth}, body: aliceForm.Encode(), want: 405},
		{name: "DELETE", method: "DELETE", path: DefaultTokenPath, want: 405},
		{name: "PATCH", method: "PATCH", path: DefaultTokenPath, want: 405},
		{name: "OPTIONS", method: "OPTIONS", path: DefaultTokenPath, want: 405},
		{name: "HEAD", method: "HEAD", path: DefaultTokenPath, want: 405},
		{name: "text/plain", ctype: "text/plain", authz: []string{auth}, body: aliceForm.Encode(), want: 400, wantErr: "invalid_request"},
		{name: "JSON", ctype: "application/json", authz: []string{auth}, body: `{"grant_type":"password"}`, want: 400, wantErr: "invalid_request"},
		{name: "multipart", ctype: "multipart/form-data; boundary=x", authz: []string{auth}, body: "--x--", want: 400, wantErr: "invalid_request"},
		{name: "malformed Content-Type", ctype: "application/x-www-form-urlencoded; ;;=", authz: []string{auth}, body: aliceForm.Encode(), want: 400, wantErr: "invalid_request"},
		{name: "truncated form", authz: []string{auth}, body: "grant_type=pass", want: 400, wantErr: "unsupported_grant_type"},
		{name: "truncated escape", authz: []string{auth}, body: "grant_type=password&username=al%2", want: 400, wantErr: "invalid_request"},
		{name: "oversized body", authz: []string{auth}, body: "grant_type=password&x=" + strings.Repeat("y", 1<<20), want: 400, wantErr: "invalid_request"},
		{name: "duplicated grant_type", authz: []string{auth}, body: "grant_type=password&grant_type=refresh_token", want: 400, wantErr: "invalid_request"},
		{name: "invalid UTF-8 value", authz: []string{auth}, body: "grant_type=password&username=%FF%FE&password=x", want: 400, wantErr: "invalid_request"},
		{name: "invalid UTF-8 name", authz: []string{auth}, body: "%C0=1&grant_type=password", want: 400, wantErr: "invalid_request"},
		{name: "NUL in the username", authz: []string{auth}, body: "grant_type=password&username=a%00b&password=x", want: 400, wantErr: "invalid_grant"},
		{name: "long Basic header", authz: []string{"Basic " + long}, body: aliceForm.Encode(), want: 401, wantErr: "invalid_client"},
		{name: "long Bearer at the token endpoint", authz: []string{"Bearer " + long}, body: aliceForm.Encode(), want: 401, wantErr: "invalid_client"},
		{name: "huge Basic header", authz: []string{"Basic " + big}, body: aliceForm.Encode()},
		{name: "Basic without base64", authz: []string{"Basic ===="}, body: aliceForm.Encode(), want: 401, wantErr: "invalid_client"},
		{name: "Basic of bytes that are not UTF-8", authz: []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("\xff\xfe:\xfd"))}, body: aliceForm.Encode(), want: 401, wantErr: "invalid_client"},
		{name: "two Basic headers", authz: []string{auth, auth}, body: aliceForm.Encode(), want: 401, wantErr: "invalid_client"},
		{name: "refresh token in the query", path: DefaultTokenPath + "?refresh_token=" + tok.str("refresh_token"), authz: []string{auth}, body: "grant_type=refresh_token", want: 400, wantErr: "invalid_request"},
		{name: "malformed query", path: DefaultTokenPath + "?a=%zz", authz: []string{auth}, body: aliceForm.Encode(), want: 400, wantErr: "invalid_request"},
		{name: "gate: token in the query", method: "GET", path: "/api/x?access_token=" + tok.str("access_token"), want: 400},
		{name: "gate: long bearer token", method: "GET", path: "/api/x", authz: []string{"Bearer " + long}, want: 401},
		{name: "gate: huge bearer token", method: "GET", path: "/api/x", authz: []string{"Bearer " + big}},
		{name: "gate: bearer of bad characters", method: "GET", path: "/api/x", authz: []string{"Bearer a\"b;c"}, want: 400},
		{name: "gate: two headers", method: "GET", path: "/api/x", authz: []string{"Bearer a", "Bearer b"}, want: 400},
		{name: "gate: scheme only", method: "GET", path: "/api/x", authz: []string{"Bearer"}, want: 400},
		{name: "gate: token with spaces", method: "GET", path: "/api/x", authz: []string{"Bearer " + tok.str("access_token") + " x"}, want: 400},
		{name: "gate: header over Caddy's limit", method: "GET", path: "/api/x", authz: []string{"Bearer " + strings.Repeat("a", 2<<20)}},
	}
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			if in.method == "" {
				in.method = http.MethodPost
			}
			if in.path == "" {
				in.path = DefaultTokenPath
			}
			if in.ctype == "" && in.method == http.MethodPost {
				in.ctype = "application/x-www-form-urlencoded"
			}
			req, _ := http.NewRequest(in.method, baseURL+in.path, strings.NewReader(in.body))
			if in.ctype != "" {
				req.Header.Set("Content-Type", in.ctype)
			}
			for _, a := range in.authz {
				req.Header.Add("Authorization", a)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := new(strings.Builder)
			_, _ = bufio.NewReader(resp.Body).WriteTo(body)
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode > 499 || in.want != 0 && resp.StatusCode != in.want {
				t.Fatalf("status %d (want %d): %.200s", resp.StatusCode, in.want, body.String())
			}
			if in.wantErr != "" && !strings.Contains(body.String(), `"error":"`+in.wantErr+`"`) {
				t.Fatalf("body %.200s, want error %s", body.String(), in.wantErr)
			}
		})
	}

	// A body shorter than its Content-Length, cut off by the client.
	t.Run("body cut short", func(t *testing.T) {
		conn, err := tls.Dial("tcp", "localhost:9443", h1)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: localhost:9443\r\nAuthorization: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\ngrant_type=password&user", DefaultTokenPath, auth)
		_ = conn.CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	// And the server is still fine.
	if r := e.get("/api/x", tok.str("access_token")); r.status != http.StatusOK {
		t.Fatalf("after the bad input: %d", r.status)
	}
}
