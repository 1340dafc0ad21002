package oauth2provider

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/scrypt"
	"golang.org/x/sync/singleflight"
)

// A client secret is stored as
//
//	$scrypt$ln=<log2 N>,r=<r>,p=<p>$<client salt>$<key>
//
// (unpadded standard base64), where key = scrypt(secret, configured salt ‖
// client salt). Recording the parameters lets them be raised later
// without invalidating existing secrets; the configured salt means a copy
// of the store alone is not enough to attack the secrets.
const (
	scryptLogN   = 14 // as the seed: N = 2^14, r = 8, p = 1, 64-byte key
	scryptR      = 8
	scryptP      = 1
	scryptKeyLen = 64

	clientSaltLen = 16
	minSaltLen    = 16

	maxScryptMemory = 256 << 20
)

var errBadSecretHash = errors.New("not a secret hash made by 'caddy oauth2 hash-secret'")

// secretHash is a parsed client secret hash.
type secretHash struct {
	logN, r, p int
	clientSalt []byte
	key        []byte
}

// hashSecret hashes a client secret with the configured salt and a new
// random client salt.
func hashSecret(secret string, salt []byte) (string, error) {
	return hashSecretCost(secret, salt, scryptLogN)
}

func hashSecretCost(secret string, salt []byte, logN int) (string, error) {
	h := newSecretHash(logN)
	key, err := h.derive(secret, salt, scryptKeyLen)
	if err != nil {
		return "", err
	}
	h.key = key
	return h.String(), nil
}

// newSecretHash returns a hash with the given cost, a random client salt
// and a random key: as a stand-in for an unknown client it costs the
// same to check as a real one and matches no secret.
func newSecretHash(logN int) secretHash {
	h := secretHash{logN: logN, r: scryptR, p: scryptP,
		clientSalt: make([]byte, clientSaltLen), key: make([]byte, scryptKeyLen)}
	_, _ = rand.Read(h.clientSalt)
	_, _ = rand.Read(h.key)
	return h
}

func (h secretHash) String() string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$scrypt$ln=%d,r=%d,p=%d$%s$%s", h.logN, h.r, h.p,
		enc.EncodeToString(h.clientSalt), enc.EncodeToString(h.key))
}

// parseSecretHash parses and bounds-checks a stored hash, so that a bad
// config line fails at start-up rather than at the first login.
func parseSecretHash(s string) (secretHash, error) {
	var h secretHash
	parts := strings.Split(s, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "scrypt" {
		return h, errBadSecretHash
	}
	for _, kv := range strings.Split(parts[2], ",") {
		name, value, _ := strings.Cut(kv, "=")
		n, err := strconv.Atoi(value)
		if err != nil {
			return h, errBadSecretHash
		}
		switch name {
		case "ln":
			h.logN = n
		case "r":
			h.r = n
		case "p":
			h.p = n
		default:
			return h, errBadSecretHash
		}
	}
	// Bounds keep a hostile or mistyped hash from costing more than
	// 256 MiB (128·N·r bytes) or a few seconds per check.
	if h.logN < 10 || h.logN > 20 || h.r < 1 || h.r > 16 || h.p < 1 || h.p > 4 ||
		128<<h.logN*h.r > maxScryptMemory {
		return h, fmt.Errorf("%w: scrypt parameters out of range", errBadSecretHash)
	}
	var err error
	if h.clientSalt, err = base64.RawStdEncoding.DecodeString(parts[3]); err != nil || len(h.clientSalt) < 8 {
		return h, errBadSecretHash
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.key) < 32 || len(h.key) > 128 {
		return h, errBadSecretHash
	}
	return h, nil
}

// scryptSlots bounds how many scrypt computations (16 MiB each by
// default) run at once, so a burst of token requests costs CPU time,
// not unbounded memory.
var scryptSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

func (h secretHash) derive(secret string, salt []byte, keyLen int) ([]byte, error) {
	scryptSlots <- struct{}{}
	defer func() { <-scryptSlots }()
	full := make([]byte, 0, len(salt)+len(h.clientSalt))
	full = append(append(full, salt...), h.clientSalt...)
	return scrypt.Key([]byte(secret), full, 1<<h.logN, h.r, h.p, keyLen)
}

// verify reports in constant time whether secret matches h.
func (h secretHash) verify(secret string, salt []byte) bool {
	key, err := h.derive(secret, salt, len(h.key))
	return err == nil && subtle.ConstantTimeCompare(key, h.key) == 1
}

// decodeSalt decodes the configured salt: base64 (standard or URL-safe,
// padded or not) of at least 16 bytes.
func decodeSalt(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("oauth2: salt is required; generate one with: caddy oauth2 gen-salt")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) < minSaltLen {
				return nil, fmt.Errorf("oauth2: salt is %d bytes, need at least %d; generate one with: caddy oauth2 gen-salt", len(b), minSaltLen)
			}
			return b, nil
		}
	}
	return nil, errors.New("oauth2: salt is not valid base64; generate one with: caddy oauth2 gen-salt")
}

// newSalt returns a new random salt as the config wants it.
func newSalt() string {
	b := make([]byte, minSaltLen)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// randomString returns n random bytes as unpadded base64url, for client
// ids and secrets.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// secretCache remembers successful secret checks, as Caddy's basic_auth
// caches bcrypt: scrypt costs tens of milliseconds, which would cap the
// token endpoint at a few dozen requests per second per core. Only a
// match is remembered, keyed by the stored hash and the presented secret
// (through an HMAC with a per-process key, so the map holds neither), so
// a wrong secret always costs the full scrypt work, and a changed hash
// or a revoked client (which is not found at all) never hits the cache.
type secretCache struct {
	mu    sync.RWMutex
	hmac  []byte
	known map[[sha256.Size]byte]struct{}
	max   int
	group singleflight.Group
}

// secretCacheSize bounds the cache; a random tenth goes when it is full.
const secretCacheSize = 1000

func newSecretCache(size int) *secretCache {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &secretCache{hmac: key, known: make(map[[sha256.Size]byte]struct{}), max: size}
}

// verify is h.verify, remembered when it succeeds. hashText is the
// stored form of h.
func (c *secretCache) verify(h secretHash, hashText, secret string, salt []byte) bool {
	mac := hmac.New(sha256.New, c.hmac)
	mac.Write([]byte(hashText))
	mac.Write([]byte{0})
	mac.Write([]byte(secret))
	var key [sha256.Size]byte
	mac.Sum(key[:0])

	c.mu.RLock()
	_, ok := c.known[key]
	c.mu.RUnlock()
	if ok {
		return true
	}
	// One scrypt run for a burst of identical requests.
	v, _, _ := c.group.Do(string(key[:]), func() (any, error) {
		return h.verify(secret, salt), nil
	})
	if !v.(bool) {
		return false
	}
	c.mu.Lock()
	if len(c.known) >= c.max {
		for k := range c.known { // map order is unspecified: an arbitrary tenth
			delete(c.known, k)
			if len(c.known) < c.max-c.max/10 {
				break
			}
		}
	}
	c.known[key] = struct{}{}
	c.mu.Unlock()
	return true
}

func (c *secretCache) size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.known)
}
