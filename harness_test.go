package oauth2provider

// The integration tests run a real Caddy in this process (caddytest: one
// per test binary, admin on localhost:2999), with real bbolt files, a
// real upstream user check and a real backend from httptest.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-plugins/oauth2provider/internal/wire"
	"github.com/caddy-plugins/oauth2provider/store"
)

var (
	testDir  string // XDG dirs and Caddy's storage, shared by every test
	testSalt = base64.StdEncoding.EncodeToString([]byte("test-salt-16byte"))

	// upstreamCalls counts requests to the user check.
	upstreamCalls atomic.Int64
	upstream      *httptest.Server // the user check
	backend       *httptest.Server // behind reverse_proxy
	refusedURL    string           // nothing listens here
)

func TestMain(m *testing.M) {
	var err error
	if testDir, err = os.MkdirTemp("", "oauth2provider-test-"); err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", filepath.Join(testDir, "data"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(testDir, "config"))
	// Computed before TestMain runs; keep the tests' configs out of the
	// user's own autosave file.
	caddy.ConfigAutosavePath = filepath.Join(testDir, "config", "caddy", "autosave.json")
	upstream = httptest.NewServer(http.HandlerFunc(userCheck))
	backend = httptest.NewServer(http.HandlerFunc(echoUser))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	refusedURL = "http://" + l.Addr().String()
	l.Close()

	code := m.Run()
	upstream.Close()
	backend.Close()
	os.RemoveAll(testDir)
	os.Exit(code)
}

// userCheck is the accounts service: alice has a numeric id, bob a
// string one; "broken" makes it fail and "slow" makes it hang.
func userCheck(w http.ResponseWriter, r *http.Request) {
	upstreamCalls.Add(1)
	user, pass, _ := r.BasicAuth()
	switch {
	case user == "alice" && pass == "wonderland":
		w.Write([]byte(`{"user_id": 1234}`))
	case user == "bob" && pass == "builder":
		w.Write([]byte(`{"user_id": "bob-7", "name": "Bob"}`))
	case user == "delayed":
		time.Sleep(300 * time.Millisecond)
		w.Write([]byte(`{"user_id": 99}`))
	case user == "broken":
		http.Error(w, "database down", http.StatusInternalServerError)
	case user == "slow":
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	default:
		w.WriteHeader(http.StatusUnauthorized)
	}
}

// echoUser is the backend: it answers what the gate told it.
func echoUser(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(map[string]string{
		"user_id":       r.Header.Get("X-User-Id"),
		"client_id":     r.Header.Get("X-Client-Id"),
		"scope":         r.Header.Get("X-Scope"),
		"authorization": r.Header.Get("Authorization"),
	})
}

// A test client: id, secret, and its line in the config.
type testClient struct {
	id, secret, options string
}

var testClients = []testClient{
	{"app", "app-secret", "scopes read write\n\t\t\tdefault_scope read\n\t\t\tredirect_uri https://app.example/cb"},
	{"other", "other-secret", ""},
	{"limited", "limited-secret", "grant_types password"},
	{"team:app ü", "pa ss+wörd%/:", ""},
	{"machine", "machine-secret", "grant_types client_credentials\n\t\t\tscopes jobs read\n\t\t\tdefault_scope jobs"},
	// Authorization code clients: a web app with a secret, and a public
	// single-page/native app.
	{"web", "web-secret", "grant_types authorization_code refresh_token\n\t\t\tredirect_uri https://web.example/cb\n\t\t\tscopes read write\n\t\t\tname \"Web App\""},
	{"web2", "web2-secret", "grant_types authorization_code\n\t\t\tredirect_uri https://web.example/cb"},
	{"spa", "", "redirect_uri http://127.0.0.1/callback https://spa.example/cb?from=login\n\t\t\tscopes read\n\t\t\tdefault_scope read\n\t\t\tskip_consent"},
}

// Cheap hashes (N = 2^10) keep the race detector's scrypt fast; the cost
// is a parameter of the hash, and tests of the default cost use
// hash-secret.
var clientHashes = sync.OnceValue(func() map[string]string {
	salt, _ := decodeSalt(testSalt)
	m := map[string]string{}
	for _, c := range testClients {
		if c.secret == "" {
			m[c.id] = "public"
			continue
		}
		h, err := hashSecretCost(c.secret, salt, 10)
		if err != nil {
			panic(err)
		}
		m[c.id] = h
	}
	return m
})

// testConfig is what a test may change of the standard config.
type testConfig struct {
	DB              string
	AccessLifetime  string
	RefreshLifetime string
	Realm           string
	ExtraClients    string
	Extra           string // lines for the oauth2 block
	Issuer          string // lines for the main oauth2_token block
	GracePeriod     string // default 1ns: old servers stop at once
	LogLevel        string // default INFO
	Storage         string
	LogFile         string
	// LogToStderr keeps Caddy's default logging, for the binary's tests
	// that read its messages.
	LogToStderr bool
	Upstream    string
	Backend     string
	Refused     string
	Clients     string
}

const configTemplate = `{
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period {{.GracePeriod}}
	local_certs
	skip_install_trust
	storage file_system {{.Storage}}
{{if .LogFile}}	log default {
		output file {{.LogFile}} {
			roll_disabled
		}
		level {{.LogLevel}}
	}
{{end}}	servers :9081 {
		trusted_proxies static 127.0.0.1/32
	}
	oauth2 {
		storage bbolt {{.DB}}
		salt ` + "{{.Salt}}" + `
		access_token_lifetime {{.AccessLifetime}}
		refresh_token_lifetime {{.RefreshLifetime}}
		{{.Extra}}
{{.Clients}}{{.ExtraClients}}
	}
}

localhost:9443 {
	oauth2_token {
		auth_check {{.Upstream}}/check {
			timeout 500ms
		}
		{{.Issuer}}
	}
	oauth2_token /strict/* {
		auth_check {{.Upstream}}/check
		refresh_requires_user_id
		token_path /strict/token
	}
	oauth2_token /refused/* {
		auth_check {{.Refused}}/check
		token_path /refused/token
	}
	oauth2_token /moved/* {
		auth_check {{.Upstream}}/check
		token_path /moved/token
		revocation_path /moved/logout
		introspection_path off
		metadata_path /moved/meta
		issuer https://localhost:9443/moved
	}
	oauth2_token /inspect/* {
		token_path off
		revocation_path off
		metadata_path off
		authorize off
		introspection_path /inspect/introspect
	}
	handle /api/* {
		oauth2_bearer {{.Realm}}
		reverse_proxy {{.Backend}} {
			header_up X-User-Id {http.auth.user.id}
			header_up X-Client-Id {http.auth.user.client_id}
			header_up X-Scope {http.auth.user.scope}
		}
	}
	handle /write/* {
		oauth2_bearer {
			require_scope write
		}
		respond "written by {http.auth.user.id}"
	}
	handle /optional/* {
		oauth2_bearer {
			optional
		}
		respond "user=[{http.auth.user.id}]"
	}
	respond 404
}

# Plain HTTP; 127.0.0.1 is a trusted proxy here.
http://:9081 {
	oauth2_token {
		auth_check {{.Upstream}}/check
	}
	oauth2_bearer
	respond "ok"
}

# Plain HTTP with no trusted proxy.
http://:9082 {
	oauth2_token {
		auth_check {{.Upstream}}/check
	}
	oauth2_bearer
	respond "ok"
}
`

func (c testConfig) render() string {
	if c.AccessLifetime == "" {
		c.AccessLifetime = "1h"
	}
	if c.RefreshLifetime == "" {
		c.RefreshLifetime = "720h"
	}
	if c.GracePeriod == "" {
		c.GracePeriod = "1ns"
	}
	if c.LogLevel == "" {
		c.LogLevel = "INFO"
	}
	if c.Realm != "" {
		c.Realm = "{\n\t\t\trealm " + c.Realm + "\n\t\t}"
	}
	c.Storage = filepath.Join(testDir, "caddy-storage")
	if !c.LogToStderr {
		c.LogFile = logFile()
	}
	c.Upstream, c.Backend, c.Refused = upstream.URL, backend.URL, refusedURL
	var clients strings.Builder
	for _, tc := range testClients {
		fmt.Fprintf(&clients, "\t\tclient %q %s", tc.id, clientHashes()[tc.id])
		if tc.options != "" {
			fmt.Fprintf(&clients, " {\n\t\t\t%s\n\t\t}", tc.options)
		}
		clients.WriteString("\n")
	}
	c.Clients = clients.String()
	var b bytes.Buffer
	tmpl := template.Must(template.New("cfg").Parse(strings.Replace(configTemplate, "{{.Salt}}", testSalt, 1)))
	if err := tmpl.Execute(&b, c); err != nil {
		panic(err)
	}
	return b.String()
}

// env is a running Caddy with a config of the tests.
type env struct {
	t      *testing.T
	client *http.Client
	db     string
}

const baseURL = "https://localhost:9443"

// startCaddy loads cfg into the in-process Caddy (a config reload if one
// runs) with a new bbolt file unless cfg names one, and waits for TLS.
func startCaddy(t *testing.T, cfg testConfig) *env {
	t.Helper()
	if cfg.DB == "" {
		cfg.DB = filepath.Join(t.TempDir(), "oauth2.db")
	}
	logStart := logSize()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Caddy's log during the test:\n%s", logSince(logStart))
		}
	})
	tester := caddytest.NewTester(t)
	tester.InitServer(cfg.render(), "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	e := &env{t: t, db: cfg.DB, client: tlsClient(t)}
	return e
}

// Caddy logs to a file, so that a passing run is quiet and a failing test
// can show what Caddy said meanwhile.
func logFile() string { return filepath.Join(testDir, "caddy.log") }

func logSize() int64 {
	fi, err := os.Stat(logFile())
	if err != nil {
		return 0
	}
	return fi.Size()
}

func logSince(offset int64) string {
	b, err := os.ReadFile(logFile())
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

func x509Pool(pem []byte) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

// assertLoadError loads a config that must fail and checks the one-line
// message the admin API gives.
func assertLoadError(t *testing.T, cfg, want string) {
	t.Helper()
	// A failed load replaces Caddy's admin server twice (for the new
	// config, then back), and now and then that resets the connection of
	// the request itself; nothing was loaded, so ask again.
	var resp *http.Response
	var err error
	for try := 0; try < 3; try++ {
		if resp, err = http.Post("http://localhost:2999/load", "text/caddyfile", strings.NewReader(cfg)); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("the config loaded; want an error with %q", want)
	}
	t.Log(body.Error)
	if !strings.Contains(body.Error, want) || strings.Contains(body.Error, "\n") {
		t.Fatalf("error %q\nwant one line with %q", body.Error, want)
	}
}

// tlsClient trusts Caddy's local CA, and waits until the certificate for
// localhost, which Caddy issues in the background, is served.
func tlsClient(t *testing.T) *http.Client {
	t.Helper()
	rootFile := filepath.Join(testDir, "caddy-storage", "pki", "authorities", "local", "root.crt")
	deadline := time.Now().Add(20 * time.Second)
	for {
		pem, err := os.ReadFile(rootFile)
		if err == nil {
			pool := x509Pool(pem)
			c := &http.Client{
				Timeout: 20 * time.Second,
				Transport: &http.Transport{
					TLSClientConfig:     &tls.Config{RootCAs: pool},
					MaxIdleConnsPerHost: 100,
					ForceAttemptHTTP2:   true, // as curl and browsers do
				},
			}
			resp, err := c.Get(baseURL + "/")
			if err == nil {
				resp.Body.Close()
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS on %s after 20s: %v", baseURL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// app returns the running oauth2 app.
func (e *env) app() *App {
	a, err := caddy.ActiveContext().App("oauth2")
	if err != nil {
		e.t.Fatal(err)
	}
	return a.(*App)
}

// basic is an Authorization header value as RFC 6749 §2.3.1 wants it.
func basic(id, secret string) string {
	return wire.EncodeBasic(id, secret)
}

func clientSecret(id string) string {
	for _, c := range testClients {
		if c.id == id {
			return c.secret
		}
	}
	panic("no test client " + id)
}

// reply is a response with its body read and, if JSON, decoded.
type reply struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

func (r reply) str(field string) string { s, _ := r.json[field].(string); return s }

// do sends a request built by the caller.
func (e *env) do(req *http.Request) reply {
	e.t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(body)}
	_ = json.Unmarshal(body, &r.json)
	return r
}

// post sends a form to path with the given Authorization header.
func (e *env) post(path, authorization string, form url.Values) reply {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, baseURL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return e.do(req)
}

// token asks the token endpoint for a token as client id.
func (e *env) token(id string, form url.Values) reply {
	e.t.Helper()
	return e.post(DefaultTokenPath, basic(id, clientSecret(id)), form)
}

// login is a successful password grant for alice through client id.
func (e *env) login(id string) reply {
	e.t.Helper()
	r := e.token(id, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}})
	if r.status != http.StatusOK {
		e.t.Fatalf("login: %d %s", r.status, r.body)
	}
	return r
}

// refresh is a refresh grant of client id.
func (e *env) refresh(id, refreshToken string) reply {
	e.t.Helper()
	return e.token(id, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// get sends a GET to path with a bearer token, if any.
func (e *env) get(path, accessToken string) reply {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, baseURL+path, nil)
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	return e.do(req)
}

// countTokens reads how many token records the store holds.
func (e *env) countTokens() int {
	e.t.Helper()
	b, ok := e.app().store.(*store.BoltModule)
	if !ok {
		e.t.Fatalf("store is %T", e.app().store)
	}
	n, err := b.CountTokens()
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// Building the caddy binary once per test run, for the tests that use it
// as a user would.
var caddyBinary = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(testDir, "bin", "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
	}
	return bin, nil
})

// runCaddy runs the built binary with args and stdin, returning its
// output and exit error.
func runCaddy(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runCaddyEnv(t, nil, stdin, args...)
}

// runCaddyEnv is runCaddy with extra environment variables.
func runCaddyEnv(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin, err := caddyBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// binaryCaddy is the built binary running a config, as a user runs it,
// with its own home (data, config and CA) in a temp folder.
type binaryCaddy struct {
	t      *testing.T
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	home   string
	env    []string
	client *http.Client // trusts this Caddy's local CA
	logs   chan string
}

// runBinary starts `caddy run --config configFile` and waits until url
// answers over TLS.
func runBinary(t *testing.T, configFile, url string) *binaryCaddy {
	t.Helper()
	home := t.TempDir()
	b := &binaryCaddy{t: t, home: home, logs: make(chan string, 2000),
		env: []string{"XDG_DATA_HOME=" + home + "/data", "XDG_CONFIG_HOME=" + home + "/config", "HOME=" + home}}
	b.start(configFile)
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			for len(b.logs) > 0 {
				t.Log(<-b.logs)
			}
		}
	})
	b.waitTLS(url)
	return b
}

// restart starts the binary again on configFile in the same home, after
// it was stopped or killed.
func (b *binaryCaddy) restart(configFile, url string) {
	b.t.Helper()
	b.start(configFile)
	b.waitTLS(url)
}

func (b *binaryCaddy) start(configFile string) {
	bin, err := caddyBinary()
	if err != nil {
		b.t.Fatal(err)
	}
	b.cmd = exec.Command(bin, "run", "--config", configFile)
	b.cmd.Env = append(os.Environ(), b.env...)
	stderr, _ := b.cmd.StderrPipe()
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	cmd, exited := b.cmd, make(chan struct{})
	b.exited = exited
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			select {
			case b.logs <- s.Text():
			default:
			}
		}
		_ = cmd.Wait() // after the pipe is drained, as Wait wants
		close(exited)
	}()
}

// waitTLS trusts the CA of this Caddy once it exists and waits for url.
func (b *binaryCaddy) waitTLS(url string) {
	rootFile := filepath.Join(b.home, "data", "caddy", "pki", "authorities", "local", "root.crt")
	for deadline := time.Now().Add(30 * time.Second); ; {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s did not answer over TLS within 30s", url)
		}
		select {
		case <-b.exited:
			b.t.Fatal("caddy exited before serving TLS")
		case <-time.After(100 * time.Millisecond):
		}
		pem, err := os.ReadFile(rootFile)
		if err != nil {
			continue
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509Pool(pem)}}}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			b.client = c
			return
		}
	}
}

// stop kills the process (SIGKILL) and waits for it to exit.
func (b *binaryCaddy) stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.exited
}

// oauth2 runs `caddy oauth2 <args>` in this Caddy's environment.
func (b *binaryCaddy) oauth2(stdin string, args ...string) (stdout, stderr string, err error) {
	b.t.Helper()
	return runCaddyEnv(b.t, b.env, stdin, append([]string{"oauth2"}, args...)...)
}

// plainClient is for the plain-HTTP ports. It keeps no connections: each
// test reloads the config, and a POST on a keep-alive connection that the
// old server is closing fails rather than being retried (HTTP/1.1).
var plainClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
