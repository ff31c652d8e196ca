package ws

import (
	"io"

	"github.com/gorilla/websocket"
)

// Framing of the data streams: payload bytes travel as binary messages of at
// most BufferSize bytes, and an empty text message (a "barrier") ends one
// direction. A close frame or a broken connection also ends it.

// Send copies r to conn as binary messages until r reports EOF or an error,
// then sends a barrier. The returned channel closes once the barrier has
// been sent (or the connection failed). It must be the only data writer on
// conn while it runs.
func Send(conn *Conn, r io.Reader) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, BufferSize)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				werr := conn.WriteMessage(websocket.BinaryMessage, buf[:n])
				if werr != nil {
					return
				}
			}

			if err != nil {
				break
			}
		}

		_ = SendBarrier(conn)
	}()

	return done
}

// Receive copies the messages read from conn to w until a barrier, a close
// frame, a read error or a write error. Non-empty text messages are treated
// as data. The returned channel closes when done. It must be the only
// reader of conn while it runs.
func Receive(conn *Conn, w io.Writer) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, BufferSize)
		for {
			mt, rd, err := conn.NextReader()
			if err != nil {
				return
			}

			n, err := io.CopyBuffer(w, onlyReader{rd}, buf)
			if err != nil {
				return
			}

			if mt == websocket.TextMessage && n == 0 {
				return
			}
		}
	}()

	return done
}

// onlyReader hides WriterTo/ReaderFrom so io.CopyBuffer really uses buf.
type onlyReader struct{ io.Reader }

// Drain reads and discards messages until the connection fails or closes,
// and returns that error. Someone must read a connection for its pings and
// close frames to be answered.
func Drain(conn *Conn) error {
	for {
		_, r, err := conn.NextReader()
		if err != nil {
			return err
		}

		_, err = io.Copy(io.Discard, r)
		if err != nil {
			return err
		}
	}
}
