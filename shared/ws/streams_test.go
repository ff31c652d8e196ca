package ws

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// pair returns a connected server-side and client-side websocket.
func pair(t *testing.T) (server, client *Conn) {
	t.Helper()
	ch := make(chan *Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r)
		if err != nil {
			t.Errorf("upgrading: %v", err)
			return
		}

		ch <- c
	}))
	t.Cleanup(srv.Close)

	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dialing: %v", err)
	}

	t.Cleanup(func() { _ = c.Close() })
	select {
	case s := <-ch:
		t.Cleanup(func() { _ = s.Close() })
		return s, c
	case <-time.After(5 * time.Second):
		t.Fatal("no server connection")
	}

	return nil, nil
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestSendFramesAndBarrier(t *testing.T) {
	server, client := pair(t)

	// 300 KiB must arrive in binary messages no larger than BufferSize.
	payload := bytes.Repeat([]byte("abcdefgh"), 300*1024/8)
	done := Send(server, bytes.NewReader(payload))

	var got []byte
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		mt, data, err := client.ReadMessage()
		if err != nil {
			t.Fatalf("reading: %v", err)
		}

		if mt == websocket.TextMessage {
			if len(data) != 0 {
				t.Fatalf("unexpected non-empty text message %q", data)
			}

			break
		}

		if mt != websocket.BinaryMessage {
			t.Fatalf("message type %d, want binary", mt)
		}

		if len(data) > BufferSize {
			t.Fatalf("message of %d bytes exceeds %d", len(data), BufferSize)
		}

		got = append(got, data...)
	}

	wait(t, done, "Send")
	if !bytes.Equal(got, payload) {
		t.Fatalf("got %d bytes, want %d identical bytes", len(got), len(payload))
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestReceiveStopsAtBarrier(t *testing.T) {
	server, client := pair(t)
	var out syncBuffer
	done := Receive(server, &out)

	for _, s := range []string{"in-", "data\n"} {
		err := client.WriteMessage(websocket.BinaryMessage, []byte(s))
		if err != nil {
			t.Fatalf("writing: %v", err)
		}
	}

	err := client.WriteMessage(websocket.TextMessage, nil)
	if err != nil {
		t.Fatalf("writing barrier: %v", err)
	}

	wait(t, done, "Receive")
	if out.String() != "in-data\n" {
		t.Fatalf("got %q", out.String())
	}

	// Data after the barrier must not be consumed.
	err = client.WriteMessage(websocket.BinaryMessage, []byte("late"))
	if err != nil {
		t.Fatalf("writing: %v", err)
	}

	_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, data, err := server.ReadMessage()
	if err != nil || mt != websocket.BinaryMessage || string(data) != "late" {
		t.Fatalf("after barrier got %d %q %v", mt, data, err)
	}
}

func TestReceiveStopsOnClose(t *testing.T) {
	server, client := pair(t)
	var out syncBuffer
	done := Receive(server, &out)

	err := client.WriteMessage(websocket.BinaryMessage, []byte("x"))
	if err != nil {
		t.Fatalf("writing: %v", err)
	}

	err = Close(client, "bye")
	if err != nil {
		t.Fatalf("closing: %v", err)
	}

	wait(t, done, "Receive after close")
	if out.String() != "x" {
		t.Fatalf("got %q", out.String())
	}
}

func TestKeepAliveSendsPings(t *testing.T) {
	server, client := pair(t)
	pings := make(chan struct{}, 10)
	client.SetPingHandler(func(string) error {
		pings <- struct{}{}
		return nil
	})
	go func() {
		for {
			_, _, err := client.ReadMessage()
			if err != nil {
				return
			}
		}
	}()

	stop := KeepAlive(server, 20*time.Millisecond)
	for i := 0; i < 2; i++ {
		select {
		case <-pings:
		case <-time.After(5 * time.Second):
			t.Fatal("no ping received")
		}
	}

	stop()
	stop() // idempotent
}
