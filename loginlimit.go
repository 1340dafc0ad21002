package oauth2provider

import (
	"math"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/caddyserver/caddy/v2"
)

// Brute-force protection of the password grant (RFC 6749 §4.3.2: the
// server "MUST protect the endpoint against brute force attacks"):
// failed logins are counted per username and per client IP, and over
// the limit the token endpoint answers 429 without asking the user check.

// Defaults of the limits.
const (
	DefaultMaxFailedLogins      = 10 // per username
	DefaultMaxFailedLoginsPerIP = 100
	DefaultFailedLoginWindow    = 15 * time.Minute

	// maxTrackedKeys bounds each table of counters, so a flood of
	// random usernames or addresses costs a fixed amount of memory.
	maxTrackedKeys = 10000
)

// LoginLimit is one limit on failed logins.
type LoginLimit struct {
	// How many failures are allowed in a row; after that, one more try
	// is earned every window/max. 0 turns the limit off.
	Max int `json:"max"`

	// The time in which max tries are earned back. Default: 15m.
	Window caddy.Duration `json:"window,omitempty"`
}

// loginLimiter holds the failure counters of both limits.
type loginLimiter struct {
	perUser, perIP *failureTable
}

func newLoginLimiter(perUser, perIP LoginLimit) *loginLimiter {
	return &loginLimiter{perUser: newFailureTable(perUser, maxTrackedKeys), perIP: newFailureTable(perIP, maxTrackedKeys)}
}

// userKey folds case: an accounts service that ignores case must not let
// "Alice" and "alice" count separately.
func userKey(username string) string { return strings.ToLower(username) }

// retryAfter reports how long the user or the address must wait, or 0
// if neither is over its limit.
func (l *loginLimiter) retryAfter(username, ip string, now time.Time) time.Duration {
	return max(l.perUser.wait(userKey(username), now), l.perIP.wait(ip, now))
}

// failed counts a failed login.
func (l *loginLimiter) failed(username, ip string, now time.Time) {
	l.perUser.add(userKey(username), now)
	l.perIP.add(ip, now)
}

// succeeded forgets the user's failures (not the address's).
func (l *loginLimiter) succeeded(username string) { l.perUser.forget(userKey(username)) }

// failureTable is a bounded map of token buckets: each key may fail
// limit.Max times at once, and earns one more try every Window/Max.
type failureTable struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	maxKeys int
	keys    map[string]*rate.Limiter
}

func newFailureTable(l LoginLimit, maxKeys int) *failureTable {
	t := &failureTable{burst: l.Max, maxKeys: maxKeys, keys: make(map[string]*rate.Limiter)}
	if l.Max > 0 {
		t.limit = rate.Every(time.Duration(l.Window) / time.Duration(l.Max))
	}
	return t
}

func (t *failureTable) off() bool { return t.burst <= 0 }

// wait is how long key must wait before its next try.
func (t *failureTable) wait(key string, now time.Time) time.Duration {
	if t.off() {
		return 0
	}
	t.mu.Lock()
	lim, ok := t.keys[key]
	t.mu.Unlock()
	if !ok {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) / float64(t.limit) * float64(time.Second)))
}

// add takes one try from key.
func (t *failureTable) add(key string, now time.Time) {
	if t.off() {
		return
	}
	t.mu.Lock()
	lim, ok := t.keys[key]
	if !ok {
		if len(t.keys) >= t.maxKeys {
			t.makeRoom(now)
		}
		lim = rate.NewLimiter(t.limit, t.burst)
		t.keys[key] = lim
	}
	t.mu.Unlock()
	lim.AllowN(now, 1)
}

func (t *failureTable) forget(key string) {
	t.mu.Lock()
	delete(t.keys, key)
	t.mu.Unlock()
}

// makeRoom drops the keys whose buckets have refilled (they hold no
// information), and if that is not enough, a tenth of the keys: under a
// flood the per-address limit still holds the flooder back. t.mu is held.
func (t *failureTable) makeRoom(now time.Time) {
	for k, lim := range t.keys {
		if lim.TokensAt(now) >= float64(t.burst) {
			delete(t.keys, k)
		}
	}
	for k := range t.keys { // map order is unspecified: an arbitrary tenth
		if len(t.keys) < t.maxKeys-t.maxKeys/10 {
			break
		}
		delete(t.keys, k)
	}
}

// size is the number of tracked keys.
func (t *failureTable) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}
