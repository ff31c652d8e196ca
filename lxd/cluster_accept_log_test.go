package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/trust"
)

// The accept call is open to anyone (its secret is checked in the handler): a client
// guessing secrets, or sending names the size of its body, must not write the daemon's
// log at the rate it sends (issue 16 review). Refusals go through the audit's
// rate-limited log, without the client's strings.
func TestClusterAcceptRefusalsDoNotFloodTheLog(t *testing.T) {
	d := newFakeClusterDaemon(t, threeMembers...)
	var logged bytes.Buffer
	d.log = slog.New(slog.NewTextHandler(&logged, nil))
	d.audit = trust.NewAudit(d.log)

	junk := strings.Repeat("A", 32<<10)
	for i := range 200 {
		req := cluster.AcceptRequest{Name: "n9", Address: "10.251.0.9:8443", Secret: "wrong"}
		if i%2 == 1 {
			req.Name = junk // a 400, with the name in its message
		}

		body, _ := json.Marshal(req)
		r := httptest.NewRequest("POST", "/internal/cluster/accept", bytes.NewReader(body))
		r.RemoteAddr = "192.0.2.7:40000"
		r = r.WithContext(context.WithValue(r.Context(), callerKey{}, trust.Caller{Via: trust.ViaTLS, UID: -1, PID: -1}))
		w := httptest.NewRecorder()
		_ = internalClusterAccept(d, r).Render(w, r)
		if w.Code < 400 || w.Code >= 500 {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}

	if strings.Contains(logged.String(), junk[:1024]) {
		t.Fatal("the client's name went to the log")
	}

	if n := strings.Count(logged.String(), "\n"); n > 30 { // the audit allows 20 a minute per source
		t.Fatalf("200 refused joins wrote %d log lines (%d bytes):\n%s", n, logged.Len(), logged.String())
	}
}
