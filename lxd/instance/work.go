package instance

import (
	"context"
	"fmt"
	"sync"
)

// workSet tracks the long operations that walk an instance's tree (snapshot, copy,
// publish, export), so that deleting the instance cancels them instead of waiting for
// them behind the instance lock.
type workSet struct {
	mu  sync.Mutex
	ops map[string]map[*context.CancelFunc]struct{}
}

// track derives a context for tree work on instance name; done must be called when the
// work ends.
func (m *Manager) track(ctx context.Context, name string) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	w := &m.work
	w.mu.Lock()
	if w.ops == nil {
		w.ops = map[string]map[*context.CancelFunc]struct{}{}
	}

	if w.ops[name] == nil {
		w.ops[name] = map[*context.CancelFunc]struct{}{}
	}

	key := &cancel
	w.ops[name][key] = struct{}{}
	w.mu.Unlock()

	return ctx, func() {
		w.mu.Lock()
		delete(w.ops[name], key)
		if len(w.ops[name]) == 0 {
			delete(w.ops, name)
		}

		w.mu.Unlock()
		cancel()
	}
}

// cancelWork cancels every tracked tree operation on instance name and returns how many.
func (m *Manager) cancelWork(name string) int {
	w := &m.work
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.ops[name] {
		(*c)()
	}

	return len(w.ops[name])
}

// frozen runs fn with the instance's processes frozen if it is running, so its files do
// not change under a copy. Preconditions: the instance lock is held.
func (m *Manager) frozen(name string, fn func() error) error {
	mon := m.monitor(name)
	if mon == nil || mon.Frozen() {
		return fn()
	}

	err := mon.Freeze()
	if err != nil {
		return fmt.Errorf("freezing %q: %w", name, err)
	}

	fnErr := fn()
	err = mon.Thaw()
	if err != nil {
		m.log.Error("thawing after copy", "instance", name, "err", err)
		if fnErr == nil {
			fnErr = fmt.Errorf("thawing %q: %w", name, err)
		}
	}

	return fnErr
}
