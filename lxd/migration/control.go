package migration

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/shared/ws"
)

// Websocket message types (RFC 6455 opcodes), as the ws.Conn methods take them.
const (
	textMessage   = 1
	binaryMessage = 2
)

// MaxControlMessage bounds one control message: a header with thousands of snapshots and
// their config fits many times over.
const MaxControlMessage = 4 << 20

// MaxSnapshots bounds the snapshots an offer may list.
const MaxSnapshots = 1000

// Control is the control websocket of a transfer. Send and Recv may run concurrently
// with each other, not with themselves.
type Control struct {
	conn *ws.Conn
}

// NewControl wraps the control websocket conn.
func NewControl(conn *ws.Conn) *Control { return &Control{conn: conn} }

// Send writes one protobuf message.
func (c *Control) Send(m proto.Message) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding migration message: %w", err)
	}

	err = c.conn.WriteMessage(binaryMessage, data)
	if err != nil {
		return fmt.Errorf("sending migration message: %w", err)
	}

	return nil
}

// Recv reads one protobuf message into m: a binary message of at most MaxControlMessage
// bytes.
func (c *Control) Recv(m proto.Message) error {
	mt, r, err := c.conn.NextReader()
	if err != nil {
		return fmt.Errorf("reading migration message: %w", err)
	}

	if mt != binaryMessage {
		return errors.New("reading migration message: not a binary message")
	}

	data, err := io.ReadAll(io.LimitReader(r, MaxControlMessage+1))
	if err != nil {
		return fmt.Errorf("reading migration message: %w", err)
	}

	if len(data) > MaxControlMessage {
		return fmt.Errorf("reading migration message: over %d bytes", MaxControlMessage)
	}

	err = proto.Unmarshal(data, m)
	if err != nil {
		return fmt.Errorf("decoding migration message: %w", err)
	}

	return nil
}

// SendResult sends the final MigrationControl: success for a nil err, else its message.
func (c *Control) SendResult(err error) error {
	msg := &MigrationControl{Success: proto.Bool(err == nil)}
	if err != nil {
		msg.Message = proto.String(err.Error())
	}

	return c.Send(msg)
}

// ResultError is the error a received MigrationControl reports (nil for success).
func ResultError(m *MigrationControl) error {
	if m.GetSuccess() {
		return nil
	}

	if m.GetMessage() == "" {
		return errors.New("the other side failed")
	}

	return fmt.Errorf("the other side failed: %s", m.GetMessage())
}
