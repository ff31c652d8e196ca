package response

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/shared/api"
)

type operationResponse struct {
	op *operations.Operation
}

// OperationResponse starts op (if still Pending) and answers 202 with a
// Location header and an async envelope whose metadata is the operation.
// Starting here means the client always sees the op at least Running, and
// the Running event precedes the 202, as with LXD.
func OperationResponse(op *operations.Operation) Response {
	return &operationResponse{op: op}
}

func (o *operationResponse) Render(w http.ResponseWriter, _ *http.Request) error {
	err := o.op.Start()
	if err != nil {
		return SmartError(fmt.Errorf("starting operation: %w", err)).Render(w, nil)
	}

	md, err := json.Marshal(o.op.Render())
	if err != nil {
		return InternalError(fmt.Errorf("encoding operation: %w", err)).Render(w, nil)
	}

	w.Header().Set("Location", o.op.URL())
	return writeJSON(w, http.StatusAccepted, api.Response{
		Type:       api.AsyncResponse,
		Status:     api.OperationCreated.String(),
		StatusCode: int(api.OperationCreated),
		Operation:  o.op.URL(),
		Metadata:   md,
	})
}

func (o *operationResponse) String() string { return o.op.ID() }
