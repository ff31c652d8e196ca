package api

import "encoding/json"

// ResponseType is the "type" field of every JSON response.
type ResponseType string

// The three envelope kinds.
const (
	SyncResponse  ResponseType = "sync"
	AsyncResponse ResponseType = "async"
	ErrorResponse ResponseType = "error"
)

// Response is the envelope wrapping every non-raw response body.
type Response struct {
	Type       ResponseType    `json:"type" yaml:"type"`
	Status     string          `json:"status" yaml:"status"`
	StatusCode int             `json:"status_code" yaml:"status_code"`
	Operation  string          `json:"operation" yaml:"operation"`
	ErrorCode  int             `json:"error_code" yaml:"error_code"`
	Error      string          `json:"error" yaml:"error"`
	Metadata   json.RawMessage `json:"metadata" yaml:"metadata"`
}

// MetadataAsOperation decodes the metadata of an async response.
func (r *Response) MetadataAsOperation() (*Operation, error) {
	op := Operation{}
	err := json.Unmarshal(r.Metadata, &op)
	if err != nil {
		return nil, err
	}

	return &op, nil
}
