package response

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

type rawResponse struct {
	filename string
	size     int64
	modtime  time.Time
	headers  map[string]string
	body     io.Reader
	path     string // set by FileResponse: opened at render time
}

// RawResponse answers 200 with an application/octet-stream body read from
// body (closed afterwards if it is an io.Closer). size < 0 omits
// Content-Length; a zero modtime omits Last-Modified. headers are added as
// given (e.g. X-LXD-uid).
func RawResponse(filename string, size int64, modtime time.Time, headers map[string]string, body io.Reader) Response {
	return &rawResponse{filename: filename, size: size, modtime: modtime, headers: headers, body: body}
}

// FileResponse serves the file at path as a raw body named filename
// (base name of path when empty). Open errors become JSON errors through
// SmartError (missing file → 404).
func FileResponse(path, filename string, headers map[string]string) Response {
	if filename == "" {
		filename = filepath.Base(path)
	}

	return &rawResponse{filename: filename, headers: headers, path: path, size: -1}
}

func (f *rawResponse) Render(w http.ResponseWriter, _ *http.Request) error {
	body, size, modtime := f.body, f.size, f.modtime
	if f.path != "" {
		file, err := os.Open(f.path)
		if err != nil {
			return SmartError(fmt.Errorf("opening %q: %w", f.path, err)).Render(w, nil)
		}

		defer file.Close()
		st, err := file.Stat()
		if err != nil {
			return SmartError(fmt.Errorf("reading metadata of %q: %w", f.path, err)).Render(w, nil)
		}

		body, size, modtime = file, st.Size(), st.ModTime()
	} else if c, ok := body.(io.Closer); ok {
		defer c.Close()
	}

	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", "inline;filename="+f.filename)
	if size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
	}

	if !modtime.IsZero() {
		h.Set("Last-Modified", modtime.UTC().Format(http.TimeFormat))
	}

	for k, v := range f.headers {
		h.Set(k, v)
	}

	w.WriteHeader(http.StatusOK)
	if body == nil {
		return nil
	}

	_, err := io.Copy(w, body)
	if err != nil {
		return fmt.Errorf("sending %q: %w", f.filename, err)
	}

	return nil
}

func (f *rawResponse) String() string { return f.filename }
