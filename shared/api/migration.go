package api

// InstancePost is the body of POST /1.0/instances/{name}: a rename ({"name": "new"}), or
// with Migration a migration source: an operation whose websockets a target connects to
// (pull), or which connects to Target's (push).
type InstancePost struct {
	Name          string              `json:"name" yaml:"name"`
	Migration     bool                `json:"migration" yaml:"migration"`
	Live          bool                `json:"live" yaml:"live"`
	InstanceOnly  bool                `json:"instance_only" yaml:"instance_only"`
	ContainerOnly bool                `json:"container_only" yaml:"container_only"`
	Target        *InstancePostTarget `json:"target" yaml:"target"`

	// A move on the same server (instance_pool_move, instance_project_move): the pool or
	// project the instance moves to.
	Pool    string `json:"pool,omitempty" yaml:"pool,omitempty"`
	Project string `json:"project,omitempty" yaml:"project,omitempty"`
}

// InstancePostTarget is the target of a push migration: its operation's URL, the
// websocket secrets and the certificate it presents.
type InstancePostTarget struct {
	Certificate string            `json:"certificate" yaml:"certificate"`
	Operation   string            `json:"operation,omitempty" yaml:"operation,omitempty"`
	Websockets  map[string]string `json:"secrets,omitempty" yaml:"secrets,omitempty"`
}
