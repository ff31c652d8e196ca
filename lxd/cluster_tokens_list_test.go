package main

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// A token listed through a member that did not issue it: the issuer's own operation
// (with its secret) hides the stand-in made from the database row; a stand-in whose
// issuer did not answer stays.
func TestDropHeldStandIns(t *testing.T) {
	h1, h2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	objs := map[string][]api.Operation{"running": {
		{ID: "real-1", Class: api.OperationClassToken, Metadata: map[string]any{metaSecretHash: h1, metaSecret: "s"}},
		{ID: standInPrefix + h1[:32], Class: api.OperationClassToken, Metadata: map[string]any{metaSecret: ""}},
		{ID: standInPrefix + h2[:32], Class: api.OperationClassToken, Metadata: map[string]any{metaSecret: ""}},
		{ID: "task", Class: api.OperationClassTask},
	}}

	dropHeldStandIns(objs)
	var ids []string
	for _, op := range objs["running"] {
		ids = append(ids, op.ID)
	}

	want := []string{"real-1", standInPrefix + h2[:32], "task"}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("after dropping held stand-ins: %v, want %v", ids, want)
	}
}
