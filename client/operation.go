package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// Operation is a server-side asynchronous task. The embedded api.Operation is
// the latest state seen; Wait updates it.
type Operation struct {
	api.Operation

	c        *Client
	listener *EventListener // opened before the request; nil if events are unavailable

	// bg delivers the outcome of a wait started by waitInBackground, and
	// cancelBG abandons it.
	bg       chan bgResult
	cancelBG context.CancelFunc
}

type bgResult struct {
	op  *api.Operation // the final state; nil if the wait failed
	err error
}

// errEventsLost says the event stream ended before the operation did.
var errEventsLost = errors.New("event stream lost")

// Wait blocks until the operation ends and returns its error, if any: the
// operation's err on Failure or Cancelled. Cancelling ctx stops waiting but
// does not cancel the operation (see Cancel).
func (op *Operation) Wait(ctx context.Context) error {
	return op.WaitProgress(ctx, nil)
}

// WaitOrCancel is Wait for a user who may give up: when ctx ends first (Ctrl+C in the
// CLI), the operation is cancelled on the server (DELETE /1.0/operations/{id}) rather than
// left running, and ctx's error is returned.
func (op *Operation) WaitOrCancel(ctx context.Context) error {
	err := op.Wait(ctx)
	if err != nil && ctx.Err() != nil && !op.StatusCode.IsFinal() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = op.Cancel(cctx)
	}

	return err
}

// WaitProgress is Wait, calling fn (if non-nil) with every update of the
// operation seen while waiting, e.g. to show `*_progress` metadata.
func (op *Operation) WaitProgress(ctx context.Context, fn func(api.Operation)) error {
	defer op.closeListener()

	if op.StatusCode.IsFinal() {
		return op.result()
	}

	if op.bg != nil {
		return op.waitBackground(ctx, fn)
	}

	if op.listener != nil {
		err := op.waitEvents(ctx, fn)
		if !errors.Is(err, errEventsLost) {
			return err
		}
	}

	return op.waitPoll(ctx, fn)
}

// waitEvents follows the stock client: register for operation events, then
// refresh once (the op may have ended before we registered), then wait for
// an event carrying a final status.
func (op *Operation) waitEvents(ctx context.Context, fn func(api.Operation)) error {
	// mu guards latest; the handler must never block the reader goroutine,
	// so it keeps only the newest update and pokes a 1-slot channel.
	var mu sync.Mutex
	var latest *api.Operation
	poke := make(chan struct{}, 1)
	id := op.ID // op.Operation is rewritten below; the handler must not read it

	target := op.listener.AddHandler([]string{api.EventTypeOperation}, func(ev api.Event) {
		o := api.Operation{}
		err := json.Unmarshal(ev.Metadata, &o)
		if err != nil || o.ID != id {
			return
		}

		mu.Lock()
		latest = &o
		mu.Unlock()

		select {
		case poke <- struct{}{}:
		default:
		}
	})
	defer op.listener.RemoveHandler(target)

	err := op.Refresh(ctx)
	if err != nil {
		return err
	}

	if op.StatusCode.IsFinal() {
		return op.result()
	}

	for {
		select {
		case <-poke:
			mu.Lock()
			o := *latest
			mu.Unlock()

			op.Operation = o
			if fn != nil {
				fn(o)
			}

			if o.StatusCode.IsFinal() {
				return op.result()
			}

		case <-op.listener.Done():
			return errEventsLost

		case <-ctx.Done():
			return fmt.Errorf("waiting for operation %s: %w", op.ID, ctx.Err())
		}
	}
}

// waitPoll uses GET /1.0/operations/{id}/wait, for when no event stream is
// available.
func (op *Operation) waitPoll(ctx context.Context, fn func(api.Operation)) error {
	for {
		o := api.Operation{}
		_, err := op.c.queryStruct(ctx, http.MethodGet, op.path()+"/wait?timeout=30", nil, "", &o)
		if err != nil {
			return fmt.Errorf("waiting for operation %s: %w", op.ID, err)
		}

		op.Operation = o
		if fn != nil {
			fn(o)
		}

		if o.StatusCode.IsFinal() {
			return op.result()
		}
	}
}

// waitInBackground starts waiting for the end of the operation at once,
// with GET /1.0/operations/{id}/wait in a goroutine, instead of an event
// listener: one request instead of a websocket and a refresh, and the
// answer is there when the operation ends. For operations whose end the
// caller brings about anyway (an exec's command exiting).
func (op *Operation) waitInBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	op.cancelBG = cancel
	op.bg = make(chan bgResult, 1)

	path := op.path() + "/wait?timeout=30"

	go func() {
		for {
			o := api.Operation{}

			_, err := op.c.queryStruct(ctx, http.MethodGet, path, nil, "", &o)
			if err != nil {
				op.bg <- bgResult{err: fmt.Errorf("waiting for operation %s: %w", op.ID, err)}
				return
			}

			if o.StatusCode.IsFinal() {
				op.bg <- bgResult{op: &o}
				return
			}
		}
	}()
}

// waitBackground waits for the outcome of waitInBackground.
func (op *Operation) waitBackground(ctx context.Context, fn func(api.Operation)) error {
	select {
	case r := <-op.bg:
		op.bg = nil
		if r.err != nil {
			return r.err
		}

		op.Operation = *r.op
		if fn != nil {
			fn(op.Operation)
		}

		return op.result()

	case <-ctx.Done():
		return fmt.Errorf("waiting for operation %s: %w", op.ID, ctx.Err())
	}
}

// Refresh replaces the operation's state with the server's.
func (op *Operation) Refresh(ctx context.Context) error {
	o := api.Operation{}
	_, err := op.c.queryStruct(ctx, http.MethodGet, op.path(), nil, "", &o)
	if err != nil {
		return fmt.Errorf("refreshing operation %s: %w", op.ID, err)
	}

	op.Operation = o

	return nil
}

// Cancel asks the server to cancel the operation.
func (op *Operation) Cancel(ctx context.Context) error {
	_, _, err := op.c.query(ctx, http.MethodDelete, op.path(), nil, "")
	return err
}

// Close releases the event listener (or background wait) of an operation
// that will not be waited for.
func (op *Operation) Close() {
	op.closeListener()

	if op.cancelBG != nil {
		op.cancelBG()
	}
}

// InstanceName returns the instance the operation works on, taken from the
// last element of resources.instances[0] (or containers), like `lxc launch`.
func (op *Operation) InstanceName() string {
	for _, kind := range []string{"instances", "containers"} {
		res := op.Resources[kind]
		if len(res) > 0 {
			i := strings.LastIndex(res[0], "/")
			return pathUnescape(res[0][i+1:])
		}
	}

	return ""
}

func (op *Operation) path() string {
	return "/1.0/operations/" + url.PathEscape(op.ID)
}

func (op *Operation) closeListener() {
	op.listener.Disconnect()
	op.listener = nil
}

// result is the outcome of a finished operation.
func (op *Operation) result() error {
	if op.StatusCode == api.Success {
		return nil
	}

	if op.Err != "" {
		return errors.New(op.Err)
	}

	return fmt.Errorf("operation %s", strings.ToLower(op.StatusCode.String()))
}

// pathUnescape decodes one escaped path element, keeping it as is when it
// is not valid escaping.
func pathUnescape(s string) string {
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}

	return u
}
