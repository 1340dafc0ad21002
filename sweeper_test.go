package oauth2provider

import (
	"net/http"
	"testing"
	"time"
)

func TestSweeperRemovesExpiredTokensAndKeepsLiveOnes(t *testing.T) {
	e := startCaddy(t, testConfig{AccessLifetime: "1s", RefreshLifetime: "2s", Extra: "sweep_interval 100ms"})
	first := e.login("other")
	// Rotation deletes the old access token and keeps the used refresh
	// token until it expires: three records.
	e.refresh("other", first.str("refresh_token"))
	if n := e.countTokens(); n != 3 {
		t.Fatalf("%d tokens before expiry, want 3", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.countTokens() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d expired tokens left after 10s", e.countTokens())
		}
		time.Sleep(100 * time.Millisecond)
	}
	live := e.login("other")
	time.Sleep(300 * time.Millisecond) // a few sweeps
	if n := e.countTokens(); n != 2 {
		t.Fatalf("%d tokens after sweeps, want the 2 live ones", n)
	}
	if r := e.get("/api/x", live.str("access_token")); r.status != http.StatusOK {
		t.Fatalf("live token after sweeps: %d", r.status)
	}
}
