package storage

import "errors"

// Sentinel errors, checked with errors.Is. Where the API should answer with a status,
// the returned error is also an api.StatusError wrapping one of these.
var (
	ErrUnknownDriver    = errors.New("unknown storage driver")
	ErrImageNotFound    = errors.New("image not found in pool")
	ErrInstanceNotFound = errors.New("instance storage not found")
	ErrInstanceExists   = errors.New("instance storage already exists")
	ErrStillMounted     = errors.New("instance storage is still mounted")
)
