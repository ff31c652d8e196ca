package operations

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// RunFunc does an operation's work. ctx is cancelled by Cancel.
type RunFunc func(ctx context.Context, op *Operation) error

// ConnectFunc serves one websocket connection request for an operation.
type ConnectFunc func(op *Operation, r *http.Request, w http.ResponseWriter) error

// CancelFunc is called when a client cancels the operation. Returning an
// error refuses the cancellation and leaves the operation Running.
type CancelFunc func(op *Operation) error

// ErrCancelled is the error of a cancelled operation.
var ErrCancelled = errors.New("operation cancelled")

// Operation is one asynchronous task. Its state moves Pending → Running →
// Success | Failure | Cancelled (via Cancelling when cancelled while running).
type Operation struct {
	reg         *Registry
	id          string
	class       string
	description string
	createdAt   time.Time
	resources   map[string][]string
	project     string // of its instance resources (projectOf); "" when none or several
	run         RunFunc
	onConnect   ConnectFunc
	onCancel    CancelFunc
	ctx         context.Context
	stop        context.CancelFunc
	done        chan struct{} // closed on reaching a final state

	mu              sync.Mutex // guards the fields below
	status          api.StatusCode
	started         bool
	cancelRequested bool
	updatedAt       time.Time
	endedAt         time.Time
	metadata        map[string]any
	err             error

	// owner is the fingerprint of the certificate whose client created the
	// operation ("" for the unix socket); AbortOwnedBy ends its operations.
	owner string
}

func newOperation(reg *Registry, class, description string, resources map[string][]string, metadata map[string]any,
	run RunFunc, onConnect ConnectFunc, cancel CancelFunc) *Operation {
	now := time.Now().UTC()
	ctx, stop := context.WithCancel(context.Background())
	res := make(map[string][]string, len(resources)+1)
	for k, v := range resources {
		res[k] = slices.Clone(v)
	}

	_, hasContainers := res["containers"]
	if inst, ok := res["instances"]; ok && !hasContainers {
		res["containers"] = slices.Clone(inst)
	}

	return &Operation{
		reg:         reg,
		id:          newID(),
		class:       class,
		description: description,
		createdAt:   now,
		resources:   res,
		project:     projectOf(res),
		run:         run,
		onConnect:   onConnect,
		onCancel:    cancel,
		ctx:         ctx,
		stop:        stop,
		done:        make(chan struct{}),
		status:      api.Pending,
		updatedAt:   now,
		metadata:    maps.Clone(metadata),
	}
}

// projectOf is the project every instance resource of an operation names (its
// ?project=, the default project without one), "" when it has none or they differ.
// Its events go to that project's listeners; an operation of no one project reaches
// every listener but a restricted certificate's.
func projectOf(res map[string][]string) string {
	proj := ""
	for _, kind := range []string{"instances", "containers"} {
		for _, u := range res[kind] {
			p := "default"
			_, query, ok := strings.Cut(u, "?")
			if ok {
				q, err := url.ParseQuery(query)
				if err != nil {
					return ""
				}

				if q.Get("project") != "" {
					p = q.Get("project")
				}
			}

			if proj != "" && proj != p {
				return ""
			}

			proj = p
		}
	}

	return proj
}

// Project is the project of the operation's instances, "" when it has none.
func (op *Operation) Project() string { return op.project }

// ID returns the operation's uuid.
func (op *Operation) ID() string { return op.id }

// URL returns the operation's API path, /1.0/operations/<id>.
func (op *Operation) URL() string { return "/1.0/operations/" + op.id }

// Class returns the operation's class.
func (op *Operation) Class() string { return op.class }

// Done is closed once the operation reached a final state.
func (op *Operation) Done() <-chan struct{} { return op.done }

// Status returns the current status.
func (op *Operation) Status() api.StatusCode {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.status
}

// Metadata returns a shallow copy of the current metadata.
func (op *Operation) Metadata() map[string]any {
	op.mu.Lock()
	defer op.mu.Unlock()
	return maps.Clone(op.metadata)
}

// mayCancel reports whether clients may cancel the operation.
func (op *Operation) mayCancel() bool { return op.onCancel != nil }

// Render returns the wire form of the operation.
func (op *Operation) Render() api.Operation {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.renderLocked()
}

func (op *Operation) renderLocked() api.Operation {
	res := make(map[string][]string, len(op.resources))
	for k, v := range op.resources {
		res[k] = slices.Clone(v)
	}

	var errText string
	if op.err != nil {
		errText = op.err.Error()
	}

	return api.Operation{
		ID:          op.id,
		Class:       op.class,
		Description: op.description,
		CreatedAt:   op.createdAt,
		UpdatedAt:   op.updatedAt,
		Status:      op.status.String(),
		StatusCode:  op.status,
		Resources:   res,
		Metadata:    maps.Clone(op.metadata),
		MayCancel:   op.mayCancel() && !op.status.IsFinal(),
		Err:         errText,
		Location:    "none",
	}
}

// eventRedacted lists the metadata keys each class never sends in events: a token's
// secret is worth a trusted client certificate to whoever holds it. The client that
// asked for the token has it from the POST's answer, and listing tokens
// (GET /1.0/operations) is an administrator's.
var eventRedacted = map[string][]string{api.OperationClassToken: {"secret"}}

// sendLocked emits the current state as an operation event. Sending under
// op.mu keeps each operation's events in order; Send never blocks.
func (op *Operation) sendLocked() {
	if op.reg.events == nil {
		return
	}

	o := op.renderLocked()
	for _, k := range eventRedacted[op.class] {
		delete(o.Metadata, k)
	}

	err := op.reg.events.Send(op.project, api.EventTypeOperation, o)
	if err != nil {
		op.reg.log.Error("sending operation event", "id", op.id, "err", err)
	}
}

// Start moves a Pending operation to Running and starts run. Calling it
// again, or on an operation already cancelled, does nothing.
func (op *Operation) Start() error {
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.started || op.status != api.Pending {
		return nil
	}

	op.started = true
	op.status = api.Running
	op.updatedAt = time.Now().UTC()
	op.sendLocked()
	if op.run != nil {
		go func() {
			err := op.run(op.ctx, op)
			op.finish(err)
		}()
	}

	return nil
}

// UpdateMetadata merges md into the metadata and emits an event. Values are
// stored as given (no JSON round trip), so types survive. Finished
// operations cannot be updated.
func (op *Operation) UpdateMetadata(md map[string]any) error {
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.status.IsFinal() {
		return api.StatusErrorf(http.StatusBadRequest, "operation %q has already finished", op.id)
	}

	if op.metadata == nil {
		op.metadata = make(map[string]any, len(md))
	}

	maps.Copy(op.metadata, md)
	op.updatedAt = time.Now().UTC()
	op.sendLocked()
	return nil
}

// Cancel serves DELETE /1.0/operations/{id}. It fails with a 400 StatusError
// if the operation is finished or not cancellable. It calls the cancel hook,
// then cancels run's context without waiting for run to return; an
// operation without run (or not yet started) becomes Cancelled at once.
func (op *Operation) Cancel() error {
	op.mu.Lock()
	if op.status.IsFinal() {
		op.mu.Unlock()
		return api.StatusErrorf(http.StatusBadRequest, "operation %q has already finished", op.id)
	}

	if !op.mayCancel() {
		op.mu.Unlock()
		return api.StatusErrorf(http.StatusBadRequest, "operation %q cannot be cancelled", op.id)
	}

	if op.cancelRequested {
		op.mu.Unlock()
		return nil
	}

	op.cancelRequested = true
	prev := op.status
	op.status = api.Cancelling
	op.updatedAt = time.Now().UTC()
	op.sendLocked()
	op.mu.Unlock()

	err := op.onCancel(op)
	if err != nil {
		op.mu.Lock()
		if !op.status.IsFinal() {
			op.cancelRequested = false
			op.status = prev
			op.updatedAt = time.Now().UTC()
			op.sendLocked()
		}
		op.mu.Unlock()
		return err
	}

	op.stop()
	op.mu.Lock()
	runsOn := op.started && op.run != nil
	op.mu.Unlock()
	if !runsOn {
		op.finish(nil)
	}

	return nil
}

// SetOwner records the certificate (fingerprint) whose client created the operation.
func (op *Operation) SetOwner(fingerprint string) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.owner = fingerprint
}

// Owner is the fingerprint SetOwner recorded.
func (op *Operation) Owner() string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.owner
}

// Abort ends the operation whatever may_cancel says: its client lost the right to
// it (its certificate was removed). Run's context is cancelled, and run must stop
// what it started (kill an exec'd command, close its websockets); an operation that
// does not run becomes Cancelled at once. Finished operations are left as they are.
func (op *Operation) Abort() {
	op.mu.Lock()
	if op.status.IsFinal() {
		op.mu.Unlock()
		return
	}

	if !op.cancelRequested {
		op.cancelRequested = true
		op.status = api.Cancelling
		op.updatedAt = time.Now().UTC()
		op.sendLocked()
	}

	runsOn := op.started && op.run != nil
	op.mu.Unlock()

	op.stop()
	if !runsOn {
		op.finish(nil)
	}
}

// finish records the final state once and emits the final event.
func (op *Operation) finish(err error) {
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.status.IsFinal() {
		return
	}

	switch {
	case op.cancelRequested || errors.Is(err, context.Canceled):
		op.status = api.Cancelled
		if err == nil || errors.Is(err, context.Canceled) {
			err = ErrCancelled
		}

	case err != nil:
		op.status = api.Failure
	default:
		op.status = api.Success
	}

	now := time.Now().UTC()
	op.err = err
	op.updatedAt = now
	op.endedAt = now
	op.sendLocked()
	close(op.done)
	op.stop()
	if err != nil {
		op.reg.log.Debug("operation ended", "id", op.id, "status", op.status.String(), "err", err)
	} else {
		op.reg.log.Debug("operation ended", "id", op.id, "status", op.status.String())
	}
}

func (op *Operation) finishedAt() time.Time {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.endedAt
}

// Wait blocks until the operation is final and returns its error (nil on
// Success, ErrCancelled or run's error when cancelled), or ctx's error.
func (op *Operation) Wait(ctx context.Context) error {
	select {
	case <-op.done:
	case <-ctx.Done():
		return ctx.Err()
	}

	op.mu.Lock()
	defer op.mu.Unlock()
	return op.err
}

// WaitFinal serves GET /1.0/operations/{id}/wait: it blocks until the
// operation is final or timeout passes (negative: no timeout) and returns the
// operation as it then is. The error is ctx's when the caller went away.
func (op *Operation) WaitFinal(ctx context.Context, timeout time.Duration) (api.Operation, error) {
	var expired <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}

	select {
	case <-op.done:
	case <-expired:
	case <-ctx.Done():
		return op.Render(), ctx.Err()
	}

	return op.Render(), nil
}
