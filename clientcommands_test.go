package oauth2provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-plugins/oauth2provider/store"
)

// The client commands against the built binary, as a user runs them. The
// binary's Caddy uses its own ports: admin 2998, HTTPS 9543.
const cliBase = "https://localhost:9543"

func cliConfigFile(t *testing.T, salt bool) (file, db string) {
	t.Helper()
	dir := t.TempDir()
	db = filepath.Join(dir, "oauth2.db")
	saltLine := "salt " + testSalt
	if !salt {
		saltLine = ""
	}
	cfg := `{
	admin localhost:2998
	http_port 9180
	https_port 9543
	local_certs
	skip_install_trust
	oauth2 {
		storage bbolt ` + db + `
		` + saltLine + `
		client static-app ` + clientHashes()["app"] + `
	}
}
localhost:9543 {
	oauth2_token {
		auth_check ` + upstream.URL + `/check
	}
	oauth2_bearer
	respond "hello {http.auth.user.id}"
}
`
	file = filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, db
}

// cli runs `caddy oauth2 <args> --config file` and fails the test if it
// fails.
func cli(t *testing.T, b *binaryCaddy, file string, args ...string) string {
	t.Helper()
	out, stderr, err := runCaddyEnv(t, b.env, "", append(append([]string{"oauth2"}, args...), "--config", file)...)
	if err != nil {
		t.Fatalf("caddy oauth2 %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func cliFails(t *testing.T, b *binaryCaddy, file, want string, args ...string) {
	t.Helper()
	_, stderr, err := runCaddyEnv(t, b.env, "", append(append([]string{"oauth2"}, args...), "--config", file)...)
	if err == nil || !strings.Contains(stderr, want) {
		t.Fatalf("caddy oauth2 %s: err %v, want a failure with %q in\n%s", strings.Join(args, " "), err, want, stderr)
	}
}

func createClient(t *testing.T, b *binaryCaddy, file string, args ...string) NewClient {
	t.Helper()
	var nc NewClient
	out := cli(t, b, file, append([]string{"create-client", "--json"}, args...)...)
	public := slices.Contains(args, "--public")
	if err := json.Unmarshal([]byte(out), &nc); err != nil || len(nc.ID) != 32 || strings.Trim(nc.ID, "0123456789abcdef") != "" || (len(nc.Secret) < 43) != public {
		t.Fatalf("create-client printed %q: %v", out, err)
	}
	return nc
}

func listClients(t *testing.T, b *binaryCaddy, file string) (string, []ClientInfo) {
	t.Helper()
	var list []ClientInfo
	if err := json.Unmarshal([]byte(cli(t, b, file, "list-clients", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	return cli(t, b, file, "list-clients"), list
}

func (b *binaryCaddy) password(id, secret string) reply {
	b.t.Helper()
	e := &env{t: b.t, client: b.client}
	req, _ := http.NewRequest(http.MethodPost, cliBase+DefaultTokenPath, strings.NewReader(aliceForm.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basic(id, secret))
	return e.do(req)
}

func (b *binaryCaddy) get(token string) reply {
	b.t.Helper()
	e := &env{t: b.t, client: b.client}
	req, _ := http.NewRequest(http.MethodGet, cliBase+"/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return e.do(req)
}

func TestClientCommandsWorkOnARunningCaddy(t *testing.T) {
	file, _ := cliConfigFile(t, true)
	b := runBinary(t, file, cliBase+"/")

	nc := createClient(t, b, file, "--scopes", "read,write", "--default-scope", "read")
	created := time.Now()
	tok := b.password(nc.ID, nc.Secret)
	if tok.status != http.StatusOK || tok.str("scope") != "read" {
		t.Fatalf("token for the new client: %d %s", tok.status, tok.body)
	}
	t.Logf("token issued %v after create-client returned", time.Since(created))
	if r := b.get(tok.str("access_token")); r.status != http.StatusOK || r.body != "hello 1234" {
		t.Fatalf("protected call: %d %q", r.status, r.body)
	}

	text, list := listClients(t, b, file)
	if !strings.Contains(text, nc.ID) || !strings.Contains(text, "static-app") || strings.Contains(text, nc.Secret) {
		t.Fatalf("list-clients:\n%s", text)
	}
	if len(list) != 2 || list[1].ID != nc.ID || list[1].CreatedAt == nil || list[1].Scopes[1] != "write" || !list[0].Static {
		t.Fatalf("list-clients --json: %+v", list)
	}

	if out := cli(t, b, file, "revoke-client", nc.ID); !strings.Contains(out, nc.ID) {
		t.Fatalf("revoke-client printed %q", out)
	}
	assertChallenge(t, b.get(tok.str("access_token")), http.StatusUnauthorized,
		`Bearer realm="localhost", error="invalid_token", error_description="the access token is invalid, expired or revoked"`)
	assertOAuthError(t, b.password(nc.ID, nc.Secret), http.StatusUnauthorized, "invalid_client")
	// Its refresh token fails at once too (the client fails first).
	e := &env{t: t, client: b.client}
	req, _ := http.NewRequest(http.MethodPost, cliBase+DefaultTokenPath, strings.NewReader("grant_type=refresh_token&refresh_token="+tok.str("refresh_token")))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basic(nc.ID, nc.Secret))
	assertOAuthError(t, e.do(req), http.StatusUnauthorized, "invalid_client")

	// A public client for the authorization code flow: no secret, and its
	// login page is served at once.
	pub := createClient(t, b, file, "--public", "--redirect-uri", "http://127.0.0.1/cb,com.example.app:/cb", "--name", "My App", "--skip-consent")
	if pub.Secret != "" {
		t.Fatalf("a public client got a secret")
	}
	_, list = listClients(t, b, file)
	if last := list[len(list)-1]; !last.Public || last.Name != "My App" || !last.SkipConsent || len(last.RedirectURIs) != 2 ||
		strings.Join(last.GrantTypes, " ") != "authorization_code refresh_token" {
		t.Fatalf("the public client: %+v", last)
	}
	page := e.do(mustRequest(http.MethodGet, cliBase+"/oauth2/authorize?response_type=code&client_id="+pub.ID+
		"&redirect_uri=http%3A%2F%2F127.0.0.1%3A4000%2Fcb&code_challenge="+testChallenge+"&code_challenge_method=S256"))
	if page.status != http.StatusOK || !strings.Contains(page.body, "Sign in to My App") {
		t.Fatalf("the login page of the new client: %d %s", page.status, page.body)
	}
	cliFails(t, b, file, "may not use the password grant", "create-client", "--public", "--grant-types", "password", "--redirect-uri", "https://x.example/cb")

	cliFails(t, b, file, "unknown client id", "revoke-client", nc.ID)
	cliFails(t, b, file, "unknown client id", "revoke-client", "a/b")
	cliFails(t, b, file, "unknown client id", "revoke-client", "")
	cliFails(t, b, file, "defined in the config", "revoke-client", "static-app")
	cliFails(t, b, file, `is not supported (supported: password, refresh_token, client_credentials, authorization_code)`, "create-client", "--grant-types", "implicit")
	cliFails(t, b, file, "a Caddy is running", "init-db")
	// A wrong admin address with the store locked by the running Caddy.
	cliFails(t, b, file, "is locked by another process, and no Caddy admin API answers at localhost:1", "list-clients", "--address", "localhost:1")
}

func TestClientCommandsWorkWithCaddyStopped(t *testing.T) {
	file, _ := cliConfigFile(t, true)
	b := &binaryCaddy{t: t, home: t.TempDir()}
	b.env = []string{"XDG_DATA_HOME=" + b.home + "/data", "XDG_CONFIG_HOME=" + b.home + "/config", "HOME=" + b.home}

	kept := createClient(t, b, file)
	gone := createClient(t, b, file, "--grant-types", "password")
	text, list := listClients(t, b, file)
	if len(list) != 3 || !strings.Contains(text, kept.ID) || strings.Contains(text, kept.Secret) {
		t.Fatalf("list-clients:\n%s\n%+v", text, list)
	}
	cli(t, b, file, "revoke-client", gone.ID)
	cliFails(t, b, file, "unknown client id", "revoke-client", gone.ID)

	// Now start Caddy on the same store.
	running := runBinary(t, file, cliBase+"/")
	if r := running.password(kept.ID, kept.Secret); r.status != http.StatusOK {
		t.Fatalf("client created while Caddy was stopped: %d %s", r.status, r.body)
	}
	assertOAuthError(t, running.password(gone.ID, gone.Secret), http.StatusUnauthorized, "invalid_client")
	// And the same listing through the admin API.
	if text2, _ := listClients(t, running, file); !strings.Contains(text2, kept.ID) || strings.Contains(text2, gone.ID) {
		t.Fatalf("list through the admin API:\n%s", text2)
	}
}

func TestListIsTheSameRunningOrStopped(t *testing.T) {
	file, _ := cliConfigFile(t, true)
	b := runBinary(t, file, cliBase+"/")
	createClient(t, b, file)
	running, _ := listClients(t, b, file)
	b.stop()
	stopped, _ := listClients(t, b, file)
	if running != stopped {
		t.Fatalf("running:\n%s\nstopped:\n%s", running, stopped)
	}
}

func TestInitDBDrop(t *testing.T) {
	file, db := cliConfigFile(t, true)
	b := &binaryCaddy{t: t, home: t.TempDir()}
	if out := cli(t, b, file, "init-db"); !strings.Contains(out, db) {
		t.Fatalf("init-db printed %q", out)
	}
	nc := createClient(t, b, file)
	s, err := store.OpenBolt(db, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Issue(context.Background(), store.Grant{ClientID: nc.ID, AccessLifetime: time.Hour, RefreshLifetime: time.Hour}, time.Now()); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Without --yes and without a terminal, it refuses and changes nothing.
	cliFails(t, b, file, "stdin is not a terminal; add --yes", "init-db", "--drop")
	if _, list := listClients(t, b, file); len(list) != 2 || list[1].ID != nc.ID {
		t.Fatalf("clients after a refused drop: %+v", list)
	}

	cli(t, b, file, "init-db", "--drop", "--yes")
	if _, list := listClients(t, b, file); len(list) != 1 || !list[0].Static {
		t.Fatalf("clients after the drop: %+v", list)
	}
	s, err = store.OpenBolt(db, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, _ := s.CountTokens(); n != 0 {
		t.Fatalf("%d tokens after the drop", n)
	}
}

func TestClientCommandErrors(t *testing.T) {
	b := &binaryCaddy{t: t, home: t.TempDir()}
	noSalt, noSaltDB := cliConfigFile(t, false)
	cliFails(t, b, noSalt, "the config's salt is needed to hash the secret", "create-client")
	if _, err := os.Stat(noSaltDB); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed create-client made the store: %v", err)
	}
	// Listing a store that is not there yet shows the static clients and
	// creates nothing; revoking finds nothing.
	if out := cli(t, b, noSalt, "list-clients"); !strings.Contains(out, "static-app") {
		t.Fatalf("list-clients without a store: %q", out)
	}
	cliFails(t, b, noSalt, "unknown client id", "revoke-client", "nobody")
	if _, err := os.Stat(noSaltDB); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("list or revoke made the store: %v", err)
	}
	// No config at all, and no Caddy answering.
	if _, stderr, err := runCaddyEnv(t, b.env, "", "oauth2", "list-clients", "--address", "localhost:1"); err == nil || !strings.Contains(stderr, "no config names the store") {
		t.Fatalf("list-clients with no config: %v %s", err, stderr)
	}

	// The store locked by another process, and no admin endpoint.
	file, db := cliConfigFile(t, true)
	s, err := store.OpenBolt(db, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cliFails(t, b, file, "is locked by another process, and no Caddy admin API answers at localhost:2998", "list-clients")
	s.Close()

	broken := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(broken, []byte("localhost {\n\toauth2_token {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cliFails(t, b, broken, "adapting config using caddyfile", "list-clients")

	// A Caddy that answers on the admin address but has no oauth2 app.
	other := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(other, []byte("{\n\tadmin localhost:2998\n\tlocal_certs\n\tskip_install_trust\n}\nlocalhost:9543 {\n\trespond ok\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runBinary(t, other, cliBase+"/")
	cliFails(t, b, file, "does not serve the oauth2 admin API: the running config has no oauth2 app", "list-clients")
}

// hash-secret prompts twice on a terminal, like caddy hash-password.
func TestHashSecretPromptsOnATerminal(t *testing.T) {
	bin, err := caddyBinary()
	if err != nil {
		t.Fatal(err)
	}
	file, _ := cliConfigFile(t, true)
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("the test needs script(1) from util-linux to give the command a terminal")
	}
	// script runs the command on a new pseudo-terminal fed from our
	// stdin; -e passes on its exit status. Each entry is typed only once
	// its prompt is shown, as a person would, so the terminal's echo is
	// already off.
	run := func(first, second string) (string, error) {
		cmd := exec.Command(script, "-qec", bin+" oauth2 hash-secret --config "+file, "/dev/null")
		stdin, _ := cmd.StdinPipe()
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for _, step := range [][2]string{{"Enter client secret: ", first}, {"Confirm client secret: ", second}} {
			for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), step[0]); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no prompt %q in\n%s", step[0], out.String())
				}
			}
			time.Sleep(50 * time.Millisecond)
			stdin.Write([]byte(step[1] + "\n"))
		}
		err := cmd.Wait()
		return out.String(), err
	}
	out, err := run("pty-secret", "pty-secret")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "Enter client secret: ") || !strings.Contains(out, "Confirm client secret: ") || strings.Contains(out, "pty-secret") {
		t.Fatalf("the prompts, or an echo of the secret:\n%s", out)
	}
	var hash string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "$scrypt$") {
			hash = line
		}
	}
	salt, _ := decodeSalt(testSalt)
	h, err := parseSecretHash(hash)
	if err != nil || !h.verify("pty-secret", salt) {
		t.Fatalf("hash %q from\n%s: %v", hash, out, err)
	}
	if out, err := run("pty-secret", "other"); err == nil || !strings.Contains(out, "do not match") {
		t.Fatalf("mismatched entries: %v\n%s", err, out)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
