package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable Now and an After whose channels the test fires.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	waits  chan time.Duration // each After call's duration, in order
	fire   chan time.Time
	closed bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), waits: make(chan time.Duration, 16), fire: make(chan time.Time)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.waits <- d
	return c.fire
}

// fakeMembers is a members table: heartbeats by member id.
type fakeMembers struct {
	mu    sync.Mutex
	rows  map[int64]Heartbeat
	fail  error
	block bool
}

func (f *fakeMembers) WriteHeartbeat(ctx context.Context, hb Heartbeat) error {
	f.mu.Lock()
	fail, block := f.fail, f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}

	if fail != nil {
		return fail
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows[hb.MemberID] = hb
	return nil
}

func (f *fakeMembers) row(id int64) (Heartbeat, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hb, ok := f.rows[id]
	return hb, ok
}

func self() Heartbeat {
	return Heartbeat{MemberID: 2, Address: "10.251.0.2:8443", SchemaVersion: 12, APIExtensions: 50}
}

// TestHeartbeatsWriteEveryQuarterThreshold: the writer beats at once, then waits a quarter
// of the threshold between beats, and each beat carries the member's facts and the clock.
func TestHeartbeatsWriteEveryQuarterThreshold(t *testing.T) {
	clock := newFakeClock()
	store := &fakeMembers{rows: map[int64]Heartbeat{}}
	h := NewHeartbeats(HeartbeatConfig{Store: store, Self: self, Threshold: func() time.Duration { return 20 * time.Second },
		Now: clock.Now, After: clock.After})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()

	wait := <-clock.waits
	if wait != 5*time.Second {
		t.Fatalf("interval = %s, want 5s (a quarter of 20s)", wait)
	}

	hb, ok := store.row(2)
	want := self()
	want.Time = clock.Now()
	if !ok || hb != want {
		t.Fatalf("first beat = %+v, %v; want %+v", hb, ok, want)
	}

	clock.advance(5 * time.Second)
	clock.fire <- clock.Now()
	<-clock.waits
	hb, _ = store.row(2)
	if !hb.Time.Equal(clock.Now()) {
		t.Fatalf("second beat at %s, want %s", hb.Time, clock.Now())
	}

	cancel()
	<-done
}

// TestHeartbeatOfflineAfterThreshold: a member whose writer stops (killed) is online until
// the threshold has passed since its last beat, and offline right after.
func TestHeartbeatOfflineAfterThreshold(t *testing.T) {
	clock := newFakeClock()
	store := &fakeMembers{rows: map[int64]Heartbeat{}}
	threshold := 20 * time.Second
	h := NewHeartbeats(HeartbeatConfig{Store: store, Self: self, Threshold: func() time.Duration { return threshold },
		Now: clock.Now, After: clock.After})

	err := h.Beat(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	hb, _ := store.row(2)
	for _, c := range []struct {
		after  time.Duration
		online bool
	}{
		{0, true},
		{5 * time.Second, true},
		{threshold, true},
		{threshold + time.Millisecond, false},
		{time.Hour, false},
		{-3 * time.Second, true}, // the reader's clock is behind the writer's
	} {
		// What lxc cluster list shows, as another member computes it (Service.Members).
		got := IsOnline(hb.Time, clock.Now().Add(c.after), threshold)
		if got != c.online {
			t.Errorf("%s after the last beat: online = %v, want %v", c.after, got, c.online)
		}
	}

	if IsOnline(time.Time{}, clock.Now(), threshold) {
		t.Error("a member that never beat is online")
	}
}

// TestHeartbeatDeadline: a write against a database that does not answer (lost quorum, a
// blackholed leader) gives up within the short deadline instead of hanging the writer,
// and the failure is reported by Last; the next good write clears it.
func TestHeartbeatDeadline(t *testing.T) {
	store := &fakeMembers{rows: map[int64]Heartbeat{}, block: true}
	h := NewHeartbeats(HeartbeatConfig{Store: store, Self: self, Threshold: func() time.Duration { return 2 * time.Second }})

	start := time.Now()
	err := h.Beat(context.Background())
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("beat against a stuck database: %v, want a deadline error", err)
	}

	if took > 1500*time.Millisecond {
		t.Fatalf("beat took %s, want about 500ms (the deadline for a 2s threshold)", took)
	}

	last, lastErr := h.Last()
	if !last.IsZero() || lastErr == nil {
		t.Fatalf("Last after a failed beat = %s, %v", last, lastErr)
	}

	store.mu.Lock()
	store.block = false
	store.mu.Unlock()
	err = h.Beat(context.Background())
	last, lastErr = h.Last()
	if err != nil || last.IsZero() || lastErr != nil {
		t.Fatalf("beat after recovery: %v; Last = %s, %v", err, last, lastErr)
	}
}

func TestOfflineThresholdValid(t *testing.T) {
	t.Setenv(TestOfflineThresholdEnv, "")
	for _, c := range []struct {
		v     string
		valid bool
		want  time.Duration
	}{
		{"", false, 20 * time.Second},
		{"20", true, 20 * time.Second},
		{"10", true, 10 * time.Second},
		{"45", true, 45 * time.Second},
		{"9", false, 9 * time.Second}, // refused when set; a stored one is read as is
		{"2s", false, 20 * time.Second},
		{"30s", false, 20 * time.Second},
		{"0", false, 20 * time.Second},
		{"-5", false, 20 * time.Second},
		{"ten", false, 20 * time.Second},
		{"99999999", false, 99999999 * time.Second},
	} {
		err := ValidOfflineThreshold(c.v)
		if (err == nil) != c.valid {
			t.Errorf("ValidOfflineThreshold(%q) = %v, want valid %v", c.v, err, c.valid)
		}

		got := OfflineThreshold(c.v)
		if got != c.want {
			t.Errorf("OfflineThreshold(%q) = %s, want %s", c.v, got, c.want)
		}
	}

	if HeartbeatInterval(20*time.Second) != 5*time.Second {
		t.Errorf("interval for 20s = %s", HeartbeatInterval(20*time.Second))
	}
}

// TestOfflineThresholdTestEnv: the test variable lowers both the default and the floor,
// and nothing else does.
func TestOfflineThresholdTestEnv(t *testing.T) {
	t.Setenv(TestOfflineThresholdEnv, "2s")
	if got := OfflineThreshold(""); got != 2*time.Second {
		t.Errorf("default with the test variable = %s, want 2s", got)
	}

	if got := OfflineThreshold("3"); got != 3*time.Second {
		t.Errorf("3 with the test variable = %s", got)
	}

	if err := ValidOfflineThreshold("3"); err != nil {
		t.Errorf("3s refused with the test variable at 2s: %v", err)
	}

	if err := ValidOfflineThreshold("1"); err == nil {
		t.Error("1s accepted with the test variable at 2s")
	}

	t.Setenv(TestOfflineThresholdEnv, "garbage")
	if got := OfflineThreshold(""); got != DefaultOfflineThreshold {
		t.Errorf("default with an invalid test variable = %s", got)
	}
}
