package api

import "time"

// WarningPut is the writable part of a warning: its status ("new" or "acknowledged").
type WarningPut struct {
	Status string `json:"status" yaml:"status"`
}

// Warning is one host problem the daemon noticed (GET /1.0/warnings/{uuid}).
type Warning struct {
	WarningPut  `yaml:",inline"`
	UUID        string    `json:"uuid" yaml:"uuid"`
	Location    string    `json:"location" yaml:"location"`
	Project     string    `json:"project" yaml:"project"`
	Type        string    `json:"type" yaml:"type"`
	Count       int       `json:"count" yaml:"count"`
	FirstSeenAt time.Time `json:"first_seen_at" yaml:"first_seen_at"`
	LastSeenAt  time.Time `json:"last_seen_at" yaml:"last_seen_at"`
	LastMessage string    `json:"last_message" yaml:"last_message"`
	Severity    string    `json:"severity" yaml:"severity"`
	EntityURL   string    `json:"entity_url" yaml:"entity_url"`
}
