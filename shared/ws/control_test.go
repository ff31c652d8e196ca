package ws

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseControl(t *testing.T) {
	for in, want := range map[string]Control{
		`{"command":"window-resize","args":{"width":"80","height":"24"}}`: {Command: "window-resize", Width: 80, Height: 24},
		`{"command":"signal","signal":15}`:                                {Command: "signal", Signal: 15},
		`{"command":"signal","signal":64,"args":{"x":"y"}}`:               {Command: "signal", Signal: 64},
	} {
		got, err := ParseControl([]byte(in))
		if err != nil || got != want {
			t.Errorf("ParseControl(%s) = %+v, %v; want %+v", in, got, err, want)
		}
	}

	for _, in := range []string{
		`{"command":"window-resize","args":{"width":"0","height":"24"}}`,
		`{"command":"window-resize","args":{"width":"65536","height":"24"}}`,
		`{"command":"window-resize","args":{"width":"-1","height":"24"}}`,
		`{"command":"window-resize","args":{"width":"80"}}`,
		`{"command":"signal","signal":0}`,
		`{"command":"signal","signal":65}`,
		`{"command":"signal","signal":-9}`,
		`{"command":"signal","signal":9.5}`,
		`not json`,
		`{"command":"signal","signal":9} trailing`,
		`{"command":"window-resize","args":{"width":"80","height":"24"},"pad":"` + string(make([]byte, MaxControlMessage)) + `"}`,
	} {
		_, err := ParseControl([]byte(in))
		if err == nil {
			t.Errorf("ParseControl(%.80s) accepted", in)
		}
	}

	_, err := ParseControl([]byte(`{"command":"initial-size"}`))
	if !errors.Is(err, ErrUnknownControl) {
		t.Errorf("unknown command: err = %v, want ErrUnknownControl", err)
	}
}

// FuzzParseControl checks the control-message decoder on any bytes: no panic, accepted
// values are in range, and encoding an accepted message parses back to the same value.
func FuzzParseControl(f *testing.F) {
	for _, s := range []string{
		`{"command":"window-resize","args":{"width":"80","height":"24"}}`,
		`{"command":"signal","signal":9}`,
		`{"command":"window-resize","args":{"width":"+80","height":"024"}}`,
		`{"command":"signal","signal":1e1}`,
		`{"command":"window-resize","args":null}`,
		`{"command":"signal","signal":9,"command":"window-resize"}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseControl(data)
		if err != nil {
			if c != (Control{}) {
				t.Fatalf("refused %q but returned %+v", data, c)
			}

			return
		}

		switch c.Command {
		case "window-resize":
			if c.Width < 1 || c.Width > 0xffff || c.Height < 1 || c.Height > 0xffff || c.Signal != 0 {
				t.Fatalf("accepted %q as %+v", data, c)
			}
		case "signal":
			if c.Signal < 1 || c.Signal > 64 || c.Width != 0 || c.Height != 0 {
				t.Fatalf("accepted %q as %+v", data, c)
			}
		default:
			t.Fatalf("accepted %q with command %q", data, c.Command)
		}

		out, err := json.Marshal(c.Message())
		if err != nil {
			t.Fatal(err)
		}

		again, err := ParseControl(out)
		if err != nil || again != c {
			t.Fatalf("round trip of %+v: %s parses to %+v, %v", c, out, again, err)
		}
	})
}
