package response

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/etag"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/lxd/events"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/shared/api"
)

// render renders resp and decodes the JSON envelope, checking the fields
// every envelope must have.
func render(t *testing.T, resp Response) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	err := resp.Render(w, httptest.NewRequest("GET", "/1.0", nil))
	if err != nil {
		t.Fatalf("rendering: %v", err)
	}

	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}

	body := w.Body.Bytes()
	if !bytes.HasSuffix(body, []byte("}\n")) {
		t.Fatalf("body lacks trailing newline: %q", body)
	}

	var env map[string]any
	err = json.Unmarshal(body, &env)
	if err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}

	for _, k := range []string{"type", "status", "status_code", "operation", "error_code", "error", "metadata"} {
		if _, ok := env[k]; !ok {
			t.Fatalf("envelope lacks %q: %s", k, body)
		}
	}

	return w, env
}

func expect(t *testing.T, env map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if env[k] != v {
			t.Fatalf("%s = %#v, want %#v (envelope %v)", k, env[k], v, env)
		}
	}
}

func TestSyncResponse(t *testing.T) {
	w, env := render(t, SyncResponse(true, []string{"/1.0/instances/c1"}))
	if w.Code != 200 {
		t.Fatalf("code %d", w.Code)
	}

	expect(t, env, map[string]any{"type": "sync", "status": "Success", "status_code": float64(200),
		"operation": "", "error_code": float64(0), "error": ""})
	md := env["metadata"].([]any)
	if len(md) != 1 || md[0] != "/1.0/instances/c1" {
		t.Fatalf("metadata %v", md)
	}

	_, env = render(t, SyncResponse(false, nil))
	expect(t, env, map[string]any{"status": "Failure", "status_code": float64(400), "metadata": nil})
}

func TestEmptySyncResponse(t *testing.T) {
	w, env := render(t, EmptySyncResponse)
	if w.Code != 200 || env["type"] != "sync" {
		t.Fatalf("%d %v", w.Code, env)
	}

	md, ok := env["metadata"].(map[string]any)
	if !ok || len(md) != 0 {
		t.Fatalf("metadata %#v, want {}", env["metadata"])
	}
}

func TestSyncResponseLocation(t *testing.T) {
	w, env := render(t, SyncResponseLocation(true, nil, "/1.0/images/aliases/a"))
	if w.Code != http.StatusCreated || w.Header().Get("Location") != "/1.0/images/aliases/a" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}

	expect(t, env, map[string]any{"type": "sync", "status_code": float64(200)})
}

func TestSyncResponseETagAndCheck(t *testing.T) {
	type writable struct {
		Config map[string]string `json:"config"`
	}

	v := writable{Config: map[string]string{"a": "b"}}
	w, _ := render(t, SyncResponseETag(true, v, v))
	tag := w.Header().Get("ETag")
	hash, err := etag.Hash(v)
	if err != nil {
		t.Fatal(err)
	}

	if len(hash) != 64 || tag != `"`+hash+`"` {
		t.Fatalf("ETag %q, hash %q", tag, hash)
	}

	req := func(ifMatch string) *http.Request {
		r := httptest.NewRequest("PUT", "/1.0/profiles/default", nil)
		if ifMatch != "" {
			r.Header.Set("If-Match", ifMatch)
		}

		return r
	}

	for _, ok := range []string{"", tag, hash, "*"} {
		err := etag.Check(req(ok), v)
		if err != nil {
			t.Fatalf("If-Match %q: %v", ok, err)
		}
	}

	err = etag.Check(req(`"etag1"`), v)
	if !api.StatusErrorCheck(err, http.StatusPreconditionFailed) {
		t.Fatalf("mismatch: %v", err)
	}

	w, env := render(t, SmartError(err))
	if w.Code != 412 {
		t.Fatalf("code %d", w.Code)
	}

	expect(t, env, map[string]any{"type": "error", "error_code": float64(412)})

	// A different object gets a different tag.
	other, _ := etag.Hash(writable{Config: map[string]string{"a": "c"}})
	if other == hash {
		t.Fatal("etag does not depend on content")
	}
}

func TestErrorShapes(t *testing.T) {
	cases := []struct {
		resp Response
		code int
		msg  string
	}{
		{ErrorResponse(418, "teapot"), 418, "teapot"},
		{BadRequest(errors.New("bad")), 400, "bad"},
		{Forbidden(nil), 403, "Forbidden"},
		{NotFound(errors.New("instance not found")), 404, "instance not found"},
		{Conflict(errors.New("exists")), 409, "exists"},
		{PreconditionFailed(errors.New("etag")), 412, "etag"},
		{InternalError(errors.New("boom")), 500, "boom"},
		{NotImplemented(nil), 501, "Not Implemented"},
		{Unavailable(errors.New("later")), 503, "later"},
	}
	for _, c := range cases {
		w, env := render(t, c.resp)
		if w.Code != c.code {
			t.Fatalf("%s: HTTP %d, want %d", c.msg, w.Code, c.code)
		}

		expect(t, env, map[string]any{"type": "error", "status": "", "status_code": float64(0),
			"operation": "", "error_code": float64(c.code), "error": c.msg, "metadata": nil})
		if c.resp.String() != c.msg {
			t.Fatalf("String() = %q", c.resp.String())
		}
	}
}

func TestSmartError(t *testing.T) {
	cases := []struct {
		err  error
		code int
	}{
		{api.StatusErrorf(http.StatusConflict, "instance %q is running", "c1"), 409},
		{fmt.Errorf("starting: %w", api.StatusErrorf(http.StatusBadRequest, "frozen")), 400},
		{fmt.Errorf("loading c1: %w", sql.ErrNoRows), 404},
		{fmt.Errorf("reading: %w", &fs.PathError{Op: "open", Path: "/x", Err: os.ErrNotExist}), 404},
		{fmt.Errorf("reading: %w", os.ErrPermission), 403},
		{errors.New("boom"), 500},
	}
	for _, c := range cases {
		w, env := render(t, SmartError(c.err))
		if w.Code != c.code {
			t.Fatalf("%v: HTTP %d, want %d", c.err, w.Code, c.code)
		}

		expect(t, env, map[string]any{"type": "error", "error_code": float64(c.code), "error": c.err.Error()})
	}

	if SmartError(nil) != EmptySyncResponse {
		t.Fatal("SmartError(nil) is not EmptySyncResponse")
	}
}

// TestUnavailableIs503: an error that says a service the request needs is unavailable
// (the cluster database without a leader) is a 503 with its message, whether the handler
// passes it to SmartError or to InternalError.
func TestUnavailableIs503(t *testing.T) {
	err := fmt.Errorf("loading c1: %w", api.StatusErrorf(http.StatusServiceUnavailable, "cluster database unavailable: no leader"))
	for name, resp := range map[string]Response{"SmartError": SmartError(err), "InternalError": InternalError(err)} {
		w, env := render(t, resp)
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s: HTTP %d, want 503", name, w.Code)
		}

		expect(t, env, map[string]any{"error_code": float64(503), "error": "loading c1: cluster database unavailable: no leader"})
	}

	w, _ := render(t, InternalError(errors.New("boom")))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("InternalError of a plain error: HTTP %d", w.Code)
	}
}

func TestUnencodableMetadataIs500(t *testing.T) {
	w, env := render(t, SyncResponse(true, func() {}))
	if w.Code != 500 || env["type"] != "error" {
		t.Fatalf("%d %v", w.Code, env)
	}
}

func TestOperationResponse(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ev := events.NewServer(log)
	defer ev.Close()
	sub, cancel := ev.Subscribe([]string{api.EventTypeOperation})
	defer cancel()

	reg := operations.NewRegistry(ev, log)
	release := make(chan struct{})
	op, err := reg.Create(api.OperationClassTask, "Creating instance",
		map[string][]string{"instances": {"/1.0/instances/c1"}}, nil,
		func(_ context.Context, _ *operations.Operation) error { <-release; return nil }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	defer close(release)
	w, env := render(t, OperationResponse(op))
	if w.Code != http.StatusAccepted || w.Header().Get("Location") != "/1.0/operations/"+op.ID() {
		t.Fatalf("%d %v", w.Code, w.Header())
	}

	expect(t, env, map[string]any{"type": "async", "status": "Operation created", "status_code": float64(100),
		"operation": "/1.0/operations/" + op.ID(), "error_code": float64(0), "error": ""})
	md := env["metadata"].(map[string]any)
	if md["id"] != op.ID() || md["status"] != "Running" || md["status_code"] != float64(103) || md["class"] != "task" {
		t.Fatalf("operation metadata %v", md)
	}

	inst := md["resources"].(map[string]any)["instances"].([]any)
	if inst[0] != "/1.0/instances/c1" {
		t.Fatalf("resources %v", md["resources"])
	}

	// The Running event was emitted before the response was written.
	var codes []api.StatusCode
	for len(codes) < 2 {
		select {
		case e := <-sub:
			var o api.Operation
			_ = json.Unmarshal(e.Metadata, &o)
			codes = append(codes, o.StatusCode)
		default:
			t.Fatalf("events so far %v", codes)
		}
	}

	if codes[0] != api.Pending || codes[1] != api.Running {
		t.Fatalf("event codes %v", codes)
	}
}

func TestRawResponse(t *testing.T) {
	mod := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	resp := RawResponse("hosts", 5, mod, map[string]string{"X-LXD-mode": "0644"}, strings.NewReader("hello"))
	w := httptest.NewRecorder()
	err := resp.Render(w, nil)
	if err != nil {
		t.Fatal(err)
	}

	h := w.Header()
	if w.Code != 200 || w.Body.String() != "hello" || h.Get("Content-Type") != "application/octet-stream" ||
		h.Get("Content-Length") != "5" || h.Get("Content-Disposition") != "inline;filename=hosts" ||
		h.Get("X-LXD-mode") != "0644" || h.Get("Last-Modified") != "Tue, 02 Jan 2024 03:04:05 GMT" {
		t.Fatalf("%d %q %v", w.Code, w.Body.String(), h)
	}
}

func TestFileResponse(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "console.log")
	err := os.WriteFile(p, []byte("boot\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	w := httptest.NewRecorder()
	err = FileResponse(p, "", nil).Render(w, nil)
	if err != nil {
		t.Fatal(err)
	}

	if w.Body.String() != "boot\n" || w.Header().Get("Content-Length") != "5" ||
		w.Header().Get("Content-Disposition") != "inline;filename=console.log" {
		t.Fatalf("%q %v", w.Body.String(), w.Header())
	}

	w, env := render(t, FileResponse(filepath.Join(dir, "missing"), "x", nil))
	if w.Code != 404 || env["type"] != "error" {
		t.Fatalf("%d %v", w.Code, env)
	}
}

func TestManualResponse(t *testing.T) {
	// An error before anything was written becomes a JSON error.
	w, env := render(t, ManualResponse(func(http.ResponseWriter) error {
		return api.StatusErrorf(http.StatusForbidden, "wrong secret")
	}))
	if w.Code != 403 {
		t.Fatalf("code %d", w.Code)
	}

	expect(t, env, map[string]any{"error": "wrong secret"})

	// A websocket upgrade works through the wrapper.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp := ManualResponse(func(w http.ResponseWriter) error {
			up := websocket.Upgrader{}
			conn, err := up.Upgrade(w, r, nil)
			if err != nil {
				return err
			}

			defer conn.Close()
			return conn.WriteMessage(websocket.TextMessage, []byte("hi"))
		})
		err := resp.Render(w, r)
		if err != nil {
			t.Errorf("rendering: %v", err)
		}
	}))
	defer srv.Close()

	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}

	defer c.Close()
	_, data, err := c.ReadMessage()
	if err != nil || string(data) != "hi" {
		t.Fatalf("%q %v", data, err)
	}
}

// The envelope written around already-encoded metadata is byte for byte what encoding
// the whole envelope gives.
func TestSyncEnvelopeBytes(t *testing.T) {
	md := map[string]any{"name": "c1", "config": map[string]string{"b": "2", "a": "<&>"}, "list": []int{1, 2}}
	for _, ok := range []bool{true, false} {
		w := httptest.NewRecorder()
		err := SyncResponse(ok, md).Render(w, httptest.NewRequest(http.MethodGet, "/1.0", nil))
		if err != nil {
			t.Fatal(err)
		}

		raw, _ := json.Marshal(md)
		want := api.Response{Type: api.SyncResponse, Status: api.Success.String(), StatusCode: int(api.Success), Metadata: raw}
		if !ok {
			want.Status, want.StatusCode = api.Failure.String(), int(api.Failure)
		}

		wantBytes, _ := json.Marshal(want)
		if got := w.Body.String(); got != string(wantBytes)+"\n" {
			t.Errorf("envelope\n%s\nwant\n%s", got, wantBytes)
		}
	}
}
