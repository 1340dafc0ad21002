package oauth2provider

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestLoginLimiterThrottlesAUserAfterMaxFailures(t *testing.T) {
	l := newLoginLimiter(LoginLimit{Max: 3, Window: caddy.Duration(30 * time.Second)}, LoginLimit{Max: 100, Window: caddy.Duration(time.Minute)})
	now := time.Now()
	for i := range 3 {
		if w := l.retryAfter("Alice", "10.0.0.1", now); w != 0 {
			t.Fatalf("throttled after %d failures", i)
		}
		l.failed("Alice", "10.0.0.1", now)
	}
	w := l.retryAfter("alice", "10.0.0.2", now) // case folded, another address
	if w < 9*time.Second || w > 11*time.Second {
		t.Fatalf("wait %v, want about 30s/3", w)
	}
	if w := l.retryAfter("bob", "10.0.0.1", now); w != 0 {
		t.Fatalf("another user from the same address waits %v", w)
	}
	if w := l.retryAfter("alice", "10.0.0.2", now.Add(10*time.Second)); w != 0 {
		t.Fatalf("one try is earned back after 10s; still waits %v", w)
	}
	l.succeeded("ALICE")
	if w := l.retryAfter("alice", "10.0.0.2", now); w != 0 {
		t.Fatalf("a success did not reset the user: %v", w)
	}
}

func TestLoginLimiterThrottlesAnAddressAcrossUsernames(t *testing.T) {
	l := newLoginLimiter(LoginLimit{Max: 3, Window: caddy.Duration(time.Minute)}, LoginLimit{Max: 5, Window: caddy.Duration(time.Minute)})
	now := time.Now()
	for i := range 5 {
		l.failed(fmt.Sprintf("user%d", i), "10.0.0.9", now)
	}
	if w := l.retryAfter("somebody-new", "10.0.0.9", now); w == 0 {
		t.Fatal("the address is not throttled")
	}
	if w := l.retryAfter("somebody-new", "10.0.0.10", now); w != 0 {
		t.Fatalf("another address waits %v", w)
	}
}

func TestLoginLimiterOff(t *testing.T) {
	l := newLoginLimiter(LoginLimit{Max: 0}, LoginLimit{Max: 0})
	for range 1000 {
		l.failed("alice", "10.0.0.1", time.Now())
	}
	if w := l.retryAfter("alice", "10.0.0.1", time.Now()); w != 0 || l.perUser.size() != 0 {
		t.Fatalf("wait %v, %d keys", w, l.perUser.size())
	}
}

func TestLoginLimiterMemoryIsBoundedUnderAFlood(t *testing.T) {
	l := newLoginLimiter(LoginLimit{Max: 10, Window: caddy.Duration(15 * time.Minute)}, LoginLimit{Max: 100, Window: caddy.Duration(15 * time.Minute)})
	now := time.Now()
	throttled := 0
	for i := range 100000 {
		user, ip := fmt.Sprintf("random-%d", i), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		if l.retryAfter(user, ip, now) > 0 {
			throttled++
			continue
		}
		l.failed(user, ip, now)
	}
	if n := l.perUser.size(); n > maxTrackedKeys {
		t.Fatalf("%d usernames tracked, bound %d", n, maxTrackedKeys)
	}
	if n := l.perIP.size(); n > maxTrackedKeys {
		t.Fatalf("%d addresses tracked, bound %d", n, maxTrackedKeys)
	}
	t.Logf("tracked %d usernames and %d addresses after 100,000 distinct failures", l.perUser.size(), l.perIP.size())

	// From one address, the same flood stops after 100 tries.
	for i := range 1000 {
		user := fmt.Sprintf("random-%d", i)
		if l.retryAfter(user, "192.0.2.1", now) > 0 {
			throttled++
			continue
		}
		l.failed(user, "192.0.2.1", now)
	}
	if w := l.retryAfter("anyone", "192.0.2.1", now); w == 0 {
		t.Fatal("one address flooding random usernames is not throttled")
	}
}

// Over the wire: the token endpoint answers 429 without asking the user
// check. Client addresses are set with X-Forwarded-For through the
// trusted proxy port.
func TestBruteForceIsThrottledWithoutAskingTheUserCheck(t *testing.T) {
	e := startCaddy(t, testConfig{Extra: "max_failed_logins 5 2s\n\t\tmax_failed_logins_per_ip 8 2s"})
	login := func(user, pass, ip string) reply {
		return e.plainHTTP(t, 9081, DefaultTokenPath, basic("other", "other-secret"),
			url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}},
			map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-For": ip})
	}
	before := upstreamCalls.Load()
	statuses := map[int]int{}
	var last reply
	for range 20 {
		last = login("alice", "guess", "10.0.0.1")
		statuses[last.status]++
	}
	calls := upstreamCalls.Load() - before
	if statuses[http.StatusBadRequest] != 5 || statuses[http.StatusTooManyRequests] != 15 || calls != 5 {
		t.Fatalf("statuses %v, %d upstream calls for 20 requests", statuses, calls)
	}
	if last.header.Get("Retry-After") == "" || last.str("error") != "temporarily_unavailable" {
		t.Fatalf("429 answer: %v %s", last.header, last.body)
	}
	assertNoStore(t, last)
	if r := login("alice", "wonderland", "10.0.0.1"); r.status != http.StatusTooManyRequests {
		t.Fatalf("the right password while throttled: %d", r.status)
	}
	if r := login("bob", "builder", "10.0.0.2"); r.status != http.StatusOK {
		t.Fatalf("another user from another address: %d %s", r.status, r.body)
	}

	// One address trying many usernames is stopped by its own limit.
	for i := range 8 {
		login(fmt.Sprintf("user%d", i), "guess", "10.0.0.9")
	}
	if r := login("bob", "builder", "10.0.0.9"); r.status != http.StatusTooManyRequests {
		t.Fatalf("address over its limit: %d", r.status)
	}

	time.Sleep(2100 * time.Millisecond) // the window
	if r := login("alice", "wonderland", "10.0.0.1"); r.status != http.StatusOK {
		t.Fatalf("after the window: %d %s", r.status, r.body)
	}
	if !strings.Contains(logSince(0), `"msg":"login throttled","username":"alice"`) {
		t.Error("no log line for the throttled login")
	}
}
