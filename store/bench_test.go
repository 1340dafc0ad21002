package store

import (
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkIssueParallel issues token pairs from many goroutines, each
// durable (fsync'd) before Issue returns.
func BenchmarkIssueParallel(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "bench.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := grant()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Issue(ctx, g, time.Now()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAccessToken looks up a live access token.
func BenchmarkAccessToken(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "bench.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	pair, _ := s.Issue(ctx, grant(), time.Now())
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.AccessToken(ctx, pair.AccessToken, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueSequential is one client alone: the latency of a grant.
func BenchmarkIssueSequential(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "bench.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := grant()
	for b.Loop() {
		if _, err := s.Issue(ctx, g, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
