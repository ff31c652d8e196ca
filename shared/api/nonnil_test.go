package api

import "testing"

func TestNonNil(t *testing.T) {
	var nilConfig map[string]string
	got := NonNil(nilConfig)
	if got == nil || len(got) != 0 {
		t.Fatalf("NonNil(nil) = %#v", got)
	}

	got["a"] = "b" // writable

	devices := map[string]map[string]string{"root": {"type": "disk"}}
	if out := NonNil(devices); out["root"]["type"] != "disk" {
		t.Fatalf("NonNil changed a non-nil map: %#v", out)
	}
}
