package store

import (
	"math/rand/v2"
	"sync"
)

// tokenCache keeps access tokens the gate has validated, so a request
// with a known token costs a map lookup instead of a read transaction.
// A revoked token must fail on its next request, so every write that
// deletes a token evicts it once the write has committed; a generation
// counter keeps a lookup that raced such a write from putting back what
// it read before the commit. It is per process: the bbolt file has one.
type tokenCache struct {
	mu  sync.RWMutex
	gen uint64 // bumped by every eviction
	m   map[TokenKey]Token
	max int
}

// tokenCacheSize bounds the cache; a random tenth goes when it is full.
const tokenCacheSize = 100000

func newTokenCache(max int) *tokenCache {
	return &tokenCache{m: make(map[TokenKey]Token), max: max}
}

// get returns the cached token of k; gen is the generation to hand to
// put if it is not there.
func (c *tokenCache) get(k TokenKey) (t Token, ok bool, gen uint64) {
	c.mu.RLock()
	t, ok = c.m[k]
	gen = c.gen
	c.mu.RUnlock()
	return t, ok, gen
}

// put caches t under k, unless something was evicted since gen was read:
// then t may be what a revocation has just deleted.
func (c *tokenCache) put(k TokenKey, t Token, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.m) >= c.max {
		// Full: when more tokens are active than fit, churning the whole
		// cache costs more than it saves, so only one newcomer in eight
		// gets in, and makes room by dropping an arbitrary tenth.
		if rand.IntN(8) != 0 {
			return
		}
		for key := range c.m { // map order is unspecified: an arbitrary tenth
			delete(c.m, key)
			if len(c.m) < c.max-c.max/10 {
				break
			}
		}
	}
	c.m[k] = t
}

// evict forgets keys; call it after the write that deleted them has
// committed.
func (c *tokenCache) evict(keys []TokenKey) {
	if len(keys) == 0 {
		return
	}
	c.mu.Lock()
	c.gen++
	for _, k := range keys {
		delete(c.m, k)
	}
	c.mu.Unlock()
}

func (c *tokenCache) clear() {
	c.mu.Lock()
	c.gen++
	clear(c.m)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
