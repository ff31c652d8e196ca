package instance

// Busy reports whether instance key runs, or one of its changes holding its lock is
// under way (a start above all: between mounting its disks and its monitor being
// recorded it is not running yet). Volumes refuse a restore under a busy instance.
func (m *Manager) Busy(key string) bool {
	if m.monitor(key) != nil {
		return true
	}

	m.mu.Lock()
	l := m.locks[key]
	m.mu.Unlock()
	if l == nil {
		return false
	}

	if !l.TryLock() {
		return true
	}

	l.Unlock()
	return false
}
