package instance

import (
	"testing"
)

func TestRequestVolatileAndKeys(t *testing.T) {
	if err := ValidateRequestVolatile(map[string]string{"volatile.eth0.hwaddr": "00:16:3e:00:00:01", "user.x": "1"}); err != nil {
		t.Errorf("a MAC refused: %v", err)
	}

	for _, k := range []string{"volatile.eth0.host_name", "volatile.idmap.base", "volatile.uuid"} {
		if err := ValidateRequestVolatile(map[string]string{k: "x"}); err == nil {
			t.Errorf("%s accepted in a request", k)
		}
	}

	for _, k := range []string{"user.a b", "user.a\nb", "user.a=b", "image.\x01"} {
		if err := ValidateConfig(map[string]string{k: "x"}); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}

	for _, n := range []string{".", ".."} {
		if err := ValidateDevices(map[string]map[string]string{n: {"type": "none"}}); err == nil {
			t.Errorf("device name %q accepted", n)
		}
	}
}
