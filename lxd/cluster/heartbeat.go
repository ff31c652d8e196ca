package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Heartbeat is what a member writes into its own members row on every beat: the time,
// and the facts other members check it by (its address, schema and API level).
type Heartbeat struct {
	MemberID      int64
	Address       string
	SchemaVersion int
	APIExtensions int
	Time          time.Time
}

// HeartbeatStore writes a member's heartbeat into the global database (the daemon wraps
// db.Tx.SetMemberHeartbeat).
type HeartbeatStore interface {
	WriteHeartbeat(ctx context.Context, hb Heartbeat) error
}

// HeartbeatConfig configures a Heartbeats writer. Now and After default to the real
// clock; tests give a fake one.
type HeartbeatConfig struct {
	Store HeartbeatStore
	// Self returns the heartbeat's fields but Time, read on every beat (the address can
	// change).
	Self func() Heartbeat
	// Threshold returns the current cluster.offline_threshold, read on every beat.
	Threshold func() time.Duration
	Log       *slog.Logger

	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// Heartbeats writes this member's heartbeat every offline_threshold/4. Each member writes
// its own row (there is no leader-driven ping as in LXD): a member is offline for everyone
// once its row is older than the threshold, whether it died, lost its network, or lost
// the database. Each write has a short deadline and runs on its own goroutine, so a slow
// or unreachable database never blocks anything else, and beats never pile up.
type Heartbeats struct {
	cfg HeartbeatConfig

	mu       sync.Mutex
	last     time.Time // last successful beat
	lastErr  error
	failures int // consecutive
}

// NewHeartbeats returns a writer; Run starts it.
func NewHeartbeats(cfg HeartbeatConfig) *Heartbeats {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	if cfg.After == nil {
		cfg.After = time.After
	}

	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}

	if cfg.Threshold == nil {
		cfg.Threshold = func() time.Duration { return OfflineThreshold("") }
	}

	return &Heartbeats{cfg: cfg}
}

// writeDeadline bounds one beat: long enough for a write through a new leader right
// after an election, shorter than the interval so one stuck write cannot cost two beats.
func writeDeadline(interval time.Duration) time.Duration {
	return min(max(interval, 500*time.Millisecond), 2*time.Second)
}

// Run beats at once and then every interval until ctx ends.
func (h *Heartbeats) Run(ctx context.Context) {
	for {
		_ = h.Beat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-h.cfg.After(HeartbeatInterval(h.cfg.Threshold())):
		}
	}
}

// Beat writes one heartbeat now, within the write deadline.
func (h *Heartbeats) Beat(ctx context.Context) error {
	hb := h.cfg.Self()
	hb.Time = h.cfg.Now().UTC()
	interval := HeartbeatInterval(h.cfg.Threshold())

	wctx, cancel := context.WithTimeout(ctx, writeDeadline(interval))
	defer cancel()

	err := h.cfg.Store.WriteHeartbeat(wctx, hb)

	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.failures++
		h.lastErr = err
		if h.failures == 1 {
			// Once per outage: the member is about to show OFFLINE to the others.
			h.cfg.Log.Warn("writing cluster heartbeat failed", "err", err)
		}

		return err
	}

	if h.failures > 0 {
		h.cfg.Log.Info("cluster heartbeat written again", "failed_beats", h.failures)
	}

	h.failures = 0
	h.lastErr = nil
	h.last = hb.Time
	return nil
}

// Last returns the time of the last successful beat (zero if none yet) and the error of
// the last beat if it failed.
func (h *Heartbeats) Last() (time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()

	return h.last, h.lastErr
}
