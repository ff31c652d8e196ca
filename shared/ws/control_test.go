package ws

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
)

func TestParseControl(t *testing.T) {
	encode := func(m api.InstanceExecControl) string {
		data, _ := json.Marshal(m)
		return string(data)
	}

	good := []struct {
		in   string
		want Control
	}{
		{encode(ResizeMessage(120, 40)), Control{Command: api.ExecControlWindowResize, Width: 120, Height: 40}},
		{encode(ResizeMessage(0, 0)), Control{Command: api.ExecControlWindowResize}},
		{encode(SignalMessage(15)), Control{Command: api.ExecControlSignal, Signal: 15}},
		{encode(SignalMessage(64)), Control{Command: api.ExecControlSignal, Signal: 64}},
	}

	for _, c := range good {
		got, err := ParseControl([]byte(c.in))
		if err != nil || got != c.want {
			t.Errorf("ParseControl(%s) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}

	bad := map[string]string{
		`{"command":"window-resize","args":{"width":"x","height":"2"}}`:                          "not a number",
		`{"command":"window-resize","args":{"width":"1"}}`:                                       "height",
		`{"command":"window-resize","args":{"width":"-1","height":"2"}}`:                         "between",
		`{"command":"window-resize","args":{"width":"70000","height":"2"}}`:                      "between",
		`{"command":"signal","signal":0}`:                                                        "between 1 and 64",
		`{"command":"signal","signal":65}`:                                                       "between 1 and 64",
		`{"command":"reboot"}`:                                                                   "unknown control command",
		`{"command":`:                                                                            "malformed",
		`{"command":"signal","signal":9,"pad":"` + strings.Repeat("x", MaxControlMessage) + `"}`: "over",
	}

	for in, want := range bad {
		_, err := ParseControl([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseControl(%.60s) = %v, want an error mentioning %q", in, err, want)
		}
	}
}

// The server applies good messages in order, skips bad ones, and fails the
// socket on one over the size limit.
func TestServeControl(t *testing.T) {
	server, client := pair(t)

	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)

	go func() {
		done <- ServeControl(server, Controls{
			Resize: func(w, h int) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, "resize "+itoa(w)+"x"+itoa(h))
			},
			Signal: func(sig int) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, "signal "+itoa(sig))
			},
		})
	}()

	cc := NewControlConn(client)
	for _, m := range []api.InstanceExecControl{ResizeMessage(80, 24), SignalMessage(0), {Command: "nope"}, SignalMessage(2)} {
		err := cc.Send(m)
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}

	err := client.WriteMessage(websocket.TextMessage, []byte(strings.Repeat(" ", MaxControlMessage+1)))
	if err != nil {
		t.Fatalf("writing: %v", err)
	}

	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "read limit") {
			t.Errorf("ServeControl ended with %v, want the read limit", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an oversized control message did not end ServeControl")
	}

	mu.Lock()
	defer mu.Unlock()

	if strings.Join(got, ",") != "resize 80x24,signal 2" {
		t.Errorf("applied %q", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// FuzzParseControl: whatever a client sends on the control socket, an accepted message
// is in range and survives being encoded and parsed again; a refused one yields nothing.
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

		var msg api.InstanceExecControl
		switch c.Command {
		case api.ExecControlWindowResize:
			if c.Width < 0 || c.Width > maxTermSize || c.Height < 0 || c.Height > maxTermSize || c.Signal != 0 {
				t.Fatalf("accepted %q as %+v", data, c)
			}

			msg = ResizeMessage(c.Width, c.Height)
		case api.ExecControlSignal:
			if c.Signal < 1 || c.Signal > maxSignal || c.Width != 0 || c.Height != 0 {
				t.Fatalf("accepted %q as %+v", data, c)
			}

			msg = SignalMessage(c.Signal)
		default:
			t.Fatalf("accepted %q with command %q", data, c.Command)
		}

		out, err := json.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}

		again, err := ParseControl(out)
		if err != nil || again != c {
			t.Fatalf("round trip of %+v: %s parses to %+v, %v", c, out, again, err)
		}
	})
}
