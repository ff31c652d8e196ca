package api

import (
	"encoding/json"
	"time"
)

// Event types.
const (
	EventTypeOperation = "operation"
	EventTypeLifecycle = "lifecycle"
	EventTypeLogging   = "logging"
)

// Event is one message on the /1.0/events websocket.
type Event struct {
	Type      string          `json:"type" yaml:"type"`
	Timestamp time.Time       `json:"timestamp" yaml:"timestamp"`
	Metadata  json.RawMessage `json:"metadata" yaml:"metadata"`
	Location  string          `json:"location,omitempty" yaml:"location,omitempty"`
	Project   string          `json:"project,omitempty" yaml:"project,omitempty"`
}

// EventLifecycle is the metadata of a lifecycle event.
type EventLifecycle struct {
	Action    string            `json:"action" yaml:"action"`
	Source    string            `json:"source" yaml:"source"`
	Context   map[string]any    `json:"context,omitempty" yaml:"context,omitempty"`
	Requestor *EventRequestor   `json:"requestor,omitempty" yaml:"requestor,omitempty"`
	Name      string            `json:"name,omitempty" yaml:"name,omitempty"`
	Project   string            `json:"project,omitempty" yaml:"project,omitempty"`
	Extra     map[string]string `json:"-" yaml:"-"`
}

// EventRequestor says who caused a lifecycle event.
type EventRequestor struct {
	Username string `json:"username" yaml:"username"`
	Protocol string `json:"protocol" yaml:"protocol"`
	Address  string `json:"address" yaml:"address"`
}

// EventLogging is the metadata of a logging event.
type EventLogging struct {
	Message string            `json:"message" yaml:"message"`
	Level   string            `json:"level" yaml:"level"`
	Context map[string]string `json:"context" yaml:"context"`
}
