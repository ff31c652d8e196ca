package migration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// maxIndexFrame bounds the index frame a source may send.
const maxIndexFrame = 16 << 20

// Time limits of the control exchanges: a header is answered at once; the target's verdict
// comes once the instance is made from what it received.
const (
	headerTimeout = time.Minute
	resultTimeout = 10 * time.Minute
)

// recvWithin reads one control message, waiting at most d.
func recvWithin(c *Control, m proto.Message, d time.Duration) error {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	defer func() { _ = c.conn.SetReadDeadline(time.Time{}) }()
	return c.Recv(m)
}

// Source is the sending side of one transfer, over its two websockets.
type Source struct {
	Control, FS *ws.Conn
	Snapshots   []api.InstanceSnapshot // sent oldest first, before the instance
	Running     bool                   // copied as of now, without its state
	// SendTree sends one volume over FS with the agreed rsync features: snapshot snap, or
	// the instance for "".
	SendTree func(ctx context.Context, snap string, features []string) error
}

// Run offers the instance, sends what the target accepts and returns the target's
// verdict. A failure on this side is reported to the target before it is returned.
func (s *Source) Run(ctx context.Context) error {
	c := NewControl(s.Control)
	err := c.Send(Offer(s.Snapshots, s.Running))
	if err != nil {
		return err
	}

	answer := &MigrationHeader{}
	err = recvWithin(c, answer, headerTimeout)
	if err != nil {
		return fmt.Errorf("reading the target's answer: %w", err)
	}

	err = s.send(ctx, answer)
	if err != nil {
		_ = c.SendResult(err)
		return err
	}

	res := &MigrationControl{}
	err = recvWithin(c, res, resultTimeout)
	if err != nil {
		return fmt.Errorf("reading the target's result: %w", err)
	}

	return ResultError(res)
}

func (s *Source) send(ctx context.Context, answer *MigrationHeader) error {
	if answer.GetFs() != MigrationFSType_RSYNC {
		return fmt.Errorf("the target asked for filesystem type %s (rsync only)", answer.GetFs())
	}

	features := SendFeatures(answer)
	names := map[string]bool{}
	for _, n := range answer.GetSnapshotNames() {
		names[n] = true
	}

	for _, snap := range s.Snapshots {
		if !names[snap.Name] {
			continue
		}

		err := s.SendTree(ctx, snap.Name, features)
		if err != nil {
			return fmt.Errorf("sending snapshot %q: %w", snap.Name, err)
		}
	}

	return s.SendTree(ctx, "", features)
}

// Sink is the receiving side of one transfer, over its two websockets.
type Sink struct {
	Control, FS *ws.Conn
	Offer       *MigrationHeader // the source's, once Accept read it
	// Have, when not nil, makes this a refresh of an existing instance: its snapshots'
	// creation dates by name (RefreshAnswer). The answer then lists only the snapshots
	// to send, and says refresh.
	Have    map[string]int64
	control *Control
	failed  chan error
}

// Accept reads the source's offer and answers it. The answer lists the snapshots to
// receive (oldest first, SnapshotFromProto) and the rsync features (FeatureNames).
func (s *Sink) Accept(ctx context.Context) (*MigrationHeader, error) {
	s.control = NewControl(s.Control)
	offer := &MigrationHeader{}
	err := recvWithin(s.control, offer, headerTimeout)
	if err != nil {
		return nil, fmt.Errorf("reading the source's offer: %w", err)
	}

	s.Offer = offer
	answer, err := Answer(offer)
	if err != nil {
		_ = s.control.SendResult(err)
		return nil, err
	}

	if s.Have != nil {
		RefreshAnswer(answer, s.Have)
	}

	err = s.control.Send(answer)
	if err != nil {
		return nil, err
	}

	if answer.GetIndexHeaderVersion() > 0 {
		err = s.readIndex()
		if err != nil {
			return nil, err
		}
	}

	// From now on the source only speaks to say it failed.
	s.failed = make(chan error, 1)
	go func() {
		res := &MigrationControl{}
		err := s.control.Recv(res)
		if err == nil {
			err = ResultError(res)
		}

		if err == nil {
			err = errors.New("the source sent an unexpected success")
		}

		s.failed <- err
	}()

	return answer, nil
}

// Failed reports the source's failure, or its control connection's end.
func (s *Sink) Failed() <-chan error { return s.failed }

// hangupTimeout bounds the wait for the source to hang up after the verdict.
const hangupTimeout = 10 * time.Second

// Finish sends the target's verdict, then waits (a while) for the source to hang up:
// closing first could reset the connection before the source read the verdict.
func (s *Sink) Finish(err error) error {
	if s.control == nil {
		s.control = NewControl(s.Control)
	}

	serr := s.control.SendResult(err)
	if serr == nil && err == nil && s.failed != nil {
		select {
		case <-s.failed:
		case <-time.After(hangupTimeout):
		}
	}

	return serr
}

// indexResponse is the target's answer to an index frame (LXD's migration.InfoResponse).
// LXD encodes it with Go's field names (no tags in 5.0, tags naming the fields since):
// LXD's source reads "status_code" as no status and fails the negotiation.
type indexResponse struct {
	StatusCode int    `json:"StatusCode"`
	Error      string `json:"Error"`
	Refresh    *bool  `json:"Refresh"`
}

// readIndex reads the source's index frame (JSON describing the volume; the header
// already says what Berth needs) and acknowledges it.
func (s *Sink) readIndex() error {
	_ = s.FS.SetReadDeadline(time.Now().Add(headerTimeout))
	defer func() { _ = s.FS.SetReadDeadline(time.Time{}) }()

	var buf bytes.Buffer
	for {
		mt, r, err := s.FS.NextReader()
		if err != nil {
			return fmt.Errorf("reading the index frame: %w", err)
		}

		if mt == textMessage {
			break
		}

		_, err = io.Copy(&buf, io.LimitReader(r, int64(maxIndexFrame-buf.Len()+1)))
		if err != nil {
			return fmt.Errorf("reading the index frame: %w", err)
		}

		if buf.Len() > maxIndexFrame {
			return fmt.Errorf("index frame over %d bytes", maxIndexFrame)
		}
	}

	if !json.Valid(buf.Bytes()) {
		return errors.New("the index frame is not JSON")
	}

	refresh := s.Have != nil
	data, _ := json.Marshal(indexResponse{StatusCode: 200, Refresh: &refresh})
	err := s.FS.WriteMessage(binaryMessage, data)
	if err == nil {
		err = s.FS.WriteMessage(textMessage, nil)
	}

	return err
}
