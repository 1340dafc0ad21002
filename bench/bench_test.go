// Package bench holds the benchmarks of the token store, the parts of a
// request that the plugin adds to Caddy's own work:
//
//	go test -bench . -benchmem ./bench
//
// The store of a million live tokens takes a minute to build; it is kept
// in $TMPDIR/oauth2provider-bench-<n> for later runs.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddy-plugins/oauth2provider/store"
)

var ctx = context.Background()

func grant() store.Grant {
	return store.Grant{
		ClientID:        "bench-client",
		StaticClient:    true,
		UserID:          json.RawMessage(`1234`),
		Scope:           "read",
		AccessLifetime:  10 * 365 * 24 * time.Hour, // the kept store stays valid
		RefreshLifetime: -1,                        // access tokens only: the gate's work
	}
}

// storeOf returns a store holding n live access tokens, and the tokens.
// It is built once and kept for later runs.
func storeOf(b *testing.B, n int) (*store.Bolt, []string) {
	b.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("oauth2provider-bench-%d", n))
	dbPath, listPath := filepath.Join(dir, "oauth2.db"), filepath.Join(dir, "tokens.txt")
	if tokens, err := readLines(listPath); err == nil && len(tokens) == n {
		// Read the file once, so a benchmark measures the store, not the
		// disk: a cold page cache costs 40 µs a lookup.
		if _, err := os.ReadFile(dbPath); err != nil {
			b.Fatal(err)
		}
		s, err := store.OpenBolt(dbPath, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		_, err1 := s.Lookup(ctx, tokens[0], time.Now())
		_, err2 := s.Lookup(ctx, tokens[n-1], time.Now())
		if err1 == nil && err2 == nil {
			return s, tokens
		}
		s.Close() // a store from an older version, or cut short: build it again
	}
	os.RemoveAll(dir)
	s, err := store.OpenBolt(dbPath, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	tokens := make([]string, n)
	var wg sync.WaitGroup
	const workers = 256
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				p, err := s.Issue(ctx, grant(), time.Now())
				if err != nil {
					b.Error(err)
					return
				}
				tokens[i] = p.AccessToken
			}
		}()
	}
	wg.Wait()
	if err := writeLines(listPath, tokens); err != nil {
		b.Fatal(err)
	}
	b.Logf("built a store of %d tokens in %v", n, time.Since(start))
	return s, tokens
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

func writeLines(path string, lines []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var sizes = []int{1000, 1000000}

// BenchmarkValidateToken is what the gate does per request: validate an
// access token, here one of a working set of active tokens, in a store
// of 1000 or a million. A working set of 200,000 is twice what the cache
// holds, so most lookups miss it.
func BenchmarkValidateToken(b *testing.B) {
	for _, c := range []struct{ n, active int }{{1000, 1000}, {1000000, 1000}, {1000000, 200000}} {
		b.Run(fmt.Sprintf("tokens=%d/active=%d", c.n, c.active), func(b *testing.B) {
			s, tokens := storeOf(b, c.n)
			defer s.Close()
			active := tokens[:c.active]
			now := time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.AccessToken(ctx, active[i%len(active)], now); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkValidateTokenUncached is the same on a miss of the cache: a
// read transaction for a random token of the store.
func BenchmarkValidateTokenUncached(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			s, tokens := storeOf(b, n)
			defer s.Close()
			now := time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// A stride through the whole store, so pages are not all hot.
				if _, err := s.Lookup(ctx, tokens[(i*7919)%len(tokens)], now); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkIssueTokenPair issues an access and a refresh token, each
// durable before Issue returns, from 64 goroutines at once.
func BenchmarkIssueTokenPair(b *testing.B) {
	s, err := store.OpenBolt(filepath.Join(b.TempDir(), "oauth2.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := grant()
	g.RefreshLifetime = 720 * time.Hour
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Issue(ctx, g, time.Now()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRefreshGrant rotates refresh tokens, from 64 goroutines at
// once, each goroutine following its own chain of tokens.
func BenchmarkRefreshGrant(b *testing.B) {
	s, err := store.OpenBolt(filepath.Join(b.TempDir(), "oauth2.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := grant()
	g.RefreshLifetime = 720 * time.Hour
	keep := func(old store.Token) (store.Grant, error) { return g, nil }
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		p, err := s.Issue(ctx, g, time.Now())
		if err != nil {
			b.Error(err)
			return
		}
		rt := p.RefreshToken
		for pb.Next() {
			next, err := s.Refresh(ctx, rt, time.Now(), keep)
			if err != nil {
				b.Error(err)
				return
			}
			rt = next.RefreshToken
		}
	})
}
