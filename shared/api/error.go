package api

import (
	"errors"
	"fmt"
	"net/http"
)

// StatusError is an error carrying the HTTP status it should be reported with.
type StatusError struct {
	status int
	err    error
}

// StatusErrorf returns a StatusError with a formatted message.
func StatusErrorf(status int, format string, a ...any) StatusError {
	return StatusError{status: status, err: fmt.Errorf(format, a...)}
}

// NewStatusError wraps err with an HTTP status.
func NewStatusError(status int, err error) StatusError {
	return StatusError{status: status, err: err}
}

func (e StatusError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}

	return http.StatusText(e.status)
}

// Unwrap returns the wrapped error.
func (e StatusError) Unwrap() error { return e.err }

// Status returns the HTTP status code.
func (e StatusError) Status() int { return e.status }

// StatusErrorCheck reports whether err is (or wraps) a StatusError with one of the given codes.
// With no codes, any StatusError matches.
func StatusErrorCheck(err error, codes ...int) bool {
	var se StatusError
	if !errors.As(err, &se) {
		return false
	}

	if len(codes) == 0 {
		return true
	}

	for _, c := range codes {
		if se.status == c {
			return true
		}
	}

	return false
}

// StatusCodeOf returns the HTTP status of err, or 0 when err carries none.
func StatusCodeOf(err error) int {
	var se StatusError
	if errors.As(err, &se) {
		return se.status
	}

	return 0
}
