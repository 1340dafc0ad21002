package oauth2provider

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// fail is a login with wrong credentials; it reports the wait if the
// limiter refused to let it reach the user check.
func fail(l *loginLimiter, user, ip string, now time.Time) time.Duration {
	a, wait := l.begin(user, ip, now)
	if wait > 0 {
		return wait
	}
	a.failed(now)
	return 0
}

func TestLoginLimiterThrottlesAUserAfterMaxFailures(t *testing.T) {
	l := newLoginLimiter(LoginLimit{Max: 3, Window: caddy.Duration(30 * time.Second)}, LoginLimit{Max: 100, Window: caddy.Duration(time.Minute)})
	now := time.Now()
	for i := range 3 {
		if w := fail(l, "Alice", "10.0.0.1", now); w != 0 {
			t.Fatalf("throttled after %d failures", i)
		}
	}
	_, w := l.begin("alice", "10.0.0.2", now) // case folded, another address
	if w < 9*time.Second || w > 11*time.Second {
		t.Fatalf("wait %v, want about 30s/3", w)
	}
	if _, w := l.begin("bob", "10.0.0.1", now); w != 0 {
		t.Fatalf("another user from the same address waits %v", w)
	}
	a, w := l.begin("alice", "10.0.0.2", now.Add(10*time.Second))
	if w != 0 {
		t.Fatalf("one try is earned back after 10s; still waits %v", w)
	}
	a.succeeded(now.Add(10 * time.Second))
	for range 3 {
		if w := fail(l, "ALICE", "10.0.0.2", now.Add(10*time.Second)); w != 0 {
			t.Fatalf("a success did not reset the user: %v", w)
		}
	}
}

func TestLoginLimiterGivesBackTheTryOfAnUnavailableCheck(t *testing.T) {
	l := newLoginLimiter(LoginLimit{Max: 2, Window: caddy.Duration(time.Hour)}, LoginLimit{Max: 100, Window: caddy.Duration(time.Hour)})
	now := time.Now()
	for range 10 {
		a, w := l.begin("alice", "10.0.0.1", now)
		if w != 0 {
			t.Fatalf("throttled by checks that could not tell: %v", w)
		}
		a.abandon(now)
	}
}

func TestLoginLimiterHoldsBackParallelGuesses(t *testing.T) {
	l := newLoginLimiter(LoginLimit{Max: 10, Window: caddy.Duration(15 * time.Minute)}, LoginLimit{Max: 100, Window: caddy.Duration(15 * time.Minute)})
	now := time.Now()
	var wg sync.WaitGroup
	var through atomic.Int64
	start := make(chan struct{})
	for range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if a, w := l.begin("alice", "10.0.0.1", now); w == 0 {
				through.Add(1)
				time.Sleep(10 * time.Millisecond) // the user check
				a.failed(now)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := through.Load(); n != 10 {
		t.Fatalf("%d of 500 parallel guesses reached the user check, want 10", n)
	}
}

func TestLoginLimiterThrottlesAnAddressAcrossUsernames(t *testing.T) {
	l := newLoginLimiter(LoginLimit{Max: 3, Window: caddy.Duration(time.Minute)}, LoginLimit{Max: 5, Window: caddy.Duration(time.Minute)})
	now := time.Now()
	for i := range 5 {
		fail(l, fmt.Sprintf("user%d", i), "10.0.0.9", now)
	}
	if _, w := l.begin("somebody-new", "10.0.0.9", now); w == 0 {
		t.Fatal("the address is not throttled")
	}
	if _, w := l.begin("somebody-new", "10.0.0.10", now); w != 0 {
		t.Fatalf("another address waits %v", w)
	}
	// IPv6 counts by /64.
	for i := range 5 {
		fail(l, fmt.Sprintf("v6user%d", i), fmt.Sprintf("2001:db8:1:2::%x", i+1), now)
	}
	if _, w := l.begin("v6new", "2001:db8:1:2:ffff::1", now); w == 0 {
		t.Fatal("another address of the same /64 is not throttled")
	}
	if _, w := l.begin("v6new", "2001:db8:1:3::1", now); w != 0 {
		t.Fatalf("another /64 waits %v", w)
	}
}

func TestLoginLimiterOff(t *testing.T) {
	l := newLoginLimiter(LoginLimit{Max: 0}, LoginLimit{Max: 0})
	for range 1000 {
		if w := fail(l, "alice", "10.0.0.1", time.Now()); w != 0 {
			t.Fatalf("wait %v with the limits off", w)
		}
	}
	if l.perUser.size() != 0 || l.perIP.size() != 0 {
		t.Fatalf("%d and %d keys with the limits off", l.perUser.size(), l.perIP.size())
	}
}

func TestLoginLimiterMemoryIsBoundedUnderAFlood(t *testing.T) {
	l := newLoginLimiter(LoginLimit{Max: 10, Window: caddy.Duration(15 * time.Minute)}, LoginLimit{Max: 100, Window: caddy.Duration(15 * time.Minute)})
	now := time.Now()
	// A user being brute-forced is throttled...
	for range 10 {
		fail(l, "victim", "192.0.2.7", now)
	}
	// ...while 100,000 distinct long usernames fail from distinct addresses.
	pad := strings.Repeat("x", 1000)
	for i := range 100000 {
		fail(l, fmt.Sprintf("random-%d-%s", i, pad), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
	}
	if n := l.perUser.size(); n > maxTrackedKeys {
		t.Fatalf("%d usernames tracked, bound %d", n, maxTrackedKeys)
	}
	if n := l.perIP.size(); n > maxTrackedKeys {
		t.Fatalf("%d addresses tracked, bound %d", n, maxTrackedKeys)
	}
	for k := range l.perUser.keys {
		if len(k) != 32 {
			t.Fatalf("a username key of %d bytes", len(k))
		}
	}
	t.Logf("tracked %d usernames and %d addresses after 100,000 distinct failures", l.perUser.size(), l.perIP.size())
	if _, w := l.begin("victim", "198.51.100.1", now); w == 0 {
		t.Fatal("the flood freed the throttled user")
	}

	// From one address, a flood of usernames stops after 100 tries.
	for i := range 1000 {
		fail(l, fmt.Sprintf("random-%d", i), "192.0.2.1", now)
	}
	if _, w := l.begin("anyone", "192.0.2.1", now); w == 0 {
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

	// Parallel guesses at one account: only the tries left reach the
	// user check.
	before = upstreamCalls.Load()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			login("carol", "guess", "10.0.0.3")
		}()
	}
	wg.Wait()
	if calls := upstreamCalls.Load() - before; calls > 5 {
		t.Fatalf("%d of 50 parallel guesses reached the user check, limit 5", calls)
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
