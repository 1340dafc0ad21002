package oauth2provider

import (
	"context"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// DefaultSweepInterval is how often expired tokens are removed.
const DefaultSweepInterval = time.Minute

// sweepBatch bounds each write transaction of the sweeper, so requests
// never wait long behind it.
const sweepBatch = 1000

// sweeper removes expired tokens from the store in the background.
type sweeper struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startSweeper starts removing expired tokens every SweepInterval.
func (a *App) startSweeper() {
	ctx, cancel := context.WithCancel(context.Background())
	a.sweeper = &sweeper{cancel: cancel, done: make(chan struct{})}
	interval := time.Duration(a.SweepInterval)
	go func() {
		defer close(a.sweeper.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				a.sweep(ctx)
			}
		}
	}()
}

// sweep removes every token expired by now, in small transactions.
func (a *App) sweep(ctx context.Context) {
	total := 0
	for ctx.Err() == nil {
		n, err := a.store.DeleteExpired(ctx, time.Now(), sweepBatch)
		total += n
		if err != nil {
			a.logger.Error("removing expired tokens", zap.Error(err))
			return
		}
		if n < sweepBatch {
			break
		}
	}
	if ce := a.logger.Check(zapcore.DebugLevel, "removed expired tokens"); ce != nil && total > 0 {
		ce.Write(zap.Int("count", total))
	}
}

// stopSweeper stops the sweeper and waits for it.
func (a *App) stopSweeper() {
	if a.sweeper == nil {
		return
	}
	a.sweeper.cancel()
	<-a.sweeper.done
	a.sweeper = nil
}
