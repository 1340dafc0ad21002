package oauth2provider

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// The login in a real browser: headless Chromium (Debian's package),
// driven by playwright-core from npm. It proves what only a browser can:
// the page renders, the __Host- cookie is kept, and the redirect after
// the form's POST is not blocked. .ci/run installs both and sets
// OAUTH2_BROWSER_TEST=required, so the test cannot skip in CI; elsewhere
// it skips when they are missing (see the README's Development section).
func TestBrowserLogin(t *testing.T) {
	chromium, errC := exec.LookPath("chromium")
	node, errN := exec.LookPath("node")
	_, errP := os.Stat("browsertest/node_modules/playwright-core")
	if errC != nil || errN != nil || errP != nil {
		msg := "needs chromium and node on PATH and 'npm ci' in browsertest/"
		if os.Getenv("OAUTH2_BROWSER_TEST") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	e := startCaddy(t, testConfig{})
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.client)
	// The app: a server on a loopback port, as a native app listens.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("the app got its code"))
	}))
	defer app.Close()
	conf := authCodeConfig("spa", "", app.URL+"/callback", oauth2.AuthStyleInParams)
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("browser-state", oauth2.S256ChallengeOption(verifier))

	shot := filepath.Join(t.TempDir(), "login.png") // not in the repository
	if dir := os.Getenv("OAUTH2_SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "login.png")
	}
	cmd := exec.Command(node, "login.mjs", authURL, app.URL+"/callback", "alice", "wonderland", shot)
	cmd.Dir = "browsertest"
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the browser: %v\n%s", err, out)
	}
	var result struct{ Callback, Title, Body string }
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &result); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
	if !strings.Contains(result.Title, "Sign in to spa") || result.Body != "the app got its code" {
		t.Errorf("page title %q, the app's page %q", result.Title, result.Body)
	}
	cb, err := url.Parse(result.Callback)
	if err != nil || cb.Query().Get("state") != "browser-state" || cb.Query().Get("iss") != baseURL {
		t.Fatalf("callback %q", result.Callback)
	}
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if r := e.get("/api/x", tok.AccessToken); r.status != 200 || r.str("user_id") != "1234" {
		t.Fatalf("protected call: %d %s", r.status, r.body)
	}
}
