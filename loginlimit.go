package oauth2provider

import (
	"crypto/sha256"
	"math"
	"net/netip"
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
// A try is taken before the user check runs, so parallel guesses cannot
// all get through while the first ones are being checked; a success or
// an unavailable check gives it back.

// Defaults of the limits.
const (
	DefaultMaxFailedLogins      = 10 // per username
	DefaultMaxFailedLoginsPerIP = 100
	DefaultFailedLoginWindow    = 15 * time.Minute

	// maxTrackedKeys bounds each table of counters; keys are fixed-size,
	// so a flood of random usernames or addresses costs a fixed amount
	// of memory.
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

// userKey is a digest of the case-folded username: an accounts service
// that ignores case must not let "Alice" and "alice" count separately,
// and a 64 KiB username must not take 64 KiB of the table.
func userKey(username string) string {
	d := sha256.Sum256([]byte(strings.ToLower(username)))
	return string(d[:])
}

// ipKey is the address, or for IPv6 its /64: one host usually has a
// whole /64, so counting single IPv6 addresses would count nothing.
func ipKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if addr.Is6() && !addr.Is4In6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.Unmap().String()
}

// attempt is a login in progress. It holds a try of the user, taken
// before the user check runs, so that parallel guesses at one account
// cannot all get through while the first are being checked. Wrong
// credentials keep it (and count against the address too); a success or
// an unavailable check gives it back.
type attempt struct {
	l        *loginLimiter
	username string
	ip       string
	user     *rate.Reservation
}

// begin takes a try of the user, or says how long the user or the
// address must wait. The address is only checked here, and charged on
// failure: a server that logs many users in from one address must not
// be limited by how many logins it has in flight.
func (l *loginLimiter) begin(username, ip string, now time.Time) (*attempt, time.Duration) {
	if wait := l.perIP.wait(ipKey(ip), now); wait > 0 {
		return nil, wait
	}
	user, wait := l.perUser.take(userKey(username), now)
	if wait > 0 {
		return nil, wait
	}
	return &attempt{l: l, username: username, ip: ip, user: user}, 0
}

// failed counts the failure against the address as well.
func (a *attempt) failed(now time.Time) { a.l.perIP.charge(ipKey(a.ip), now) }

// succeeded gives the try back and forgets the user's failures.
func (a *attempt) succeeded(now time.Time) {
	cancel(a.user, now)
	a.l.perUser.forget(userKey(a.username))
}

// abandon gives the try back: the check could not tell.
func (a *attempt) abandon(now time.Time) { cancel(a.user, now) }

// clientWait says how long an address must wait before its next client
// authentication; clientFailed charges it for a failed one. Failed client
// authentication counts like a failed login: each costs scrypt work.
func (l *loginLimiter) clientWait(ip string, now time.Time) time.Duration {
	return l.perIP.wait(ipKey(ip), now)
}

func (l *loginLimiter) clientFailed(ip string, now time.Time) { l.perIP.charge(ipKey(ip), now) }

func cancel(r *rate.Reservation, now time.Time) {
	if r != nil {
		r.CancelAt(now)
	}
}

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

// take reserves a try of key; with none left, it reserves nothing and
// says how long to wait. A nil reservation and no wait mean the key is
// not limited (the limit is off, or the table is full of throttled keys).
func (t *failureTable) take(key string, now time.Time) (*rate.Reservation, time.Duration) {
	lim := t.limiter(key, now, true)
	if lim == nil {
		return nil, 0
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, roundUp(d)
	}
	return r, 0
}

// wait says how long key must wait for its next try, taking nothing.
func (t *failureTable) wait(key string, now time.Time) time.Duration {
	lim := t.limiter(key, now, false)
	if lim == nil {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return roundUp(time.Duration((1 - tokens) / float64(t.limit) * float64(time.Second)))
}

// charge takes a try of key after the fact.
func (t *failureTable) charge(key string, now time.Time) {
	if lim := t.limiter(key, now, true); lim != nil {
		lim.AllowN(now, 1)
	}
}

// limiter returns key's bucket, making one if create and there is room.
func (t *failureTable) limiter(key string, now time.Time, create bool) *rate.Limiter {
	if t.burst <= 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	lim, ok := t.keys[key]
	if ok || !create {
		return lim
	}
	if len(t.keys) >= t.maxKeys {
		t.makeRoom(now)
	}
	if len(t.keys) >= t.maxKeys {
		return nil
	}
	lim = rate.NewLimiter(t.limit, t.burst)
	t.keys[key] = lim
	return lim
}

// roundUp rounds a wait up to whole seconds, as Retry-After counts.
func roundUp(d time.Duration) time.Duration {
	return time.Duration(math.Ceil(d.Seconds())) * time.Second
}

func (t *failureTable) forget(key string) {
	t.mu.Lock()
	delete(t.keys, key)
	t.mu.Unlock()
}

// makeRoom drops the keys whose buckets have refilled (they hold no
// information), then, if the table is still nearly full, keys that have
// a try left; a key with none left (a user or address being throttled)
// is never dropped, so a flood cannot free it. t.mu is held.
func (t *failureTable) makeRoom(now time.Time) {
	target := t.maxKeys - t.maxKeys/10
	for k, lim := range t.keys {
		if lim.TokensAt(now) >= float64(t.burst) {
			delete(t.keys, k)
		}
	}
	for k, lim := range t.keys { // map order is unspecified: arbitrary ones
		if len(t.keys) < target {
			break
		}
		if lim.TokensAt(now) >= 1 {
			delete(t.keys, k)
		}
	}
}

// size is the number of tracked keys.
func (t *failureTable) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}
