package api

import "time"

// InstanceSnapshotsPost is the body of POST /1.0/instances/{name}/snapshots. An empty name
// lets the server pick the first free snap<N>; a nil ExpiresAt means no expiry.
type InstanceSnapshotsPost struct {
	Name      string     `json:"name" yaml:"name"`
	Stateful  bool       `json:"stateful" yaml:"stateful"`
	ExpiresAt *time.Time `json:"expires_at" yaml:"expires_at"`
}

// InstanceSnapshotPost is the body of POST /1.0/instances/{name}/snapshots/{snap}: a
// rename (migration is not supported).
type InstanceSnapshotPost struct {
	Name      string `json:"name" yaml:"name"`
	Migration bool   `json:"migration" yaml:"migration"`
	Live      bool   `json:"live,omitempty" yaml:"live,omitempty"`
}

// InstanceSnapshotPut is the body of PUT /1.0/instances/{name}/snapshots/{snap}.
type InstanceSnapshotPut struct {
	ExpiresAt time.Time `json:"expires_at" yaml:"expires_at"`
}
