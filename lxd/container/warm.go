package container

import (
	"encoding/json"
	"io"

	"github.com/berth-dev/berth/lxd/confine"
	"github.com/berth-dev/berth/lxd/setup"
)

// warmCodecs has encoding/json build, while a spare waits, the codecs of what its start
// decodes and sends: the spec, init's config and the sync messages, the start's answer.
// Built on first use, they cost the start's path a few hundred microseconds on the
// development VM (reflection over the types, and the first page faults of that code).
// Encoding a type builds the encoders of every type it holds; decoding that output back
// walks the decoders of what it shows.
func warmCodecs() {
	samples := []any{
		&Spec{Mounts: []Mount{{}}, Env: map[string]string{"": ""}, Unmounts: []string{""}, Seccomp: &confine.Filter{}},
		&setup.SyncMsg{Config: &setup.Config{Mounts: []setup.Mount{{}}, Env: []string{""}, Init: []string{""}, DropCaps: []int{0}}},
		&startResult{},
	}

	for _, v := range samples {
		b, err := json.Marshal(v)
		if err == nil {
			_ = json.Unmarshal(b, v)
		}

		_ = json.NewEncoder(io.Discard).Encode(v)
	}
}
