// Package operations tracks the daemon's asynchronous operations
// (/1.0/operations) and reports every state change as an "operation" event.
package operations

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/berth-dev/berth/lxd/events"
	"github.com/berth-dev/berth/shared/api"
)

// Retention is how long finished operations stay retrievable. The LXD client
// often fetches an operation right after it ended; LXD keeps them 5 s.
const Retention = time.Minute

// Registry holds the running operations and the recently finished ones.
type Registry struct {
	events    *events.Server
	log       *slog.Logger
	retention time.Duration

	mu  sync.Mutex // guards ops
	ops map[string]*Operation
}

// NewRegistry returns an empty registry sending events to ev (which may be
// nil in tests that do not watch events).
func NewRegistry(ev *events.Server, log *slog.Logger) *Registry {
	return &Registry{events: ev, log: log, retention: Retention, ops: make(map[string]*Operation)}
}

// Create registers a Pending operation and emits its first event.
//
//   - class is api.OperationClassTask, Websocket or Token.
//   - resources maps kinds to API paths ("instances": {"/1.0/instances/c1"});
//     "instances" is mirrored to "containers" as LXD does.
//   - metadata may be nil. The operation owns the map and its values from now on.
//   - run, when set, runs in its own goroutine once Start is called. Its
//     return value decides the final state: nil → Success, error → Failure
//     with err set to its text, context.Canceled or a requested cancel →
//     Cancelled. Without run the operation stays Running until cancelled.
//   - onConnect serves GET /1.0/operations/{id}/websocket (websocket class).
//   - cancel, when set, makes the operation cancellable (may_cancel); it is
//     called by Cancel before run's context is cancelled. Pass a function
//     returning nil when cancelling run's context is enough.
func (reg *Registry) Create(class, description string, resources map[string][]string, metadata map[string]any,
	run RunFunc, onConnect ConnectFunc, cancel CancelFunc) (*Operation, error) {
	switch class {
	case api.OperationClassTask, api.OperationClassWebsocket, api.OperationClassToken:
	default:
		return nil, fmt.Errorf("creating operation: unknown class %q", class)
	}

	op := newOperation(reg, class, description, resources, metadata, run, onConnect, cancel)

	reg.mu.Lock()
	reg.pruneLocked(time.Now())
	reg.ops[op.id] = op
	reg.mu.Unlock()

	op.mu.Lock()
	op.sendLocked()
	op.mu.Unlock()
	reg.log.Debug("operation created", "id", op.id, "class", class, "description", description)
	return op, nil
}

// Get returns the operation with the given id, or a 404 StatusError.
func (reg *Registry) Get(id string) (*Operation, error) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	reg.pruneLocked(time.Now())
	op, ok := reg.ops[id]
	if !ok {
		return nil, api.StatusErrorf(http.StatusNotFound, "operation %q not found", id)
	}

	return op, nil
}

// List returns all known operations, oldest first.
func (reg *Registry) List() []*Operation {
	reg.mu.Lock()
	reg.pruneLocked(time.Now())
	ops := make([]*Operation, 0, len(reg.ops))
	for _, op := range reg.ops {
		ops = append(ops, op)
	}
	reg.mu.Unlock()

	slices.SortFunc(ops, func(a, b *Operation) int { return a.createdAt.Compare(b.createdAt) })
	return ops
}

// AbortOwnedBy aborts every unfinished operation whose owner is fingerprint (its
// certificate was removed) and returns how many there were.
func (reg *Registry) AbortOwnedBy(fingerprint string) int {
	if fingerprint == "" {
		return 0
	}

	n := 0
	for _, op := range reg.List() {
		if op.Owner() == fingerprint && !op.Status().IsFinal() {
			op.Abort()
			n++
		}
	}

	return n
}

// ConnectWebsocket serves GET /1.0/operations/{id}/websocket: it checks that
// the operation exists (404), is a running websocket operation and that a
// secret was given (400), then hands the request to the operation's
// onConnect, which checks the secret (see ws.Session) and upgrades.
// Errors returned before onConnect wrote anything are StatusErrors.
func (reg *Registry) ConnectWebsocket(id string, r *http.Request, w http.ResponseWriter) error {
	op, err := reg.Get(id)
	if err != nil {
		return err
	}

	if op.class != api.OperationClassWebsocket || op.onConnect == nil {
		return api.StatusErrorf(http.StatusBadRequest, "operation %q is not a websocket operation", id)
	}

	if op.Status() != api.Running {
		return api.StatusErrorf(http.StatusBadRequest, "operation %q is not running", id)
	}

	if r.URL.Query().Get("secret") == "" {
		return api.StatusErrorf(http.StatusBadRequest, "missing websocket secret")
	}

	return op.onConnect(op, r, w)
}

// pruneLocked forgets operations that finished more than retention ago.
// Pruning on access keeps memory bounded without a background goroutine.
func (reg *Registry) pruneLocked(now time.Time) {
	for id, op := range reg.ops {
		end := op.finishedAt()
		if !end.IsZero() && now.Sub(end) > reg.retention {
			delete(reg.ops, id)
		}
	}
}

// newID returns a fresh operation id.
func newID() string { return uuid.NewString() }
