package api

import "time"

// Instance types.
const (
	InstanceTypeContainer = "container"
	InstanceTypeVM        = "virtual-machine"
)

// InstancePut holds the writable fields of an instance.
type InstancePut struct {
	Architecture string                       `json:"architecture" yaml:"architecture"`
	Config       map[string]string            `json:"config" yaml:"config"`
	Devices      map[string]map[string]string `json:"devices" yaml:"devices"`
	Ephemeral    bool                         `json:"ephemeral" yaml:"ephemeral"`
	Profiles     []string                     `json:"profiles" yaml:"profiles"`
	Restore      string                       `json:"restore,omitempty" yaml:"restore,omitempty"`
	Stateful     bool                         `json:"stateful" yaml:"stateful"`
	Description  string                       `json:"description" yaml:"description"`
}

// Instance is an instance as returned by GET /1.0/instances/{name}.
type Instance struct {
	InstancePut     `yaml:",inline"`
	CreatedAt       time.Time                    `json:"created_at" yaml:"created_at"`
	ExpandedConfig  map[string]string            `json:"expanded_config" yaml:"expanded_config"`
	ExpandedDevices map[string]map[string]string `json:"expanded_devices" yaml:"expanded_devices"`
	Name            string                       `json:"name" yaml:"name"`
	Status          string                       `json:"status" yaml:"status"`
	StatusCode      StatusCode                   `json:"status_code" yaml:"status_code"`
	LastUsedAt      time.Time                    `json:"last_used_at" yaml:"last_used_at"`
	Location        string                       `json:"location" yaml:"location"`
	Type            string                       `json:"type" yaml:"type"`
	Project         string                       `json:"project" yaml:"project"`
}

// InstanceFull is an instance with its state, snapshots and backups embedded.
type InstanceFull struct {
	Instance  `yaml:",inline"`
	State     *InstanceState     `json:"state" yaml:"state"`
	Snapshots []InstanceSnapshot `json:"snapshots" yaml:"snapshots"`
	Backups   []any              `json:"backups" yaml:"backups"`
}

// InstanceSource says where a new instance comes from.
type InstanceSource struct {
	Type              string            `json:"type" yaml:"type"`
	Certificate       string            `json:"certificate" yaml:"certificate"`
	Alias             string            `json:"alias,omitempty" yaml:"alias,omitempty"`
	Fingerprint       string            `json:"fingerprint,omitempty" yaml:"fingerprint,omitempty"`
	Properties        map[string]string `json:"properties,omitempty" yaml:"properties,omitempty"`
	Server            string            `json:"server,omitempty" yaml:"server,omitempty"`
	Mode              string            `json:"mode,omitempty" yaml:"mode,omitempty"`
	Secret            string            `json:"secret,omitempty" yaml:"secret,omitempty"`
	Protocol          string            `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	Source            string            `json:"source,omitempty" yaml:"source,omitempty"`
	BaseImage         string            `json:"base-image,omitempty" yaml:"base-image,omitempty"`
	InstanceOnly      bool              `json:"instance_only,omitempty" yaml:"instance_only,omitempty"`
	ContainerOnly     bool              `json:"container_only,omitempty" yaml:"container_only,omitempty"`
	Refresh           bool              `json:"refresh,omitempty" yaml:"refresh,omitempty"`
	AllowInconsistent bool              `json:"allow_inconsistent" yaml:"allow_inconsistent"`
	Project           string            `json:"project,omitempty" yaml:"project,omitempty"`
	// Migration (type "migration"): the source's operation URL and its websocket
	// secrets (pull mode), whether the source asked for a live migration.
	Operation  string            `json:"operation,omitempty" yaml:"operation,omitempty"`
	Websockets map[string]string `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	Live       bool              `json:"live,omitempty" yaml:"live,omitempty"`
}

// InstancesPost is the body of POST /1.0/instances.
type InstancesPost struct {
	InstancePut  `yaml:",inline"`
	Name         string         `json:"name" yaml:"name"`
	Source       InstanceSource `json:"source" yaml:"source"`
	InstanceType string         `json:"instance_type" yaml:"instance_type"`
	Type         string         `json:"type" yaml:"type"`
	// Start starts the instance once made, in the same operation, whatever its source
	// (API extension instance_create_start, as Incus's): a launch in one request. A
	// failed start fails the operation and leaves the instance, stopped; the operation's
	// metadata then says it made the instance (OperationInstanceCreated).
	Start bool `json:"start,omitempty" yaml:"start,omitempty"`
}

// OperationInstanceCreated is the metadata key a create operation with Start sets (true)
// once it has made the instance, before starting it: a client whose launch then fails
// knows the instance of that name is the one its request made, and may remove it.
const OperationInstanceCreated = "instance_created"

// InstanceStatePut is the body of PUT /1.0/instances/{name}/state.
type InstanceStatePut struct {
	Action   string `json:"action" yaml:"action"`
	Timeout  int    `json:"timeout" yaml:"timeout"`
	Force    bool   `json:"force" yaml:"force"`
	Stateful bool   `json:"stateful" yaml:"stateful"`
}

// InstanceSnapshot is a snapshot of an instance.
type InstanceSnapshot struct {
	Architecture    string                       `json:"architecture" yaml:"architecture"`
	Config          map[string]string            `json:"config" yaml:"config"`
	CreatedAt       time.Time                    `json:"created_at" yaml:"created_at"`
	Devices         map[string]map[string]string `json:"devices" yaml:"devices"`
	Ephemeral       bool                         `json:"ephemeral" yaml:"ephemeral"`
	ExpandedConfig  map[string]string            `json:"expanded_config" yaml:"expanded_config"`
	ExpandedDevices map[string]map[string]string `json:"expanded_devices" yaml:"expanded_devices"`
	ExpiresAt       time.Time                    `json:"expires_at" yaml:"expires_at"`
	LastUsedAt      time.Time                    `json:"last_used_at" yaml:"last_used_at"`
	Name            string                       `json:"name" yaml:"name"`
	Profiles        []string                     `json:"profiles" yaml:"profiles"`
	Stateful        bool                         `json:"stateful" yaml:"stateful"`
	Size            int64                        `json:"size" yaml:"size"`
}
