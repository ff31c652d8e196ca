package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// queryStruct decodes a sync answer in one pass; errors and answers of another shape
// still come back as the errors they are.
func TestQueryStructAnswers(t *testing.T) {
	answer := ""
	status := http.StatusOK
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"e1"`)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(answer))
	}))
	defer s.Close()

	c, err := client.ConnectHTTPS(s.URL, client.HTTPSArgs{ServerCert: client.EncodeCertificate(s.Certificate())})
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()

	answer = `{"type":"sync","status":"Success","status_code":200,"metadata":[{"name":"c1","status":"Running"},{"name":"c2","status":"Stopped"}]}`
	insts, err := c.GetInstancesFull(ctx)
	if err != nil || len(insts) != 2 || insts[0].Name != "c1" || insts[1].Status != "Stopped" {
		t.Fatalf("sync list = %+v, %v", insts, err)
	}

	answer = `{"type":"sync","status":"Success","status_code":200,"metadata":{"name":"c1","status":"Running"}}`
	inst, etag, err := c.GetInstance(ctx, "c1")
	if err != nil || inst.Name != "c1" || etag != `"e1"` {
		t.Fatalf("sync instance = %+v, %q, %v", inst, etag, err)
	}

	status = http.StatusNotFound
	answer = `{"type":"error","error":"instance \"c9\" not found","error_code":404,"metadata":{}}`
	_, _, err = c.GetInstance(ctx, "c9")
	if !api.StatusErrorCheck(err, http.StatusNotFound) || !strings.Contains(err.Error(), `"c9" not found`) {
		t.Fatalf("error answer = %v", err)
	}

	status = http.StatusOK
	answer = `{"type":"sync","metadata":"not an instance list"}`
	_, err = c.GetInstancesFull(ctx)
	if err == nil || !strings.Contains(err.Error(), "metadata") {
		t.Fatalf("wrong shape = %v", err)
	}
}
