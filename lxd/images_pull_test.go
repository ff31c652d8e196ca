package main

import (
	"net/http"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// The source of a pull is checked before any connection, each refusal with its status.
func TestPullSourceCheck(t *testing.T) {
	ok := pullSource{Server: "https://127.0.0.1:8443", Protocol: "lxd", Alias: "debian/12"}
	if err := ok.check(); err != nil {
		t.Fatalf("valid source refused: %v", err)
	}

	// A simplestreams server may have a path (as cloud-images.ubuntu.com/releases).
	ss := pullSource{Server: "https://h:8443/releases/", Protocol: "simplestreams", Alias: "debian/12"}
	if err := ss.check(); err != nil {
		t.Fatalf("valid simplestreams source refused: %v", err)
	}

	for name, tc := range map[string]struct {
		src  pullSource
		code int
	}{
		"ss plain http":  {pullSource{Server: "http://h/x", Protocol: "simplestreams", Alias: "a"}, http.StatusBadRequest},
		"ss query":       {pullSource{Server: "https://h/x?a=b", Protocol: "simplestreams", Alias: "a"}, http.StatusBadRequest},
		"ss user":        {pullSource{Server: "https://u@h/x", Protocol: "simplestreams", Alias: "a"}, http.StatusBadRequest},
		"ss no image":    {pullSource{Server: "https://h/x", Protocol: "simplestreams"}, http.StatusBadRequest},
		"ss bad cert":    {pullSource{Server: "https://h", Protocol: "simplestreams", Alias: "a", Certificate: "x"}, http.StatusBadRequest},
		"protocol":       {pullSource{Server: ok.Server, Protocol: "ftp", Alias: "a"}, http.StatusBadRequest},
		"no server":      {pullSource{Alias: "a"}, http.StatusBadRequest},
		"plain http":     {pullSource{Server: "http://127.0.0.1:8443", Alias: "a"}, http.StatusBadRequest},
		"path in server": {pullSource{Server: "https://h/x", Alias: "a"}, http.StatusBadRequest},
		"no image":       {pullSource{Server: ok.Server}, http.StatusBadRequest},
		"bad cert":       {pullSource{Server: ok.Server, Alias: "a", Certificate: "not pem"}, http.StatusBadRequest},
	} {
		err := tc.src.check()
		if api.StatusCodeOf(err) != tc.code {
			t.Errorf("%s: %v (status %d), want status %d", name, err, api.StatusCodeOf(err), tc.code)
		}
	}
}
