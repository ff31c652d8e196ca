package response

import (
	"bufio"
	"net"
	"net/http"
)

type manualResponse struct {
	hook func(w http.ResponseWriter) error
}

// ManualResponse hands the ResponseWriter to hook, for websocket upgrades and
// other streaming. If hook fails before writing anything (or hijacking the
// connection), its error is rendered through SmartError, so StatusErrors
// returned by pre-upgrade checks reach the client as JSON errors.
func ManualResponse(hook func(w http.ResponseWriter) error) Response {
	return &manualResponse{hook: hook}
}

func (m *manualResponse) Render(w http.ResponseWriter, _ *http.Request) error {
	tw := &trackingWriter{ResponseWriter: w}
	err := m.hook(tw)
	if err != nil && !tw.used {
		return SmartError(err).Render(w, nil)
	}

	return err
}

func (m *manualResponse) String() string { return "manual" }

// trackingWriter records whether anything was written or hijacked while
// keeping http.Hijacker (needed by websocket upgrades) and http.Flusher.
type trackingWriter struct {
	http.ResponseWriter
	used bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.used = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.used = true
	return t.ResponseWriter.Write(b)
}

func (t *trackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	t.used = true
	return http.NewResponseController(t.ResponseWriter).Hijack()
}

func (t *trackingWriter) Flush() {
	_ = http.NewResponseController(t.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
