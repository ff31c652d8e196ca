package listener

import (
	"sync"
	"time"
)

// LogLimiter lets at most burst log lines through per window and counts the rest, so
// that a flood of refused clients cannot flood the log.
type LogLimiter struct {
	window time.Duration
	burst  int

	mu         sync.Mutex
	start      time.Time
	n          int
	suppressed int
}

func NewLogLimiter(window time.Duration, burst int) *LogLimiter {
	return &LogLimiter{window: window, burst: burst}
}

// Allow reports whether to log now, and how many lines were suppressed since the last
// one that was.
func (l *LogLimiter) Allow() (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.start) > l.window {
		l.start, l.n = now, 0
	}

	if l.n >= l.burst {
		l.suppressed++
		return 0, false
	}

	l.n++
	n := l.suppressed
	l.suppressed = 0
	return n, true
}
