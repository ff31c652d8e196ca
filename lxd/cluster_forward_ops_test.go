package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/berth-dev/berth/lxd/trust"
)

// An unknown operation id from an untrusted caller is answered here (404) without
// asking any member; a trusted caller's is still looked for on the members.
func TestOperationRoutingUntrustedNoFanout(t *testing.T) {
	d, _, rm, _ := clusterTestDaemon(t)
	ep := APIEndpoint{Path: "operations/{id}/websocket"}
	req := func(id string, c trust.Caller) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/1.0/operations/"+id+"/websocket?secret=x", nil)
		r = mux.SetURLVars(r, map[string]string{"id": id})
		return r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
	}

	_, ok := d.forwardIfRemote(ep, req("op-untrusted-probe", trust.Caller{Via: trust.ViaTLS, UID: -1, PID: -1}))
	if ok {
		t.Fatal("an untrusted caller's unknown operation was forwarded")
	}

	for _, l := range rm.log() {
		if strings.Contains(l, "op-untrusted-probe") {
			t.Fatalf("an untrusted caller's unknown operation was asked of a member: %s", l)
		}
	}

	_, ok = d.forwardIfRemote(ep, req("op-trusted-probe", trust.Caller{Via: trust.ViaUnix, UID: 0}))
	if !ok {
		t.Fatal("a trusted caller's operation on a member was not found")
	}
}
