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

// SourceLogLimiter is a LogLimiter per source (see Source), so that one noisy source
// cannot suppress the lines of the others. It keeps at most maxSources sources; when
// that many were seen in one window, the rest share one limiter.
type SourceLogLimiter struct {
	window     time.Duration
	burst      int
	maxSources int

	mu      sync.Mutex
	sources map[string]*LogLimiter
	others  *LogLimiter
}

// NewSourceLogLimiter returns a limiter of burst lines per window and source.
func NewSourceLogLimiter(window time.Duration, burst, maxSources int) *SourceLogLimiter {
	return &SourceLogLimiter{
		window: window, burst: burst, maxSources: maxSources,
		sources: map[string]*LogLimiter{},
		others:  NewLogLimiter(window, burst),
	}
}

// Allow is LogLimiter.Allow for source.
func (s *SourceLogLimiter) Allow(source string) (int, bool) {
	s.mu.Lock()
	l, ok := s.sources[source]
	if !ok {
		if len(s.sources) >= s.maxSources {
			s.expireLocked()
		}

		if len(s.sources) < s.maxSources {
			l = NewLogLimiter(s.window, s.burst)
			s.sources[source] = l
		} else {
			l = s.others
		}
	}

	s.mu.Unlock()
	return l.Allow()
}

// expireLocked forgets the sources whose window ended with nothing suppressed.
func (s *SourceLogLimiter) expireLocked() {
	now := time.Now()
	for k, l := range s.sources {
		l.mu.Lock()
		idle := now.Sub(l.start) > l.window && l.suppressed == 0
		l.mu.Unlock()
		if idle {
			delete(s.sources, k)
		}
	}
}
