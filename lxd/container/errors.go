package container

import "errors"

// ErrNotRunning is returned when no live monitor serves a RunDir.
var ErrNotRunning = errors.New("container is not running")

// ErrRunning is returned when an operation needs the container stopped.
var ErrRunning = errors.New("container is running")
