package response

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

type selfList []int

func (selfList) MarshalJSON() ([]byte, error) { return []byte(`"whole"`), nil }

type failing struct{}

func (failing) MarshalJSON() ([]byte, error) { return nil, errors.New("no") }

// TestMarshalMetadataIsMarshal checks that the parts, joined, are json.Marshal's bytes,
// for lists long enough to be split and for what must be encoded whole, on as many CPUs
// as a big host has (more than the list has parts).
func TestMarshalMetadataIsMarshal(t *testing.T) {
	insts := make([]api.InstanceFull, 100)
	for i := range insts {
		insts[i].Name = fmt.Sprintf("c%03d", i)
		insts[i].Config = map[string]string{"user.note": "<&>\u2028", "b": "1", "a": "2"}
		insts[i].State = &api.InstanceState{Pid: int64(i)}
	}

	ints := make([]int, 1000)
	for i := range ints {
		ints[i] = i
	}

	anys := make([]any, 40)
	for i := range anys {
		anys[i] = map[string]any{"i": i, "s": []string{"x"}}
	}

	values := []any{insts, insts[:32], insts[:31], insts[:0], []api.InstanceFull(nil), ints, anys,
		bytes.Repeat([]byte{7}, 100), selfList(ints), map[string]int{"a": 1}, "text", nil}

	for _, procs := range []int{1, 2, 3, 64} {
		prev := runtime.GOMAXPROCS(procs)
		for i, v := range values {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}

			got, err := marshalMetadata(v)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("GOMAXPROCS=%d, value %d (%T): %v\n%.200s\nwant\n%.200s", procs, i, v, err, got, want)
			}
		}

		runtime.GOMAXPROCS(prev)
	}
}

// TestMarshalMetadataError checks that an element that fails to encode fails the whole.
func TestMarshalMetadataError(t *testing.T) {
	prev := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(prev)

	list := make([]any, 64)
	for i := range list {
		list[i] = i
	}

	list[50] = failing{}
	_, err := marshalMetadata(list)
	if err == nil {
		t.Error("a list with an element that fails to encode encoded")
	}
}
