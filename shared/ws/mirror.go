package ws

import (
	"errors"
	"io"

	"github.com/gorilla/websocket"
)

// Framing shared with the LXD client: payload bytes travel as binary messages
// of at most BufferSize bytes, and an empty text message (a "barrier") ends a
// stream. A close frame or a broken connection also ends it.

// Mirror connects conn and rw both ways: rw's output goes to conn
// (MirrorRead) and conn's messages go to rw (MirrorWrite). When the
// conn→rw direction ends (client barrier, close or error), rw is closed, as
// LXD does with its PTY side, which in turn ends the rw→conn direction.
// Neither direction closes conn.
func Mirror(conn *Conn, rw io.ReadWriteCloser) (readDone, writeDone chan struct{}) {
	readDone = MirrorRead(conn, rw)
	inner := MirrorWrite(conn, rw)
	writeDone = make(chan struct{})
	go func() {
		<-inner
		_ = rw.Close()
		close(writeDone)
	}()

	return readDone, writeDone
}

// MirrorRead copies r to conn as binary messages until r reports EOF or an
// error, then sends a barrier. The returned channel closes once the barrier
// has been sent (or the connection failed). It must be the only data writer
// on conn while it runs.
func MirrorRead(conn *Conn, r io.Reader) chan struct{} {
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

// MirrorWrite copies the binary messages read from conn to w until a barrier
// (empty text message), a close frame, a read error or a write error. Non-empty
// text messages are treated as data. The returned channel closes when done.
// It must be the only reader of conn while it runs.
func MirrorWrite(conn *Conn, w io.Writer) chan struct{} {
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

// IsClosed reports whether err means the peer closed the connection, either
// with a close frame or by dropping it.
func IsClosed(err error) bool {
	if err == nil {
		return false
	}

	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return true
	}

	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
