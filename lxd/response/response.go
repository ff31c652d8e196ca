// Package response renders handler results in LXD's JSON envelopes
// (lxd-api.md §2). Handlers return a Response and never write to the
// http.ResponseWriter themselves.
package response

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/lxd/etag"

	"github.com/berth-dev/berth/shared/api"
)

// Response is what an API handler returns.
type Response interface {
	Render(w http.ResponseWriter, r *http.Request) error
	String() string
}

// writeJSON encodes body first, so an encoding failure can still become a
// 500 error envelope, then writes headers, status and body (with a trailing
// newline, as json.Encoder does).
func writeJSON(w http.ResponseWriter, status int, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		err = fmt.Errorf("encoding response: %w", err)
		if status == http.StatusInternalServerError {
			return err // the error envelope itself failed: give up
		}

		_ = writeJSON(w, http.StatusInternalServerError, errorEnvelope(http.StatusInternalServerError, err.Error()))
		return err
	}

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(data, '\n'))
	return err
}

// syncResponse is a "sync" envelope.
type syncResponse struct {
	success  bool
	metadata any
	etag     any
	location string
}

// SyncResponse returns a 200 sync envelope carrying metadata.
func SyncResponse(success bool, metadata any) Response {
	return &syncResponse{success: success, metadata: metadata}
}

// SyncResponseETag is SyncResponse with an ETag header computed from etag
// (see etag.Hash).
func SyncResponseETag(success bool, metadata any, etag any) Response {
	return &syncResponse{success: success, metadata: metadata, etag: etag}
}

// SyncResponseLocation is SyncResponse answered with 201 and a Location header.
func SyncResponseLocation(success bool, metadata any, location string) Response {
	return &syncResponse{success: success, metadata: metadata, location: location}
}

// EmptySyncResponse is a sync envelope with "metadata": {}.
var EmptySyncResponse Response = &syncResponse{success: true, metadata: map[string]any{}}

func (s *syncResponse) Render(w http.ResponseWriter, _ *http.Request) error {
	md, err := marshalMetadata(s.metadata)
	if err != nil {
		return InternalError(fmt.Errorf("encoding response metadata: %w", err)).Render(w, nil)
	}

	if s.etag != nil {
		hash, err := etag.Hash(s.etag)
		if err != nil {
			return InternalError(err).Render(w, nil)
		}

		w.Header().Set("ETag", `"`+hash+`"`)
	}

	status := http.StatusOK
	if s.location != "" {
		w.Header().Set("Location", s.location)
		status = http.StatusCreated
	}

	body := api.Response{
		Type:       api.SyncResponse,
		Status:     api.Success.String(),
		StatusCode: int(api.Success),
	}
	if !s.success {
		body.Status = api.Failure.String()
		body.StatusCode = int(api.Failure)
	}

	return writeEnvelope(w, status, body, md)
}

// writeEnvelope writes env with md, already encoded, as its metadata. Marshalling md as
// the envelope's json.RawMessage would scan and compact it again: for a list of 500
// instances (1.1 MB) that second pass was a quarter of the answer's CPU.
func writeEnvelope(w http.ResponseWriter, status int, env api.Response, md []byte) error {
	env.Metadata = nil

	head, err := json.Marshal(env)
	if err != nil {
		return writeJSON(w, http.StatusInternalServerError, errorEnvelope(http.StatusInternalServerError, err.Error()))
	}

	// Metadata is the envelope's last field: head ends in "null}". Should api.Response
	// ever change shape, encode it whole.
	tail := []byte("null}")
	if !bytes.HasSuffix(head, tail) {
		env.Metadata = md
		return writeJSON(w, status, env)
	}

	head = head[:len(head)-len(tail)]
	buf := make([]byte, 0, len(head)+len(md)+2)
	buf = append(append(append(buf, head...), md...), '}', '\n')

	// The length lets a client read a long answer (a list of 500 instances) into one
	// buffer instead of growing one, and spares the chunked encoding.
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(status)

	_, err = w.Write(buf)

	return err
}

func (s *syncResponse) String() string {
	if s.success {
		return "success"
	}

	return "failure"
}

// errorResponse is an "error" envelope.
type errorResponse struct {
	code int
	msg  string
}

func errorEnvelope(code int, msg string) api.Response {
	return api.Response{Type: api.ErrorResponse, ErrorCode: code, Error: msg}
}

// ErrorResponse returns an error envelope with HTTP status code.
func ErrorResponse(code int, msg string) Response {
	return &errorResponse{code: code, msg: msg}
}

func (e *errorResponse) Render(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, e.code, errorEnvelope(e.code, e.msg))
}

func (e *errorResponse) String() string { return e.msg }

// statusError builds an error envelope from err, or the status text when nil.
func statusError(code int, err error) Response {
	msg := http.StatusText(code)
	if err != nil {
		msg = err.Error()
	}

	return ErrorResponse(code, msg)
}

// BadRequest is a 400 error.
func BadRequest(err error) Response { return statusError(http.StatusBadRequest, err) }

// Forbidden is a 403 error.
func Forbidden(err error) Response { return statusError(http.StatusForbidden, err) }

// NotFound is a 404 error.
func NotFound(err error) Response { return statusError(http.StatusNotFound, err) }

// Conflict is a 409 error.
func Conflict(err error) Response { return statusError(http.StatusConflict, err) }

// PreconditionFailed is a 412 error.
func PreconditionFailed(err error) Response { return statusError(http.StatusPreconditionFailed, err) }

// InternalError is a 500 error, or a 503 when err says a service it needs is unavailable
// (the cluster database without a leader, issue 16): that is no fault of the server's,
// and clients may retry it.
func InternalError(err error) Response {
	if api.StatusCodeOf(err) == http.StatusServiceUnavailable {
		return statusError(http.StatusServiceUnavailable, err)
	}

	return statusError(http.StatusInternalServerError, err)
}

// NotImplemented is a 501 error.
func NotImplemented(err error) Response { return statusError(http.StatusNotImplemented, err) }

// Unavailable is a 503 error.
func Unavailable(err error) Response { return statusError(http.StatusServiceUnavailable, err) }
